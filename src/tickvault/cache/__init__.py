"""Caches and the new-bar event bus (DESIGN §4, §6; ``docs/cache.md``).

- :mod:`tickvault.cache.base`: the ``Cache`` protocol and its contract (generations, TTLs,
  losing it is always safe).
- :mod:`tickvault.cache.memory`: ``MemoryCache``, the in-process L1 and the oracle.
- :mod:`tickvault.cache.redis`: ``RedisCache`` (shared L2) and ``RedisBus`` (pub/sub); it
  needs the ``redis`` extra and is imported only when ``TICKVAULT_REDIS_URL`` is set.
- :mod:`tickvault.cache.events`: the ``EventBus`` protocol and the in-process ``MemoryBus``.

The engine composes these with a store; this package never imports the store or providers.
"""

from tickvault.cache.base import Cache, CacheStats, series_key
from tickvault.cache.events import EventBus, EventCallback, MemoryBus, bar_channel
from tickvault.cache.memory import DEFAULT_CAPACITY, MemoryCache

__all__ = [
    "DEFAULT_CAPACITY",
    "Cache",
    "CacheStats",
    "EventBus",
    "EventCallback",
    "MemoryBus",
    "MemoryCache",
    "bar_channel",
    "series_key",
]
