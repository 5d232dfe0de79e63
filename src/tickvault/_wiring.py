"""The one place that picks concrete backends from :class:`~tickvault.config.Settings`.

The engine only knows protocols; this module knows the implementations. Keeping the
choice here means a new backend is one branch in one function.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tickvault.config import Settings
from tickvault.errors import ConfigError
from tickvault.providers.base import Provider
from tickvault.store.base import BarStore

if TYPE_CHECKING:
    from tickvault.cache import MemoryCache
    from tickvault.engine._cached import CacheSet

__all__ = ["PROVIDERS", "build_caches", "build_providers", "build_store", "migrate_database"]


def build_store(settings: Settings, *, memory: bool = False) -> BarStore:
    """Build the store named by ``settings``.

    Raises
    ------
    ConfigError
        For a database URL that is not PostgreSQL, or when psycopg is not installed.
    StorageError
        When the PostgreSQL server cannot be reached or its schema cannot be used.
    """
    if memory:
        from tickvault.store.memory import MemoryStore

        return MemoryStore()
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        scheme = url.split("://", 1)[0].lower() if "://" in url else "postgresql"
        if scheme not in ("postgresql", "postgres"):
            # Only the scheme is shown: the rest of the URL may carry a password.
            raise ConfigError(f"TICKVAULT_DATABASE_URL must be a postgresql:// URL, got a {scheme}:// URL")
        try:
            from tickvault.store.postgres import PostgresStore
        except ImportError:
            raise ConfigError("TICKVAULT_DATABASE_URL needs psycopg: pip install 'tickvault[postgres]'") from None
        return PostgresStore(url, lock_timeout=settings.lock_timeout)
    from tickvault.store.local import LocalStore

    return LocalStore(settings.home, lock_timeout=settings.lock_timeout)


def migrate_database(url: str) -> tuple[int, int]:
    """Create or upgrade the PostgreSQL schema at ``url``; ``(from_version, to_version)``.

    Raises
    ------
    ConfigError
        For a URL that is not PostgreSQL or a missing psycopg.
    StorageError
        If the server is unreachable or a migration step fails.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"migrate needs a postgresql:// URL, got a {scheme or 'schemeless'} one")
    try:
        from tickvault.store.postgres import PostgresStore
    except ImportError:
        raise ConfigError("migrating PostgreSQL needs psycopg: pip install 'tickvault[postgres]'") from None
    return PostgresStore.migrate(url)


#: name -> (module, class); keyless providers first (they need no credentials).
PROVIDERS: dict[str, tuple[str, str]] = {
    "yahoo": ("tickvault.providers.yahoo", "YahooProvider"),
    "ccxt": ("tickvault.providers.crypto", "CcxtProvider"),
    "polygon": ("tickvault.providers.polygon", "PolygonProvider"),
    "alpaca": ("tickvault.providers.alpaca", "AlpacaProvider"),
    "tiingo": ("tickvault.providers.tiingo", "TiingoProvider"),
    "alpha_vantage": ("tickvault.providers.alphavantage", "AlphaVantageProvider"),
    "fmp": ("tickvault.providers.fmp", "FmpProvider"),
    "sim": ("tickvault.providers.sim", "SimProvider"),
}
_KEYLESS = ("yahoo", "ccxt")


def build_providers(settings: Settings, environ: Mapping[str, str]) -> list[Provider]:
    """The providers named by ``settings.providers``, configured from ``environ``.

    ``"auto"`` means the keyless providers (Yahoo; crypto exchanges when ccxt is installed)
    plus every key-based provider whose ``TICKVAULT_<NAME>_API_KEY`` is set; ``"none"``
    means no provider (stored data only). Explicit names keep their order, which is also the
    tie-break of the selection rules.

    Raises
    ------
    ConfigError
        For an unknown provider name or a malformed provider variable.
    """
    import importlib.util

    names: list[str] = []
    for raw in settings.providers:
        name = raw.strip().lower()
        if name in ("", "none"):
            continue
        if name == "auto":
            names += [n for n in _KEYLESS if n != "ccxt" or importlib.util.find_spec("ccxt") is not None]
            names += [n for n in PROVIDERS if n not in _KEYLESS and n != "sim"
                      and environ.get(f"TICKVAULT_{n.upper()}_API_KEY")]
            continue
        if name not in PROVIDERS:
            raise ConfigError(f"unknown provider {raw!r}; known: {', '.join(PROVIDERS)}, auto, none")
        names.append(name)
    out: list[Provider] = []
    for name in dict.fromkeys(names):
        module, cls_name = PROVIDERS[name]
        cls = getattr(importlib.import_module(module), cls_name)
        if name == "sim":
            out.append(cls())
        elif name == "ccxt":
            exchanges = [e.strip() for e in environ.get("TICKVAULT_CCXT_EXCHANGES", "binance").split(",") if e.strip()]
            out.append(cls.from_env(environ, exchanges))
        else:
            out.append(cls.from_env(environ))
    return out


# -- caches (docs/cache.md) --------------------------------------------------------------
# Vaults over the same persistent store in one process share one L1, so a write through
# one of them invalidates what the others cached. Weak values: it goes when they all do.
_SHARED_L1: weakref.WeakValueDictionary[tuple[str, ...], MemoryCache] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def build_caches(settings: Settings, store: BarStore) -> CacheSet:
    """Build the cache levels and the event bus named by ``settings`` for ``store``.

    L1 is an in-process :class:`~tickvault.cache.MemoryCache` (``cache_bytes``), L2 and the
    bus are Redis when ``redis_url`` is set (the bus also when caching is disabled).

    Raises
    ------
    ConfigError
        For a bad TTL mapping, a malformed Redis URL or a missing ``redis`` package.
    """
    from tickvault.cache import MemoryBus, MemoryCache
    from tickvault.engine._cached import CacheSet
    from tickvault.model import Timeframe

    ttls: dict[str, float] = {}
    for tf, ttl in settings.cache_ttls.items():
        try:
            key = str(Timeframe.parse(tf))
        except ValueError:
            raise ConfigError(f"cache_ttls: {tf!r} is not a timeframe") from None
        if not ttl > 0:
            raise ConfigError(f"cache_ttls: the TTL of {key} must be > 0 seconds, got {ttl}")
        ttls[key] = float(ttl)
    l1 = None
    if settings.cache_enabled and settings.cache_bytes > 0:
        where = _store_identity(store)
        if where is None:  # in-memory or unknown stores: a private L1 (never shared by mistake)
            l1 = MemoryCache(settings.cache_bytes)
        else:
            with _SHARED_LOCK:
                l1 = _SHARED_L1.get((*where, settings.cache_prefix))
                if l1 is None:
                    l1 = MemoryCache(settings.cache_bytes)
                    _SHARED_L1[(*where, settings.cache_prefix)] = l1
    if settings.redis_url is None:
        return CacheSet(l1=l1, bus=MemoryBus(), ttls=ttls, window=settings.cache_window)
    try:
        from tickvault.cache.redis import RedisBus, RedisCache
    except ImportError:
        raise ConfigError("TICKVAULT_REDIS_URL needs the redis package: pip install 'tickvault[redis]'") from None
    url = settings.redis_url.get_secret_value()
    prefix, timeout = settings.cache_prefix, settings.redis_timeout
    try:
        bus = RedisBus(url, prefix=prefix, timeout=timeout)
        l2 = RedisCache(url, prefix=prefix, timeout=timeout) if settings.cache_enabled else None
    except ValueError as exc:
        # redis-py names the problem (scheme, port); the URL itself may hold a password.
        raise ConfigError(f"invalid TICKVAULT_REDIS_URL: {exc}") from None
    return CacheSet(l1=l1, l2=l2, bus=bus, ttls=ttls, window=settings.cache_window)


def _store_identity(store: BarStore) -> tuple[str, ...] | None:
    """What makes two store objects the same data: the embedded root, or database + schema."""
    from tickvault.store.local import LocalStore

    if isinstance(store, LocalStore):
        return ("local", str(store.root))
    try:
        from tickvault.store.postgres import PostgresStore
    except ImportError:  # psycopg not installed: there is no PostgresStore to share
        return None
    if isinstance(store, PostgresStore):
        return ("postgres", str(store.where), store.schema)
    return None
