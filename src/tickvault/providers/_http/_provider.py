"""``HttpProvider``: the query -> extract -> transform skeleton every HTTP adapter fills in.

A concrete provider supplies four small pieces (see ``providers/_template``):

- ``plan(query, timeframe) -> Q``: pure; the vendor's spelling of the request (symbol,
  interval string, time parameters, pages to fetch).
- ``extract(session, plan) -> R``: the only I/O; fetches every page of the plan through the
  shared :class:`~._client.HttpSession` (rate limit, retries, breaker, redaction included).
- ``transform(raw, plan) -> BarsResult``: pure; vendor payload -> canonical Arrow, usually
  ending in :func:`~._canonical.finish`. Fuzzed with mutated recordings.
- ``capabilities`` (and optionally ``auth``, ``classify``, ``DEFAULT_SETTINGS``, ``OPTIONS``).

:meth:`HttpProvider.bars` validates the query first (symbol, native timeframe, history
limit, credentials present), so nothing is sent that the provider cannot serve.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

import httpx

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    InvalidRange,
    ProviderError,
    TickvaultError,
    UnsupportedRequest,
)
from tickvault.model import Timeframe, validate_symbol
from tickvault.providers._http._client import Auth, HttpClient, HttpSession, Reply
from tickvault.providers._http._limits import CircuitBreaker, RetryPolicy
from tickvault.providers._http._redact import scrub_error
from tickvault.providers._http._settings import ProviderSettings, provider_settings_from_env
from tickvault.providers._http._timing import SYSTEM_CLOCK, Clock
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities

__all__ = ["HttpProvider"]

Q = TypeVar("Q")
T = TypeVar("T")
R = TypeVar("R")

_DAY_US = 86_400_000_000


class HttpProvider(abc.ABC, Generic[Q, R]):
    """Base class of HTTP providers (see the module docstring).

    Parameters
    ----------
    settings
        Provider settings (default: :attr:`DEFAULT_SETTINGS`, i.e. the public API without
        credentials). Build them at the edge with :meth:`from_env`.
    clock
        Time source (tests inject a manual clock so nothing sleeps for real).
    retry
        Backoff policy.
    breaker
        Circuit breaker (default: 5 failures, 30 s).
    transport_factory
        httpx transport per session (default: real network).
    """

    NAME: ClassVar[str]
    DEFAULT_SETTINGS: ClassVar[ProviderSettings]
    OPTIONS: ClassVar[tuple[str, ...]] = ()
    USER_AGENT: ClassVar[str] = "tickvault"

    def __init__(self, settings: ProviderSettings | None = None, *, clock: Clock = SYSTEM_CLOCK,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        settings = settings if settings is not None else self.DEFAULT_SETTINGS
        if settings.name != self.NAME:
            raise ConfigError(f"settings are for provider {settings.name!r}, not {self.NAME!r}")
        self._settings = settings
        self._clock = clock
        self._http = HttpClient(settings, auth=self.auth(settings), headers={"User-Agent": self.USER_AGENT},
                                clock=clock, retry=retry, breaker=breaker, classify=self.classify,
                                transport_factory=transport_factory)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **kwargs: Any) -> Self:
        """Build from ``TICKVAULT_<NAME>_*`` variables (the edge passes ``os.environ``).

        Raises
        ------
        ConfigError
            If a variable is malformed.
        """
        settings = provider_settings_from_env(cls.NAME, environ, defaults=cls.DEFAULT_SETTINGS, options=cls.OPTIONS)
        return cls(settings, **kwargs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(base_url={self._http.redactor.url(self._settings.base_url)!r}, "
                f"credentials={'set' if self._settings.has_credentials else 'none'})")

    # -- the Provider protocol ----------------------------------------------------------

    @property
    def name(self) -> str:
        """Short lower-case identifier."""
        return self.NAME

    @property
    def settings(self) -> ProviderSettings:
        """The settings in use (keys stay hidden in its repr)."""
        return self._settings

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this provider serves."""

    async def bars(self, query: BarsQuery) -> BarsResult:
        """Bars for ``query``: complete and canonical, or a typed error.

        Raises
        ------
        InvalidSymbol, InvalidRange
            For a malformed query (nothing is sent).
        UnsupportedRequest
            For a timeframe the provider does not serve natively or a range beyond its history.
        AuthenticationFailed
            If credentials are required and missing, or rejected.
        ProviderError
            Any other typed provider failure (see :mod:`tickvault.providers._http._client`).
        """
        tf = self.check(query)
        if query.start_us == query.end_us:
            return self.empty_result()
        plan = self.plan(query, tf)
        return await self.scrubbed(self._fetch(plan))

    async def _fetch(self, plan: Q) -> BarsResult:
        async with self._http.session() as session:
            raw = await self.extract(session, plan)
        return self.transform(raw, plan)

    async def aclose(self) -> None:
        """Nothing persistent to release: connection pools live for one call. Idempotent."""

    async def scrubbed(self, work: Awaitable[T]) -> T:
        """Await ``work``; an error quoting a configured secret (a vendor echoing the key in
        its error text) is re-raised with the secret masked. Wrap every public entry point."""
        try:
            return await work
        except TickvaultError as exc:
            clean = scrub_error(exc, self._http.redactor)
            if clean is exc:
                raise
        # Raised outside the handler so the unmasked original is not kept as __context__.
        raise clean

    # -- hooks ----------------------------------------------------------------------------

    def auth(self, settings: ProviderSettings) -> Auth:
        """How credentials go on the wire (default: none)."""
        return Auth()

    def classify(self, reply: Reply) -> tuple[type[ProviderError], str] | None:
        """Provider-specific mapping of a non-2xx reply (default: the client's table)."""
        return None

    def empty_result(self) -> BarsResult:
        """The answer to an empty window."""
        from tickvault.model import empty_bars

        return BarsResult(empty_bars())

    def check(self, query: BarsQuery) -> Timeframe:
        """Validate ``query`` against the capabilities; return its parsed timeframe."""
        validate_symbol(query.symbol)
        tf = Timeframe.parse(query.timeframe)
        if query.start_us > query.end_us:
            raise InvalidRange(f"start {query.start_us} is after end {query.end_us}", symbol=query.symbol,
                               provider=self.NAME)
        caps = self.capabilities
        support = caps.supports(tf)
        if support is None:
            served = ", ".join(t.timeframe for t in caps.timeframes)
            raise UnsupportedRequest(f"timeframe {tf} is not served natively (serves {served})",
                                     provider=self.NAME, symbol=query.symbol, timeframe=str(tf))
        if query.instrument is not None and query.instrument.asset_class not in caps.asset_classes:
            raise UnsupportedRequest(f"asset class {query.instrument.asset_class} is not served",
                                     provider=self.NAME, symbol=query.symbol)
        if support.max_history_days is not None:
            oldest = self._clock.now_us() - support.max_history_days * _DAY_US
            if query.start_us < oldest:
                raise UnsupportedRequest(f"{tf} history only goes back {support.max_history_days} days",
                                         provider=self.NAME, symbol=query.symbol, timeframe=str(tf))
        if caps.needs_credentials and not self._settings.has_credentials:
            raise AuthenticationFailed(f"no API key configured; set TICKVAULT_{self.NAME.upper()}_API_KEY",
                                       provider=self.NAME)
        return tf

    @abc.abstractmethod
    def plan(self, query: BarsQuery, timeframe: Timeframe) -> Q:
        """Pure: the vendor's spelling of ``query``."""

    @abc.abstractmethod
    async def extract(self, session: HttpSession, plan: Q) -> R:
        """The only I/O: fetch every page of ``plan``."""

    @abc.abstractmethod
    def transform(self, raw: R, plan: Q) -> BarsResult:
        """Pure: vendor payload(s) -> canonical :class:`BarsResult`."""
