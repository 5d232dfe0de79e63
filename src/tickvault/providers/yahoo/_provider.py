"""``YahooProvider``: Yahoo Finance v8 chart API (no key; unofficial, so be polite).

Query: ``GET /v8/finance/chart/{symbol}?period1&period2&interval&includePrePost&events=div|split``.
One request per window (intraday windows are cut to Yahoo's per-request limits), plus one
small ``interval=1mo`` request for the events between the window's end and now, because
Yahoo restates history for every later split and the store keeps raw prices.
Conventions are in :mod:`tickvault.providers.yahoo._transform`.

Fundamentals: ``GET /v10/finance/quoteSummary/{symbol}?modules=price,summaryDetail,
defaultKeyStatistics,calendarEvents&formatted=false&crumb=...`` (after Yahoo's cookie + crumb
handshake, :mod:`~tickvault.providers.yahoo._crumb`) and ``GET /ws/fundamentals-timeseries/v1/
finance/timeseries/{symbol}?type=annualTotalRevenue,...&period1&period2``; conventions in
:mod:`tickvault.providers.yahoo._fundamentals`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from tickvault.calendars import TradingCalendar
from tickvault.errors import AuthenticationFailed, ProviderError, SymbolNotFound, UnsupportedRequest
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
)
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, Fundamentals, TimeframeSupport
from tickvault.providers.yahoo._crumb import CookieHeader, CrumbSession
from tickvault.providers.yahoo._fundamentals import MODULES, body_error, series_types, transform_fundamentals
from tickvault.providers.yahoo._transform import PROVIDER, parse_chart, raw_actions, transform_chart

__all__ = ["YahooProvider"]

#: canonical timeframe -> (Yahoo interval, max history days, days per request)
_INTERVALS: dict[str, tuple[str, int | None, int | None]] = {
    "1m": ("1m", 30, 7),
    "2m": ("2m", 60, 60),
    "5m": ("5m", 60, 60),
    "15m": ("15m", 60, 60),
    "30m": ("30m", 60, 60),
    "1h": ("60m", 730, 730),
    "1d": ("1d", None, None),
}
_S = 1_000_000
_LATER_GAP_US = DAY_US  # windows ending within a day of now need no later-events lookup
_SERIES_YEARS = 5  # timeseries look-back: enough for the newest fiscal year and quarter
#: Yahoo's error bodies: {"<endpoint key>": {"result": null, "error": {"code", "description"}}}
_ERROR_KEYS = ("chart", "quoteSummary", "timeseries", "finance")


@dataclass(frozen=True)
class YahooPlan:
    """The vendor spelling of one bars query (pure data)."""

    query: BarsQuery
    symbol: str
    vendor: str
    timeframe: Timeframe
    interval: str
    windows: tuple[tuple[int, int], ...]  # (period1, period2) epoch seconds
    later: tuple[int, int] | None  # events lookup window, epoch seconds
    include_pre_post: bool
    calendar: TradingCalendar
    now_us: int


class YahooProvider(HttpProvider[YahooPlan, tuple[list[Any], Any | None]]):
    """Yahoo Finance bars, splits and dividends (see the module docstring).

    Parameters
    ----------
    settings
        Base URL (``TICKVAULT_YAHOO_BASE_URL``), timeout, rate limit; no key needed. Options
        ``crumb`` (``auto``/``off``) and ``cookie_url`` configure the fundamentals handshake
        (``TICKVAULT_YAHOO_CRUMB``, ``TICKVAULT_YAHOO_COOKIE_URL``; see
        :mod:`~tickvault.providers.yahoo._crumb`).
    extended_hours
        Include pre- and post-market intraday bars (``includePrePost``); default regular
        hours only. Also read from ``TICKVAULT_YAHOO_EXTENDED_HOURS`` (``true``/``false``).
    **kwargs
        Passed to :class:`~tickvault.providers._http.HttpProvider` (clock, retry, breaker, transport).
    """

    NAME: ClassVar[str] = PROVIDER
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=PROVIDER, base_url="https://query2.finance.yahoo.com", rate_limit_per_minute=60.0)
    OPTIONS: ClassVar[tuple[str, ...]] = ("extended_hours", "crumb", "cookie_url")
    USER_AGENT: ClassVar[str] = "Mozilla/5.0 (compatible; tickvault)"

    def __init__(self, settings: ProviderSettings | None = None, *, extended_hours: bool | None = None,
                 **kwargs: Any) -> None:
        self._cookie = CookieHeader()  # before super(): auth() hands it to the HTTP client
        super().__init__(settings, **kwargs)
        self._crumbs = CrumbSession(self._http, self._cookie, user_agent=self.USER_AGENT,
                                    transport_factory=kwargs.get("transport_factory"))
        opt = self.settings.options.get("extended_hours", "false").strip().lower()
        self._extended = extended_hours if extended_hours is not None else opt in ("1", "true", "yes")
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF, AssetClass.INDEX, AssetClass.CRYPTO,
                                     AssetClass.FX, AssetClass.FUTURE}),
            timeframes=tuple(TimeframeSupport(tf, hist, None) for tf, (_, hist, _) in _INTERVALS.items()),
            kinds=frozenset({DataKind.BARS, DataKind.ACTIONS, DataKind.FUNDAMENTALS}),
            needs_credentials=False,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    @property
    def capabilities(self) -> Capabilities:
        """Equities, ETFs, indices, crypto, FX, futures; 1m..1h intraday (Yahoo's history limits) and 1d."""
        return self._caps

    def auth(self, settings: ProviderSettings) -> Auth:
        """No key; the session cookie of the crumb handshake, once there is one."""
        return Auth(headers=self._cookie)

    def classify(self, reply: Reply) -> tuple[type[ProviderError], str] | None:
        """Yahoo's error bodies: ``{"chart" | "quoteSummary" | ...: {"error": {"code", "description"}}}``."""
        if reply.status == 429 or reply.status >= 500:
            return None
        try:
            body = reply.json()
            error = next(body[k]["error"] for k in _ERROR_KEYS if k in body)
            code, desc = str(error.get("code", "")), str(error.get("description", ""))[:200]
        except (ProviderError, KeyError, TypeError, AttributeError, StopIteration):
            return None
        if reply.status == 404 or code == "Not Found":
            return SymbolNotFound, f"Yahoo: {desc or code}"
        if reply.status in (400, 422) or code in ("Bad Request", "Unprocessable Entity"):
            return UnsupportedRequest, f"Yahoo: {desc or code}"
        return None

    # -- query -> extract -> transform -----------------------------------------------------

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> YahooPlan:
        """Windows in epoch seconds, padded a day on each side for daily bars.

        Daily keys are session dates at 00:00 UTC but Yahoo filters on its stamps (the
        session open, which for Sydney or Tokyo falls on the previous UTC day), so the
        request is padded and the answer clipped to the keys asked for.
        """
        interval, _, chunk_days = _INTERVALS[str(timeframe)]
        now_us = self._clock.now_us()
        pad = 0 if timeframe.is_intraday else DAY_US
        lo, hi = query.start_us - pad, query.end_us + pad
        step = chunk_days * DAY_US if chunk_days else hi - lo
        windows = tuple((s // _S, -(-min(s + step, hi) // _S)) for s in range(lo, hi, max(step, 1)))
        later = (hi // _S, now_us // _S) if now_us - hi > _LATER_GAP_US else None
        return YahooPlan(query, query.symbol, vendor_symbol(PROVIDER, query.symbol, query.instrument), timeframe,
                         interval, windows, later, self._extended, calendar_for(query.symbol, query.instrument),
                         now_us)

    def _params(self, plan: YahooPlan, period1: int, period2: int, interval: str) -> dict[str, str | int]:
        return {"period1": period1, "period2": period2, "interval": interval,
                "includePrePost": "true" if plan.include_pre_post else "false", "events": "div|split"}

    async def extract(self, session: HttpSession, plan: YahooPlan) -> tuple[list[Any], Any | None]:
        """One request per window, then the later-events lookup."""
        path = f"/v8/finance/chart/{quote(plan.vendor, safe='-._=')}"
        ctx = {"symbol": plan.symbol, "timeframe": str(plan.timeframe)}
        pages = []
        for k, (p1, p2) in enumerate(plan.windows):
            pages.append(await session.get_json(path, self._params(plan, p1, p2, plan.interval), page=k, **ctx))
        later = None
        if plan.later is not None:
            later = await session.get_json(path, self._params(plan, *plan.later, "1mo"), page="later-events", **ctx)
        return pages, later

    def transform(self, raw: tuple[list[Any], Any | None], plan: YahooPlan) -> BarsResult:
        """Chart payloads -> raw canonical bars, coverage, actions."""
        pages, later = raw
        table, actions = transform_chart(pages, later, vendor=plan.vendor, symbol=plan.symbol,
                                         timeframe=plan.timeframe, calendar=plan.calendar)
        q = plan.query
        table, coverage = finish(table, q.start_us, q.end_us, plan.timeframe, plan.now_us, PROVIDER)
        return BarsResult(table, coverage, actions)

    # -- corporate actions -------------------------------------------------------------------

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and dividends with ex-dates in ``[start_us, end_us)``, in our conventions.

        One ``interval=1mo`` chart request from ``start`` to now: the splits after ``end``
        are needed to restate dividend amounts to the cash paid at the time.
        """
        return await self.scrubbed(self._corporate_actions(symbol, start_us, end_us, instrument))

    async def _corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                 instrument: Instrument | None) -> list[CorporateAction]:
        query = BarsQuery(symbol, "1d", start_us, end_us, instrument)
        self.check(query)
        vendor = vendor_symbol(PROVIDER, query.symbol, instrument)
        calendar = calendar_for(query.symbol, instrument)
        now_s = self._clock.now_us() // _S
        params: dict[str, str | int] = {
            "period1": (start_us - DAY_US) // _S, "period2": max(now_s, end_us // _S), "interval": "1mo",
            "includePrePost": "false", "events": "div|split",
        }
        async with self._http.session() as session:
            payload = await session.get_json(f"/v8/finance/chart/{quote(vendor, safe='-._=')}", params,
                                             symbol=query.symbol)
        page = parse_chart(payload, vendor)
        actions = raw_actions(page.events, calendar, query.symbol, page.currency)
        lo, hi = _date(start_us), _date(end_us)
        return [a for a in actions if lo <= a.ex_date < hi]


    # -- fundamentals ------------------------------------------------------------------------

    async def fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        """quoteSummary and the newest statements as ``{name: (value, source)}``.

        Two requests (plus the cookie/crumb handshake on first use): quoteSummary with the
        modules :data:`~tickvault.providers.yahoo._fundamentals.MODULES`, and the
        fundamentals time series for the last five years. A rejected crumb is renewed once.

        Raises
        ------
        InvalidSymbol, UnsupportedRequest
            For a malformed symbol or an asset class Yahoo does not serve (nothing is sent).
        AuthenticationFailed
            Yahoo refused the handshake, or the crumb twice.
        SymbolNotFound
            Yahoo does not know the symbol.
        ProviderError
            Any other typed failure (garbage: ProviderResponseError).
        """
        return await self.scrubbed(self._fundamentals(symbol, instrument))

    async def _fundamentals(self, symbol: str, instrument: Instrument | None) -> Fundamentals:
        query = BarsQuery(symbol, "1d", 0, 0, instrument)
        self.check(query)
        vendor = vendor_symbol(PROVIDER, query.symbol, instrument)
        path = quote(vendor, safe="-._=")
        now_s = self._clock.now_us() // _S
        async with self._http.session() as session:
            summary = await self._summary(session, path, query.symbol)
            _raise_body_error(summary, "quoteSummary", query.symbol)  # a 200 "Not Found": no second request
            series_params: dict[str, str | int] = {"type": ",".join(series_types()),
                                                   "period1": now_s - _SERIES_YEARS * 366 * 86_400,
                                                   "period2": now_s}
            crumb = await self._crumbs.crumb(session, symbol=query.symbol)
            if crumb is not None:
                series_params["crumb"] = crumb
            series = await session.get_json(f"/ws/fundamentals-timeseries/v1/finance/timeseries/{path}",
                                             series_params, symbol=query.symbol)
        _raise_body_error(series, "timeseries", query.symbol)
        return transform_fundamentals(summary, series, vendor=vendor)

    async def _summary(self, session: HttpSession, path: str, symbol: str) -> Any:
        """quoteSummary, renewing once a crumb Yahoo rejects (they expire)."""
        url = f"/v10/finance/quoteSummary/{path}"
        params: dict[str, str | int] = {"modules": ",".join(MODULES), "formatted": "false"}
        crumb = await self._crumbs.crumb(session, symbol=symbol)
        try:
            return await session.get_json(url, params if crumb is None else {**params, "crumb": crumb},
                                          symbol=symbol)
        except AuthenticationFailed:
            if not self._crumbs.enabled:
                raise
            self._crumbs.reset()
        crumb = await self._crumbs.crumb(session, symbol=symbol)
        return await session.get_json(url, params if crumb is None else {**params, "crumb": crumb}, symbol=symbol)


def _raise_body_error(payload: Any, key: str, symbol: str) -> None:
    error = body_error(payload, key, symbol=symbol)
    if error is not None:
        raise error


def _date(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(microseconds=us - us % DAY_US)
