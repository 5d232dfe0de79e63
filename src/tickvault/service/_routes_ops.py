"""Operations: health checks, Prometheus metrics, fetch/backfill requests, status and admin calls.

``/health`` is liveness only (the process answers) and needs nothing. The detailed checks
(``/health/db``, ``/health/cache``, ``/health/providers``) and ``/metrics`` follow the read
policy. A degraded part answers 503 in the common error shape, the report in ``details``, so a
load balancer can act on the status alone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from tickvault.model import Timeframe, validate_symbol
from tickvault.service._auth import needs, public
from tickvault.service._errors import ApiError
from tickvault.service._keys import Principal
from tickvault.service._params import (
    READ_ERRORS,
    SYMBOL_PATTERN,
    WRITE_ERRORS,
    check_range,
    check_symbols,
    range_bounds,
    run,
)
from tickvault.service._routes_bars import stats_dict
from tickvault.service._schemas import (
    CompactOut,
    ErrorOut,
    FetchIn,
    FetchOut,
    HealthOut,
    KeysOut,
    ProvidersHealthOut,
    StatusOut,
    VerifyOut,
)
from tickvault.service._settings import Role
from tickvault.service._state import state_of

__all__ = ["router"]

router = APIRouter()

Reader = Annotated[Principal, Depends(needs(Role.READ))]
Writer = Annotated[Principal, Depends(needs(Role.WRITE))]
Admin = Annotated[Principal, Depends(needs(Role.ADMIN))]

_HEALTH_ERRORS = {**READ_ERRORS, 503: {"model": ErrorOut, "description": "Degraded (the report is in error.details)"}}


def _health(report: dict[str, Any], ok: bool, what: str) -> dict[str, Any]:
    if not ok:
        raise ApiError(503, "degraded", f"{what} is degraded", details=report)
    return {"status": "ok", **report}


@router.get("/health", response_model=HealthOut, tags=["health"], summary="Liveness")
async def health(_: Annotated[None, Depends(public())]) -> dict[str, Any]:
    """Always ``{"status": "ok"}`` while the process serves requests (no key, no rate limit)."""
    return {"status": "ok"}


@router.get("/health/db", response_model=HealthOut, responses=_HEALTH_ERRORS, tags=["health"],
            summary="Store backend health")
async def health_db(request: Request, _: Reader) -> dict[str, Any]:
    """Backend kind, location (passwords masked), size, connectivity."""
    report = await run(state_of(request).vault.health)
    backend = dict(report.get("backend") or {})
    return _health({"backend": backend}, bool(backend.get("connected")), "the store")


@router.get("/health/cache", response_model=HealthOut, responses=_HEALTH_ERRORS, tags=["health"],
            summary="Cache and event bus health")
async def health_cache(request: Request, _: Reader) -> dict[str, Any]:
    """Cache levels, hit rate, Redis connectivity, event bus counters, and the service's own cache of
    serialised latest-N answers (``response_cache``: hits and misses since the app started)."""
    st = state_of(request)
    report = await run(st.vault.health)
    cache = dict(report.get("cache") or {})
    redis = cache.get("redis")
    ok = redis is None or bool(redis.get("connected"))
    outcomes = _counts(st.metrics.response_cache, "result")
    response_cache = {"enabled": st.latest.enabled, "hits": outcomes.get("hit", 0), "misses": outcomes.get("miss", 0)}
    return _health({"cache": cache, "events": report.get("events"), "response_cache": response_cache}, ok,
                   "the cache")


@router.get("/health/providers", response_model=ProvidersHealthOut, responses=READ_ERRORS, tags=["health"],
            summary="Every configured provider: capabilities, credentials set, calls and errors")
async def health_providers(request: Request, _: Reader) -> dict[str, Any]:
    """Each configured provider in the user's order (``Vault.providers()``), never a secret.

    ``credentials_set`` says whether a credential is configured, not what it is; ``calls``,
    ``errors``, ``last_error`` (secrets masked) and ``last_ok`` count this process's calls
    (read-through, fetches, fundamentals).
    """
    st = state_of(request)
    rows = await run(st.vault.providers)
    return {"status": "ok", "providers": [{
        "name": p.name, "kinds": list(p.kinds), "asset_classes": list(p.asset_classes),
        "timeframes": list(p.timeframes), "needs_credentials": p.needs_credentials,
        "credentials_set": p.credentials_set, "calls": p.calls, "errors": p.errors,
        "last_error": st.redactor.text(p.last_error) if p.last_error is not None else None,
        "last_ok": p.last_ok.isoformat() if p.last_ok is not None else None} for p in rows]}


def _counts(counter: Any, label: str) -> dict[str, int]:
    """``label value -> count`` of a Prometheus counter (read through the public ``collect``)."""
    out: dict[str, int] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                key = sample.labels.get(label, "")
                out[key] = out.get(key, 0) + int(sample.value)
    return out


@router.get("/metrics", tags=["health"], responses={**READ_ERRORS, 200: {
    "content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics")
async def metrics(request: Request, _: Reader) -> Response:
    """Request latency per route, cache hit/miss, provider calls/errors, ingest rows, staleness."""
    body = await run(state_of(request).metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/status", response_model=StatusOut, responses=READ_ERRORS, tags=["bars"],
            summary="Every stored series (or one symbol's): bounds, rows, holes, quality")
async def status(request: Request, _: Reader,
                 symbol: Annotated[str | None, Query(max_length=40, description="Only this symbol's series.",
                                                     json_schema_extra={"pattern": SYMBOL_PATTERN})] = None,
                 ) -> dict[str, Any]:
    """What ``tickvault status`` prints, as JSON; ``symbol=`` keeps one symbol's series (none stored: empty)."""
    sym = validate_symbol(symbol) if symbol is not None else None
    rows = await run(state_of(request).vault.status, sym)
    return {"series": [stats_dict(s) for s in rows]}


@router.post("/v1/fetch", response_model=FetchOut, responses=WRITE_ERRORS, tags=["bars"],
             summary="Fetch or backfill a range from the providers")
async def fetch(request: Request, _: Writer, body: FetchIn) -> dict[str, Any]:
    """Fetch what the coverage ledger says is missing (``refresh``: everything) for each symbol.

    Runs to completion before answering; each symbol's range is bounded by
    ``max_fetch_bars``. Provider failures are reported per symbol, not raised.
    """
    st = state_of(request)
    check_symbols(len(body.symbols), st.settings)
    syms = list(dict.fromkeys(validate_symbol(s) for s in body.symbols))
    tf = Timeframe.parse(body.timeframe)
    s, e = range_bounds(body.start, body.end)
    check_range(st.settings, tf, s, e, max_rows=st.settings.max_fetch_bars, what="bars to fetch")
    if body.provider is not None and not body.provider.replace("_", "").isalnum():
        raise ApiError(400, "invalid_input", "provider must be a provider name like yahoo or alpha_vantage")
    results = []
    for sym in syms:
        try:
            outcome = await run(st.vault.fetch, sym, str(tf), body.start, body.end, provider=body.provider,
                                refresh=body.refresh)
        finally:
            st.versions.bump_symbol(sym)
        for err in outcome.errors:
            st.metrics.provider_error(err.context.get("provider"), type(err).__name__)
        results.append({"symbol": sym, "calls": outcome.calls,
                        "rows_written": sum(r.rows_written for r in outcome.receipts),
                        "providers": sorted(outcome.providers),
                        "errors": [st.redactor.text(e) for e in outcome.errors]})
    return {"timeframe": str(tf), "results": results}


@router.post("/v1/admin/verify", response_model=VerifyOut, responses=WRITE_ERRORS, tags=["admin"],
             summary="Verify every stored file")
async def verify(request: Request, _: Admin) -> dict[str, Any]:
    """Damaged files are set aside and their range marked missing."""
    report = await run(state_of(request).vault.verify)
    return {"ok": report.ok, "checked": report.checked, "damaged": [[a, b] for a, b in report.damaged],
            "repaired": list(report.repaired)}


@router.post("/v1/admin/compact", response_model=CompactOut, responses=WRITE_ERRORS, tags=["admin"],
             summary="Merge small files")
async def compact(request: Request, _: Admin) -> dict[str, Any]:
    """Compact every series; returns how many were compacted."""
    return {"compacted": await run(state_of(request).vault.compact)}


@router.get("/v1/admin/keys", response_model=KeysOut, responses=READ_ERRORS, tags=["admin"],
            summary="Configured API keys (names and roles)")
async def keys(request: Request, _: Admin) -> dict[str, Any]:
    """Names, roles and creation times; never hashes, never keys."""
    entries = await run(state_of(request).guard.keys.entries)
    return {"keys": [{"name": e.name, "role": str(e.role), "created": e.created} for e in entries]}
