"""``TemplateProvider``: the imaginary "Example Bars API" (copy and adapt; see ``__init__``).

Vendor conventions (state the real vendor's here, each with a test):

- **Endpoint**: ``GET /v1/bars/{symbol}?interval=1min|1day&from=<epoch s>&to=<epoch s>``,
  key in the ``X-Api-Key`` header; ``cursor=<next>`` for the following pages.
- **Payload**: ``{"symbol": "AAPL", "bars": [{"t", "o", "h", "l", "c", "v"}], "next": null}``.
- **Timestamps**: ``t`` in epoch seconds; intraday = bar open; daily = any instant inside
  the session (mapped to the session-date key with the calendar).
- **Adjustment**: prices are raw (as traded); no corporate actions endpoint.
- **Symbols**: canonical spelling (``BRK.B``) unless ``Instrument.provider_symbols`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import numpy as np

from tickvault.calendars import TradingCalendar
from tickvault.errors import ProviderResponseError
from tickvault.model import AssetClass, Timeframe
from tickvault.providers._http import (
    Auth,
    HttpProvider,
    HttpSession,
    ProviderSettings,
    bars_table,
    calendar_for,
    column,
    epoch_to_us,
    expect_dict,
    finish,
    float_column,
    follow_pages,
    int_column,
    optional,
    record_columns,
    require,
    session_keys,
)
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport

__all__ = ["TemplatePlan", "TemplateProvider", "transform_page"]

NAME = "template"  # (1) rename
_INTERVALS = {"1m": "1min", "1d": "1day"}  # (2) the vendor's timeframe spellings


@dataclass(frozen=True)
class TemplatePlan:
    """Everything ``extract`` and ``transform`` need, computed purely from the query."""

    query: BarsQuery
    vendor: str
    timeframe: Timeframe
    path: str
    params: dict[str, str | int]
    calendar: TradingCalendar
    now_us: int


def transform_page(payload: Any, vendor: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(3) Pure: one page -> (epoch-µs stamps, float columns). Only typed provider errors.

    Raises
    ------
    ProviderResponseError
        For anything malformed.
    """
    body = expect_dict(payload, "$", NAME)
    symbol = optional(body, "symbol", str, "$", NAME)
    if symbol is not None and symbol != vendor:
        raise ProviderResponseError(f"answer is about {symbol[:40]!r}, not {vendor!r}", provider=NAME)
    rows = require(body, "bars", "$", NAME)
    cols = record_columns(rows if rows is not None else [], "bars", NAME)
    n = len(rows or [])
    if n == 0:
        return np.empty(0, dtype=np.int64), {k: np.empty(0) for k in ("open", "high", "low", "close", "volume")}
    ts = epoch_to_us(int_column(column(cols, "t", n, "bars", NAME), "bars.t", NAME), "s", "bars.t", NAME)
    out = {name: float_column(column(cols, key, n, "bars", NAME), f"bars.{key}", NAME, allow_null=False)
           for name, key in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v"))}
    return ts, out


class TemplateProvider(HttpProvider[TemplatePlan, list[Any]]):
    """Bars from the imaginary Example Bars API (the template to copy)."""

    NAME: ClassVar[str] = NAME
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=NAME, base_url="https://api.example.invalid", rate_limit_per_minute=60.0)

    @property
    def capabilities(self) -> Capabilities:
        """(4) What the vendor serves: be exact, selection relies on it."""
        return Capabilities(
            name=NAME,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF}),
            timeframes=(TimeframeSupport("1m", max_history_days=30, page_size=1000),
                        TimeframeSupport("1d", max_history_days=None, page_size=1000)),
            kinds=frozenset({DataKind.BARS}),
            needs_credentials=True,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    def auth(self, settings: ProviderSettings) -> Auth:
        """The key in a header (prefer headers: URLs end up in logs everywhere)."""
        return Auth(headers={"X-Api-Key": settings.api_key}) if settings.api_key is not None else Auth()

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> TemplatePlan:
        """Pure: the vendor's spelling of the query."""
        vendor = vendor_symbol(NAME, query.symbol, query.instrument)
        params: dict[str, str | int] = {"interval": _INTERVALS[str(timeframe)],
                                        "from": query.start_us // 1_000_000, "to": query.end_us // 1_000_000}
        return TemplatePlan(query, vendor, timeframe, f"/v1/bars/{quote(vendor, safe='.')}", params,
                            calendar_for(query.symbol, query.instrument), self._clock.now_us())

    async def extract(self, session: HttpSession, plan: TemplatePlan) -> list[Any]:
        """The only I/O: follow ``next`` cursors to the last page."""
        async def fetch(cursor: str | None, k: int) -> tuple[Any, str | None]:
            page = await session.get_json(plan.path, {**plan.params, "cursor": cursor}, symbol=plan.query.symbol,
                                          page=k)
            nxt = page.get("next") if isinstance(page, dict) else None
            return page, nxt if isinstance(nxt, str) else None

        return await follow_pages(fetch, provider=NAME, symbol=plan.query.symbol)

    def transform(self, raw: list[Any], plan: TemplatePlan) -> BarsResult:
        """Pure: pages -> canonical bars and coverage."""
        parts = [transform_page(p, plan.vendor) for p in raw]
        ts = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=np.int64)
        cols = {k: np.concatenate([p[1][k] for p in parts]) if parts else np.empty(0)
                for k in ("open", "high", "low", "close", "volume")}
        keys = ts if plan.timeframe.is_intraday else session_keys(ts, plan.calendar, NAME)
        table = bars_table(keys, provider=NAME, **cols)
        q = plan.query
        table, coverage = finish(table, q.start_us, q.end_us, plan.timeframe, plan.now_us, NAME)
        return BarsResult(table, coverage)
