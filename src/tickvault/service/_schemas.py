"""The API's JSON shapes as pydantic models: request bodies are validated with them, and the
OpenAPI schema (which schemathesis checks responses against) is generated from them.

Tabular responses are serialised column-wise by :mod:`._formats` for speed, not through these
models; the models describe exactly what that code writes (tests and schemathesis hold the
two together).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActionIn",
    "ActionOut",
    "ActionsIn",
    "ActionsOut",
    "AddedOut",
    "BarOut",
    "BarsOut",
    "CompactOut",
    "CoverageIntervalOut",
    "CoverageOut",
    "ErrorDetail",
    "ErrorOut",
    "FetchIn",
    "FetchOut",
    "FetchResult",
    "FundamentalOut",
    "FundamentalsOut",
    "HealthOut",
    "IndicatorsOut",
    "IngestOut",
    "InstrumentIn",
    "InstrumentOut",
    "InstrumentPage",
    "KeyOut",
    "KeysOut",
    "MultiBarOut",
    "MultiBarsOut",
    "ProviderOut",
    "ProvidersHealthOut",
    "QualityOut",
    "RemovedOut",
    "RowsOut",
    "StatsOut",
    "StatusOut",
    "VerifyOut",
]

_FORBID = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """The inside of every error response."""

    status: int
    code: str
    message: str
    request_id: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorDetail


class BarOut(BaseModel):
    """One bar (UTC; intraday bars labelled by their open, daily ones by session date)."""

    ts: dt.datetime
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None
    vwap: float | None
    trade_count: int | None
    provider: str | None


class BarsOut(BaseModel):
    """Bars of one series."""

    symbol: str
    timeframe: str
    adjust: Literal["none", "splits", "all"]
    count: int
    bars: list[BarOut]


class MultiBarOut(BarOut):
    """One bar of a several-symbol answer."""

    symbol: str


class MultiBarsOut(BaseModel):
    """Bars of several symbols in one table (a ``symbol`` column, sorted by symbol then time)."""

    timeframe: str
    adjust: Literal["none", "splits", "all"]
    symbols: list[str]
    count: int
    bars: list[MultiBarOut]


AssetClassName = Literal["equity", "etf", "index", "crypto", "fx", "future", "other"]
StatusName = Literal["active", "delisted", "unknown"]


class IndicatorsOut(BaseModel):
    """Indicator values of one series: ``ts`` plus one column per indicator output."""

    symbol: str
    timeframe: str
    adjust: Literal["none", "splits", "all"]
    count: int
    rows: list[dict[str, Any]]


class RowsOut(BaseModel):
    """Snapshot or screen rows: one per symbol (latest bar, changes, indicators)."""

    timeframe: str
    adjust: Literal["none", "splits", "all"]
    count: int
    expr: str | None = None
    rows: list[dict[str, Any]]


class InstrumentIn(BaseModel):
    """An instrument record to create or replace (the symbol comes from the path for PUT)."""

    model_config = _FORBID

    symbol: str = Field(min_length=1, max_length=40)
    asset_class: AssetClassName = "equity"
    exchange: str | None = Field(default=None, max_length=32)
    currency: str | None = Field(default=None, max_length=16)
    calendar: str = Field(default="XNYS", min_length=1, max_length=32)
    status: StatusName = "active"
    listed: dt.date | None = None
    delisted: dt.date | None = None
    name: str | None = Field(default=None, max_length=200)
    provider_symbols: dict[str, str] = Field(default_factory=dict, max_length=32)


class InstrumentOut(BaseModel):
    """An instrument record."""

    symbol: str
    asset_class: str
    exchange: str | None
    currency: str | None
    calendar: str
    status: str
    listed: dt.date | None
    delisted: dt.date | None
    name: str | None
    provider_symbols: dict[str, str]


class InstrumentPage(BaseModel):
    """One page of instruments."""

    items: list[InstrumentOut]
    total: int
    limit: int
    offset: int


class CoverageIntervalOut(BaseModel):
    """One interval of the coverage ledger (half-open, UTC)."""

    start: dt.datetime
    end: dt.datetime
    state: Literal["final", "provisional", "empty"]
    provider: str | None
    updated: dt.datetime | None


class CoverageOut(BaseModel):
    """The coverage ledger of a series, and what is missing in a range when one is given."""

    symbol: str
    timeframe: str
    intervals: list[CoverageIntervalOut]
    missing: list[list[dt.datetime]] | None


class StatsOut(BaseModel):
    """Bounds, size and health of one stored series."""

    symbol: str
    timeframe: str
    rows: int
    first: dt.datetime | None
    last: dt.datetime | None
    holes: int
    missing_spans: list[list[dt.datetime]]
    quality_score: float | None
    quarantined: int
    last_update: dt.datetime | None


class QualityOut(BaseModel):
    """The latest quality report of a series (flag rows are available through the CLI)."""

    symbol: str
    timeframe: str
    rows: int
    score: float
    counts: dict[str, int]
    hard_rules: list[str]
    hard_failures: int
    soft_flags: int
    created: dt.datetime | None


class ActionIn(BaseModel):
    """A split (``value`` = new shares per old share) or a cash dividend (``value`` = amount).

    Values are bounded to what markets produce (splits 1:1,000,000 either way, dividends up to
    a million per share): anything beyond is a unit error that would wreck adjusted history.
    """

    model_config = _FORBID

    ex_date: dt.date
    kind: Literal["split", "dividend"]
    value: float = Field(ge=1e-6, le=1e6, allow_inf_nan=False)
    currency: str | None = Field(default=None, max_length=16)
    provider: str | None = Field(default=None, max_length=32)


class ActionsIn(BaseModel):
    """Corporate actions to add."""

    model_config = _FORBID

    actions: list[ActionIn] = Field(min_length=1, max_length=10_000)


class ActionOut(BaseModel):
    """A stored corporate action."""

    ex_date: dt.date
    kind: str
    value: float
    currency: str | None
    provider: str | None


class ActionsOut(BaseModel):
    """Corporate actions of a symbol, by ex-date."""

    symbol: str
    count: int
    actions: list[ActionOut]


class AddedOut(BaseModel):
    """How many records a write changed."""

    symbol: str
    changed: int


class RemovedOut(BaseModel):
    """What a delete removed."""

    symbol: str
    removed: bool


class IngestOut(BaseModel):
    """What an ingest did (see ``WriteReceipt``)."""

    symbol: str
    timeframe: str
    rows_in: int
    rows_written: int
    rows_unchanged: int
    rows_quarantined: int
    bytes_written: int
    quality_score: float | None
    flagged: dict[str, int]


class FetchIn(BaseModel):
    """Fetch (or backfill) what is missing in a range from the providers, for some symbols."""

    model_config = _FORBID

    symbols: list[str] = Field(min_length=1, max_length=1000, json_schema_extra={"examples": [["AAPL", "MSFT"]]})
    timeframe: str = Field(min_length=1, max_length=16, json_schema_extra={"examples": ["1d"]})
    start: str = Field(min_length=1, max_length=40, json_schema_extra={"examples": ["2024-01-02"]})
    end: str | None = Field(default=None, max_length=40, json_schema_extra={"examples": ["2024-03-28"]})
    provider: str | None = Field(default=None, max_length=32)
    refresh: bool = False


class FetchResult(BaseModel):
    """What one symbol's fetch did."""

    symbol: str
    calls: int
    rows_written: int
    providers: list[str]
    errors: list[str]


class FetchOut(BaseModel):
    """Per-symbol outcomes of a fetch request."""

    timeframe: str
    results: list[FetchResult]


class HealthOut(BaseModel):
    """Health of the service or of one of its parts (``ok`` or ``degraded``)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"]


class ProviderOut(BaseModel):
    """One configured provider: what it serves, whether its credentials are set, how it fares.

    Never a credential: ``credentials_set`` only says whether one is configured, and
    ``last_error`` has every configured secret masked.
    """

    name: str
    kinds: list[str]
    asset_classes: list[str]
    timeframes: list[str]
    needs_credentials: bool
    credentials_set: bool
    calls: int
    errors: int
    last_error: str | None
    last_ok: dt.datetime | None


class ProvidersHealthOut(BaseModel):
    """Every configured provider, in the user's order."""

    status: Literal["ok", "degraded"]
    providers: list[ProviderOut]


class FundamentalOut(BaseModel):
    """One fundamentals field: its value (``null`` when not a finite number) and its source."""

    value: float | str | None
    source: str


class FundamentalsOut(BaseModel):
    """Fundamentals merged field by field across providers (the first provider with a field wins)."""

    symbol: str
    count: int
    fields: dict[str, FundamentalOut]


class VerifyOut(BaseModel):
    """What ``verify`` found (damaged files were set aside and their range marked missing)."""

    ok: bool
    checked: int
    damaged: list[list[str]]
    repaired: list[str]


class CompactOut(BaseModel):
    """How many series ``compact`` merged."""

    compacted: int


class StatusOut(BaseModel):
    """Every stored series."""

    series: list[StatsOut]


class KeyOut(BaseModel):
    """A configured API key (name and role only; hashes and keys are never returned)."""

    name: str
    role: Literal["read", "write", "admin"]
    created: str | None


class KeysOut(BaseModel):
    """The configured API keys."""

    keys: list[KeyOut]
