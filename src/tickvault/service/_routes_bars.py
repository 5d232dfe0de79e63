"""``/v1/bars``: read bars (one or several symbols, a range or the latest N), ingest bars, and
per-series coverage, statistics, quality and quarantine.

Routes with a ``{symbol:path}`` parameter accept ``BTC/USDT`` unencoded; the sub-resources
(``/latest``, ``/coverage``, ...) are registered before the bare series route so they win.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tickvault.model import Timeframe, us_to_ts, validate_symbol
from tickvault.service._auth import needs
from tickvault.service._bodies import MAX_PRICE, MAX_VOLUME, check_media_type, conform_body, parse_bars_body
from tickvault.service._errors import ApiError
from tickvault.service._fastpath import raw_request_key
from tickvault.service._formats import MEDIA_TYPES, OutFormat, negotiate, table_bytes, table_response
from tickvault.service._keys import Principal
from tickvault.service._params import (
    FETCHING_READ_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    AdjustParam,
    EndQ,
    FetchParam,
    StartQ,
    StartRequiredQ,
    SymbolPath,
    SymbolsQ,
    TimeframeQ,
    check_range,
    range_bounds,
    run,
    split_symbols,
    table_content,
)
from tickvault.service._schemas import (
    BarsOut,
    CoverageOut,
    IngestOut,
    MultiBarsOut,
    QualityOut,
    StatsOut,
)
from tickvault.service._settings import Role
from tickvault.service._state import ServiceState, state_of

__all__ = ["router", "stats_dict"]

router = APIRouter(tags=["bars"])

Reader = Annotated[Principal, Depends(needs(Role.READ))]
Writer = Annotated[Principal, Depends(needs(Role.WRITE))]
FormatQ = Annotated[OutFormat | None, Query(description="Response format; overrides `Accept`.")]


def _with_symbol(table: pa.Table, symbol: str) -> pa.Table:
    col = pc.take(pa.array([symbol], pa.string()), pa.array(np.zeros(table.num_rows, dtype=np.int32), pa.int32()))
    return table.add_column(0, "symbol", col)


def _check_fetch(st: ServiceState, principal: Principal, fetch: FetchParam) -> None:
    # Fetching spends provider quota and writes to the store: a write-role decision.
    if fetch is not FetchParam.never:
        st.guard.authorize(principal, Role.WRITE)


# -- several symbols ---------------------------------------------------------------------------

@router.get("/v1/bars", response_model=MultiBarsOut, responses={**FETCHING_READ_ERRORS, **table_content(MultiBarsOut)},
            summary="Bars of several symbols over one range")
async def multi_bars(request: Request, principal: Reader, symbols: SymbolsQ, timeframe: TimeframeQ,
                     start: StartRequiredQ, end: EndQ = None,
                     adjust: AdjustParam = AdjustParam.splits, fetch: FetchParam = FetchParam.never,
                     format: FormatQ = None) -> Response:
    """One table with a ``symbol`` column, sorted by symbol then time."""
    st = state_of(request)
    syms = split_symbols(symbols, st.settings)
    tf = Timeframe.parse(timeframe)
    fmt = negotiate(format, request.headers.get("accept"))
    _check_fetch(st, principal, fetch)
    s, e = range_bounds(start, end)
    check_range(st.settings, tf, s, e, symbols=len(syms))

    def read() -> pa.Table:
        parts = [_with_symbol(st.vault.bars(sym, str(tf), start, end, adjust=adjust.value, fetch=fetch.value,
                                            format="arrow"), sym) for sym in sorted(syms)]
        return pa.concat_tables(parts).unify_dictionaries()

    try:
        table = await run(read)
    finally:
        if fetch is not FetchParam.never:
            for sym in syms:
                st.versions.bump_symbol(sym)
    meta = {"timeframe": str(tf), "adjust": adjust.value, "symbols": sorted(syms), "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, stream_threshold=st.settings.stream_threshold_rows)


@router.get("/v1/latest", response_model=MultiBarsOut, responses={**READ_ERRORS, **table_content(MultiBarsOut)},
            summary="The newest N bars of several symbols")
async def multi_latest(request: Request, _: Reader, symbols: SymbolsQ, timeframe: TimeframeQ,
                       n: Annotated[int, Query(ge=0, le=1_000_000)] = 1, adjust: AdjustParam = AdjustParam.splits,
                       format: FormatQ = None) -> Response:
    """The newest ``n`` stored bars of each symbol (no fetching)."""
    st = state_of(request)
    syms = split_symbols(symbols, st.settings)
    tf = str(Timeframe.parse(timeframe))
    fmt = negotiate(format, request.headers.get("accept"))
    if n * len(syms) > st.settings.max_rows:
        raise ApiError(400, "limit_exceeded", f"n x symbols = {n * len(syms):,} rows; at most "
                       f"{st.settings.max_rows:,} per request", details={"limit": st.settings.max_rows})

    def read() -> pa.Table:
        parts = [_with_symbol(st.vault.latest(sym, tf, n, adjust=adjust.value, format="arrow"), sym)
                 for sym in sorted(syms)]
        return pa.concat_tables(parts).unify_dictionaries()

    table = await run(read)
    meta = {"timeframe": tf, "adjust": adjust.value, "symbols": sorted(syms), "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, stream_threshold=st.settings.stream_threshold_rows)


# -- one series: sub-resources first -----------------------------------------------------------

@router.get("/v1/bars/{symbol:path}/latest", response_model=BarsOut,
            responses={**READ_ERRORS, **table_content(BarsOut)}, summary="The newest N bars of a series")
async def latest(request: Request, _: Reader, symbol: SymbolPath, timeframe: TimeframeQ,
                 n: Annotated[int, Query(ge=0, le=1_000_000)] = 500, adjust: AdjustParam = AdjustParam.splits,
                 format: FormatQ = None) -> Response:
    """The newest ``n`` stored bars (no fetching); served from a pre-serialised cache when fresh.

    A repeated identical request is answered from that cache before routing (:mod:`._fastpath`).
    """
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = str(Timeframe.parse(timeframe))
    fmt = negotiate(format, request.headers.get("accept"))
    if n > st.settings.max_rows:
        raise ApiError(400, "limit_exceeded", f"n={n:,}; at most {st.settings.max_rows:,} rows per request",
                       details={"limit": st.settings.max_rows})
    key = ("latest", sym, tf, n, adjust.value, fmt.value)
    # Everything above is a pure function of the raw request: the next identical one can skip routing.
    st.latest.remember(raw_request_key(request.scope, request.headers.get("accept")), key)
    hit = st.latest.get(key, st.versions.of(sym, tf))
    if hit is not None:
        st.metrics.response_cache.labels("hit").inc()
        body, media, rows = hit
        return Response(body, media_type=media, headers={"X-Row-Count": str(rows), "X-Cache": "hit"})

    def compute() -> tuple[bytes, str, int, bool]:
        # One computation per key at a time: when an entry expires under load, every request that
        # misses meanwhile would otherwise read and serialise the same bars (tens of them at once,
        # the p99 of the bench's 32-connection runs); they wait here and take the fresh entry.
        with st.latest.computing(key):
            version = st.versions.of(sym, tf)  # read before computing: a write meanwhile makes the entry stale
            again = st.latest.get(key, version)
            if again is not None:
                return (*again, True)
            table = st.vault.latest(sym, tf, n, adjust=adjust.value, format="arrow")
            meta = {"symbol": sym, "timeframe": tf, "adjust": adjust.value, "count": table.num_rows}
            body = table_bytes(table, fmt, meta, "bars")
            st.latest.put(key, version, body, MEDIA_TYPES[fmt], table.num_rows)
            return body, MEDIA_TYPES[fmt], table.num_rows, False

    body, media, rows, shared = await run(compute)  # read and serialise off the event loop
    st.metrics.response_cache.labels("hit" if shared else "miss" if st.latest.enabled else "bypass").inc()
    return Response(body, media_type=media, headers={"X-Row-Count": str(rows), "X-Cache": "hit" if shared else "miss"})


def _iso_pair(a: Any, b: Any) -> list[str]:
    return [a.isoformat(), b.isoformat()]


@router.get("/v1/bars/{symbol:path}/coverage", response_model=CoverageOut, responses=READ_ERRORS,
            summary="Coverage ledger of a series (and what is missing in a range)")
async def coverage(request: Request, _: Reader, symbol: SymbolPath, timeframe: TimeframeQ, start: StartQ = None,
                   end: EndQ = None) -> dict[str, Any]:
    """The ledger's intervals; with ``start``, also the missing trading intervals of the range."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = Timeframe.parse(timeframe)
    missing: list[list[str]] | None = None
    if start is not None:
        s, e = range_bounds(start, end)
        check_range(st.settings, tf, s, e, what="bars to plan")
        gaps = await run(st.vault.missing, sym, str(tf), s, e)
        missing = [_iso_pair(a, b) for a, b in gaps]
    intervals = await run(st.vault.coverage, sym, str(tf))
    return {
        "symbol": sym,
        "timeframe": str(tf),
        "intervals": [{"start": us_to_ts(i.start_us).isoformat(), "end": us_to_ts(i.end_us).isoformat(),
                       "state": str(i.state), "provider": i.provider,
                       "updated": us_to_ts(i.updated_us).isoformat() if i.updated_us else None} for i in intervals],
        "missing": missing,
    }


def stats_dict(s: Any) -> dict[str, Any]:
    """A ``SeriesStatus`` as the JSON of :class:`StatsOut`."""
    def iso(ts: Any) -> str | None:
        return ts.isoformat() if ts is not None else None

    return {"symbol": s.symbol, "timeframe": s.timeframe, "rows": s.rows, "first": iso(s.first), "last": iso(s.last),
            "holes": s.holes, "missing_spans": [_iso_pair(a, b) for a, b in s.missing_bars_span],
            "quality_score": s.quality_score, "quarantined": s.quarantined, "last_update": iso(s.last_update)}


@router.get("/v1/bars/{symbol:path}/stats", response_model=StatsOut, responses=READ_ERRORS,
            summary="First/last bar, rows, holes and quality score of a series")
async def stats(request: Request, _: Reader, symbol: SymbolPath, timeframe: TimeframeQ) -> dict[str, Any]:
    """Statistics of a stored series (404 if nothing is stored for it)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = str(Timeframe.parse(timeframe))
    rows = await run(st.vault.status, sym)
    for s in rows:
        if s.timeframe == tf:
            return stats_dict(s)
    raise ApiError(404, "not_found", f"nothing is stored for {sym} {tf}", details={"symbol": sym, "timeframe": tf})


@router.get("/v1/bars/{symbol:path}/quality", response_model=QualityOut, responses=READ_ERRORS,
            summary="Latest quality report of a series")
async def quality(request: Request, _: Reader, symbol: SymbolPath, timeframe: TimeframeQ) -> dict[str, Any]:
    """The report of the series' last write or validation (404 if there is none)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = str(Timeframe.parse(timeframe))
    report = await run(st.vault.quality, sym, tf)
    if report is None:
        raise ApiError(404, "not_found", f"no quality report for {sym} {tf}", details={"symbol": sym, "timeframe": tf})
    return _report_dict(report)


def _report_dict(report: Any) -> dict[str, Any]:
    return {"symbol": report.symbol, "timeframe": report.timeframe, "rows": report.rows, "score": report.score,
            "counts": dict(report.counts), "hard_rules": sorted(report.hard_rules),
            "hard_failures": report.hard_failures, "soft_flags": report.soft_flags,
            "created": us_to_ts(report.created_us).isoformat() if report.created_us else None}


@router.post("/v1/bars/{symbol:path}/validate", response_model=QualityOut, responses=WRITE_ERRORS,
             summary="Run the quality rules over a stored series")
async def validate(request: Request, _: Writer, symbol: SymbolPath, timeframe: TimeframeQ) -> dict[str, Any]:
    """Validate the stored series; the report becomes its latest."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = str(Timeframe.parse(timeframe))
    report = await run(st.vault.validate, sym, tf)
    return _report_dict(report)


@router.get("/v1/bars/{symbol:path}/quarantine", responses={**READ_ERRORS, **table_content(dict[str, Any])},
            summary="Rows held back by hard quality rules")
async def quarantine(request: Request, _: Reader, symbol: SymbolPath, timeframe: TimeframeQ,
                     format: FormatQ = None) -> Response:
    """Quarantined rows with the rule and the reason (JSON field ``rows``)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = str(Timeframe.parse(timeframe))
    fmt = negotiate(format, request.headers.get("accept"))
    table = await run(st.vault.quarantine, sym, tf, format="arrow")
    if table.num_rows > st.settings.max_rows:
        raise ApiError(400, "limit_exceeded", f"{table.num_rows:,} quarantined rows; at most "
                       f"{st.settings.max_rows:,} per request (use the CLI)", details={"limit": st.settings.max_rows})
    meta = {"symbol": sym, "timeframe": tf, "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, rows_key="rows",
                     stream_threshold=st.settings.stream_threshold_rows)


# -- one series ------------------------------------------------------------------------------

@router.get("/v1/bars/{symbol:path}", response_model=BarsOut,
            responses={**FETCHING_READ_ERRORS, **table_content(BarsOut)}, summary="Bars of a series")
async def bars(request: Request, principal: Reader, symbol: SymbolPath, timeframe: TimeframeQ, start: StartQ = None,
               end: EndQ = None, adjust: AdjustParam = AdjustParam.splits, fetch: FetchParam = FetchParam.never,
               format: FormatQ = None) -> Response:
    """Bars in ``[start, end)``; without a range, the whole series (if it fits the row limit).

    ``fetch=auto`` fills what the coverage ledger says is missing from the providers and
    ``fetch=always`` refetches the range; both need a key with the write role.
    """
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = Timeframe.parse(timeframe)
    fmt = negotiate(format, request.headers.get("accept"))
    _check_fetch(st, principal, fetch)
    limit = st.settings.max_rows
    if start is None and end is None:
        # The whole series: read at most limit+1 newest rows, so a huge series costs no more.
        table = await run(st.vault.latest, sym, str(tf), limit + 1, adjust=adjust.value, format="arrow")
        if table.num_rows > limit:
            raise ApiError(400, "limit_exceeded", f"{sym} {tf} holds more than {limit:,} rows; "
                           "narrow the request with start/end", details={"limit": limit})
    else:
        s, e = range_bounds(start, end)
        check_range(st.settings, tf, s, e)
        try:
            table = await run(st.vault.bars, sym, str(tf), start, end, adjust=adjust.value, fetch=fetch.value,
                              format="arrow")
        finally:
            if fetch is not FetchParam.never:
                st.versions.bump_symbol(sym)
    meta = {"symbol": sym, "timeframe": str(tf), "adjust": adjust.value, "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, stream_threshold=st.settings.stream_threshold_rows)


_PRICE = {"type": "number", "minimum": -MAX_PRICE, "maximum": MAX_PRICE}
_VOLUME = {"type": "number", "minimum": -MAX_VOLUME, "maximum": MAX_VOLUME}
_BAR_IN = {
    "type": "object",
    "properties": {"ts": {"type": "string", "format": "date-time"}, "open": _PRICE, "high": _PRICE, "low": _PRICE,
                   "close": _PRICE, "volume": _VOLUME, "vwap": _PRICE, "trade_count": {**_VOLUME, "type": "integer"}},
    "required": ["ts", "open", "high", "low", "close", "volume"],
}
_INGEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"oneOf": [
            {"type": "array", "items": _BAR_IN, "maxItems": 1000},
            {"type": "object", "properties": {"bars": {"type": "array", "items": _BAR_IN}}, "required": ["bars"]}]}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.post("/v1/bars/{symbol:path}", response_model=IngestOut, responses=WRITE_ERRORS,
             openapi_extra={"requestBody": _INGEST_BODY}, summary="Ingest bars (JSON, CSV or Arrow)")
async def ingest(request: Request, _: Writer, symbol: SymbolPath, timeframe: TimeframeQ,
                 provider: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = "api",
                 coverage: Annotated[str, Query(pattern=r"^(bars|span|none)$")] = "bars") -> dict[str, Any]:
    """Validate and store the bars of the body (all or nothing for a malformed body).

    Bodies: a JSON list of bar objects (or ``{"bars": [...]}``), NDJSON, CSV with a header, or
    an Arrow IPC stream/file. Columns ``ts open high low close volume`` (``vwap``,
    ``trade_count`` optional). Rows failing hard quality rules are quarantined, not stored.
    """
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = str(Timeframe.parse(timeframe))
    content_type = request.headers.get("content-type")
    check_media_type(content_type)  # refuse before reading the body
    body = await request.body()
    limits = st.settings
    table = await run(parse_bars_body, body, content_type, max_rows=limits.max_rows,
                      max_decoded_bytes=8 * limits.max_body_bytes)
    bars = await run(conform_body, table, provider)
    receipt = await run(st.vault.write, sym, tf, bars, provider, coverage=coverage)
    st.versions.bump_series(sym, tf)  # the bus event does too; this covers a bus that is late (Redis)
    st.metrics.ingest_rows.labels("written").inc(receipt.rows_written)
    st.metrics.ingest_rows.labels("unchanged").inc(receipt.rows_unchanged)
    st.metrics.ingest_rows.labels("quarantined").inc(receipt.rows_quarantined)
    report = receipt.report
    return {"symbol": sym, "timeframe": tf, "rows_in": receipt.rows_in, "rows_written": receipt.rows_written,
            "rows_unchanged": receipt.rows_unchanged, "rows_quarantined": receipt.rows_quarantined,
            "bytes_written": receipt.bytes_written, "quality_score": report.score if report else None,
            "flagged": {k: v for k, v in sorted(report.counts.items()) if v} if report else {}}
