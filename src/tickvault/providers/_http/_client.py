"""The one async HTTP client every provider uses (httpx underneath).

One :class:`HttpClient` per provider holds what outlives a request — settings, rate
limiter, circuit breaker, retry policy, credentials, redactor. Requests run inside an
:meth:`HttpClient.session` (one ``httpx.AsyncClient`` and its connection pool per
``bars()`` call), because the engine runs every fetch in a fresh event loop and an httpx
pool cannot cross loops. Within a session, pages and retries reuse connections.

Every request goes: circuit breaker -> rate limiter -> send (timeout) -> classify:

=====================  =========================================  =========
outcome                error raised                               retried
=====================  =========================================  =========
2xx                    (JSON decoded; bad JSON: ProviderResponseError)  -
429                    RateLimited(retry_after=...)               yes, honouring Retry-After
5xx                    ProviderUnavailable(status=...)            yes, backoff + jitter
timeout                ProviderTimeout                            yes
connection error       ProviderUnavailable                        yes
401 / 403              AuthenticationFailed                       no
404                    SymbolNotFound                             no
other 4xx, 3xx         UnsupportedRequest / ProviderResponseError no
=====================  =========================================  =========

A provider can override the classification of any non-2xx reply with its ``classify``
hook (e.g. Alpaca's 403 "subscription does not permit" is an UnsupportedRequest, Yahoo's
404 body names the symbol). Credentials are added by :class:`AuthTransport` at the
transport boundary only, so they never appear in ``response.request.url``, in httpx's
own log lines or in any message; messages show URLs through the :class:`~._redact.Redactor`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from tickvault.errors import (
    AuthenticationFailed,
    ProviderError,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RetryableProviderError,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.providers._http._limits import CircuitBreaker, RateLimiter, RetryPolicy, parse_retry_after
from tickvault.providers._http._redact import Redactor
from tickvault.providers._http._settings import ProviderSettings
from tickvault.providers._http._timing import SYSTEM_CLOCK, Clock

__all__ = ["Auth", "AuthTransport", "HttpClient", "HttpSession", "Params", "Reply"]

logger = logging.getLogger("tickvault.providers.http")

Params = Mapping[str, str | int | float | None]
_SNIPPET = 300  # characters of an error body kept in a message


@dataclass(frozen=True)
class Auth:
    """Credentials added to every request at the transport boundary.

    Parameters
    ----------
    headers
        Header name -> secret value (``{"Authorization": SecretStr("Bearer ...")}``).
    params
        Query parameter name -> secret value, for vendors that only accept keys in the URL.
    """

    headers: Mapping[str, SecretStr] = field(default_factory=dict)
    params: Mapping[str, SecretStr] = field(default_factory=dict)

    def secrets(self) -> tuple[str, ...]:
        """Raw values, for the redactor."""
        return tuple(v.get_secret_value() for v in (*self.headers.values(), *self.params.values()))


class AuthTransport(httpx.AsyncBaseTransport):
    """Adds :class:`Auth` to a private copy of each request, then sends it with ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, auth: Auth) -> None:
        self._inner = inner
        self._auth = auth

    def __repr__(self) -> str:
        return f"AuthTransport({type(self._inner).__name__}, <credentials hidden>)"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send a copy of ``request`` that carries the credentials."""
        if not self._auth.headers and not self._auth.params:
            return await self._inner.handle_async_request(request)
        url = request.url
        if self._auth.params:
            url = url.copy_merge_params({k: v.get_secret_value() for k, v in self._auth.params.items()})
        headers = request.headers.copy()
        for name, value in self._auth.headers.items():
            headers[name] = value.get_secret_value()
        private = httpx.Request(request.method, url, headers=headers, stream=request.stream,
                                extensions=request.extensions)
        return await self._inner.handle_async_request(private)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


@dataclass(frozen=True)
class Reply:
    """A received HTTP reply, as providers and classify hooks see it.

    Parameters
    ----------
    status
        HTTP status code.
    headers
        Response headers (lower-case names).
    content
        Raw body bytes.
    url
        The request URL, redacted (safe to show).
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    def text(self, limit: int = _SNIPPET) -> str:
        """The start of the body as text (for messages; redact before showing)."""
        return self.content[:limit].decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Decode the body as JSON.

        Raises
        ------
        ProviderResponseError
            If the body is not valid JSON.
        """
        try:
            return json.loads(self.content)
        except (ValueError, RecursionError) as exc:
            raise ProviderResponseError(f"malformed JSON from provider: {type(exc).__name__}",
                                        url=self.url, status=self.status, size=len(self.content)) from None


Classifier = Callable[[Reply], tuple[type[ProviderError], str] | None]
"""Maps a non-2xx reply to ``(error class, message)``, or ``None`` for the default table."""


class HttpClient:
    """Shared async HTTP client of one provider (see the module docstring).

    Parameters
    ----------
    settings
        Base URL, credentials, timeout, rate limit, retries.
    auth
        How credentials go on the wire (headers and/or query parameters).
    headers
        Extra non-secret headers sent on every request (User-Agent, Accept).
    clock
        Time source for backoff, rate limiting and the breaker.
    retry
        Backoff policy (the retry count comes from ``settings.max_retries``).
    breaker
        Circuit breaker (default: 5 consecutive failures open it for 30 s).
    classify
        Optional hook mapping a non-2xx :class:`Reply` to ``(error class, message)``; the
        client adds the context (provider, status, redacted URL) and redacts the message.
    transport_factory
        Builds the httpx transport for each session (default: a plain
        ``httpx.AsyncHTTPTransport``); tests may pass ``lambda: httpx.MockTransport(...)``.
    """

    def __init__(self, settings: ProviderSettings, *, auth: Auth | None = None,
                 headers: Mapping[str, str] | None = None, clock: Clock = SYSTEM_CLOCK,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 classify: Classifier | None = None,
                 transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self._auth = auth or Auth()
        self._headers = {"Accept": "application/json", "User-Agent": "tickvault", **(headers or {})}
        self._retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(settings.name, clock=clock)
        self.limiter = RateLimiter(settings.rate_limit_per_minute, clock=clock)
        self._classify = classify
        self._transport_factory = transport_factory or (lambda: httpx.AsyncHTTPTransport(retries=0))
        self.redactor = Redactor((*settings.secrets(), *self._auth.secrets()))
        self._origin = _origin(settings.base_url)

    def __repr__(self) -> str:
        return (f"HttpClient({self.settings.name!r}, base_url={self.redactor.url(self.settings.base_url)!r}, "
                f"credentials={'set' if self._auth.headers or self._auth.params else 'none'})")

    @property
    def name(self) -> str:
        """The provider name."""
        return self.settings.name

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[HttpSession]:
        """Open a connection pool for one logical operation (a ``bars()`` call)."""
        transport = AuthTransport(self._transport_factory(), self._auth)
        timeout = httpx.Timeout(self.settings.timeout)
        async with httpx.AsyncClient(transport=transport, timeout=timeout, headers=self._headers,
                                     follow_redirects=False, trust_env=False) as client:
            yield HttpSession(self, client)

    def resolve(self, url_or_path: str) -> str:
        """An absolute URL for a path under the base URL, or a same-origin absolute URL.

        Raises
        ------
        ProviderResponseError
            If an absolute URL points at another origin (a vendor-supplied next-page link
            must never carry our credentials to a different host).
        """
        if url_or_path.startswith(("http://", "https://")):
            if _origin(url_or_path) != self._origin:
                raise ProviderResponseError("refusing to follow a URL to another host",
                                            provider=self.name, url=self.redactor.url(url_or_path))
            return url_or_path
        path = url_or_path if url_or_path.startswith("/") else "/" + url_or_path
        return self.settings.base_url + path


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower())


class HttpSession:
    """Requests of one operation, sharing a connection pool (from :meth:`HttpClient.session`)."""

    def __init__(self, http: HttpClient, client: httpx.AsyncClient) -> None:
        self._http = http
        self._client = client

    def __repr__(self) -> str:
        return f"HttpSession({self._http.name!r})"

    async def get_json(self, url_or_path: str, params: Params | None = None, **context: Any) -> Any:
        """GET and decode JSON, with retries (see the module table).

        Parameters
        ----------
        url_or_path
            Path under the base URL (``/v2/stocks/bars``) or a same-origin absolute URL.
        params
            Query parameters; ``None`` values are dropped.
        **context
            Extra context for error messages (``symbol``, ``timeframe``, ``page``).

        Raises
        ------
        ProviderError
            A typed subclass, per the module table.
        """
        return (await self.get(url_or_path, params, **context)).json()

    async def get(self, url_or_path: str, params: Params | None = None, **context: Any) -> Reply:
        """GET with retries; return the 2xx :class:`Reply` (see :meth:`get_json`)."""
        http = self._http
        url = http.resolve(url_or_path)
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        attempts = http.settings.max_retries + 1
        last: ProviderError | None = None
        for attempt in range(attempts):
            http.breaker.before_call()
            await http.limiter.acquire()
            error, reply = await self._attempt(url, query, context)
            if reply is not None:
                return reply
            assert error is not None
            last = error
            if not isinstance(error, RetryableProviderError) or attempt == attempts - 1:
                break
            retry_after = getattr(error, "retry_after", None) if isinstance(error, RateLimited) else None
            if retry_after is not None and retry_after > http._retry.max_retry_after:
                break  # not worth blocking on: let the caller fail over
            delay = http._retry.backoff(attempt, retry_after)
            if isinstance(error, RateLimited):
                http.limiter.penalise(delay)
            logger.warning("%s: %s; retry %d/%d in %.2fs", http.name, http.redactor.text(error),
                           attempt + 1, attempts - 1, delay)
            await http.clock.sleep(delay)
        assert last is not None
        raise last

    async def _attempt(self, url: str, query: dict[str, str],
                       context: Mapping[str, Any]) -> tuple[ProviderError | None, Reply | None]:
        http = self._http
        red = http.redactor
        shown = red.url(str(httpx.URL(url, params=query)) if query else url)
        ctx = {"provider": http.name, **context, "url": shown}
        try:
            # params=None, not {}: httpx replaces a URL's own query (a next-page cursor) with an empty mapping
            response = await self._client.get(url, params=query or None)
            content = await response.aread()
        except httpx.TimeoutException as exc:
            http.breaker.record_failure()
            return ProviderTimeout(f"no answer within {http.settings.timeout:g}s ({type(exc).__name__})",
                                   **ctx), None
        except httpx.DecodingError as exc:
            http.breaker.record_success()
            return ProviderResponseError(f"undecodable response body ({red.text(exc)})", **ctx), None
        except httpx.TransportError as exc:
            http.breaker.record_failure()
            return ProviderUnavailable(f"connection failed ({type(exc).__name__}: {red.text(exc)})", **ctx), None
        status = response.status_code
        reply = Reply(status, {k.lower(): v for k, v in response.headers.items()}, content, shown)
        logger.debug("%s GET %s -> %d (%d bytes)", http.name, shown, status, len(content))
        if 200 <= status < 300:
            http.breaker.record_success()
            return None, reply
        if status >= 500:
            http.breaker.record_failure()
        else:
            http.breaker.record_success()
        custom = http._classify(reply) if http._classify is not None else None
        if custom is not None:
            cls, message = custom
            return cls(red.text(message), status=status, **ctx), None
        return _default_error(reply, ctx, red, http.clock), None


def _default_error(reply: Reply, ctx: dict[str, Any], red: Redactor, clock: Clock) -> ProviderError:
    status = reply.status
    body = red.text(reply.text()).strip().replace("\n", " ")
    detail = f": {body}" if body else ""
    if status == 429:
        retry_after = parse_retry_after(reply.headers.get("retry-after"), clock.now_us() / 1e6)
        return RateLimited("rate limited by provider", status=status, retry_after=retry_after, **ctx)
    if status >= 500:
        return ProviderUnavailable(f"server error{detail}", status=status, **ctx)
    if status in (401, 403):
        return AuthenticationFailed(f"credentials rejected{detail}", status=status, **ctx)
    if status == 404:
        return SymbolNotFound(f"not found{detail}", status=status, **ctx)
    if 300 <= status < 400:
        return ProviderResponseError("unexpected redirect", status=status, **ctx)
    return UnsupportedRequest(f"request refused{detail}", status=status, **ctx)
