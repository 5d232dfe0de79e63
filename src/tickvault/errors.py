"""The one exception tree of tickvault.

Every error the library raises on purpose is a :class:`TickvaultError`. Callers can
catch broadly (``TickvaultError``), by family (``ProviderError``, ``StorageError``) or
precisely. Transport problems that are worth retrying are kept apart from definitive
answers, so retry and failover logic can decide by type alone::

    TickvaultError
    ├── ConfigError                      bad or missing configuration
    ├── InvalidInput (ValueError)        the caller's input is wrong; nothing was changed
    │   ├── InvalidSymbol                symbol fails the strict pattern
    │   ├── InvalidTimeframe             unknown / malformed timeframe string
    │   ├── InvalidRange                 start > end, naive/unknown time, span too large
    │   ├── SchemaError                  a frame lacks required columns or has bad types
    │   └── FileFormatError              an imported file is malformed (file, line, problem)
    ├── DataError                        the data itself is not what was asked for
    │   ├── MissingData                  requested intervals are not stored (and not fetched)
    │   ├── IncompleteData               a provider returned a short / truncated range
    │   └── QualityError                 rows rejected by the quality policy
    ├── ProviderError                    anything a data provider did
    │   ├── RetryableProviderError       transient: worth retrying / failing over
    │   │   ├── ProviderTimeout
    │   │   ├── RateLimited              carries ``retry_after`` seconds when known
    │   │   └── ProviderUnavailable      5xx, connection refused, circuit open
    │   ├── ProviderRejected             definitive answer: retrying will not help
    │   │   ├── AuthenticationFailed     missing / wrong credentials
    │   │   ├── SymbolNotFound
    │   │   └── UnsupportedRequest       timeframe / kind / range the provider cannot serve
    │   └── ProviderResponseError        the payload is garbage (malformed JSON, bad fields)
    ├── StorageError                     the store could not do what was asked
    │   ├── StoreLocked                  another writer holds the (symbol, timeframe)
    │   └── CorruptData                  a stored file failed verification (``path``)
    └── CacheError                       only raised by cache backends used directly; the
                                         engine degrades to the store instead

Exceptions carry context as attributes (``symbol``, ``timeframe``, ``provider``,
``status``, ...) and format it into their message, so a printed error reads well.
Secrets never go into these messages: callers pass redacted URLs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AuthenticationFailed",
    "CacheError",
    "ConfigError",
    "CorruptData",
    "DataError",
    "FileFormatError",
    "IncompleteData",
    "InvalidInput",
    "InvalidRange",
    "InvalidSymbol",
    "InvalidTimeframe",
    "MissingData",
    "ProviderError",
    "ProviderRejected",
    "ProviderResponseError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "QualityError",
    "RateLimited",
    "RetryableProviderError",
    "SchemaError",
    "StorageError",
    "StoreLocked",
    "SymbolNotFound",
    "TickvaultError",
    "UnsupportedRequest",
]


class TickvaultError(Exception):
    """Base class of every error tickvault raises on purpose.

    Parameters
    ----------
    message
        Human-readable description of what went wrong.
    **context
        Extra context (``symbol``, ``timeframe``, ``provider``, ...). Each item is kept
        as an attribute and appended to the message as ``key=value``.
    """

    def __init__(self, message: str, **context: Any) -> None:
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}
        for key, value in context.items():
            setattr(self, key, value)
        super().__init__(self._format())

    def _format(self) -> str:
        if not self.context:
            return self.message
        details = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({details})"


class ConfigError(TickvaultError):
    """Configuration is missing or invalid."""


class InvalidInput(TickvaultError, ValueError):
    """The caller's input is invalid; nothing was changed."""


class InvalidSymbol(InvalidInput):
    """A symbol does not match the strict canonical pattern."""


class InvalidTimeframe(InvalidInput):
    """A timeframe string cannot be parsed."""


class InvalidRange(InvalidInput):
    """A time range is malformed (start after end, unparseable, too large)."""


class SchemaError(InvalidInput):
    """A frame lacks required columns or has columns of the wrong type."""


class FileFormatError(InvalidInput):
    """An imported file is malformed.

    The message names the file, the line (when known) and the problem, on one line.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 **context: Any) -> None:
        super().__init__(message, path=path, line=line, **context)

    def _format(self) -> str:
        where = ""
        if self.context.get("path") is not None:
            where = str(self.context["path"])
            if self.context.get("line") is not None:
                where += f":{self.context['line']}"
            where += ": "
        rest = {k: v for k, v in self.context.items() if k not in ("path", "line")}
        details = (" (" + ", ".join(f"{k}={v}" for k, v in rest.items()) + ")") if rest else ""
        return f"{where}{self.message}{details}"


class DataError(TickvaultError):
    """The data is not what was asked for."""


class MissingData(DataError):
    """Requested bars are not stored and were not fetched.

    Attributes
    ----------
    intervals
        The missing ``(start, end)`` intervals (UTC, half-open).
    """

    def __init__(self, message: str, *, intervals: Sequence[tuple[Any, Any]] = (),
                 **context: Any) -> None:
        self.intervals = list(intervals)
        shown = ", ".join(f"[{a}, {b})" for a, b in self.intervals[:5])
        if len(self.intervals) > 5:
            shown += f", ... ({len(self.intervals)} intervals)"
        if shown:
            message = f"{message}: {shown}"
        super().__init__(message, **context)


class IncompleteData(DataError):
    """A provider returned fewer bars than the range it claimed to cover."""


class QualityError(DataError):
    """Rows were rejected by the quality policy."""


class ProviderError(TickvaultError):
    """A data provider failed or answered something unusable."""


class RetryableProviderError(ProviderError):
    """A transient provider failure: retrying or failing over may succeed."""


class ProviderTimeout(RetryableProviderError):
    """A provider did not answer in time."""


class RateLimited(RetryableProviderError):
    """A provider asked us to slow down (HTTP 429); ``retry_after`` is in seconds."""


class ProviderUnavailable(RetryableProviderError):
    """A provider is down (5xx, refused connection, circuit open)."""


class ProviderRejected(ProviderError):
    """A definitive refusal; retrying the same request will not help."""


class AuthenticationFailed(ProviderRejected):
    """Credentials are missing or wrong."""


class SymbolNotFound(ProviderRejected):
    """The provider does not know the symbol."""


class UnsupportedRequest(ProviderRejected):
    """The provider cannot serve this timeframe, data kind or range."""


class ProviderResponseError(ProviderError):
    """The provider's payload is malformed or inconsistent."""


class StorageError(TickvaultError):
    """The store could not complete an operation."""


class StoreLocked(StorageError):
    """Another writer holds the lock for this (symbol, timeframe)."""


class CorruptData(StorageError):
    """A stored file failed verification; ``path`` names it."""


class CacheError(TickvaultError):
    """A cache backend failed (only raised when a cache is used directly)."""
