"""``TiingoProvider``: Tiingo end-of-day bars with actions, IEX intraday bars, fundamentals.

Queries (key in the ``Authorization: Token ...`` header, added at the transport boundary):

- **Daily**: ``GET /tiingo/daily/{ticker}/prices?startDate&endDate&format=json&resampleFreq=daily``,
  one request per window (Tiingo returns the whole date range at once).
- **Intraday** (1m, 5m, 15m, 30m): ``GET /iex/{ticker}/prices?startDate&endDate&resampleFreq
  &columns=open,high,low,close,volume``, in windows of New York dates sized to stay well under
  Tiingo's per-answer row cap (a capped answer is :class:`~tickvault.errors.IncompleteData`).
  Regular hours only; ``1h`` and longer intraday bars are derived by session-aligned resampling
  because Tiingo's hour buckets are not the session grid.
- **Metadata**: ``GET /tiingo/daily/{ticker}`` -> :class:`~tickvault.model.Instrument`.
- **Fundamentals**: ``/tiingo/fundamentals/{ticker}/daily`` and ``/statements``.

Errors: Tiingo answers ``{"detail": "..."}`` (404 unknown ticker, 401 bad token, and
sometimes HTTP 200 with only ``detail``); :func:`detail_error` maps the text to typed errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
from pydantic import SecretStr

from tickvault.calendars import TradingCalendar
from tickvault.errors import (
    AuthenticationFailed,
    ProviderError,
    ProviderResponseError,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)
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
    regular_hours_in_window,
)
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.providers.tiingo._fundamentals import Fundamentals, daily_metrics, statements
from tickvault.providers.tiingo._transform import PROVIDER, daily_actions, daily_bars, iex_bars

__all__ = ["TiingoPlan", "TiingoProvider", "detail_error"]

#: canonical timeframe -> (Tiingo resampleFreq, New York days per request)
_INTRADAY: dict[str, tuple[str, int]] = {"1m": ("1min", 20), "5m": ("5min", 100), "15m": ("15min", 300),
                                         "30m": ("30min", 600)}
_ZONE = "America/New_York"
#: Tiingo exchangeCode -> ISO 10383 MIC.
_MICS = {"NASDAQ": "XNAS", "NYSE": "XNYS", "NYSE ARCA": "ARCX", "NYSE MKT": "XASE", "AMEX": "XASE",
         "BATS": "BATS", "OTC": "OTCM"}


@dataclass(frozen=True)
class TiingoPlan:
    """The vendor spelling of one bars query (pure data)."""

    query: BarsQuery
    symbol: str
    vendor: str
    timeframe: Timeframe
    path: str
    windows: tuple[tuple[str, str], ...]  # (startDate, endDate) per request
    resample: str
    calendar: TradingCalendar
    now_us: int


def detail_error(detail: str, status: int) -> tuple[type[ProviderError], str]:
    """Map Tiingo's ``{"detail": ...}`` text (and status) to an error class and message.

    Parameters
    ----------
    detail
        The ``detail`` text.
    status
        HTTP status (200 when Tiingo answered an error with success).
    """
    low = detail.lower()
    message = f"Tiingo: {detail[:200]}"
    if status == 429 or "allocation" in low or "rate limit" in low or "too many" in low:
        return RateLimited, message
    if status in (401, 403) or "token" in low or "authenticat" in low or "permission" in low:
        return AuthenticationFailed, message
    if status == 404 or "not found" in low or "does not exist" in low:
        return SymbolNotFound, message
    if 400 <= status < 500:
        return UnsupportedRequest, message
    return ProviderResponseError, message


class TiingoProvider(HttpProvider[TiingoPlan, list[Any]]):
    """Tiingo bars, actions, fundamentals and metadata (see the module docstring).

    Parameters
    ----------
    settings
        Base URL (``TICKVAULT_TIINGO_BASE_URL``), key (``TICKVAULT_TIINGO_API_KEY``, required),
        rate limit (default 50 requests per minute: the free tier's hourly allowance spread out).
    **kwargs
        Passed to :class:`~tickvault.providers._http.HttpProvider` (clock, retry, breaker, transport).
    """

    NAME: ClassVar[str] = PROVIDER
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=PROVIDER, base_url="https://api.tiingo.com", rate_limit_per_minute=50.0)

    def __init__(self, settings: ProviderSettings | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF}),
            timeframes=(*(TimeframeSupport(tf) for tf in _INTRADAY), TimeframeSupport("1d")),
            kinds=frozenset({DataKind.BARS, DataKind.ACTIONS, DataKind.FUNDAMENTALS}),
            needs_credentials=True,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    @property
    def capabilities(self) -> Capabilities:
        """US equities and ETFs: end-of-day and IEX 1m, 5m, 15m, 30m bars; needs a key."""
        return self._caps

    def auth(self, settings: ProviderSettings) -> Auth:
        """``Authorization: Token <key>``."""
        if settings.api_key is None:
            return Auth()
        return Auth(headers={"Authorization": SecretStr("Token " + settings.api_key.get_secret_value())})

    def classify(self, reply: Reply) -> tuple[type[ProviderError], str] | None:
        """Tiingo's ``{"detail": ...}`` error bodies (429 and 5xx keep the default handling)."""
        if reply.status == 429 or reply.status >= 500:
            return None
        try:
            detail = reply.json().get("detail")
        except (ProviderError, AttributeError):
            return None
        if not isinstance(detail, str):
            return None
        return detail_error(detail, reply.status)

    def _vendor(self, symbol: str, instrument: Instrument | None) -> str:
        inst = instrument if instrument is not None else Instrument.guess(symbol)
        if inst.asset_class not in self._caps.asset_classes:
            raise UnsupportedRequest(f"Tiingo adapter serves equities and ETFs, not {inst.asset_class}",
                                     provider=PROVIDER, symbol=symbol)
        return quote(vendor_symbol(PROVIDER, symbol, instrument), safe="-._")

    # -- query -> extract -> transform -----------------------------------------------------

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> TiingoPlan:
        """Daily: one date window. Intraday: New York date windows under the row cap."""
        vendor = self._vendor(query.symbol, query.instrument)
        calendar = calendar_for(query.symbol, query.instrument)
        if timeframe.is_intraday:
            resample, days = _INTRADAY[str(timeframe)]
            first, last = _local_day(query.start_us), _local_day(query.end_us - 1)
            windows = []
            d = first
            while d <= last:
                e = min(d + dt.timedelta(days=days - 1), last)
                windows.append((d.isoformat(), e.isoformat()))
                d = e + dt.timedelta(days=1)
            path = f"/iex/{vendor}/prices"
        else:
            resample = "daily"
            windows = [(_utc_day(query.start_us).isoformat(), _utc_day(query.end_us - 1).isoformat())]
            path = f"/tiingo/daily/{vendor}/prices"
        return TiingoPlan(query, query.symbol, vendor, timeframe, path, tuple(windows), resample, calendar,
                          self._clock.now_us())

    async def _get_json(self, session: HttpSession, path: str, params: dict[str, str], **context: Any) -> Any:
        payload = await session.get_json(path, params, **context)
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
            cls, message = detail_error(payload["detail"], 200)
            raise cls(self._http.redactor.text(message), provider=PROVIDER, **context)
        return payload

    async def extract(self, session: HttpSession, plan: TiingoPlan) -> list[Any]:
        """One request per window."""
        ctx = {"symbol": plan.symbol, "timeframe": str(plan.timeframe)}
        pages = []
        for k, (start, end) in enumerate(plan.windows):
            params = {"startDate": start, "endDate": end, "format": "json", "resampleFreq": plan.resample}
            if plan.timeframe.is_intraday:
                params["columns"] = "open,high,low,close,volume"
            pages.append(await self._get_json(session, plan.path, params, page=k, **ctx))
        return pages

    def transform(self, raw: list[Any], plan: TiingoPlan) -> BarsResult:
        """Answers -> raw canonical bars, coverage and (daily) actions."""
        q = plan.query
        actions: list[CorporateAction] = []
        if plan.timeframe.is_intraday:
            tables = [iex_bars(page) for page in raw]
        else:
            tables = [daily_bars(page) for page in raw]
            for page in raw:
                actions.extend(daily_actions(page, plan.symbol))
        table = pa.concat_tables(tables) if tables else self.empty_result().table
        if plan.timeframe.is_intraday and table.num_rows:
            table = regular_hours_in_window(table, q.start_us, q.end_us, plan.timeframe, plan.calendar, PROVIDER)
        table, coverage = finish(table, q.start_us, q.end_us, plan.timeframe, plan.now_us, PROVIDER)
        lo, hi = _utc_day(q.start_us), _utc_day(q.end_us)
        return BarsResult(table, coverage, [a for a in actions if lo <= a.ex_date < hi])

    # -- actions, metadata, fundamentals -------------------------------------------------------

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Dividends and splits with ex-dates in ``[start_us, end_us)`` from the end-of-day series."""
        return await self.scrubbed(self._corporate_actions(symbol, start_us, end_us, instrument))

    async def _corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        query = BarsQuery(symbol, "1d", start_us, end_us, instrument)
        self.check(query)
        if start_us >= end_us:
            return []
        plan = self.plan(query, Timeframe.parse("1d"))
        async with self._http.session() as session:
            pages = await self.extract(session, plan)
        actions = [a for page in pages for a in daily_actions(page, query.symbol)]
        lo, hi = _utc_day(start_us), _utc_day(end_us)
        return [a for a in actions if lo <= a.ex_date < hi]

    async def instrument(self, symbol: str, instrument: Instrument | None = None) -> Instrument:
        """Reference data from ``/tiingo/daily/{ticker}`` (name, exchange, listing dates).

        Raises
        ------
        ProviderError
            A typed failure (unknown ticker, bad key, garbage).
        """
        return await self.scrubbed(self._instrument(symbol, instrument))

    async def _instrument(self, symbol: str, instrument: Instrument | None = None) -> Instrument:
        query = BarsQuery(symbol, "1d", 0, 0, instrument)
        self.check(query)
        vendor = self._vendor(query.symbol, instrument)
        async with self._http.session() as session:
            meta = await self._get_json(session, f"/tiingo/daily/{vendor}", {}, symbol=query.symbol)
        return instrument_from_meta(query.symbol, meta, vendor)

    async def fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        """Daily metrics and the newest statements as ``{name: (value, source)}``.

        Both endpoints are asked for the last 400 days (enough for a fiscal year and a quarter).

        Raises
        ------
        ProviderError
            A typed failure (no fundamentals subscription: AuthenticationFailed, garbage).
        """
        return await self.scrubbed(self._fundamentals(symbol, instrument))

    async def _fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        query = BarsQuery(symbol, "1d", 0, 0, instrument)
        self.check(query)
        vendor = self._vendor(query.symbol, instrument)
        now = _utc_day(self._clock.now_us())
        params = {"startDate": (now - dt.timedelta(days=400)).isoformat(), "endDate": now.isoformat(),
                  "format": "json"}
        async with self._http.session() as session:
            daily = await self._get_json(session, f"/tiingo/fundamentals/{vendor}/daily", params,
                                         symbol=query.symbol)
            stmts = await self._get_json(session, f"/tiingo/fundamentals/{vendor}/statements",
                                         {**params, "asReported": "false"}, symbol=query.symbol)
        return {**daily_metrics(daily), **statements(stmts)}


def instrument_from_meta(symbol: str, meta: Any, vendor: str) -> Instrument:
    """``/tiingo/daily/{ticker}`` JSON -> :class:`~tickvault.model.Instrument` (pure).

    Raises
    ------
    ProviderResponseError
        If the payload is not an object with a ticker and ISO dates.
    """
    if not isinstance(meta, dict) or not isinstance(meta.get("ticker"), str):
        raise ProviderResponseError("metadata is not an object with a ticker", provider=PROVIDER, symbol=symbol)
    if meta["ticker"].upper() != vendor.upper():
        raise ProviderResponseError(f"metadata is for {meta['ticker'][:20]!r}", provider=PROVIDER, symbol=symbol)

    def day(key: str) -> dt.date | None:
        v = meta.get(key)
        if v is None or v == "":
            return None
        try:
            return dt.date.fromisoformat(str(v)[:10])
        except ValueError:
            raise ProviderResponseError(f"{key} is not a date", provider=PROVIDER, symbol=symbol) from None

    code = meta.get("exchangeCode")
    name = meta.get("name")
    return Instrument(symbol, AssetClass.EQUITY, exchange=_MICS.get(str(code).upper()) if code else None,
                      currency="USD", calendar="XNYS", listed=day("startDate"),
                      name=name.strip()[:200] if isinstance(name, str) else None,
                      provider_symbols={PROVIDER: vendor})


def _utc_day(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(microseconds=us - us % DAY_US)


def _local_day(us: int) -> dt.date:
    return pd.Timestamp(us * 1000, tz="UTC").tz_convert(_ZONE).date()  # type: ignore[no-any-return]


