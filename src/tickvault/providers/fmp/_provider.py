"""``FmpProvider``: Financial Modeling Prep daily bars (raw), splits, dividends and fundamentals.

Queries (key in the ``apikey`` query parameter, added at the transport boundary):

- ``GET /stable/historical-price-eod/full?symbol&from&to`` in windows of at most
  :data:`WINDOW_DAYS` days, oldest first; the prices are split-adjusted, so
- ``GET /stable/splits?symbol`` (every split of the symbol) is always fetched too, to restore
  raw prices (:func:`~._transform.unadjust`), and
- ``GET /stable/dividends?symbol`` gives the cash dividends, so one ``bars()`` call returns the
  raw bars with every split and dividend of the window.

``api="v3"`` reads splits and dividends from the older
``/api/v3/historical-price-full/stock_split|stock_dividend/{symbol}`` endpoints instead.

A window whose first bar comes more than :data:`LATE_START_DAYS` after the window start while
an older window had bars is a cut answer: :class:`~tickvault.errors.IncompleteData`.
Errors come as ``{"Error Message": "..."}`` (also with HTTP 200); :func:`message_error` maps
them to typed errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    IncompleteData,
    ProviderError,
    ProviderResponseError,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.model import AssetClass, CorporateAction, Instrument, Timeframe, validate_symbol
from tickvault.providers._http import (
    DAY_US,
    Auth,
    HttpProvider,
    HttpSession,
    ProviderSettings,
    Reply,
    finish,
)
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.providers.fmp._fundamentals import Fundamentals, income_statement, profile
from tickvault.providers.fmp._transform import PROVIDER, dividends, eod_bars, split_actions, unadjust

__all__ = ["LATE_START_DAYS", "WINDOW_DAYS", "FmpPlan", "FmpProvider", "FmpRaw", "message_error", "vendor_symbol"]

WINDOW_DAYS = 1500  # about six years of sessions per request at most; FMP caps long answers
LATE_START_DAYS = 30


@dataclass(frozen=True)
class FmpPlan:
    """The vendor spelling of one bars query (pure data)."""

    query: BarsQuery
    symbol: str
    vendor: str
    windows: tuple[tuple[str, str], ...]  # (from, to) ISO dates, oldest first
    api: Literal["stable", "v3"]
    now_us: int


@dataclass(frozen=True)
class FmpRaw:
    """What :meth:`FmpProvider.extract` fetched: price pages (oldest first), splits, dividends."""

    prices: tuple[Any, ...]
    splits: Any
    dividends: Any


def message_error(text: str, status: int) -> tuple[type[ProviderError], str]:
    """Map FMP's ``{"Error Message": ...}`` text (and HTTP status) to an error class and message."""
    low = text.lower()
    message = f"FMP: {text[:200]}"
    if status == 429 or "limit reach" in low or "rate limit" in low:
        return RateLimited, message
    if "premium" in low or "subscription" in low or "restricted" in low or "exclusive" in low or status == 402:
        return UnsupportedRequest, message
    if status in (401, 403) or "api key" in low or "apikey" in low:
        return AuthenticationFailed, message
    if status == 404 or "not found" in low:
        return SymbolNotFound, message
    if 400 <= status < 500:
        return UnsupportedRequest, message
    return ProviderResponseError, message


def vendor_symbol(symbol: str, instrument: Instrument | None = None) -> str:
    """FMP spelling: ``BRK.B`` -> ``BRK-B``; an ``Instrument.provider_symbols["fmp"]`` override wins.

    Raises
    ------
    InvalidSymbol
        If the symbol (or override) is not valid.
    """
    sym = validate_symbol(symbol)
    override = instrument.provider_symbols.get(PROVIDER) if instrument is not None else None
    return validate_symbol(override) if override else sym.replace(".", "-")


class FmpProvider(HttpProvider[FmpPlan, FmpRaw]):
    """FMP bars, actions and fundamentals (see the module docstring).

    Parameters
    ----------
    settings
        Base URL (``TICKVAULT_FMP_BASE_URL``), key (``TICKVAULT_FMP_API_KEY``, required).
    api
        ``"stable"`` (default) or ``"v3"``: which endpoints serve splits and dividends
        (``TICKVAULT_FMP_API``).
    **kwargs
        Passed to :class:`~tickvault.providers._http.HttpProvider` (clock, retry, breaker, transport).

    Raises
    ------
    ConfigError
        If ``api`` is not ``stable`` or ``v3``.
    """

    NAME: ClassVar[str] = PROVIDER
    DEFAULT_SETTINGS: ClassVar[ProviderSettings] = ProviderSettings(
        name=PROVIDER, base_url="https://financialmodelingprep.com")
    OPTIONS: ClassVar[tuple[str, ...]] = ("api",)

    def __init__(self, settings: ProviderSettings | None = None, *, api: Literal["stable", "v3"] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        chosen = api if api is not None else self.settings.options.get("api", "stable").strip().lower()
        if chosen not in ("stable", "v3"):
            raise ConfigError(f"api must be 'stable' or 'v3', got {chosen!r}", provider=PROVIDER)
        self._api: Literal["stable", "v3"] = "v3" if chosen == "v3" else "stable"
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.EQUITY, AssetClass.ETF}),
            timeframes=(TimeframeSupport("1d"),),
            kinds=frozenset({DataKind.BARS, DataKind.ACTIONS, DataKind.FUNDAMENTALS}),
            needs_credentials=True,
            rate_limit_per_minute=self.settings.rate_limit_per_minute,
        )

    @property
    def capabilities(self) -> Capabilities:
        """US equities and ETFs, daily bars; needs a key."""
        return self._caps

    def auth(self, settings: ProviderSettings) -> Auth:
        """The key goes in the ``apikey`` query parameter."""
        return Auth(params={"apikey": settings.api_key}) if settings.api_key is not None else Auth()

    def classify(self, reply: Reply) -> tuple[type[ProviderError], str] | None:
        """FMP's ``{"Error Message": ...}`` bodies (429 and 5xx keep the default handling)."""
        if reply.status == 429 or reply.status >= 500:
            return None
        try:
            text = reply.json().get("Error Message")
        except (ProviderError, AttributeError):
            return None
        return message_error(text, reply.status) if isinstance(text, str) else None

    def _vendor(self, symbol: str, instrument: Instrument | None) -> str:
        inst = instrument if instrument is not None else Instrument.guess(symbol)
        if inst.asset_class not in self._caps.asset_classes:
            raise UnsupportedRequest(f"FMP adapter serves equities and ETFs, not {inst.asset_class}",
                                     provider=PROVIDER, symbol=symbol)
        return vendor_symbol(symbol, instrument)

    # -- query -> extract -> transform -----------------------------------------------------

    def plan(self, query: BarsQuery, timeframe: Timeframe) -> FmpPlan:
        """Date windows of at most :data:`WINDOW_DAYS` days, oldest first."""
        vendor = self._vendor(query.symbol, query.instrument)
        first, last = _day(query.start_us), _day(query.end_us - 1)
        windows = []
        d = first
        while d <= last:
            e = min(d + dt.timedelta(days=WINDOW_DAYS - 1), last)
            windows.append((d.isoformat(), e.isoformat()))
            d = e + dt.timedelta(days=1)
        return FmpPlan(query, query.symbol, vendor, tuple(windows), self._api, self._clock.now_us())

    async def _get_json(self, session: HttpSession, path: str, params: dict[str, str], **context: Any) -> Any:
        payload = await session.get_json(path, params, **context)
        if isinstance(payload, dict) and isinstance(payload.get("Error Message"), str):
            cls, message = message_error(payload["Error Message"], 200)
            raise cls(self._http.redactor.text(message), provider=PROVIDER, **context)
        return payload

    async def _actions_payloads(self, session: HttpSession, vendor: str, api: str, **context: Any) -> tuple[Any, Any]:
        if api == "v3":
            enc = quote(vendor, safe="-._^")
            splits = await self._get_json(session, f"/api/v3/historical-price-full/stock_split/{enc}", {},
                                          page="splits", **context)
            divs = await self._get_json(session, f"/api/v3/historical-price-full/stock_dividend/{enc}", {},
                                        page="dividends", **context)
        else:
            splits = await self._get_json(session, "/stable/splits", {"symbol": vendor}, page="splits", **context)
            divs = await self._get_json(session, "/stable/dividends", {"symbol": vendor}, page="dividends", **context)
        return splits, divs

    async def extract(self, session: HttpSession, plan: FmpPlan) -> FmpRaw:
        """Price windows oldest first, then the symbol's splits and dividends."""
        ctx = {"symbol": plan.symbol, "timeframe": "1d"}
        prices = []
        for k, (start, end) in enumerate(plan.windows):
            prices.append(await self._get_json(session, "/stable/historical-price-eod/full",
                                               {"symbol": plan.vendor, "from": start, "to": end}, page=k, **ctx))
        splits, divs = await self._actions_payloads(session, plan.vendor, plan.api, **ctx)
        return FmpRaw(tuple(prices), splits, divs)

    def transform(self, raw: FmpRaw, plan: FmpPlan) -> BarsResult:
        """Pages -> raw daily bars (split adjustment undone), coverage, actions of the window."""
        q = plan.query
        splits = split_actions(raw.splits, plan.symbol, vendor=plan.vendor)
        divs = dividends(raw.dividends, plan.symbol, vendor=plan.vendor)
        tables = [eod_bars(page, vendor=plan.vendor) for page in raw.prices]
        _check_windows(tables, plan)
        table = pa.concat_tables(tables) if tables else self.empty_result().table
        table = unadjust(table, splits)
        table, coverage = finish(table, q.start_us, q.end_us, Timeframe.parse("1d"), plan.now_us, PROVIDER)
        lo, hi = _day(q.start_us), _day(q.end_us)
        actions = sorted(a for a in (*splits, *divs) if lo <= a.ex_date < hi)
        return BarsResult(table, coverage, actions)

    # -- actions and fundamentals ---------------------------------------------------------------

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and dividends with ex-dates in ``[start_us, end_us)`` (two requests)."""
        return await self.scrubbed(self._corporate_actions(symbol, start_us, end_us, instrument))

    async def _corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        query = BarsQuery(symbol, "1d", start_us, end_us, instrument)
        self.check(query)
        vendor = self._vendor(query.symbol, instrument)
        async with self._http.session() as session:
            splits, divs = await self._actions_payloads(session, vendor, self._api, symbol=query.symbol)
        actions = [*split_actions(splits, query.symbol, vendor=vendor), *dividends(divs, query.symbol, vendor=vendor)]
        lo, hi = _day(start_us), _day(end_us)
        return sorted(a for a in actions if lo <= a.ex_date < hi)

    async def fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        """Company profile and the newest annual income statement as ``{name: (value, source)}``.

        Raises
        ------
        ProviderError
            A typed failure (plan does not include the endpoint: UnsupportedRequest, garbage).
        """
        return await self.scrubbed(self._fundamentals(symbol, instrument))

    async def _fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        query = BarsQuery(symbol, "1d", 0, 0, instrument)
        self.check(query)
        vendor = self._vendor(query.symbol, instrument)
        async with self._http.session() as session:
            prof = await self._get_json(session, "/stable/profile", {"symbol": vendor}, symbol=query.symbol)
            inc = await self._get_json(session, "/stable/income-statement",
                                       {"symbol": vendor, "period": "annual", "limit": "1"}, symbol=query.symbol)
        return {**profile(prof, vendor=vendor), **income_statement(inc)}


def _check_windows(tables: list[pa.Table], plan: FmpPlan) -> None:
    """A window starting late after an older window had bars was cut by the vendor."""
    seen_bars = False
    for table, (start, _) in zip(tables, plan.windows, strict=True):
        if table.num_rows == 0:
            continue
        first_us = int(np.min(table.column("ts").cast(pa.int64()).to_numpy()))
        start_us = (dt.date.fromisoformat(start).toordinal() - 719_163) * DAY_US
        if seen_bars and first_us - start_us > LATE_START_DAYS * DAY_US:
            raise IncompleteData("a price window starts long after its start though older bars exist: cut answer",
                                 provider=PROVIDER, symbol=plan.symbol, window=start)
        seen_bars = True


def _day(us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(microseconds=us - us % DAY_US)
