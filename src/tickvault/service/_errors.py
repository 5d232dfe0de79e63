"""One JSON error shape for every error the service returns, and the secret filter.

Every error — a bad symbol, a missing key, a body too large, an unknown route, a provider
outage, a bug — leaves as::

    {"error": {"status": 400, "code": "invalid_symbol", "message": "...",
               "request_id": "...", "details": {...}}}

with the status of :data:`_MAPPING` for tickvault's exception tree. Messages of server-side
failures (storage, configuration, bugs) are replaced by a generic one: the detail goes to the
log under the request id, not to the client. Everything that reaches a client or a log line
passes through a :class:`Redactor` first, so a provider key or a database password that
slipped into a message is masked.
"""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from tickvault import errors

__all__ = ["ApiError", "Redactor", "error_body", "error_for", "request_id_var"]

#: The current request's id (set by the middleware, read by handlers and log records).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("tickvault_request_id", default="-")

# Our own API keys have a recognisable shape: mask any that shows up in a path or message.
_OWN_KEY_RE = re.compile(r"tvk_[A-Za-z0-9_\-]{8,}")
_MASK = "***"


class Redactor:
    """Masks secret values (raw and URL-encoded) and anything shaped like a tickvault API key.

    Parameters
    ----------
    secrets
        Values that must never be shown (provider keys, passwords). Empty ones are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for s in secrets:
            if s and len(s) >= 4:  # masking "a" everywhere would wreck messages and hide nothing
                variants.update({s, quote(s, safe=""), quote_plus(s)})
        ordered = sorted(variants, key=len, reverse=True)  # longest first: a secret inside another
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __repr__(self) -> str:
        return "Redactor(<secrets hidden>)"

    def text(self, value: object) -> str:
        """``str(value)`` with every secret masked."""
        s = str(value)
        if self._pattern is not None:
            s = self._pattern.sub(_MASK, s)
        return _OWN_KEY_RE.sub("tvk_" + _MASK, s)


class ApiError(Exception):
    """An error answer: HTTP status, a stable ``code``, a message and optional details.

    Parameters
    ----------
    status
        HTTP status code.
    code
        Stable machine-readable code (``invalid_symbol``, ``limit_exceeded``, ...).
    message
        For people.
    details
        JSON-compatible extra context.
    headers
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str, *, details: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


# Most specific first; the first isinstance match wins. ``None`` as message: use a generic one.
_MAPPING: tuple[tuple[type[errors.TickvaultError], int, str, bool], ...] = (
    (errors.InvalidSymbol, 400, "invalid_symbol", True),
    (errors.InvalidTimeframe, 400, "invalid_timeframe", True),
    (errors.InvalidRange, 400, "invalid_range", True),
    (errors.FileFormatError, 400, "malformed_body", True),
    (errors.SchemaError, 400, "invalid_data", True),
    (errors.InvalidInput, 400, "invalid_input", True),
    (errors.MissingData, 404, "missing_data", True),
    (errors.IncompleteData, 502, "provider_incomplete", True),
    (errors.QualityError, 422, "quality_rejected", True),
    (errors.DataError, 422, "data_error", True),
    (errors.RateLimited, 503, "provider_rate_limited", True),
    (errors.ProviderTimeout, 504, "provider_timeout", True),
    (errors.RetryableProviderError, 503, "provider_unavailable", True),
    (errors.AuthenticationFailed, 502, "provider_auth_failed", True),
    (errors.SymbolNotFound, 404, "symbol_not_found", True),
    (errors.UnsupportedRequest, 422, "unsupported_request", True),
    (errors.ProviderRejected, 502, "provider_rejected", True),
    (errors.ProviderResponseError, 502, "provider_bad_response", True),
    (errors.ProviderError, 502, "provider_error", True),
    (errors.StoreLocked, 503, "store_locked", True),
    (errors.CorruptData, 500, "storage_corrupt", False),
    (errors.StorageError, 500, "storage_error", False),
    (errors.ConfigError, 500, "config_error", False),
    (errors.CacheError, 500, "cache_error", False),
)


def _iso(value: Any) -> Any:
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def error_for(exc: errors.TickvaultError) -> ApiError:
    """The :class:`ApiError` a tickvault exception becomes (status, code, message, details)."""
    status, code, show = next(((st, c, sh) for cls, st, c, sh in _MAPPING if isinstance(exc, cls)),
                              (500, "internal_error", False))
    message = str(exc) if show else "the server could not complete the request; the log has the details"
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if show:
        for key in ("symbol", "timeframe", "provider"):
            value = exc.context.get(key)
            if value is not None:
                details[key] = str(value)
    if isinstance(exc, errors.MissingData):
        details["intervals"] = [[_iso(a), _iso(b)] for a, b in exc.intervals[:20]]
        details["intervals_total"] = len(exc.intervals)
    if isinstance(exc, errors.RateLimited):
        after = getattr(exc, "retry_after", None)
        seconds = math.ceil(float(after)) if isinstance(after, int | float) and after > 0 else 1
        headers["Retry-After"] = str(seconds)
    elif isinstance(exc, errors.StoreLocked | errors.RetryableProviderError):
        headers["Retry-After"] = "1"
    return ApiError(status, code, message, details=details, headers=headers)


_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


def code_for_status(status: int) -> str:
    """A default ``code`` for a bare HTTP status (framework errors: 404, 405, ...)."""
    return _STATUS_CODES.get(status, "error" if status >= 500 else "bad_request")


def error_body(err: ApiError, redactor: Redactor) -> dict[str, Any]:
    """The JSON body of ``err`` (message and details redacted)."""
    details = _redact_obj(err.details, redactor)
    return {
        "error": {
            "status": err.status,
            "code": err.code,
            "message": redactor.text(err.message),
            "request_id": request_id_var.get(),
            "details": details,
        }
    }


def _redact_obj(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_obj(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_obj(v, redactor) for v in value]
    return value
