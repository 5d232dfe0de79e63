"""``/v1/instruments``, ``/v1/actions`` and ``/v1/fundamentals``: reference data (instrument
records, splits, dividends, company fundamentals).

Instruments can be listed (paged, searched with ``?q=``), read, created, replaced and removed
(the record only: stored bars, actions and coverage stay, as ``Vault.remove_instrument`` does).
Fundamentals are the vault's merged, cached answer (``Vault.fundamentals``); asking the
providers again (``?refresh=true``) spends provider quota, so it needs the write role.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tickvault.calendars import get_calendar
from tickvault.model import CorporateAction, Instrument, validate_symbol
from tickvault.service._auth import needs
from tickvault.service._errors import ApiError
from tickvault.service._formats import OutFormat, negotiate, table_response
from tickvault.service._keys import Principal
from tickvault.service._params import FETCHING_READ_ERRORS, READ_ERRORS, WRITE_ERRORS, SymbolPath, run, table_content
from tickvault.service._schemas import (
    ActionsIn,
    ActionsOut,
    AddedOut,
    FundamentalsOut,
    InstrumentIn,
    InstrumentOut,
    InstrumentPage,
    RemovedOut,
)
from tickvault.service._settings import Role
from tickvault.service._state import state_of

__all__ = ["router"]

router = APIRouter()

Reader = Annotated[Principal, Depends(needs(Role.READ))]
Writer = Annotated[Principal, Depends(needs(Role.WRITE))]


def _known(instruments: list[Instrument], symbol: str) -> Instrument | None:
    return next((i for i in instruments if i.symbol == symbol), None)


@router.get("/v1/instruments", response_model=InstrumentPage, responses=READ_ERRORS, tags=["instruments"],
            summary="List instruments (paged; search with q)")
async def list_instruments(request: Request, _: Reader,
                           q: Annotated[str | None, Query(max_length=64, description="Case-insensitive match on "
                                                          "symbol or name.")] = None,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                           offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """Known instruments sorted by symbol; ``q`` keeps those whose symbol or name contains it."""
    st = state_of(request)
    items = await run(st.vault.instruments)
    if q:
        needle = q.casefold()
        items = [i for i in items if needle in i.symbol.casefold() or needle in (i.name or "").casefold()]
    page = items[offset:offset + limit]
    return {"items": [i.to_dict() for i in page], "total": len(items), "limit": limit, "offset": offset}


@router.get("/v1/instruments/{symbol:path}", response_model=InstrumentOut, responses=READ_ERRORS,
            tags=["instruments"], summary="One instrument")
async def get_instrument(request: Request, _: Reader, symbol: SymbolPath) -> dict[str, Any]:
    """The stored record (404 if the vault does not know the symbol)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    found = _known(await run(st.vault.instruments), sym)
    if found is None:
        raise ApiError(404, "not_found", f"unknown instrument {sym}", details={"symbol": sym})
    return found.to_dict()


def _instrument(body: InstrumentIn, symbol: str) -> Instrument:
    get_calendar(body.calendar)  # an unknown calendar is a 400 now, not a broken series later
    if body.listed and body.delisted and body.delisted < body.listed:
        raise ApiError(400, "invalid_input", "delisted is before listed")
    data = body.model_dump()
    data["symbol"] = symbol
    for key in ("listed", "delisted"):
        if isinstance(data[key], dt.date):
            data[key] = data[key].isoformat()
    return Instrument.from_dict(data)


@router.post("/v1/instruments", response_model=InstrumentOut, status_code=201,
             responses=WRITE_ERRORS,
             tags=["instruments"], summary="Create an instrument")
async def create_instrument(request: Request, _: Writer, body: InstrumentIn) -> dict[str, Any]:
    """Create a record; 409 if the symbol is known already (PUT replaces)."""
    st = state_of(request)
    sym = validate_symbol(body.symbol)
    inst = await run(_instrument, body, sym)
    if _known(await run(st.vault.instruments), sym) is not None:
        raise ApiError(409, "conflict", f"instrument {sym} exists; use PUT to replace it", details={"symbol": sym})
    await run(st.vault.add_instrument, inst)
    return inst.to_dict()


@router.put("/v1/instruments/{symbol:path}", response_model=InstrumentOut, responses=WRITE_ERRORS,
            tags=["instruments"], summary="Create or replace an instrument")
async def put_instrument(request: Request, _: Writer, symbol: SymbolPath, body: InstrumentIn) -> dict[str, Any]:
    """Insert or replace the record of ``symbol`` (the body's symbol must match the path)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    if validate_symbol(body.symbol) != sym:
        raise ApiError(400, "invalid_input", f"the body is for {body.symbol!r}, the path for {sym}")
    inst = await run(_instrument, body, sym)
    await run(st.vault.add_instrument, inst)
    st.versions.bump_symbol(sym)  # a new calendar changes how intraday bars adjust
    return inst.to_dict()


@router.delete("/v1/instruments/{symbol:path}", response_model=RemovedOut, responses=WRITE_ERRORS,
               tags=["instruments"], summary="Remove an instrument record")
async def delete_instrument(request: Request, _: Writer, symbol: SymbolPath) -> dict[str, Any]:
    """Forget the record of ``symbol`` (404 if unknown); its stored bars, actions and coverage stay.

    Reads of the symbol afterwards use the guessed record (``Instrument.guess``: US equity on
    XNYS, crypto 24/7, FX 24/5) until a new one is created.
    """
    st = state_of(request)
    sym = validate_symbol(symbol)
    if not await run(st.vault.remove_instrument, sym):
        raise ApiError(404, "not_found", f"unknown instrument {sym}", details={"symbol": sym})
    st.versions.bump_symbol(sym)  # the calendar may change with the record: cached answers are stale
    return {"symbol": sym, "removed": True}


def _json_value(value: object) -> float | str | None:
    """A fundamentals value as JSON can carry it: finite numbers, strings, else ``None``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return None if value is None else str(value)


@router.get("/v1/fundamentals/{symbol:path}", response_model=FundamentalsOut, responses=FETCHING_READ_ERRORS,
            tags=["fundamentals"], summary="Fundamentals of a symbol, each field with its source")
async def get_fundamentals(request: Request, principal: Reader, symbol: SymbolPath,
                           refresh: Annotated[bool, Query(description="Ask the providers again even if the cached "
                                                          "answer is fresh (needs the write role).")] = False,
                           ) -> dict[str, Any]:
    """Fields merged across the providers that serve fundamentals (the first with a field wins).

    The merged answer is cached in the store for ``fundamentals_ttl_days`` (7); without a fresh
    cached answer the providers are asked, as ``tickvault fundamentals`` does. 422
    ``unsupported_request`` when no configured provider serves fundamentals for the symbol.
    """
    st = state_of(request)
    sym = validate_symbol(symbol)
    if refresh:  # spends provider quota and rewrites the cached answer: a write-role decision
        st.guard.authorize(principal, Role.WRITE)
    fields = await run(st.vault.fundamentals, sym, refresh=refresh)
    return {"symbol": sym, "count": len(fields),
            "fields": {name: {"value": _json_value(value), "source": st.redactor.text(source)}
                       for name, (value, source) in sorted(fields.items())}}


@router.get("/v1/actions/{symbol:path}", response_model=ActionsOut,
            responses={**READ_ERRORS, **table_content(ActionsOut)}, tags=["corporate actions"],
            summary="Splits and dividends of a symbol")
async def get_actions(request: Request, _: Reader, symbol: SymbolPath,
                      format: Annotated[OutFormat | None, Query()] = None) -> Response:
    """Corporate actions by ex-date (JSON field ``actions``)."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    fmt = negotiate(format, request.headers.get("accept"))
    table = await run(st.vault.actions, sym, format="arrow")
    return await run(table_response, table, fmt, meta={"symbol": sym, "count": table.num_rows}, rows_key="actions",
                          stream_threshold=st.settings.stream_threshold_rows)


@router.post("/v1/actions/{symbol:path}", response_model=AddedOut, responses=WRITE_ERRORS,
             tags=["corporate actions"], summary="Add splits and dividends")
async def add_actions(request: Request, _: Writer, symbol: SymbolPath, body: ActionsIn) -> dict[str, Any]:
    """Store actions (idempotent: an identical action changes nothing); reads re-adjust at once."""
    st = state_of(request)
    sym = validate_symbol(symbol)
    actions = [CorporateAction(a.ex_date, a.kind, a.value, sym, a.currency, a.provider)  # type: ignore[arg-type]
               for a in body.actions]
    changed = await run(st.vault.add_actions, sym, actions)
    st.versions.bump_symbol(sym)
    return {"symbol": sym, "changed": changed}
