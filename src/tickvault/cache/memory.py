"""``MemoryCache``: the in-process L1, and the oracle for every other cache.

A byte-bounded LRU with TTLs and per-series generations, behind one lock. It is the
simplest thing that meets the :mod:`tickvault.cache.base` contract, so it doubles as the
reference the Redis level is tested against. The clock is injectable so TTL behaviour is
tested without sleeping.

Being in-process, it can also keep *decoded* values (:meth:`MemoryCache.put_object`):
the engine keeps each latest window as its immutable Arrow table, so a hit is a
zero-copy slice instead of an IPC decode. The caller states such a value's size in bytes
(its buffers), which counts against the budget like a ``bytes`` value's length.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tickvault.cache.base import CacheStats
from tickvault.errors import InvalidInput

__all__ = ["DEFAULT_CAPACITY", "MemoryCache"]

#: Default L1 budget: 64 MiB holds a 500-bar window for ~1,500 series.
DEFAULT_CAPACITY = 64 * 1024 * 1024

# Bookkeeping per entry beyond key and value (dict slots, the entry object): an estimate, so
# the budget stays honest for many small entries.
_OVERHEAD = 96


@dataclass
class _Entry:
    value: object  # bytes (``put``) or an immutable decoded value (``put_object``)
    expires: float
    series: str
    size: int


class MemoryCache:
    """Byte-bounded, thread-safe LRU cache with TTLs and series generations.

    Parameters
    ----------
    capacity
        Budget in bytes (values + keys + a fixed per-entry overhead). Least recently used
        entries are evicted to stay within it; a single value larger than half the budget
        is not kept at all (it would flush everything else).
    clock
        Monotonic seconds; inject a fake one in tests.

    Raises
    ------
    InvalidInput
        For a negative capacity.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 0:
            raise InvalidInput(f"cache capacity must be >= 0 bytes, got {capacity}")
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_series: dict[str, set[str]] = {}
        self._gens: dict[str, int] = {}
        self._epoch = 0
        self._bytes = 0
        self._hits = self._misses = self._puts = self._rejected = 0
        self._evictions = self._expirations = self._invalidations = 0

    def __repr__(self) -> str:
        return f"MemoryCache(capacity={self._capacity}, entries={len(self._entries)}, bytes={self._bytes})"

    @property
    def name(self) -> str:
        """``"memory"``."""
        return "memory"

    @property
    def capacity(self) -> int:
        """The byte budget."""
        return self._capacity

    # -- lookups ------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The ``bytes`` value under ``key`` (marking it recently used), or ``None``."""
        value = self.get_object(key)
        return value if isinstance(value, bytes) else None

    def get_object(self, key: str) -> object | None:
        """The value under ``key``, whatever :meth:`put` or :meth:`put_object` stored, or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            if self._clock() >= entry.expires:
                self._drop(key)
                self._expirations += 1
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry.value

    def put(self, key: str, value: bytes, *, ttl: float, series: str, generation: str) -> bool:
        """Store ``value`` unless ``generation`` is stale or the value is too large (see the protocol)."""
        return self.put_object(key, bytes(value), size=len(value), ttl=ttl, series=series, generation=generation)

    def put_object(self, key: str, value: object, *, size: int, ttl: float, series: str, generation: str) -> bool:
        """Like :meth:`put`, for an immutable decoded value of ``size`` bytes (kept as is, not copied).

        The caller must never mutate ``value`` afterwards, and ``size`` must count every
        buffer the value holds alive (it is charged against the budget).
        """
        size = size + len(key) + _OVERHEAD
        with self._lock:
            if generation != self._token(series):
                self._rejected += 1
                return False
            if ttl <= 0 or size > self._capacity // 2:
                return False
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(value, self._clock() + ttl, series, size)
            self._by_series.setdefault(series, set()).add(key)
            self._bytes += size
            self._puts += 1
            while self._bytes > self._capacity:
                oldest = next(iter(self._entries))
                self._drop(oldest)
                self._evictions += 1
            return True

    # -- generations ----------------------------------------------------------------------
    def generation(self, series: str) -> str:
        """The current token of ``series`` (``"<epoch>.<n>"``)."""
        with self._lock:
            return self._token(series)

    def invalidate_series(self, series: str) -> str:
        """New generation for ``series``; its entries are dropped at once."""
        with self._lock:
            self._gens[series] = self._gens.get(series, 0) + 1
            for key in list(self._by_series.get(series, ())):
                self._drop(key)
            self._invalidations += 1
            return self._token(series)

    def invalidate(self, key: str) -> None:
        """Drop one key."""
        with self._lock:
            if key in self._entries:
                self._drop(key)
                self._invalidations += 1

    def clear(self) -> None:
        """Drop everything and move every series to a new generation (a new epoch)."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()
            self._by_series.clear()
            self._bytes = 0
            self._invalidations += 1

    # -- introspection --------------------------------------------------------------------
    def stats(self) -> CacheStats:
        """Counters, entry count and bytes in use."""
        with self._lock:
            return CacheStats(
                name=self.name, hits=self._hits, misses=self._misses, puts=self._puts, rejected=self._rejected,
                evictions=self._evictions, expirations=self._expirations, invalidations=self._invalidations,
                entries=len(self._entries), bytes=self._bytes, capacity=self._capacity)

    def close(self) -> None:
        """Nothing to release (entries stay until garbage collection)."""

    # -- internals (lock held) ------------------------------------------------------------
    def _token(self, series: str) -> str:
        return f"{self._epoch}.{self._gens.get(series, 0)}"

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        keys = self._by_series.get(entry.series)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_series[entry.series]
