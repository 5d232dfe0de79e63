"""The Redis level: ``RedisCache`` (shared L2) and ``RedisBus`` (pub/sub new-bar events).

Redis is shared by every process using the same namespace (``TICKVAULT_CACHE_PREFIX``),
so generations live there too: a writer in one process moves the series' generation and
readers everywhere stop finding the old entries. Small Lua scripts keep each step atomic
(create a missing token, bump it, check-and-set a value); reading existing tokens is one
``MGET`` (atomic too, and cheaper than a script: it is the round trip every L1 hit pays).

Key layout (``P`` = the prefix, e.g. ``tickvault:``)::

    P epoch              random token; renewed by clear() and after every outage
    P gen:<series>       integer generation of a series (starts at a random value)
    P v:<key>            a value (Arrow IPC bytes), with a TTL
    P stats              hash of counters summed over every process of the namespace:
                         reads served from a cache or not (``hits``/``misses``, reported by
                         the engine), and this level's own lookups (``l2_hits``/``l2_misses``)

Failure handling: every call has short socket timeouts, redis-py's own retries are off,
and a :class:`~tickvault.cache._breaker.Breaker` opens after a failure so later calls fail
fast with :class:`~tickvault.errors.CacheError` (the engine then reads the store). The
first call after an outage renews the epoch before anything else: writes made while this
process could not invalidate are thereby never served from Redis. Redis Cluster is not
supported (the scripts touch keys in several slots); Sentinel or a single server are.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tickvault.cache._breaker import Breaker
from tickvault.cache.base import CacheStats
from tickvault.cache.events import EventCallback, Subscribers, Subscription, bar_channel
from tickvault.errors import CacheError

__all__ = ["DEFAULT_TIMEOUT", "RedisBus", "RedisCache", "redact_url"]

_log = logging.getLogger("tickvault.cache")
T = TypeVar("T")

#: Socket connect/read timeout in seconds: a cache that answers slower than this is not worth waiting for.
DEFAULT_TIMEOUT = 0.25
_ERRORS = (redis.RedisError, OSError)

_TOKEN = """
local e = redis.call('GET', KEYS[1])
if not e then redis.call('SET', KEYS[1], ARGV[1]); e = ARGV[1] end
local g = redis.call('GET', KEYS[2])
if not g then redis.call('SET', KEYS[2], ARGV[2]); g = ARGV[2] end
return {e, g}
"""
_BUMP = """
local e = redis.call('GET', KEYS[1])
if not e then redis.call('SET', KEYS[1], ARGV[1]); e = ARGV[1] end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[2]) end
return {e, tostring(redis.call('INCR', KEYS[2]))}
"""
_GET = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('HINCRBY', KEYS[2], 'l2_hits', 1) else redis.call('HINCRBY', KEYS[2], 'l2_misses', 1) end
return v
"""
_PUT = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
"""


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs, errors and health output)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def _client(url: str, timeout: float) -> redis.Redis:
    # No client-side retries: one failure opens our breaker, which is the only back-off.
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), health_check_interval=0)


def _fresh_epoch() -> str:
    return secrets.token_hex(8)


def _fresh_gen() -> str:
    # A random start: if Redis ever evicts a generation key, the next token differs from
    # every old one, so old values stay unreachable.
    return str(secrets.randbelow(1 << 40))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisCache:
    """Shared L2 cache on Redis (see the module docstring and :mod:`tickvault.cache.base`).

    Parameters
    ----------
    url
        ``redis://[:password@]host:port/db``.
    prefix
        Namespace of every key (``tickvault:``; tests use a unique one per run).
    timeout
        Socket connect/read timeout in seconds.
    clock
        Monotonic seconds for the breaker's back-off (injectable for tests).
    """

    def __init__(self, url: str, *, prefix: str = "tickvault:", timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = redact_url(url)
        self._prefix = prefix
        self._redis = _client(url, timeout)
        self._breaker = Breaker(f"redis cache at {self._url}", _log, clock=clock)
        self._token_script = self._redis.register_script(_TOKEN)
        self._bump_script = self._redis.register_script(_BUMP)
        self._put_script = self._redis.register_script(_PUT)
        self._get_script = self._redis.register_script(_GET)
        self._lock = threading.Lock()
        self._hits = self._misses = self._puts = self._rejected = self._invalidations = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisCache({self._url!r}, prefix={self._prefix!r})"

    @property
    def name(self) -> str:
        """``"redis"``."""
        return "redis"

    @property
    def url(self) -> str:
        """The server URL with its password redacted."""
        return self._url

    @property
    def prefix(self) -> str:
        """The key namespace."""
        return self._prefix

    @property
    def available(self) -> bool:
        """False while an outage is in progress (calls fail fast until a probe succeeds)."""
        return not self._breaker.down

    @property
    def outages(self) -> int:
        """How many outages were seen."""
        return self._breaker.outages

    @property
    def last_error(self) -> str | None:
        """The last failure, as ``Type: message``."""
        return self._breaker.last_error

    # -- the guard ------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise CacheError("redis cache is closed", url=self._url)
        if not self._breaker.allow():
            raise CacheError("redis cache unavailable (circuit open)", url=self._url)
        try:
            if self._breaker.down:
                # First call after an outage: entries written while we could not invalidate
                # must never be served, so start a new epoch before anything else.
                self._redis.set(self._k("epoch"), _fresh_epoch())
            result = fn()
        except _ERRORS as exc:
            self._breaker.failure(exc)
            self._redis.connection_pool.disconnect()
            raise CacheError("redis cache unavailable", url=self._url, reason=type(exc).__name__) from None
        self._breaker.success()
        return result

    def _k(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _count(self, attr: str) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + 1)

    # -- the protocol ---------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The value under ``key`` or ``None``.

        Raises
        ------
        CacheError
            Redis is unreachable (or the circuit is open).
        """
        # One round trip: the value, plus the namespace-wide hit/miss counters every process shares.
        keys = [self._k("v", key), self._k("stats")]
        value: Any = self._call(lambda: self._get_script(keys=keys))
        self._count("_hits" if value is not None else "_misses")
        return bytes(value) if value is not None else None

    def put(self, key: str, value: bytes, *, ttl: float, series: str, generation: str) -> bool:
        """Atomically store ``value`` if ``generation`` is still current (see the protocol)."""
        epoch, _, gen = generation.partition(".")
        ttl_ms = max(1, int(ttl * 1000))
        keys = [self._k("epoch"), self._k("gen", series), self._k("v", key)]
        done = self._call(lambda: self._put_script(keys=keys, args=[epoch, gen, value, ttl_ms]))
        self._count("_puts" if done else "_rejected")
        return bool(done)

    def generation(self, series: str) -> str:
        """The series' token ``<epoch>.<gen>`` (created on first use)."""
        keys = [self._k("epoch"), self._k("gen", series)]

        def _read() -> Any:
            # One atomic MGET (a plain command: ~25 % cheaper than the script); the script
            # runs only to create a missing epoch or generation.
            e, g = self._redis.mget(keys)
            if e is None or g is None:
                e, g = self._token_script(keys=keys, args=[_fresh_epoch(), _fresh_gen()])
            return e, g

        e, g = self._call(_read)
        return f"{_text(e)}.{_text(g)}"

    def generations(self, series: list[str]) -> list[str]:
        """The tokens of several series in one round trip (as :meth:`generation` each)."""
        keys = [self._k("epoch"), *(self._k("gen", s) for s in series)]

        def _read() -> list[Any]:
            e, *gs = self._redis.mget(keys)
            if e is None or any(g is None for g in gs):
                out = [self._token_script(keys=[keys[0], k], args=[_fresh_epoch(), _fresh_gen()]) for k in keys[1:]]
                return [(e_, g_) for e_, g_ in out]
            return [(e, g) for g in gs]

        return [f"{_text(e)}.{_text(g)}" for e, g in self._call(_read)]

    def invalidate_series(self, series: str) -> str:
        """Increment the series' generation (old values become unreachable and expire)."""
        keys = [self._k("epoch"), self._k("gen", series)]
        e, g = self._call(lambda: self._bump_script(keys=keys, args=[_fresh_epoch(), _fresh_gen()]))
        self._count("_invalidations")
        return f"{_text(e)}.{_text(g)}"

    def invalidate(self, key: str) -> None:
        """Delete one value."""
        self._call(lambda: self._redis.delete(self._k("v", key)))
        self._count("_invalidations")

    def clear(self) -> None:
        """Start a new epoch: every entry of this namespace becomes unreachable at once."""
        self._call(lambda: self._redis.set(self._k("epoch"), _fresh_epoch()))
        self._count("_invalidations")

    def purge(self) -> int:
        """Delete every key of this namespace (test clean-up, ``cache clear``); returns how many."""
        def _purge() -> int:
            n = 0
            batch: list[bytes] = []
            for key in self._redis.scan_iter(match=self._prefix.replace("*", r"\*") + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    n += int(self._redis.delete(*batch))
                    batch.clear()
            if batch:
                n += int(self._redis.delete(*batch))
            return n
        return self._call(_purge)

    def record_reads(self, hits: int, misses: int) -> None:
        """Add a process's read outcomes to the namespace-wide counters.

        Raises
        ------
        CacheError
            Redis is unreachable (the caller keeps the counts and tries again later).
        """
        def _add() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(self._k("stats"), "hits", hits)
            pipe.hincrby(self._k("stats"), "misses", misses)
            pipe.execute()
        self._call(_add)

    def shared_stats(self) -> dict[str, int]:
        """Counters of every process using this namespace: ``hits``, ``misses``, ``l2_hits``, ``l2_misses``.

        Raises
        ------
        CacheError
            Redis is unreachable.
        """
        names = ("hits", "misses", "l2_hits", "l2_misses")
        values = self._call(lambda: self._redis.hmget(self._k("stats"), list(names)))
        return {n: int(v or 0) for n, v in zip(names, values, strict=True)}

    def ping(self) -> bool:
        """Whether Redis answers now (never raises)."""
        try:
            return bool(self._call(self._redis.ping))
        except CacheError:
            return False

    def stats(self) -> CacheStats:
        """Counters (entries and bytes are not tracked for a shared server)."""
        with self._lock:
            return CacheStats(name=self.name, hits=self._hits, misses=self._misses, puts=self._puts,
                              rejected=self._rejected, invalidations=self._invalidations,
                              errors=self._breaker.errors)

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        if not self._closed:
            self._closed = True
            self._redis.close()


class RedisBus:
    """New-bar events on Redis pub/sub: one channel per series, one listener thread per bus.

    ``publish`` sends ``PUBLISH <prefix>bars:<symbol>:<timeframe> <json>``. Subscribers
    are served by one pattern subscription (``<prefix>bars:*``) on a daemon thread that
    reconnects with back-off when Redis goes away; messages published while it was
    disconnected are lost (pub/sub keeps no history). If a publish fails, the event is
    counted as dropped and still delivered to this process's own subscribers.

    Parameters
    ----------
    url, prefix, timeout, clock
        As for :class:`RedisCache`.
    """

    def __init__(self, url: str, *, prefix: str = "tickvault:", timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = redact_url(url)
        self._prefix = prefix
        self._timeout = timeout
        self._redis = _client(url, timeout)
        self._breaker = Breaker(f"redis event bus at {self._url}", _log, clock=clock,
                                meanwhile="delivering events in this process only")
        self._subs = Subscribers()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._published = self._dropped = self._received = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisBus({self._url!r}, prefix={self._prefix!r})"

    @property
    def name(self) -> str:
        """``"redis"``."""
        return "redis"

    @property
    def listening(self) -> bool:
        """Whether the listener thread is subscribed right now."""
        return self._ready.is_set()

    def channel(self, symbol: str, timeframe: str) -> str:
        """The channel name of one series."""
        return bar_channel(self._prefix, symbol, timeframe)

    def publish(self, symbol: str, timeframe: str, message: Mapping[str, Any]) -> None:
        """Publish on the series' channel; on failure deliver locally and count the drop."""
        payload = json.dumps(dict(message), separators=(",", ":"), sort_keys=True)
        ok = self._breaker.allow() and not self._closed
        if ok:
            try:
                self._redis.publish(self.channel(symbol, timeframe), payload)
            except _ERRORS as exc:
                self._breaker.failure(exc)
                self._redis.connection_pool.disconnect()
                ok = False
            else:
                self._breaker.success()
        with self._lock:
            if ok:
                self._published += 1
            else:
                self._dropped += 1
        if not ok:
            self._subs.deliver(message)

    def subscribe(self, callback: EventCallback, symbol: str | None = None,
                  timeframe: str | None = None) -> Callable[[], None]:
        """Register ``callback``; starts the listener and waits briefly until it is subscribed.

        Messages published by any process after this returns are delivered (while Redis is
        reachable), on the listener thread.
        """
        remove = self._subs.add(Subscription(callback, symbol, timeframe))
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._listen, name="tickvault-redis-bus", daemon=True)
                self._thread.start()
        self._ready.wait(timeout=max(1.0, 8 * self._timeout))
        return remove

    def _listen(self) -> None:
        pattern = self._prefix.replace("*", r"\*") + "bars:*"
        backoff = 0.1
        pubsub: Any = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self._redis.pubsub()  # type: ignore[no-untyped-call]
                    pubsub.psubscribe(pattern)
                msg = pubsub.get_message(timeout=0.2)
                if msg is None:
                    continue
                if msg["type"] == "psubscribe":
                    self._ready.set()
                    self._breaker.success()
                    backoff = 0.1
                elif msg["type"] == "pmessage":
                    with self._lock:
                        self._received += 1
                    self._subs.deliver(json.loads(msg["data"]))
            except _ERRORS as exc:
                self._ready.clear()
                self._breaker.failure(exc)
                _close_quietly(pubsub)
                pubsub = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except ValueError:  # a foreign, non-JSON message on our channel: ignore it
                _log.warning("ignoring a malformed message on %s", pattern)
        _close_quietly(pubsub)
        self._ready.clear()

    def ping(self) -> bool:
        """Whether Redis answers now (never raises; fails fast while the circuit is open)."""
        if self._closed or not self._breaker.allow():
            return False
        try:
            self._redis.ping()
        except _ERRORS as exc:
            self._breaker.failure(exc)
            self._redis.connection_pool.disconnect()
            return False
        self._breaker.success()
        return True

    def stats(self) -> dict[str, Any]:
        """Published, received, delivered, dropped and error counts."""
        with self._lock:
            return {"name": self.name, "published": self._published, "received": self._received,
                    "delivered": self._subs.delivered, "dropped": self._dropped, "errors": self._breaker.errors,
                    "subscribers": len(self._subs), "listening": self.listening}

    def close(self) -> None:
        """Stop the listener and close connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._redis.close()


def _close_quietly(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except _ERRORS:
            pass
