"""``AlpacaProvider``: Alpaca Market Data v2 stock bars and corporate actions.

Query: ``GET /v2/stocks/bars?symbols&timeframe&start&end&limit=10000&adjustment=raw&feed&sort=asc``
following ``next_page_token``, then ``GET /v1beta1/corporate-actions`` from the window's
start to today. Keys go in the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers.
Conventions are in :mod:`tickvault.providers.alpaca._transform`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import SecretStr

from tickvault.calendars import TradingCalendar
from tickvault.errors import ConfigError, ProviderError, UnsupportedRequest
from tickvault.model import AssetClass, CorporateAction, Instrument, Timeframe
from tickvault.providers._http import (
    DAY_US,
    Auth,
    HttpProvider,
    HttpSession,
    ProviderSettings,
    Reply,
    bars_table,
    calendar_for,
    finish,
    follow_pages,
    regular_hours_mask,
    session_keys,
)
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.alpaca._transform import PROVIDER, BarsPage, page_token, parse_actions, parse_bars
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport

__all__ = ["AlpacaPlan", "AlpacaProvider"]

_TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1d": "1Day"}
_FEEDS = ("sip", "iex", "delayed_sip", "otc", "boats")
PAGE_LIMIT = 10_000


def _rfc3339(us: int) -> str:
    return pd.Timestamp(us * 1000, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=us // DAY_US)


@dataclass(frozen=True)
class AlpacaPlan:
    """The vendor spelling of one bars query."""

    query: BarsQuery
    vendor: str
    timeframe: Timeframe
    params: dict[str, str | int]
    actions: dict[str, str | int] | None
    feed: str
    extended_hours: bool
    calendar: TradingCalendar
    now_us: int


class AlpacaProvider(HttpProvider[AlpacaPlan, tuple[list[Any], list[Any]]]):
    """Alpaca US stock bars (1m, 5m, 15m, 30m, 1d) and corporate actions; needs key and secret.

    Parameters
    ----------
    settings
        ``TICKVAULT_ALPACA_BASE_URL`` / ``_API_KEY`` / ``_API_SECRET`` / ``_RATE_LIMIT``
        (default 200/min) and the option ``TICKVAULT_ALPACA_FEED`` (``sip`` by default;
        ``iex`` on the free plan).
    feed
        Override of the feed option.
    extended_hours
        Keep pre/post-market minute bars; default regular hours only.
    actions
        Also fetch splits and dividends with every bars call (default ``True``).
    **kwargs
        Passed to :class:`~tickvault.providers._http.HttpProvider`.
    """

    NAME: ClassVar[str] = PROVIDER
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=PROVIDER, base_url="https://data.alpaca.markets", rate_limit_per_minute=200.0)
    OPTIONS: ClassVar[tuple[str, ...]] = ("feed", "extended_hours")

    def __init__(self, settings: ProviderSettings | None = None, *, feed: str | None = None,
                 extended_hours: bool | None = None, actions: bool = True, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._feed = (feed or self.settings.options.get("feed") or "sip").lower()
        if self._feed not in _FEEDS:
            raise ConfigError(f"unknown Alpaca feed {self._feed!r}; use one of {', '.join(_FEEDS)}",
                              provider=PROVIDER)
        opt = self.settings.options.get("extended_hours", "false").strip().lower()
        self._extended = extended_hours if extended_hours is not None else opt in ("1", "true", "yes")
        self._actions = actions
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF}),
            timeframes=tuple(TimeframeSupport(tf, None, PAGE_LIMIT) for tf in _TIMEFRAMES),
            kinds=frozenset({DataKind.BARS, DataKind.ACTIONS}),
            needs_credentials=True,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, feed={self._feed!r})"

    @property
    def capabilities(self) -> Capabilities:
        """US equities and ETFs; 1m, 5m, 15m, 30m (session-aligned) and 1d."""
        return self._caps

    @property
    def provenance(self) -> str:
        """The ``provider`` column value: ``alpaca:<feed>``."""
        return f"{PROVIDER}:{self._feed}"

    def auth(self, settings: ProviderSettings) -> Auth:
        """``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` headers."""
        headers: dict[str, SecretStr] = {}
        if settings.api_key is not None:
            headers["APCA-API-KEY-ID"] = settings.api_key
        if settings.api_secret is not None:
            headers["APCA-API-SECRET-KEY"] = settings.api_secret
        return Auth(headers=headers)

    def classify(self, reply: Reply) -> tuple[type[ProviderError], str] | None:
        """403 "subscription does not permit ..." is an entitlement limit, not bad credentials."""
        if reply.status == 403 and "subscription" in reply.text().lower():
            return UnsupportedRequest, f"Alpaca: {reply.text(200)}"
        return None

    # -- query -> extract -> transform -----------------------------------------------------

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> AlpacaPlan:
        """RFC 3339 bounds; the end is exclusive on our side, so ask up to one µs before it."""
        vendor = vendor_symbol(PROVIDER, query.symbol, query.instrument)
        now_us = self._clock.now_us()
        params: dict[str, str | int] = {
            "symbols": vendor, "timeframe": _TIMEFRAMES[str(timeframe)], "start": _rfc3339(query.start_us),
            "end": _rfc3339(query.end_us - 1_000_000), "limit": PAGE_LIMIT, "adjustment": "raw",
            "feed": self._feed, "sort": "asc",
        }
        actions: dict[str, str | int] | None = None
        if self._actions:
            actions = {"symbols": vendor, "types": "forward_split,reverse_split,cash_dividend",
                       "start": _day(query.start_us).isoformat(), "end": _day(max(now_us, query.end_us)).isoformat(),
                       "limit": 1000, "sort": "asc"}
        return AlpacaPlan(query, vendor, timeframe, params, actions, self._feed, self._extended,
                          calendar_for(query.symbol, query.instrument), now_us)

    async def _pages(self, session: HttpSession, path: str, params: dict[str, str | int], what: str,
                     symbol: str) -> list[Any]:
        async def fetch(cursor: str | None, k: int) -> tuple[Any, str | None]:
            body = await session.get_json(path, {**params, "page_token": cursor}, symbol=symbol, page=f"{what}#{k}")
            return body, page_token(body)

        return await follow_pages(fetch, provider=PROVIDER, symbol=symbol, what=what)

    async def extract(self, session: HttpSession, plan: AlpacaPlan) -> tuple[list[Any], list[Any]]:
        """All bar pages, then all corporate-action pages."""
        sym = plan.query.symbol
        bars = await self._pages(session, "/v2/stocks/bars", plan.params, "bars", sym)
        actions = []
        if plan.actions is not None:
            actions = await self._pages(session, "/v1beta1/corporate-actions", plan.actions, "actions", sym)
        return bars, actions

    def transform(self, raw: tuple[list[Any], list[Any]], plan: AlpacaPlan) -> BarsResult:
        """Pages -> raw canonical bars (provenance ``alpaca:<feed>``), coverage and actions."""
        bar_pages, action_pages = raw
        pages: list[BarsPage] = [parse_bars(p, plan.vendor) for p in bar_pages]
        sym = plan.query.symbol
        actions = [a for p in action_pages for a in parse_actions(p, plan.vendor, sym)[0]]
        ts = np.concatenate([p.ts_us for p in pages]) if pages else np.empty(0, dtype=np.int64)
        keys = ts if plan.timeframe.is_intraday else session_keys(ts, plan.calendar, PROVIDER)
        cols = {k: (np.concatenate([p.columns[k] for p in pages]) if pages else np.empty(0))
                for k in ("open", "high", "low", "close", "volume", "vwap", "trade_count")}
        table = bars_table(keys, open=cols["open"], high=cols["high"], low=cols["low"], close=cols["close"],
                           volume=cols["volume"], vwap=cols["vwap"], trade_count=cols["trade_count"],
                           provider=f"{PROVIDER}:{plan.feed}")
        if plan.timeframe.is_intraday and not plan.extended_hours and table.num_rows:
            table = table.filter(pa.array(regular_hours_mask(keys, plan.timeframe, plan.calendar)))
        q = plan.query
        table, coverage = finish(table, q.start_us, q.end_us, plan.timeframe, plan.now_us, PROVIDER)
        unique = {(a.ex_date, str(a.kind)): a for a in actions}
        return BarsResult(table, coverage, sorted(unique.values(), key=lambda a: (a.ex_date, str(a.kind))))

    # -- corporate actions -------------------------------------------------------------------

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and cash dividends with ex-dates in ``[start_us, end_us)`` (all pages)."""
        return await self.scrubbed(self._corporate_actions(symbol, start_us, end_us, instrument))

    async def _corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                 instrument: Instrument | None) -> list[CorporateAction]:
        query = BarsQuery(symbol, "1d", start_us, end_us, instrument)
        self.check(query)
        vendor = vendor_symbol(PROVIDER, query.symbol, instrument)
        lo, hi = _day(start_us), _day(end_us - 1)
        params: dict[str, str | int] = {"symbols": vendor, "types": "forward_split,reverse_split,cash_dividend",
                                        "start": lo.isoformat(), "end": hi.isoformat(), "limit": 1000, "sort": "asc"}
        async with self._http.session() as session:
            pages = await self._pages(session, "/v1beta1/corporate-actions", params, "actions", query.symbol)
        out = [a for p in pages for a in parse_actions(p, vendor, query.symbol)[0]]
        unique = {(a.ex_date, str(a.kind)): a for a in out if lo <= a.ex_date <= hi}
        return sorted(unique.values(), key=lambda a: (a.ex_date, str(a.kind)))
