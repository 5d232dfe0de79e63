"""The ``Cache`` boundary: a fast, disposable copy of hot results, keyed by generation.

Contract (every backend; the in-memory :class:`~tickvault.cache.memory.MemoryCache` is the
oracle, :class:`~tickvault.cache.redis.RedisCache` the shared one):

Ownership
    The cache owns nothing that matters. The store is the truth; losing the cache entirely
    (a restart, an eviction, a flush, a dead Redis) is always safe and only costs speed.
Values
    Opaque ``bytes`` (the engine stores Arrow IPC streams). The in-process L1
    (:class:`~tickvault.cache.memory.MemoryCache`) can also keep immutable *decoded*
    values with a stated size (``put_object``/``get_object``); those never leave the
    process. Keys are strings built by the engine from validated symbols and canonical
    timeframes; each backend adds its own namespace prefix, so two vaults with different
    prefixes never see each other's keys.
Series and generations
    Every key belongs to a *series* (``bars:AAPL:1m``, ``meta:AAPL``). Each series has a
    *generation*: an opaque token that changes on every :meth:`Cache.invalidate_series`.
    Writers invalidate the series *after* the store acknowledged the write and *before*
    they return to their caller. Readers read the generation *before* reading the store,
    build keys that embed it, and hand it to :meth:`Cache.put`, which stores the value only
    if the generation is still current. So a value computed from a store read that raced
    with a write is either refused or filed under a key nobody will ask for again: a read
    never returns data older than the store's last acknowledged write for that key.
TTL
    Every ``put`` carries a time to live in seconds; an expired entry is a miss. TTLs
    bound memory and the staleness window of writers that cannot reach the cache (see
    ``docs/cache.md``); correctness within one process never depends on them.
Failure
    :class:`~tickvault.cache.memory.MemoryCache` never fails. Backends that talk to a
    server raise :class:`~tickvault.errors.CacheError` (fast, once their circuit is open);
    the engine treats that as "no cache" and reads the store, so no cache error ever
    reaches a user of :class:`~tickvault.engine.Vault`.
Concurrency
    Every method is safe to call from several threads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Cache", "CacheStats", "series_key"]


def series_key(kind: str, *parts: str) -> str:
    """The series name for ``kind`` (``bars``, ``meta``) and its parts, joined by ``:``.

    Parts are validated symbols and canonical timeframes; a timeframe never contains
    ``:``, so ``bars:BTC/USDT:USDT:1m`` still reads unambiguously from the right.
    """
    return ":".join((kind, *parts))


@dataclass(frozen=True)
class CacheStats:
    """Counters of one cache level since it was created.

    ``entries``/``bytes``/``capacity`` are ``None`` where the backend cannot tell cheaply
    (Redis). ``errors`` counts failed backend calls; ``rejected`` counts puts refused
    because their generation was no longer current (a lost race, not a fault).
    """

    name: str
    hits: int = 0
    misses: int = 0
    puts: int = 0
    rejected: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0
    errors: int = 0
    entries: int | None = None
    bytes: int | None = None
    capacity: int | None = None

    @property
    def hit_rate(self) -> float | None:
        """``hits / (hits + misses)``, or ``None`` before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (with ``hit_rate``)."""
        out = asdict(self)
        out["hit_rate"] = self.hit_rate
        return out


@runtime_checkable
class Cache(Protocol):
    """A key-value cache with per-series generations and TTLs (see the module contract)."""

    @property
    def name(self) -> str:
        """Short level name for stats and health (``memory``, ``redis``)."""
        ...

    def get(self, key: str) -> bytes | None:
        """The value under ``key``, or ``None`` when absent or expired."""
        ...

    def put(self, key: str, value: bytes, *, ttl: float, series: str, generation: str) -> bool:
        """Store ``value`` for ``ttl`` seconds if ``generation`` is still ``series``' current one.

        Parameters
        ----------
        key
            Full key; it must embed ``generation`` (so a put that slipped past the check
            can never be found by a reader of a newer generation).
        value
            Bytes to keep.
        ttl
            Seconds to live (> 0).
        series
            The series the key belongs to.
        generation
            The token :meth:`generation` returned before the value was computed.

        Returns
        -------
        bool
            Whether the value was stored (``False``: stale generation or too large).
        """
        ...

    def generation(self, series: str) -> str:
        """The current generation token of ``series`` (read it before reading the store)."""
        ...

    def invalidate_series(self, series: str) -> str:
        """Move ``series`` to a new generation, dropping its entries; returns the new token."""
        ...

    def invalidate(self, key: str) -> None:
        """Drop one key (absent keys are fine)."""
        ...

    def clear(self) -> None:
        """Invalidate every series and key of this cache's namespace."""
        ...

    def stats(self) -> CacheStats:
        """Counters since creation."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent; a closed cache may still be garbage-collected only."""
        ...
