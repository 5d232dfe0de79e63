"""``/v1/indicators``, ``/v1/snapshot`` and ``/v1/screen``: the vault's analytics over HTTP.

The computation is the vault's (``Vault.indicators``, ``Vault.snapshot``, ``Vault.screen``, see
docs/analytics.md); this module bounds the work before it starts (rows of the range, number of
indicators and symbols, expression length) and serialises the tables like the bar routes.
"""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tickvault.model import Timeframe, validate_symbol
from tickvault.service._auth import needs
from tickvault.service._errors import ApiError
from tickvault.service._formats import OutFormat, negotiate, table_response
from tickvault.service._keys import Principal
from tickvault.service._params import (
    READ_ERRORS,
    AdjustParam,
    EndQ,
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
from tickvault.service._schemas import IndicatorsOut, RowsOut
from tickvault.service._settings import Role
from tickvault.service._state import state_of

__all__ = ["router"]

router = APIRouter(tags=["analytics"])

Reader = Annotated[Principal, Depends(needs(Role.READ))]
FormatQ = Annotated[OutFormat | None, Query(description="Response format; overrides `Accept`.")]
_MAX_INDICATORS = 20
_NAME_PATTERN = r"^[a-z]{2,8}(_[0-9]{1,4}){0,3}(,[a-z]{2,8}(_[0-9]{1,4}){0,3}){0,19}$"
NamesQ = Annotated[str | None, Query(max_length=400, description="Comma-separated indicators, e.g. "
                                     "`rsi_14,sma_200,macd_12_26_9,bb_20_2` (docs/analytics.md).",
                                     json_schema_extra={"pattern": _NAME_PATTERN})]


def _names(raw: str | None, default: tuple[str, ...] = ()) -> list[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()] if raw else list(default)
    if len(names) > _MAX_INDICATORS:
        raise ApiError(400, "limit_exceeded", f"{len(names)} indicators; at most {_MAX_INDICATORS} per request",
                       details={"limit": _MAX_INDICATORS})
    return names


@router.get("/v1/indicators/{symbol:path}", response_model=IndicatorsOut,
            responses={**READ_ERRORS, **table_content(IndicatorsOut)}, summary="Indicator values of a series")
async def indicators(request: Request, _: Reader, symbol: SymbolPath, timeframe: TimeframeQ, start: StartRequiredQ,
                     names: NamesQ = None, end: EndQ = None, adjust: AdjustParam = AdjustParam.splits,
                     format: FormatQ = None) -> Response:
    """Indicators aligned with the bars of ``[start, end)`` (computed on stored, adjusted bars)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    tf = Timeframe.parse(timeframe)
    fmt = negotiate(format, request.headers.get("accept"))
    wanted = _names(names)
    if not wanted:
        raise ApiError(400, "invalid_input", "name at least one indicator, e.g. names=rsi_14")
    s, e = range_bounds(start, end)
    check_range(st.settings, tf, s, e)
    table = await run(st.vault.indicators, sym, str(tf), wanted, start, end, adjust=adjust.value, fetch="never",
                      format="arrow")
    meta = {"symbol": sym, "timeframe": str(tf), "adjust": adjust.value, "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, rows_key="rows",
                     stream_threshold=st.settings.stream_threshold_rows)


def _snapshot_table(frame: Any) -> pa.Table:
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame.reset_index(), preserve_index=False)
    return table.replace_schema_metadata(None)


@router.get("/v1/snapshot", response_model=RowsOut, responses={**READ_ERRORS, **table_content(RowsOut)},
            summary="Latest bar, changes and indicators of several symbols")
async def snapshot(request: Request, _: Reader, symbols: SymbolsQ, timeframe: TimeframeQ = "1d",
                   indicators: NamesQ = None, adjust: AdjustParam = AdjustParam.splits,
                   format: FormatQ = None) -> Response:
    """One row per symbol (symbols with nothing stored have empty values)."""
    st = state_of(request)
    syms = split_symbols(symbols, st.settings)
    tf = str(Timeframe.parse(timeframe))
    fmt = negotiate(format, request.headers.get("accept"))
    wanted = _names(indicators)
    kwargs: dict[str, Any] = {"adjust": adjust.value, "format": "arrow"}
    if wanted:
        kwargs["indicators"] = wanted
    table = _snapshot_table(await run(st.vault.snapshot, syms, tf, **kwargs))
    meta = {"timeframe": tf, "adjust": adjust.value, "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, rows_key="rows",
                     stream_threshold=st.settings.stream_threshold_rows)


@router.get("/v1/screen", response_model=RowsOut, responses={**READ_ERRORS, **table_content(RowsOut)},
            summary="Symbols whose snapshot satisfies an expression")
async def screen(request: Request, _: Reader,
                 expr: Annotated[str, Query(min_length=1, max_length=500, description="e.g. `rsi_14 < 30 and "
                                            "close > sma_200` (fields and numbers only).")],
                 universe: Annotated[str | None, Query(max_length=4000, description="Comma-separated symbols "
                                                       "(default: every stored series of the timeframe).")] = None,
                 timeframe: TimeframeQ = "1d", adjust: AdjustParam = AdjustParam.splits,
                 format: FormatQ = None) -> Response:
    """The snapshot rows that match ``expr``."""
    st = state_of(request)
    syms = split_symbols(universe, st.settings) if universe is not None else None
    tf = str(Timeframe.parse(timeframe))
    fmt = negotiate(format, request.headers.get("accept"))
    table = _snapshot_table(await run(st.vault.screen, expr, syms, tf, adjust=adjust.value))
    meta = {"timeframe": tf, "adjust": adjust.value, "expr": expr, "count": table.num_rows}
    return await run(table_response, table, fmt, meta=meta, rows_key="rows",
                     stream_threshold=st.settings.stream_threshold_rows)
