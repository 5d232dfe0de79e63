"""``CcxtProvider``: crypto candles from Binance, Coinbase, Kraken and OKX through ccxt.

One provider (``name == "ccxt"``) serves the exchanges it is configured with; a query goes to
``query.instrument.exchange`` when that names one of them (``"kraken"``), else to the first.
Provenance is ``ccxt:<exchange>``. Extract uses ccxt's async ``fetch_ohlcv`` (aiohttp under
ccxt), paging by ``since`` + ``limit`` until the window is complete:

- each page asks from the cursor; the next cursor is the last candle's open + one bar, or,
  for a page with nothing in the window, cursor + ``limit`` bars (that stretch is confirmed
  empty). A short page therefore just means one more request. A page holding only candles
  before the cursor (the exchange ignored ``since``), a cursor that does not advance, or more
  pages than the window can need is :class:`~tickvault.errors.IncompleteData` — never a
  silently short answer;
- Kraken serves only its newest 720 candles: an older window is refused up front
  (:class:`~tickvault.errors.UnsupportedRequest`) and a first page starting after the
  window start is :class:`~tickvault.errors.IncompleteData`.

Rate limiting, retries (honouring ``Retry-After``), the circuit breaker and the clock are the
shared HTTP layer's (:mod:`tickvault.providers._http`), one set per exchange and kept across
calls; ccxt's own throttle is off. ccxt's ``milliseconds()`` follows the injected clock, so
its "recent vs history endpoint" choices agree with ours.

Markets: ``markets="exchange"`` (default) downloads the exchange's market list once per
provider (ccxt ``load_markets``) and reuses it; ``markets="static"`` gives ccxt a one-market
record built by :func:`~._venues.static_market`, so nothing but candles is requested — what
replayed tests and offline use need. Base URLs come from the settings
(``TICKVAULT_CCXT_<EXCHANGE>_BASE_URL``); when one differs from the exchange's public host,
every ccxt API URL of that exchange is re-based onto it (path kept).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.errors import (
    ConfigError,
    IncompleteData,
    InvalidRange,
    ProviderError,
    RateLimited,
    RetryableProviderError,
    UnsupportedRequest,
)
from tickvault.model import AssetClass, Instrument, Timeframe, empty_bars, validate_symbol
from tickvault.providers._http import (
    SYSTEM_CLOCK,
    CircuitBreaker,
    Clock,
    ProviderSettings,
    RateLimiter,
    Redactor,
    RetryPolicy,
    parse_retry_after,
    provider_settings_from_env,
)
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.providers.crypto._errors import PARSE_FAILURES, map_ccxt_error, require_ccxt
from tickvault.providers.crypto._transform import OhlcvPage, crypto_coverage, ohlcv_bars, ohlcv_page
from tickvault.providers.crypto._venues import Venue, candle_rows, market_id, static_market, venue

__all__ = ["CcxtProvider", "settings_name"]

logger = logging.getLogger("tickvault.providers.ccxt")

PROVIDER = "ccxt"
_PAGE_SLACK = 4  # pages allowed per page a complete window needs (short pages), plus a constant
Markets = Literal["exchange", "static"]


def settings_name(exchange: str) -> str:
    """The settings / environment name of an exchange: ``ccxt_binance`` -> ``TICKVAULT_CCXT_BINANCE_*``."""
    return f"ccxt_{venue(exchange).id}"


@dataclass
class _VenueState:
    """What one exchange keeps across calls: settings, limiter, breaker, downloaded markets."""

    venue: Venue
    settings: ProviderSettings
    limiter: RateLimiter
    breaker: CircuitBreaker
    redactor: Redactor
    page_limit: int
    markets: list[dict[str, Any]] | None = None

    @property
    def provenance(self) -> str:
        return f"{PROVIDER}:{self.venue.id}"


class CcxtProvider:
    """Crypto OHLCV candles through ccxt (see the module docstring).

    Parameters
    ----------
    exchanges
        ccxt exchange ids served, in preference order (``binance``, ``coinbase``, ``kraken``,
        ``okx``); the first is used when the query's instrument names no exchange.
    settings
        Per-exchange settings keyed by exchange id (base URL, optional key/secret, timeout,
        rate limit, retries, option ``page_limit`` to ask for fewer candles per request);
        missing ones use the exchange's public defaults.
    markets
        ``"exchange"``: load the exchange's markets once (network); ``"static"``: build a
        one-market record per query (no market download).
    clock
        Time source (tests inject a manual clock; nothing sleeps for real).
    retry
        Backoff policy shared by the exchanges.

    Raises
    ------
    ConfigError
        For an empty exchange list, unknown markets mode, or settings with the wrong name.
    UnsupportedRequest
        For an exchange tickvault does not support.
    """

    NAME: ClassVar[str] = PROVIDER

    def __init__(self, exchanges: Sequence[str] | str = ("binance",), *,
                 settings: Mapping[str, ProviderSettings] | None = None, markets: Markets = "exchange",
                 clock: Clock = SYSTEM_CLOCK, retry: RetryPolicy | None = None) -> None:
        require_ccxt()  # fail at construction, not at the first fetch
        ids = [exchanges] if isinstance(exchanges, str) else list(exchanges)
        if not ids:
            raise ConfigError("at least one exchange is needed", provider=PROVIDER)
        if markets not in ("exchange", "static"):
            raise ConfigError(f"markets must be 'exchange' or 'static', got {markets!r}", provider=PROVIDER)
        self._markets_mode: Markets = markets
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._venues: dict[str, _VenueState] = {}
        for raw in ids:
            v = venue(raw)
            s = (settings or {}).get(v.id) or _default_settings(v)
            if s.name != settings_name(v.id):
                raise ConfigError(f"settings for {v.id} must be named {settings_name(v.id)!r}, got {s.name!r}",
                                  provider=PROVIDER)
            self._venues[v.id] = _VenueState(
                v, s, RateLimiter(s.rate_limit_per_minute, clock=clock),
                CircuitBreaker(f"{PROVIDER}:{v.id}", clock=clock), Redactor(s.secrets()), _page_limit(v, s))
        frames = sorted({tf for st in self._venues.values() for tf in st.venue.timeframes},
                        key=lambda t: Timeframe.parse(t).sort_key())
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset({AssetClass.CRYPTO}),
            timeframes=tuple(TimeframeSupport(tf) for tf in frames),
            kinds=frozenset({DataKind.BARS}),
            needs_credentials=False,
            rate_limit_per_minute=next(iter(self._venues.values())).settings.rate_limit_per_minute,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], exchanges: Sequence[str] | str = ("binance",),
                 **kwargs: Any) -> CcxtProvider:
        """Build from ``TICKVAULT_CCXT_<EXCHANGE>_*`` variables (the edge passes ``os.environ``).

        Raises
        ------
        ConfigError
            If a variable is malformed.
        """
        ids = [exchanges] if isinstance(exchanges, str) else list(exchanges)
        settings = {venue(e).id: provider_settings_from_env(settings_name(e), environ,
                                                            defaults=_default_settings(venue(e)),
                                                            options=("page_limit",))
                    for e in ids}
        return cls(ids, settings=settings, **kwargs)

    def __repr__(self) -> str:
        return f"CcxtProvider(exchanges={list(self._venues)}, markets={self._markets_mode!r})"

    @property
    def name(self) -> str:
        """``"ccxt"`` (provenance names the exchange: ``ccxt:kraken``)."""
        return PROVIDER

    @property
    def capabilities(self) -> Capabilities:
        """Crypto spot pairs; the union of the configured exchanges' native timeframes."""
        return self._caps

    @property
    def exchanges(self) -> tuple[str, ...]:
        """Configured exchange ids in preference order."""
        return tuple(self._venues)

    async def aclose(self) -> None:
        """Nothing to release: each call opens and closes its own ccxt session. Idempotent."""

    # -- bars -------------------------------------------------------------------------------------

    def _state_for(self, query: BarsQuery) -> _VenueState:
        wanted = (query.instrument.exchange or "").strip().lower() if query.instrument is not None else ""
        if wanted:
            if wanted not in self._venues:
                raise UnsupportedRequest(f"exchange {wanted[:30]!r} is not configured ({', '.join(self._venues)})",
                                         provider=PROVIDER, symbol=query.symbol)
            return self._venues[wanted]
        return next(iter(self._venues.values()))

    async def bars(self, query: BarsQuery) -> BarsResult:
        """Candles of ``query`` from its exchange: complete and canonical, or a typed error.

        Raises
        ------
        InvalidSymbol, InvalidRange
            For a malformed query (nothing is sent).
        UnsupportedRequest
            Timeframe not native on the exchange, window older than its history, unknown exchange.
        IncompleteData
            If paging cannot complete the window.
        ProviderError
            Any other typed failure (rate limit, timeout, unavailable, garbage).
        """
        symbol = validate_symbol(query.symbol)
        tf = Timeframe.parse(query.timeframe)
        if query.start_us > query.end_us:
            raise InvalidRange(f"start {query.start_us} is after end {query.end_us}", provider=PROVIDER, symbol=symbol)
        inst = query.instrument if query.instrument is not None else Instrument.guess(symbol)
        if inst.asset_class != AssetClass.CRYPTO:
            raise UnsupportedRequest(f"ccxt serves crypto pairs, not {inst.asset_class}", provider=PROVIDER,
                                     symbol=symbol)
        state = self._state_for(query)
        v = state.venue
        ccxt_tf = v.timeframes.get(str(tf))
        if ccxt_tf is None:
            raise UnsupportedRequest(f"{v.id} has no native {tf} candles (serves {', '.join(v.timeframes)})",
                                     provider=state.provenance, symbol=symbol, timeframe=str(tf))
        market_id(v, symbol)  # validates the pair before anything is sent
        now_us = self._clock.now_us()
        if v.history_bars is not None and query.start_us < now_us - (v.history_bars + 1) * tf.micros:
            raise UnsupportedRequest(f"{v.id} serves only its newest {v.history_bars} {tf} candles",
                                     provider=state.provenance, symbol=symbol, timeframe=str(tf))
        if query.start_us == query.end_us:
            return BarsResult(empty_bars())
        calendar = get_calendar("24/7")
        async with self._exchange(state, symbol) as ex:
            pages = await self._pages(ex, state, symbol, ccxt_tf, tf, query.start_us, query.end_us, now_us)
        return transform_pages(pages, state.provenance, tf, query.start_us, query.end_us, now_us, calendar)

    async def _pages(self, ex: Any, state: _VenueState, symbol: str, ccxt_tf: str, tf: Timeframe, start_us: int,
                     end_us: int, now_us: int) -> list[OhlcvPage]:
        v = state.venue
        step_us = state.page_limit * tf.micros
        stop_us = min(end_us, now_us)
        budget = _PAGE_SLACK * math.ceil(max(stop_us - start_us, 0) / step_us) + 10
        cursor = start_us
        pages: list[OhlcvPage] = []
        while cursor < stop_us:
            if len(pages) >= budget:
                raise IncompleteData(f"more than {budget} pages for the window; stopping instead of looping",
                                     provider=state.provenance, symbol=symbol, timeframe=str(tf))
            limit = state.page_limit if v.send_limit else None
            rows = await self._call(ex, state, symbol, ccxt_tf, cursor // 1000, limit, len(pages))
            ts, cols = ohlcv_page(rows, provider=state.provenance)
            if ts.size and not bool((ts >= cursor).any()):
                # Only candles before the cursor: the exchange ignored `since` (or replayed a stale
                # page). Treating the stretch as empty would silently shorten the range.
                raise IncompleteData("exchange answered only candles before the requested start",
                                     provider=state.provenance, symbol=symbol, timeframe=str(tf), page=len(pages))
            inside = (ts >= cursor) & (ts < end_us)
            late = not inside.any() or int(ts[inside].min()) > cursor
            if not pages and late and v.history_bars is not None and cursor < now_us - v.history_bars * tf.micros:
                raise IncompleteData(f"{v.id} answered from later than the window start (history limit)",
                                     provider=state.provenance, symbol=symbol, timeframe=str(tf))
            if inside.any():
                pages.append((ts[inside], {k: c[inside] for k, c in cols.items()}))
                nxt = int(ts[inside].max()) + tf.micros
            else:
                pages.append((np.empty(0, dtype=np.int64), {k: c[:0] for k, c in cols.items()}))
                nxt = cursor + step_us
            if nxt <= cursor:
                raise IncompleteData("paging did not advance", provider=state.provenance, symbol=symbol,
                                     timeframe=str(tf))
            cursor = nxt
        return pages

    async def _call(self, ex: Any, state: _VenueState, symbol: str, ccxt_tf: str, since_ms: int, limit: int | None,
                    page: int) -> Any:
        """One ``fetch_ohlcv`` with the shared limiter, breaker and retry policy."""
        attempts = state.settings.max_retries + 1
        ctx: dict[str, Any] = {"symbol": symbol, "timeframe": ccxt_tf, "page": page}
        last: ProviderError | None = None
        for attempt in range(attempts):
            state.breaker.before_call()
            await state.limiter.acquire()
            setattr(ex, _STATUS_ATTR, None)
            try:
                await ex.fetch_ohlcv(symbol, ccxt_tf, since_ms, limit)
                # ccxt filters its result by since/limit; re-parse the raw array unfiltered so
                # stale candles (before the cursor) are visible to the completeness checks.
                market = ex.market(symbol)
                raw = candle_rows(state.venue, ex.last_json_response, market["id"])
                rows = ex.parse_ohlcvs(raw, market, ccxt_tf)
            except require_ccxt().BaseError as exc:
                error = map_ccxt_error(exc, provider=state.provenance, redact=state.redactor.text,
                                       retry_after=_retry_after(ex, self._clock), status=_status(ex), **ctx)
            except PARSE_FAILURES as exc:  # ccxt choked on a garbage payload
                error = map_ccxt_error(exc, provider=state.provenance, redact=state.redactor.text, **ctx)
            else:
                state.breaker.record_success()
                return rows
            last = error
            if isinstance(error, RetryableProviderError) and not isinstance(error, RateLimited):
                state.breaker.record_failure()
            else:
                state.breaker.record_success()
            if not isinstance(error, RetryableProviderError) or attempt == attempts - 1:
                break
            retry_after = error.retry_after if isinstance(error, RateLimited) else None  # type: ignore[attr-defined]
            if retry_after is not None and retry_after > self._retry.max_retry_after:
                break
            delay = self._retry.backoff(attempt, retry_after)
            if isinstance(error, RateLimited):
                state.limiter.penalise(delay)
            logger.warning("%s: %s; retry %d/%d in %.2fs", state.provenance, error, attempt + 1, attempts - 1, delay)
            await self._clock.sleep(delay)
        assert last is not None
        raise last

    @contextlib.asynccontextmanager
    async def _exchange(self, state: _VenueState, symbol: str) -> AsyncIterator[Any]:
        """A ccxt exchange for one call, pointed at the configured base URL; always closed."""
        v, s = state.venue, state.settings
        config: dict[str, Any] = {"enableRateLimit": False, "enableLastJsonResponse": True,
                                  "timeout": int(s.timeout * 1000)}
        if s.api_key is not None:
            config["apiKey"] = s.api_key.get_secret_value()
        if s.api_secret is not None:
            config["secret"] = s.api_secret.get_secret_value()
        ex = getattr(require_ccxt(), v.id)(config)
        _record_status(ex)
        try:
            if s.base_url.rstrip("/") != v.base_url.rstrip("/"):
                ex.urls["api"] = _rebase(ex.urls["api"], s.base_url, getattr(ex, "hostname", None) or "")
            clock = self._clock
            ex.milliseconds = lambda: clock.now_us() // 1000  # ccxt's "now" is ours
            await self._load_markets(ex, state, symbol)
            yield ex
        finally:
            await ex.close()

    async def _load_markets(self, ex: Any, state: _VenueState, symbol: str) -> None:
        if self._markets_mode == "static":
            ex.set_markets([static_market(state.venue, symbol)])
            return
        if state.markets is None:
            try:
                await ex.load_markets()
            except require_ccxt().BaseError as exc:
                raise map_ccxt_error(exc, provider=state.provenance, redact=state.redactor.text,
                                     status=_status(ex), symbol=symbol) from None
            except PARSE_FAILURES as exc:
                raise map_ccxt_error(exc, provider=state.provenance, redact=state.redactor.text,
                                     symbol=symbol) from None
            state.markets = list(ex.markets.values())
        else:
            ex.set_markets(state.markets)


def transform_pages(pages: list[OhlcvPage], provenance: str, timeframe: Timeframe, start_us: int, end_us: int,
                    now_us: int, calendar: TradingCalendar) -> BarsResult:
    """Checked pages -> canonical bars inside the window and their coverage (pure).

    Raises
    ------
    ProviderResponseError
        If a candle is off the grid.
    """
    table, _ = ohlcv_bars(pages, timeframe=timeframe, calendar=calendar, provider=provenance)
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    keep = (ts >= start_us) & (ts < end_us)
    if not bool(keep.all()):
        table = table.filter(pa.array(keep))
        ts = ts[keep]
    coverage = crypto_coverage(ts, start_us, end_us, timeframe, now_us, calendar, PROVIDER)
    return BarsResult(table, coverage)


def _page_limit(v: Venue, s: ProviderSettings) -> int:
    raw = s.options.get("page_limit")
    if raw is None:
        return v.page_limit
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"page_limit must be an integer, got {raw[:20]!r}", provider=f"ccxt:{v.id}") from None
    if not 1 <= value <= v.page_limit:
        raise ConfigError(f"page_limit must be 1..{v.page_limit}", provider=f"ccxt:{v.id}")
    return value


def _default_settings(v: Venue) -> ProviderSettings:
    return ProviderSettings(name=f"ccxt_{v.id}", base_url=v.base_url, rate_limit_per_minute=v.rate_limit_per_minute)


def _rebase(urls: Any, base_url: str, hostname: str) -> Any:
    """Every URL in ccxt's ``urls['api']`` with its origin replaced by ``base_url`` (path kept)."""
    if isinstance(urls, dict):
        return {k: _rebase(u, base_url, hostname) for k, u in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        parts = urlsplit(urls.replace("{hostname}", hostname or "host"))
        return base_url.rstrip("/") + parts.path
    return urls


_STATUS_ATTR = "_tickvault_last_status"


def _record_status(ex: Any) -> None:
    """Remember the HTTP status of every answer: ccxt raises before we could see it."""
    original = ex.handle_errors

    def handle_errors(code: int, *args: Any, **kwargs: Any) -> Any:
        setattr(ex, _STATUS_ATTR, code)
        return original(code, *args, **kwargs)

    setattr(ex, _STATUS_ATTR, None)
    ex.handle_errors = handle_errors


def _status(ex: Any) -> int | None:
    value = getattr(ex, _STATUS_ATTR, None)
    return value if isinstance(value, int) else None


def _retry_after(ex: Any, clock: Clock) -> float | None:
    headers = getattr(ex, "last_response_headers", None) or {}
    try:
        value = next((str(v) for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    except (TypeError, ValueError):
        return None
    return parse_retry_after(value, clock.now_us() / 1e6)
