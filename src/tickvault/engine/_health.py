"""``vault.health()`` and ``vault.cache_stats()``: what is connected, how big, how hot.

Both return plain JSON-compatible dicts, so the CLI (``tickvault status``) and the HTTP
service can print or serve them as they are. Health checks touch each backend once
(store size, a Redis ``PING``) and never raise: a failing part is reported, not thrown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tickvault.config import Settings
from tickvault.engine._cached import CachedStore, CacheSet
from tickvault.errors import CacheError, TickvaultError
from tickvault.store.base import BarStore

__all__ = ["cache_stats", "health_report"]

_KINDS = {"LocalStore": "embedded", "MemoryStore": "memory"}


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{parts.username or ''}:***@{host}", parts.path, parts.query, parts.fragment))


def cache_stats(cached: CachedStore | None, caches: CacheSet) -> dict[str, Any]:
    """Read outcomes, per-level counters, the overall hit rate and Redis error counts."""
    reads = cached.counts() if cached is not None else {}
    hits, misses = reads.get("hits", 0), reads.get("misses", 0)
    levels: dict[str, Any] = {}
    for level in cached.levels if cached is not None else []:
        levels[level.name] = level.stats().to_dict()
    events = caches.bus.stats()
    redis_errors = int(levels.get("redis", {}).get("errors", 0)) + (
        int(events.get("errors", 0)) if caches.bus.name == "redis" else 0)
    return {
        "enabled": cached is not None,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "reads": reads,
        "levels": levels,
        "redis_errors": redis_errors,
        "events": events,
    }


def health_report(store: BarStore, settings: Settings, cached: CachedStore | None,
                  caches: CacheSet) -> dict[str, Any]:
    """Backend kind, location, size and connectivity; cache hit rate and Redis connectivity.

    ``status`` is ``"ok"`` when every configured part answers, else ``"degraded"`` (the
    vault still serves reads from the store while Redis is away).
    """
    name = type(store).__name__
    kind = _KINDS.get(name, "postgresql" if "postgres" in name.lower() else name)
    if settings.database_url is not None and kind != "memory":
        location = _redact(settings.database_url.get_secret_value())
    else:
        location = ":memory:" if kind == "memory" else str(settings.home)
    backend: dict[str, Any] = {"kind": kind, "store": name, "location": location, "size_bytes": None,
                               "connected": True, "error": None}
    try:
        backend["size_bytes"] = store.size_bytes()
    except TickvaultError as exc:
        backend.update(connected=False, error=str(exc))
    stats = cache_stats(cached, caches)
    redis: dict[str, Any] | None = None
    if settings.redis_url is not None:
        redis = {"url": _redact(settings.redis_url.get_secret_value()), "connected": False}
        probe = caches.l2 if caches.l2 is not None else caches.bus
        ping = getattr(probe, "ping", None)
        if callable(ping):
            redis["connected"] = bool(ping())
        for attr in ("outages", "last_error"):
            if caches.l2 is not None and hasattr(caches.l2, attr):
                redis[attr] = getattr(caches.l2, attr)
        if cached is not None:
            cached.report_reads()  # include this process's reads in the shared numbers
        shared = getattr(caches.l2, "shared_stats", None)
        if redis["connected"] and callable(shared):
            try:
                counts = shared()
            except CacheError:
                counts = None
            if counts is not None:
                total = counts["hits"] + counts["misses"]
                redis["shared"] = {**counts, "hit_rate": counts["hits"] / total if total else None}
        redis["errors"] = stats["redis_errors"]
    ok = backend["connected"] and (redis is None or redis["connected"])
    return {
        "status": "ok" if ok else "degraded",
        "backend": backend,
        "cache": {"enabled": stats["enabled"], "hit_rate": stats["hit_rate"], "levels": stats["levels"],
                  "reads": stats["reads"], "redis": redis},
        "events": {"bus": caches.bus.name, **stats["events"]},
    }
