"""``AlphaVantageProvider``: Alpha Vantage daily (adjusted) and intraday bars, actions, fundamentals.

Query: ``GET /query?function=...&symbol=...&apikey=...`` (the key is added at the transport
boundary and never shown). Paging:

- **Daily**: one ``TIME_SERIES_DAILY_ADJUSTED`` request; ``outputsize=compact`` (newest 100
  sessions) when the window starts within the last 90 sessions, else ``outputsize=full``
  (the whole history). A compact answer that does not reach the window is
  :class:`~tickvault.errors.IncompleteData`.
- **Intraday** (1m, 5m, 15m, 30m): one ``TIME_SERIES_INTRADAY`` request per calendar month
  (New York time) of the window, ``month=YYYY-MM&outputsize=full&adjusted=false`` — raw
  prices, regular hours unless ``extended_hours``.

Alpha Vantage reports quota and key problems with HTTP 200 and a JSON note
(:mod:`._errors`), so every body is checked before it is trusted. Conventions (times stamped
at the bar end, naive US/Eastern) are in :mod:`._transform`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.calendars import TradingCalendar
from tickvault.errors import ConfigError, ProviderResponseError, UnsupportedRequest
from tickvault.model import AssetClass, CorporateAction, Instrument, Timeframe
from tickvault.providers._http import (
    DAY_US,
    Auth,
    HttpProvider,
    HttpSession,
    ProviderSettings,
    calendar_for,
    finish,
    regular_hours_in_window,
)
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.alphavantage._errors import body_error
from tickvault.providers.alphavantage._fundamentals import Fundamentals, income_statement, overview
from tickvault.providers.alphavantage._transform import (
    PROVIDER,
    Label,
    Series,
    parse_csv,
    parse_json,
    series_actions,
    series_bars,
)
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport

__all__ = ["AlphaVantagePlan", "AlphaVantageProvider", "Page"]

#: canonical timeframe -> Alpha Vantage interval. 60min is left out on purpose: Alpha Vantage
#: stamps bars at their end and the hour grid (10:00, 11:00 ...) is not the session grid
#: (09:30, 10:30 ...), so 1h is derived from 30m/1m by session-aligned resampling instead.
_INTERVALS = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min"}
_COMPACT_SESSIONS = 90  # compact holds 100 sessions; leave margin for the vendor's lag
_ZONE = "America/New_York"
_TRUE = ("1", "true", "yes", "on")

Page = tuple[Literal["json", "csv"], Any]
"""One answer: ``("json", decoded)`` or ``("csv", body bytes)``."""


@dataclass(frozen=True)
class AlphaVantagePlan:
    """The vendor spelling of one bars query (pure data)."""

    query: BarsQuery
    symbol: str
    vendor: str
    timeframe: Timeframe
    requests: tuple[tuple[tuple[str, str], ...], ...]  # query parameters per request
    label: Label
    extended: bool
    calendar: TradingCalendar
    now_us: int


class AlphaVantageProvider(HttpProvider[AlphaVantagePlan, list[Page]]):
    """Alpha Vantage bars, splits, dividends and fundamentals (see the module docstring).

    Parameters
    ----------
    settings
        Base URL (``TICKVAULT_ALPHA_VANTAGE_BASE_URL``), key (``..._API_KEY``, required),
        rate limit (default 5 requests per minute, the free tier).
    extended_hours
        Include pre- and post-market intraday bars (``..._EXTENDED_HOURS``, default false).
    label
        What intraday stamps mark: ``"end"`` (default, what Alpha Vantage's recorded answers
        show) or ``"open"`` (``..._LABEL``).
    datatype
        ``"json"`` (default) or ``"csv"`` for intraday month slices (``..._DATATYPE``); CSV
        is smaller and parsed column-wise.
    **kwargs
        Passed to :class:`~tickvault.providers._http.HttpProvider` (clock, retry, breaker, transport).

    Raises
    ------
    ConfigError
        If ``label`` or ``datatype`` is not one of the allowed values.
    """

    NAME: ClassVar[str] = PROVIDER
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=PROVIDER, base_url="https://www.alphavantage.co", rate_limit_per_minute=5.0)
    OPTIONS: ClassVar[tuple[str, ...]] = ("extended_hours", "label", "datatype")

    def __init__(self, settings: ProviderSettings | None = None, *, extended_hours: bool | None = None,
                 label: Label | None = None, datatype: Literal["json", "csv"] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        opts = self.settings.options
        self._extended = (extended_hours if extended_hours is not None
                          else opts.get("extended_hours", "false").strip().lower() in _TRUE)
        lab = label if label is not None else opts.get("label", "end").strip().lower()
        if lab not in ("end", "open"):
            raise ConfigError(f"label must be 'end' or 'open', got {lab!r}", provider=PROVIDER)
        self._label: Label = "end" if lab == "end" else "open"
        dtype = datatype if datatype is not None else opts.get("datatype", "json").strip().lower()
        if dtype not in ("json", "csv"):
            raise ConfigError(f"datatype must be 'json' or 'csv', got {dtype!r}", provider=PROVIDER)
        self._datatype = dtype
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF}),
            timeframes=(*(TimeframeSupport(tf) for tf in _INTERVALS), TimeframeSupport("1d")),
            kinds=frozenset({DataKind.BARS, DataKind.ACTIONS, DataKind.FUNDAMENTALS}),
            needs_credentials=True,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    @property
    def capabilities(self) -> Capabilities:
        """US equities and ETFs; 1m, 5m, 15m, 30m and 1d; needs a key."""
        return self._caps

    def auth(self, settings: ProviderSettings) -> Auth:
        """The key goes in the ``apikey`` query parameter (Alpha Vantage has no header auth)."""
        return Auth(params={"apikey": settings.api_key}) if settings.api_key is not None else Auth()

    # -- query -> extract -> transform -----------------------------------------------------

    def _vendor(self, symbol: str, instrument: Instrument | None) -> str:
        inst = instrument if instrument is not None else Instrument.guess(symbol)
        if inst.asset_class not in self._caps.asset_classes:
            raise UnsupportedRequest(f"Alpha Vantage adapter serves equities and ETFs, not {inst.asset_class}",
                                     provider=PROVIDER, symbol=symbol)
        return vendor_symbol(PROVIDER, symbol, instrument)

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> AlphaVantagePlan:
        """Daily: one request (compact or full). Intraday: one request per New York month."""
        vendor = self._vendor(query.symbol, query.instrument)
        calendar = calendar_for(query.symbol, query.instrument)
        now_us = self._clock.now_us()
        requests: tuple[tuple[tuple[str, str], ...], ...]
        if timeframe.is_intraday:
            requests = tuple(
                (("function", "TIME_SERIES_INTRADAY"), ("symbol", vendor), ("interval", _INTERVALS[str(timeframe)]),
                 ("month", month), ("outputsize", "full"), ("adjusted", "false"),
                 ("extended_hours", "true" if self._extended else "false"), ("datatype", self._datatype))
                for month in _months(query.start_us, query.end_us))
        else:
            size = "compact" if _sessions_since(calendar, query.start_us, now_us) <= _COMPACT_SESSIONS else "full"
            requests = ((("function", "TIME_SERIES_DAILY_ADJUSTED"), ("symbol", vendor), ("outputsize", size),
                         ("datatype", "json")),)
        return AlphaVantagePlan(query, query.symbol, vendor, timeframe, requests, self._label, self._extended,
                                calendar, now_us)

    async def _get(self, session: HttpSession, params: tuple[tuple[str, str], ...], **context: Any) -> Page:
        reply = await session.get("/query", dict(params), **context)
        head = reply.content[:64].lstrip()
        if not head.startswith((b"{", b"[")):
            return ("csv", reply.content)
        payload = reply.json()
        found = body_error(payload)
        if found is not None:
            cls, message, retry_after = found
            if retry_after is not None:
                self._http.limiter.penalise(retry_after)
                raise cls(self._http.redactor.text(message), provider=PROVIDER, url=reply.url,
                          retry_after=retry_after, **context)
            raise cls(self._http.redactor.text(message), provider=PROVIDER, url=reply.url, **context)
        return ("json", payload)

    async def extract(self, session: HttpSession, plan: AlphaVantagePlan) -> list[Page]:
        """One request per planned parameter set, bodies checked for Alpha Vantage error notes."""
        ctx = {"symbol": plan.symbol, "timeframe": str(plan.timeframe)}
        return [await self._get(session, params, page=k, **ctx) for k, params in enumerate(plan.requests)]

    def transform(self, raw: list[Page], plan: AlphaVantagePlan) -> BarsResult:
        """Answers -> raw canonical bars (bar-open / session keys), coverage, actions."""
        q = plan.query
        tables: list[pa.Table] = []
        actions: list[CorporateAction] = []
        for page in raw:
            series = _parse(page)
            if series.symbol is not None and series.symbol.strip().upper() != plan.vendor.upper():
                raise ProviderResponseError(f"answer is for {series.symbol[:20]!r}, not {plan.vendor!r}",
                                            provider=PROVIDER, symbol=plan.symbol)
            tables.append(series_bars(series, timeframe=plan.timeframe, label=plan.label, start_us=q.start_us))
            actions.extend(series_actions(series, plan.symbol))
        table = pa.concat_tables(tables) if tables else self.empty_result().table
        # Alpha Vantage answers whole histories (full) or whole months: clip before `finish`,
        # whose "far outside the window" check is meant for vendors that take a date range.
        table = _clip(table, q.start_us, q.end_us)
        if plan.timeframe.is_intraday and not plan.extended and table.num_rows:
            table = regular_hours_in_window(table, q.start_us, q.end_us, plan.timeframe, plan.calendar, PROVIDER)
        table, coverage = finish(table, q.start_us, q.end_us, plan.timeframe, plan.now_us, PROVIDER)
        lo, hi = _date(q.start_us), _date(q.end_us)
        return BarsResult(table, coverage, [a for a in actions if lo <= a.ex_date < hi])

    # -- corporate actions and fundamentals --------------------------------------------------

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and dividends with ex-dates in ``[start_us, end_us)`` from the full daily adjusted series."""
        return await self.scrubbed(self._corporate_actions(symbol, start_us, end_us, instrument))

    async def _corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        query = BarsQuery(symbol, "1d", start_us, end_us, instrument)
        self.check(query)
        vendor = self._vendor(query.symbol, instrument)
        params = (("function", "TIME_SERIES_DAILY_ADJUSTED"), ("symbol", vendor), ("outputsize", "full"),
                  ("datatype", "json"))
        async with self._http.session() as session:
            page = await self._get(session, params, symbol=query.symbol)
        actions = series_actions(_parse(page), query.symbol)
        lo, hi = _date(start_us), _date(end_us)
        return [a for a in actions if lo <= a.ex_date < hi]

    async def fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        """``OVERVIEW`` and ``INCOME_STATEMENT`` as ``{name: (value, source)}``.

        Raises
        ------
        ProviderError
            A typed failure (rate limit note, unknown symbol, garbage payload).
        """
        return await self.scrubbed(self._fundamentals(symbol, instrument))

    async def _fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        query = BarsQuery(symbol, "1d", 0, 0, instrument)
        self.check(query)
        vendor = self._vendor(query.symbol, instrument)
        async with self._http.session() as session:
            ov = await self._get(session, (("function", "OVERVIEW"), ("symbol", vendor)), symbol=query.symbol)
            inc = await self._get(session, (("function", "INCOME_STATEMENT"), ("symbol", vendor)),
                                  symbol=query.symbol)
        if ov[0] != "json" or inc[0] != "json":
            raise ProviderResponseError("fundamentals answer is not JSON", provider=PROVIDER, symbol=query.symbol)
        return {**overview(ov[1]), **income_statement(inc[1])}


def _parse(page: Page) -> Series:
    kind, payload = page
    return parse_csv(payload) if kind == "csv" else parse_json(payload)


def _months(start_us: int, end_us: int) -> list[str]:
    """``YYYY-MM`` of every New York calendar month touching ``[start_us, end_us)``."""
    first = pd.Timestamp(start_us * 1000, tz="UTC").tz_convert(_ZONE)
    last = pd.Timestamp((max(end_us, start_us + 1) - 1) * 1000, tz="UTC").tz_convert(_ZONE)
    periods = pd.period_range(first.tz_localize(None).to_period("M"), last.tz_localize(None).to_period("M"), freq="M")
    return [str(p) for p in periods]


def _sessions_since(calendar: TradingCalendar, start_us: int, now_us: int) -> int:
    if start_us >= now_us:
        return 0
    return len(calendar.sessions(pd.Timestamp(start_us - start_us % DAY_US, unit="us"),
                                 pd.Timestamp(now_us - now_us % DAY_US, unit="us")))


def _date(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(microseconds=us - us % DAY_US)


def _clip(table: pa.Table, start_us: int, end_us: int) -> pa.Table:
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    inside = (ts >= start_us) & (ts < end_us)
    return table if bool(inside.all()) else table.filter(pa.array(inside))


