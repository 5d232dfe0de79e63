"""ccxt's exception tree mapped onto tickvault's, so retry and failover decide by type alone.

=====================================================  ==========================
ccxt                                                   tickvault
=====================================================  ==========================
RateLimitExceeded, DDoSProtection                      RateLimited (Retry-After kept)
RequestTimeout                                         ProviderTimeout
ExchangeNotAvailable, OnMaintenance, NetworkError      ProviderUnavailable
AuthenticationError, PermissionDenied, AccountSusp.    AuthenticationFailed
BadSymbol                                              SymbolNotFound
NotSupported, BadRequest, other ExchangeError          UnsupportedRequest
BadResponse, NullResponse                              ProviderResponseError
anything ccxt raised while parsing garbage             ProviderResponseError
=====================================================  ==========================

Exchanges' own error handlers often look at the body before the HTTP status (OKX raises a
generic ExchangeError for any JSON without its ``code``), so the status of the answer, when
known, wins as in the shared HTTP client: 429 is RateLimited, 5xx ProviderUnavailable, and
401/403 AuthenticationFailed where ccxt only said "exchange error".

Messages pass through the provider's redactor and are cut short: ccxt puts the request URL
and the response body in its messages.

ccxt is an optional dependency (the ``crypto`` extra): it is imported on first use, so
``import tickvault.providers.crypto`` works without it and :func:`require_ccxt` explains
what to install.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)

__all__ = ["PARSE_FAILURES", "map_ccxt_error", "require_ccxt"]

#: What ccxt's parsers raise when a payload is garbage (it assumes well-formed answers).
PARSE_FAILURES: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, IndexError, AttributeError,
                                                ArithmeticError)
_SNIPPET = 300

#: ccxt exception name -> ours, first match (by isinstance, in this order) wins.
_TABLE: tuple[tuple[str, type[ProviderError]], ...] = (
    ("RateLimitExceeded", RateLimited),
    ("DDoSProtection", RateLimited),
    ("RequestTimeout", ProviderTimeout),
    ("ExchangeNotAvailable", ProviderUnavailable),
    ("NetworkError", ProviderUnavailable),
    ("AuthenticationError", AuthenticationFailed),
    ("AccountSuspended", AuthenticationFailed),
    ("BadSymbol", SymbolNotFound),
    ("BadResponse", ProviderResponseError),
    ("ExchangeError", UnsupportedRequest),
    ("OperationFailed", ProviderUnavailable),
)


@functools.cache
def require_ccxt() -> ModuleType:
    """``ccxt.async_support``, imported on first use.

    Raises
    ------
    ConfigError
        If ccxt is not installed.
    """
    try:
        ccxt_async = importlib.import_module("ccxt.async_support")
    except ImportError:
        raise ConfigError("the ccxt provider needs ccxt: pip install 'tickvault[crypto]' (ccxt>=4.3)",
                          provider="ccxt") from None
    return ccxt_async


def map_ccxt_error(exc: BaseException, *, provider: str, redact: Callable[[str], str],
                   retry_after: float | None = None, status: int | None = None, **context: object) -> ProviderError:
    """The tickvault error for an exception raised inside ccxt.

    Parameters
    ----------
    exc
        What ccxt raised.
    provider
        Provenance for the message (``ccxt:binance``).
    redact
        Masks secrets in the message.
    retry_after
        Seconds from the answer's ``Retry-After`` header, for rate limits.
    status
        HTTP status of the answer that failed, when there was one.
    **context
        Extra context (``symbol``, ``timeframe``, ``page``).
    """
    ccxt = require_ccxt()
    text = redact(f"{type(exc).__name__}: {exc}")[:_SNIPPET]
    cls: type[ProviderError] = ProviderResponseError
    for name, ours in _TABLE:
        if isinstance(exc, getattr(ccxt, name)):
            cls = ours
            break
    generic = cls in (UnsupportedRequest, ProviderResponseError)
    if status == 429:
        cls = RateLimited
    elif status is not None and status >= 500 and cls is not ProviderTimeout:
        cls = ProviderUnavailable
    elif status in (401, 403) and generic:
        cls = AuthenticationFailed
    if status is not None:
        context = {**context, "status": status}
    if cls is RateLimited:
        return RateLimited(f"rate limited by exchange ({text})", provider=provider, retry_after=retry_after, **context)
    if cls is ProviderResponseError and not isinstance(exc, ccxt.BaseError):
        return ProviderResponseError(f"unreadable answer ({text})", provider=provider, **context)
    return cls(text, provider=provider, **context)
