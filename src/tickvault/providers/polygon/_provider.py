"""``PolygonProvider``: Polygon.io (now Massive) aggregates, splits and dividends.

Query: ``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` with
``adjusted=false&sort=asc&limit=50000``, following ``next_url`` to the last page, then
``/v3/reference/splits`` and ``/v3/reference/dividends`` from the window's start onward
(every later split matters to adjusted reads of this window). The key goes in an
``Authorization: Bearer`` header, never in a URL; a ``next_url`` is re-based onto the
configured base URL (so tests' replay server and proxies work, and the key never follows
a link to another host). Conventions are in :mod:`tickvault.providers.polygon._transform`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import numpy as np
import pyarrow as pa
from pydantic import SecretStr

from tickvault.calendars import TradingCalendar
from tickvault.errors import ProviderError, UnsupportedRequest
from tickvault.model import AssetClass, CorporateAction, Instrument, Timeframe
from tickvault.providers._http import (
    DAY_US,
    Auth,
    HttpProvider,
    HttpSession,
    ProviderSettings,
    Reply,
    calendar_for,
    finish,
    follow_pages,
    local_days,
    regular_hours_mask,
    session_keys,
)
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.providers.polygon._transform import (
    PROVIDER,
    AggsPage,
    aggs_table,
    parse_aggs,
    parse_dividends,
    parse_splits,
    unadjust_factor,
)

__all__ = ["PolygonPlan", "PolygonProvider"]

_TIMESPANS = {"m": "minute", "d": "day"}
_NATIVE = ("1m", "5m", "15m", "30m", "1d")
PAGE_LIMIT = 50_000


@dataclass(frozen=True)
class PolygonPlan:
    """The vendor spelling of one bars query."""

    query: BarsQuery
    vendor: str
    timeframe: Timeframe
    path: str
    params: dict[str, str | int]
    actions_from: str  # YYYY-MM-DD
    extended_hours: bool
    calendar: TradingCalendar
    now_us: int


@dataclass(frozen=True)
class PolygonRaw:
    """Everything ``extract`` fetched: aggregate pages, split pages, dividend pages."""

    aggs: list[Any]
    splits: list[Any]
    dividends: list[Any]


def rebase(url: str, base_url: str) -> str:
    """Keep a vendor link's path and query, on our configured base URL."""
    parts = urlsplit(url)
    return base_url.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class PolygonProvider(HttpProvider[PolygonPlan, PolygonRaw]):
    """Polygon.io bars (1m, 5m, 15m, 30m, 1d), splits and dividends; needs an API key.

    Parameters
    ----------
    settings
        ``TICKVAULT_POLYGON_BASE_URL`` / ``_API_KEY`` / ``_RATE_LIMIT`` (default 5/min, the
        free plan's limit).
    extended_hours
        Keep pre/post-market minute bars (Polygon returns them); default regular hours only.
        Also ``TICKVAULT_POLYGON_EXTENDED_HOURS``.
    actions
        Also fetch splits and dividends with every bars call (default ``True``). Splits are
        fetched regardless when a page turns out split-adjusted, to undo them.
    **kwargs
        Passed to :class:`~tickvault.providers._http.HttpProvider`.
    """

    NAME: ClassVar[str] = PROVIDER
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=PROVIDER, base_url="https://api.polygon.io", rate_limit_per_minute=5.0)
    OPTIONS: ClassVar[tuple[str, ...]] = ("extended_hours",)

    def __init__(self, settings: ProviderSettings | None = None, *, extended_hours: bool | None = None,
                 actions: bool = True, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._actions = actions
        opt = self.settings.options.get("extended_hours", "false").strip().lower()
        self._extended = extended_hours if extended_hours is not None else opt in ("1", "true", "yes")
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF, AssetClass.INDEX, AssetClass.CRYPTO,
                                     AssetClass.FX}),
            timeframes=tuple(TimeframeSupport(tf, None, PAGE_LIMIT) for tf in _NATIVE),
            kinds=frozenset({DataKind.BARS, DataKind.ACTIONS}),
            needs_credentials=True,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    @property
    def capabilities(self) -> Capabilities:
        """Equities, ETFs, indices, crypto, FX; 1m, 5m, 15m, 30m (session-aligned) and 1d."""
        return self._caps

    def auth(self, settings: ProviderSettings) -> Auth:
        """``Authorization: Bearer <key>`` (never ``apiKey=`` in the URL)."""
        if settings.api_key is None:
            return Auth()
        return Auth(headers={"Authorization": SecretStr("Bearer " + settings.api_key.get_secret_value())})

    def classify(self, reply: Reply) -> tuple[type[ProviderError], str] | None:
        """A 403 about the plan's entitlements is an unsupported request, not bad credentials."""
        if reply.status == 403 and any(w in reply.text().lower() for w in ("plan", "entitle", "upgrade")):
            return UnsupportedRequest, f"Polygon: not included in this plan: {reply.text(200)}"
        return None

    # -- query -> extract -> transform -----------------------------------------------------

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> PolygonPlan:
        """Dates (inclusive) for daily bars, epoch milliseconds for intraday."""
        vendor = vendor_symbol(PROVIDER, query.symbol, query.instrument)
        span = _TIMESPANS[timeframe.unit]
        if timeframe.is_intraday:
            lo, hi = str(query.start_us // 1000), str((query.end_us - 1) // 1000)
        else:
            lo, hi = _day(query.start_us).isoformat(), _day(query.end_us - 1).isoformat()
        path = f"/v2/aggs/ticker/{quote(vendor, safe='.:')}/range/{timeframe.n}/{span}/{lo}/{hi}"
        params: dict[str, str | int] = {"adjusted": "false", "sort": "asc", "limit": PAGE_LIMIT}
        return PolygonPlan(query, vendor, timeframe, path, params, _day(query.start_us).isoformat(), self._extended,
                           calendar_for(query.symbol, query.instrument), self._clock.now_us())

    async def _pages(self, session: HttpSession, path: str, params: dict[str, str | int], what: str,
                     plan: PolygonPlan) -> list[Any]:
        base = self.settings.base_url

        async def fetch(cursor: str | None, k: int) -> tuple[Any, str | None]:
            if cursor is None:
                body = await session.get_json(path, params, symbol=plan.query.symbol, page=f"{what}#{k}")
            else:
                body = await session.get_json(cursor, None, symbol=plan.query.symbol, page=f"{what}#{k}")
            link = body.get("next_url") if isinstance(body, dict) else None
            return body, rebase(link, base) if isinstance(link, str) and link else None

        return await follow_pages(fetch, provider=PROVIDER, symbol=plan.query.symbol, what=what)

    async def extract(self, session: HttpSession, plan: PolygonPlan) -> PolygonRaw:
        """All aggregate pages, then all split and dividend pages from the window's start."""
        aggs = await self._pages(session, plan.path, plan.params, "aggs", plan)
        ref: dict[str, str | int] = {"ticker": plan.vendor, "limit": 1000, "order": "asc"}
        adjusted = any(isinstance(p, dict) and p.get("adjusted") is True for p in aggs)
        splits: list[Any] = []
        dividends: list[Any] = []
        if self._actions or adjusted:  # adjusted pages can only be made raw with the split list
            splits = await self._pages(session, "/v3/reference/splits",
                                       {**ref, "execution_date.gte": plan.actions_from, "sort": "execution_date"},
                                       "splits", plan)
        if self._actions:
            dividends = await self._pages(session, "/v3/reference/dividends",
                                          {**ref, "ex_dividend_date.gte": plan.actions_from,
                                           "sort": "ex_dividend_date"}, "dividends", plan)
        return PolygonRaw(aggs, splits, dividends)

    def transform(self, raw: PolygonRaw, plan: PolygonPlan) -> BarsResult:
        """Pages -> raw canonical bars, coverage and actions."""
        symbol = plan.query.symbol
        pages: list[AggsPage] = [parse_aggs(p, plan.vendor) for p in raw.aggs]
        splits = [a for p in raw.splits for a in parse_splits(p, plan.vendor, symbol)[0]]
        dividends = [a for p in raw.dividends for a in parse_dividends(p, plan.vendor, symbol)[0]]
        ts = np.concatenate([p.ts_us for p in pages]) if pages else np.empty(0, dtype=np.int64)
        keys = ts if plan.timeframe.is_intraday else session_keys(ts, plan.calendar, PROVIDER)
        adjusted = np.concatenate([np.full(p.ts_us.size, bool(p.adjusted)) for p in pages]) if pages else \
            np.empty(0, dtype=bool)
        factor = np.where(adjusted, unadjust_factor(local_days(ts, plan.timeframe, plan.calendar), splits), 1.0)
        table = aggs_table(pages, keys, factor, PROVIDER)
        if plan.timeframe.is_intraday and not plan.extended_hours and table.num_rows:
            table = table.filter(pa.array(regular_hours_mask(keys, plan.timeframe, plan.calendar)))
        q = plan.query
        table, coverage = finish(table, q.start_us, q.end_us, plan.timeframe, plan.now_us, PROVIDER)
        actions = sorted({(a.ex_date, str(a.kind)): a for a in splits + dividends}.values(),
                         key=lambda a: (a.ex_date, str(a.kind)))
        return BarsResult(table, coverage, actions)

    # -- corporate actions -------------------------------------------------------------------

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and dividends with ex-dates in ``[start_us, end_us)`` (all pages)."""
        return await self.scrubbed(self._corporate_actions(symbol, start_us, end_us, instrument))

    async def _corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                 instrument: Instrument | None) -> list[CorporateAction]:
        query = BarsQuery(symbol, "1d", start_us, end_us, instrument)
        self.check(query)
        vendor = vendor_symbol(PROVIDER, query.symbol, instrument)
        lo, hi = _day(start_us).isoformat(), _day(end_us - 1).isoformat()
        plan = self.plan(query, Timeframe.parse("1d"))
        ref: dict[str, str | int] = {"ticker": vendor, "limit": 1000, "order": "asc"}
        async with self._http.session() as session:
            splits = await self._pages(session, "/v3/reference/splits",
                                       {**ref, "execution_date.gte": lo, "execution_date.lte": hi}, "splits", plan)
            divs = await self._pages(session, "/v3/reference/dividends",
                                     {**ref, "ex_dividend_date.gte": lo, "ex_dividend_date.lte": hi}, "dividends",
                                     plan)
        out = [a for p in splits for a in parse_splits(p, vendor, query.symbol)[0]]
        out += [a for p in divs for a in parse_dividends(p, vendor, query.symbol)[0]]
        first, last = _day(start_us), _day(end_us - 1)
        return sorted({(a.ex_date, str(a.kind)): a for a in out if first <= a.ex_date <= last}.values(),
                      key=lambda a: (a.ex_date, str(a.kind)))


def _day(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=us // DAY_US)
