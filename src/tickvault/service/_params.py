"""Request parameters shared by the routes, and the request limits checked before any work.

A read over a range is refused (400 ``limit_exceeded``) when the rows the range *can* hold
exceed ``max_rows``: the count is an upper bound from the range's length and the timeframe
(``span / bar length + 1``, months counted as 28 days), computed before the store or a
provider is touched. Ranges longer than ``max_range_days`` are refused whatever the
timeframe (400 ``range_too_large``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import pandas as pd
from fastapi import Path, Query
from starlette.concurrency import run_in_threadpool

from tickvault.model import Timeframe, TimeRange, ts_to_us, validate_symbol
from tickvault.service._errors import ApiError
from tickvault.service._formats import MEDIA_TYPES, OutFormat
from tickvault.service._schemas import ErrorOut
from tickvault.service._settings import ServiceSettings

__all__ = [
    "SYMBOL_PATTERN",
    "TIMEFRAME_PATTERN",
    "AdjustParam",
    "EndQ",
    "StartQ",
    "StartRequiredQ",
    "SymbolPath",
    "SymbolsQ",
    "TimeframeQ",
    "FetchParam",
    "READ_ERRORS",
    "WRITE_ERRORS",
    "check_range",
    "check_symbols",
    "estimate_rows",
    "range_bounds",
    "run",
    "split_symbols",
    "table_content",
]

T = TypeVar("T")
_DAY_US = 86_400_000_000

# Patterns *documented* in the OpenAPI schema (clients and schemathesis generate from them). They
# are deliberately not enforced by the framework: the strict checks are ``validate_symbol`` and
# ``Timeframe.parse``, which answer 400 with a message that says what is wrong.
SYMBOL_PATTERN = r"^\^?[A-Za-z0-9][A-Za-z0-9_.\-]{0,19}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,19})?$"
TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,2}(s|m|h|d|w|mo)$"
_TIME_PATTERN = (r"^(19[7-9][0-9]|20[0-4][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
                 r"(T([01][0-9]|2[0-3]):[0-5][0-9]Z)?$")

SymbolPath = Annotated[str, Path(description="Canonical symbol: `AAPL`, `BRK.B`, `BTC/USDT` (slash as is), `^GSPC`.",
                                 json_schema_extra={"pattern": SYMBOL_PATTERN, "examples": ["ACME", "BTC/USDT"]})]
TimeframeQ = Annotated[str, Query(min_length=1, max_length=16, description="`1m`, `5m`, `1h`, `1d`, `1w`, `1mo`, ...",
                                  json_schema_extra={"pattern": TIMEFRAME_PATTERN, "examples": ["1d", "1m"]})]
StartQ = Annotated[str | None, Query(max_length=40, description="UTC instant or date (inclusive).",
                                     json_schema_extra={"pattern": _TIME_PATTERN})]
StartRequiredQ = Annotated[str, Query(min_length=1, max_length=40, description="UTC instant or date (inclusive).",
                                      json_schema_extra={"pattern": _TIME_PATTERN})]
EndQ = Annotated[str | None, Query(max_length=40, description="UTC instant (exclusive) or date (inclusive).",
                                   json_schema_extra={"pattern": _TIME_PATTERN})]
SymbolsQ = Annotated[str, Query(min_length=1, max_length=4000, description="Comma-separated symbols.",
                                json_schema_extra={"pattern": r"^[A-Za-z0-9][A-Za-z0-9_./\-]{0,19}"
                                                              r"(,[A-Za-z0-9][A-Za-z0-9_./\-]{0,19}){0,9}$"})]


class AdjustParam(enum.StrEnum):
    """``adjust=``: how prices are adjusted on read."""

    none = "none"
    splits = "splits"
    all = "all"


class FetchParam(enum.StrEnum):
    """``fetch=``: whether missing bars are fetched from providers (``auto``/``always`` need write)."""

    never = "never"
    auto = "auto"
    always = "always"


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


#: Error answers every read endpoint may give (documented so schemathesis can hold us to them).
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _err("Invalid input or a request limit exceeded"),
    401: _err("An API key is needed (or the one given is not valid)"),
    403: _err("The key's role is too low"),
    404: _err("Not found, or data missing and not fetched"),
    406: _err("No acceptable response format"),
    422: _err("Request parameters failed validation"),
    429: _err("Rate limit exceeded; see Retry-After"),
}
#: Error answers of write endpoints (the read ones plus body problems and provider failures).
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    409: _err("Conflict with the current state"),
    413: _err("Body too large or too many rows"),
    415: _err("Unsupported body media type"),
    502: _err("A data provider failed or answered garbage"),
    503: _err("A data provider or the store is temporarily unavailable; see Retry-After"),
    504: _err("A data provider timed out"),
}
#: Read endpoints that may fetch from providers.
FETCHING_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS, **{k: v for k, v in WRITE_ERRORS.items() if k in (502, 503, 504)}}


def table_content(model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of a tabular endpoint: JSON ``model`` or CSV / Arrow / Parquet bytes."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {
            "model": model,
            "description": "JSON by default; CSV, Arrow IPC stream or Parquet by `format=` or `Accept`.",
            "content": {
                MEDIA_TYPES[OutFormat.CSV].split(";")[0]: {"schema": {"type": "string"}},
                MEDIA_TYPES[OutFormat.ARROW]: binary,
                MEDIA_TYPES[OutFormat.PARQUET]: binary,
            },
        }
    }


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking vault call in the thread pool, off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def split_symbols(raw: str, settings: ServiceSettings) -> list[str]:
    """Validate a comma-separated symbol list (duplicates removed, order kept)."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ApiError(400, "invalid_input", "symbols is empty; give one or more comma-separated symbols")
    check_symbols(len(parts), settings)
    return list(dict.fromkeys(validate_symbol(p) for p in parts))


def check_symbols(n: int, settings: ServiceSettings) -> None:
    """Refuse more than ``max_symbols`` symbols in one request."""
    if n > settings.max_symbols:
        raise ApiError(400, "limit_exceeded", f"{n} symbols in one request; at most {settings.max_symbols}",
                       details={"limit": settings.max_symbols, "symbols": n})


def range_bounds(start: str | None, end: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC range ``[start, end)`` as the vault will read it (a bare date as ``end`` is inclusive)."""
    rng = TimeRange.of(start, end, default_end=pd.Timestamp.now(tz="UTC").ceil("min"))
    return rng.start, rng.end


def estimate_rows(timeframe: Timeframe, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """An upper bound of the bars ``[start, end)`` can hold at ``timeframe`` (no I/O)."""
    span = max(ts_to_us(end) - ts_to_us(start), 0)
    step = timeframe.n * 28 * _DAY_US if timeframe.unit == "mo" else timeframe.micros
    return span // step + 1


def check_range(settings: ServiceSettings, timeframe: Timeframe, start: pd.Timestamp, end: pd.Timestamp, *,
                symbols: int = 1, max_rows: int | None = None, what: str = "rows") -> None:
    """Refuse a range longer than ``max_range_days`` or able to hold more than ``max_rows`` rows.

    Raises
    ------
    ApiError
        400 ``range_too_large`` or ``limit_exceeded``, before any work is done.
    """
    limit = settings.max_rows if max_rows is None else max_rows
    days = (ts_to_us(end) - ts_to_us(start)) / _DAY_US
    if days > settings.max_range_days:
        raise ApiError(400, "range_too_large",
                       f"the range spans {days:,.0f} days; at most {settings.max_range_days:,} per request",
                       details={"limit_days": settings.max_range_days, "days": round(days)})
    rows = estimate_rows(timeframe, start, end) * symbols
    if rows > limit:
        raise ApiError(400, "limit_exceeded",
                       f"the range can hold up to {rows:,} {what} of {timeframe}"
                       f"{f' for {symbols} symbols' if symbols > 1 else ''}; at most {limit:,} per request — "
                       "narrow it with start/end", details={"limit": limit, "estimate": rows})
