"""What one app holds: the vault, settings, guard, metrics, stream hub and the latest-N cache.

The latest-N cache keeps *serialised* responses (bytes), keyed by the request and stamped with
the series' version, and remembers which raw requests (path, query string, ``Accept``) map to
which key, so a repeated request is answered before routing (:mod:`._fastpath`). A version
moves on every new-bar event for the series (the vault's bus) and on every write the service
itself makes (ingest, corporate actions, fetches), so a cached answer is never older than the
last write this process knows of. Writes by other processes arrive through the bus when it is
Redis; without Redis they are bounded by ``latest_cache_seconds``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from tickvault.service._auth import Guard
from tickvault.service._errors import Redactor
from tickvault.service._metrics import Metrics
from tickvault.service._settings import ServiceSettings

if TYPE_CHECKING:
    from tickvault import Vault
    from tickvault.service._stream import StreamHub

__all__ = ["LatestCache", "SeriesVersions", "ServiceState", "state_of"]


class SeriesVersions:
    """A counter per series and per symbol, moved by writes; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], int] = {}
        self._symbols: dict[str, int] = {}
        self.last_bar_us: dict[tuple[str, str], int] = {}

    def bump_series(self, symbol: str, timeframe: str, last_us: int | None = None) -> None:
        """A write to (symbol, timeframe); ``last_us`` is the newest bar it stored."""
        with self._lock:
            key = (symbol, timeframe)
            self._series[key] = self._series.get(key, 0) + 1
            if last_us is not None and last_us > self.last_bar_us.get(key, -(2**62)):
                self.last_bar_us[key] = last_us

    def bump_symbol(self, symbol: str) -> None:
        """A change that affects every series of ``symbol`` (corporate actions, fetches)."""
        with self._lock:
            self._symbols[symbol] = self._symbols.get(symbol, 0) + 1

    def of(self, symbol: str, timeframe: str) -> tuple[int, int]:
        """The current version of a series."""
        with self._lock:
            return self._series.get((symbol, timeframe), 0), self._symbols.get(symbol, 0)


@dataclass(frozen=True)
class _Entry:
    version: tuple[int, int]
    expires: float
    body: bytes
    media_type: str
    rows: int


class LatestCache:
    """Serialised latest-N responses, LRU, valid while the series version is unchanged.

    Parameters
    ----------
    seconds
        Longest time an entry is served (0 disables the cache).
    entries
        Most entries kept.
    clock
        Monotonic seconds.
    """

    def __init__(self, seconds: float, entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = seconds
        self._max = entries
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        # Raw requests are client-controlled (any query string): bounded, least recently used first out.
        self._aliases: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()
        self._max_aliases = max(4 * entries, 64)
        # Striped: a bounded set of locks serialises computations of the same key (and rarely of two
        # keys that share a stripe), without a lock object per key to clean up.
        self._stripes = tuple(threading.Lock() for _ in range(64))

    @property
    def enabled(self) -> bool:
        """Whether anything is cached at all."""
        return self._ttl > 0 and self._max > 0

    def get(self, key: tuple[Any, ...], version: tuple[int, int]) -> tuple[bytes, str, int] | None:
        """``(body, media_type, rows)`` if a fresh entry for ``key`` at ``version`` exists."""
        if not self.enabled:
            return None
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            if entry.version != version or entry.expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return entry.body, entry.media_type, entry.rows

    @contextlib.contextmanager
    def computing(self, key: tuple[Any, ...]) -> Iterator[None]:
        """Hold while computing the answer of ``key``: concurrent computations of it wait (single flight).

        A waiter then finds the fresh entry with :meth:`get`. Without caching there is nothing to
        share, so nothing waits.
        """
        if not self.enabled:
            yield
            return
        with self._stripes[hash(key) % len(self._stripes)]:
            yield

    def remember(self, raw: tuple[Any, ...], key: tuple[Any, ...]) -> None:
        """Record that the raw request ``raw`` was validated into the cache key ``key``."""
        if not self.enabled:
            return
        with self._lock:
            self._aliases[raw] = key
            self._aliases.move_to_end(raw)
            while len(self._aliases) > self._max_aliases:
                self._aliases.popitem(last=False)

    def alias_of(self, raw: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The cache key a raw request was validated into before, if remembered."""
        with self._lock:
            key = self._aliases.get(raw)
            if key is not None:
                self._aliases.move_to_end(raw)
            return key

    def put(self, key: tuple[Any, ...], version: tuple[int, int], body: bytes, media_type: str, rows: int) -> None:
        """Keep a response computed at ``version``."""
        if not self.enabled:
            return
        with self._lock:
            self._items[key] = _Entry(version, self._clock() + self._ttl, body, media_type, rows)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)


@dataclass
class ServiceState:
    """Everything the routes share (``app.state.tv``)."""

    vault: Vault
    settings: ServiceSettings
    guard: Guard
    metrics: Metrics
    redactor: Redactor
    versions: SeriesVersions
    latest: LatestCache
    keys_file: Path | None
    hub: StreamHub | None = None
    #: The latest-N route (its template labels answers of the fast path, :mod:`._fastpath`).
    latest_route: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def state_of(conn: HTTPConnection) -> ServiceState:
    """The :class:`ServiceState` of the app serving ``conn`` (a request or a WebSocket)."""
    st: ServiceState = conn.app.state.tv
    return st
