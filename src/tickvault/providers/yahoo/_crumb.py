"""Yahoo's cookie + crumb handshake, needed by ``quoteSummary`` (fundamentals), kept replayable.

Yahoo answers ``401 {"finance": {"error": {"code": "Unauthorized", "description":
"Invalid Crumb"}}}`` to a quoteSummary request without a session. A client gets one in two
steps, as browsers and yfinance do:

1. ``GET <cookie page>`` (default ``https://fc.yahoo.com``; usually a 404 whose
   ``Set-Cookie`` carries the ``A3`` session cookie);
2. ``GET <base URL>/v1/test/getcrumb`` with that cookie -> the crumb as plain text.

The cookie then goes in the ``Cookie`` header and the crumb in the ``crumb`` query
parameter of later requests. Both are session credentials: the cookie is added at the
transport boundary like an API key (:class:`CookieHeader` is the provider's
:class:`~tickvault.providers._http.Auth` header mapping, so it never appears in a URL, a
message or a log line) and ``crumb`` is one of the query parameters the shared redactor
always masks. They are kept per provider instance and renewed once when Yahoo rejects them.

Configuration (read at the edge, ``TICKVAULT_YAHOO_*``):

- ``CRUMB=auto`` (default) runs the handshake before the first fundamentals request;
  ``CRUMB=off`` sends no cookie and no crumb (a proxy that adds its own, a replay server).
- ``COOKIE_URL``: the page fetched for the cookie, an absolute URL or a path under the base
  URL (tests point it at the replay server).

The cookie page is the only request of the provider that may go to another host than the
base URL; it carries no credential, follows redirects, and only its cookies are kept.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from tickvault.providers._http import HttpClient, HttpSession, ProviderSettings

__all__ = ["CRUMB_MODES", "DEFAULT_COOKIE_URL", "CookieHeader", "CrumbSession"]

PROVIDER = "yahoo"
CRUMB_MODES = ("auto", "off")
DEFAULT_COOKIE_URL = "https://fc.yahoo.com"
CRUMB_PATH = "/v1/test/getcrumb"
_CRUMB_RE = re.compile(r"^[A-Za-z0-9./_\-]{1,64}\Z")


class CookieHeader(Mapping[str, SecretStr]):
    """``{"Cookie": ...}`` once a handshake succeeded, else empty.

    Read on every request by the transport; replaced whole (never mutated) under a lock, so
    a reader on another thread sees either the old or the new mapping.
    """

    def __init__(self) -> None:
        self._current: dict[str, SecretStr] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CookieHeader({'set' if self._current else 'empty'})"

    def set(self, cookie: str | None) -> None:
        """Use ``cookie`` (``name=value; ...``) from now on; ``None`` or empty clears it."""
        with self._lock:
            self._current = {"Cookie": SecretStr(cookie)} if cookie else {}

    def __getitem__(self, key: str) -> SecretStr:
        return self._current[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._current))

    def __len__(self) -> int:
        return len(self._current)

    def items(self) -> Any:  # the snapshot's view: stable while a request is being built
        """Items of the current mapping."""
        return self._current.items()

    def values(self) -> Any:
        """Values of the current mapping."""
        return self._current.values()


def crumb_options(settings: ProviderSettings) -> tuple[str, str]:
    """``(mode, cookie URL)`` from the provider options ``crumb`` and ``cookie_url``.

    Raises
    ------
    ConfigError
        For an unknown mode or a cookie URL that is neither an http(s) URL nor a path.
    """
    mode = settings.options.get("crumb", "auto").strip().lower()
    if mode not in CRUMB_MODES:
        raise ConfigError(f"TICKVAULT_YAHOO_CRUMB must be one of {', '.join(CRUMB_MODES)}", provider=PROVIDER)
    url = settings.options.get("cookie_url", DEFAULT_COOKIE_URL).strip()
    if url.startswith("/"):
        url = settings.base_url + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        raise ConfigError("TICKVAULT_YAHOO_COOKIE_URL must be an http(s) URL or a path", provider=PROVIDER)
    return mode, url


class CrumbSession:
    """The cookie and crumb of one provider instance (see the module docstring).

    Parameters
    ----------
    http
        The provider's shared client (rate limiter, breaker, redactor, settings).
    cookie
        The provider's :class:`CookieHeader` (also its ``Auth`` headers).
    user_agent
        Sent to the cookie page.
    transport_factory
        The provider's httpx transport factory (``None``: the real network).
    """

    def __init__(self, http: HttpClient, cookie: CookieHeader, *, user_agent: str,
                 transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        self._http = http
        self._cookie = cookie
        self.mode, self.cookie_url = crumb_options(http.settings)
        self._user_agent = user_agent
        self._transport_factory = transport_factory
        self._crumb: str | None = None

    def __repr__(self) -> str:
        return f"CrumbSession(mode={self.mode!r}, crumb={'set' if self._crumb else 'none'})"

    @property
    def enabled(self) -> bool:
        """Whether requests need a crumb (``mode == "auto"``)."""
        return self.mode == "auto"

    def reset(self) -> None:
        """Forget the cookie and crumb (Yahoo rejected them); the next :meth:`crumb` renews them."""
        self._crumb = None
        self._cookie.set(None)

    async def crumb(self, session: HttpSession, **context: Any) -> str | None:
        """The crumb to send (``None`` when disabled), running the handshake if there is none yet.

        Raises
        ------
        AuthenticationFailed
            Yahoo refused the handshake (``getcrumb`` answered 401/403 or no crumb).
        ProviderError
            A transport failure of either step (timeout, refused connection, 429, 5xx).
        """
        if not self.enabled:
            return None
        if self._crumb is None:
            self._cookie.set(await self._fetch_cookie())
            try:
                reply = await session.get(CRUMB_PATH, None, **context)
            except AuthenticationFailed as exc:
                self._cookie.set(None)
                raise AuthenticationFailed(
                    "Yahoo refused the cookie/crumb handshake (getcrumb); retry later, or set "
                    "TICKVAULT_YAHOO_CRUMB=off behind a proxy that handles it", provider=PROVIDER,
                    status=getattr(exc, "status", None), **context) from None
            text = reply.content[:200].decode("utf-8", errors="replace").strip()
            if not _CRUMB_RE.match(text):
                self._cookie.set(None)
                raise AuthenticationFailed("Yahoo's getcrumb answered no crumb (cookie missing or refused)",
                                           provider=PROVIDER, status=reply.status, **context)
            self._crumb = text
        return self._crumb

    async def _fetch_cookie(self) -> str | None:
        """GET the cookie page; return its cookies as a ``Cookie`` header value (``None``: none set)."""
        http = self._http
        shown = http.redactor.url(self.cookie_url)
        http.breaker.before_call()
        await http.limiter.acquire()
        transport = self._transport_factory() if self._transport_factory else httpx.AsyncHTTPTransport(retries=0)
        try:
            async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(http.settings.timeout),
                                         headers={"User-Agent": self._user_agent}, follow_redirects=True,
                                         trust_env=False) as client:
                response = await client.get(self.cookie_url)
                await response.aread()
                jar = [(c.name, c.value) for c in client.cookies.jar]
        except httpx.TimeoutException as exc:
            http.breaker.record_failure()
            raise ProviderTimeout(f"cookie page did not answer ({type(exc).__name__})", provider=PROVIDER,
                                  url=shown) from None
        except httpx.TransportError as exc:
            http.breaker.record_failure()
            raise ProviderUnavailable(f"cookie page unreachable ({type(exc).__name__})", provider=PROVIDER,
                                      url=shown) from None
        status = response.status_code
        if status == 429:
            http.breaker.record_success()
            raise RateLimited("rate limited by the cookie page", provider=PROVIDER, status=status, url=shown)
        if status >= 500:
            http.breaker.record_failure()
            raise ProviderUnavailable("cookie page server error", provider=PROVIDER, status=status, url=shown)
        http.breaker.record_success()
        # Any other status is fine: fc.yahoo.com answers 404 with the cookie.
        cookie = "; ".join(f"{name}={value}" for name, value in jar if name and value is not None)
        if any(c in cookie for c in "\r\n"):
            raise ProviderResponseError("cookie page set a malformed cookie", provider=PROVIDER, url=shown)
        return cookie or None
