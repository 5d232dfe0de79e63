"""RedisCache (L2) on real servers: protocol behaviour, oracle equivalence, outages, recovery."""

from __future__ import annotations

import itertools
import logging
import uuid

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tickvault.cache import Cache, MemoryCache, series_key
from tickvault.cache.redis import RedisCache, redact_url
from tickvault.errors import CacheError

from ._util import FakeClock, RedisServer, wait_for

S = series_key("bars", "AAPL", "1m")


def _put(c: Cache, key: str, value: bytes, series: str = S) -> bool:
    g = c.generation(series)
    return c.put(f"{series}|{key}@{g}", value, ttl=60, series=series, generation=g)


def _get(c: Cache, key: str, series: str = S) -> bytes | None:
    return c.get(f"{series}|{key}@{c.generation(series)}")


def test_redis_cache_is_a_cache(redis_url: str, redis_prefix: str) -> None:
    c = RedisCache(redis_url, prefix=redis_prefix)
    try:
        assert isinstance(c, Cache)
    finally:
        c.close()


def test_roundtrip_generations_and_stale_put(redis_url: str, redis_prefix: str) -> None:
    c = RedisCache(redis_url, prefix=redis_prefix)
    try:
        assert _get(c, "k") is None
        assert _put(c, "k", b"\x00binary\xff")
        assert _get(c, "k") == b"\x00binary\xff"
        g = c.generation(S)
        g2 = c.invalidate_series(S)
        assert g2 != g
        assert _get(c, "k") is None  # the old key is unreachable under the new generation
        assert not c.put(f"{S}|late@{g}", b"stale", ttl=60, series=S, generation=g)
        s = c.stats()
        assert s.rejected == 1
        assert s.hits == 1
        assert s.errors == 0
    finally:
        c.close()


def test_generations_of_several_series_in_one_call(redis_url: str, redis_prefix: str) -> None:
    c = RedisCache(redis_url, prefix=redis_prefix)
    other = series_key("meta", "AAPL")
    try:
        fresh = c.generations([S, other])  # created on first use, like generation()
        assert fresh == [c.generation(S), c.generation(other)]
        moved = c.invalidate_series(other)
        assert c.generations([S, other]) == [fresh[0], moved]
        assert c.generations([S]) == [c.generation(S)]
        c.clear()
        assert c.generations([S, other]) == [c.generation(S), c.generation(other)]
        assert c.generations([S])[0] != fresh[0]
    finally:
        c.close()


def test_values_carry_a_ttl_and_live_under_the_prefix(redis_url: str, redis_prefix: str) -> None:
    c = RedisCache(redis_url, prefix=redis_prefix)
    raw = redis.Redis.from_url(redis_url)
    try:
        _put(c, "k", b"v")
        keys = sorted(k.decode() for k in raw.scan_iter(match=redis_prefix + "*"))
        assert keys
        assert all(k.startswith(redis_prefix) for k in keys)
        value_keys = [k for k in keys if k.startswith(redis_prefix + "v:")]
        assert len(value_keys) == 1
        assert 0 < raw.pttl(value_keys[0]) <= 60_000
    finally:
        raw.close()
        c.close()


def test_two_clients_share_generations(redis_url: str, redis_prefix: str) -> None:
    a = RedisCache(redis_url, prefix=redis_prefix)
    b = RedisCache(redis_url, prefix=redis_prefix)
    try:
        _put(a, "k", b"v")
        assert _get(b, "k") == b"v"
        b.invalidate_series(S)  # a write seen by another process
        assert _get(a, "k") is None
    finally:
        a.close()
        b.close()


def test_prefixes_isolate_namespaces(redis_url: str, redis_prefix: str) -> None:
    a = RedisCache(redis_url, prefix=redis_prefix + "a:")
    b = RedisCache(redis_url, prefix=redis_prefix + "b:")
    try:
        _put(a, "k", b"v")
        assert _get(b, "k") is None
    finally:
        a.close()
        b.close()


def test_clear_and_purge(redis_url: str, redis_prefix: str) -> None:
    c = RedisCache(redis_url, prefix=redis_prefix)
    try:
        _put(c, "k", b"v")
        c.clear()
        assert _get(c, "k") is None
        assert c.purge() >= 2  # epoch, gen and the (now unreachable) value
    finally:
        c.close()


def test_redact_url_hides_the_password() -> None:
    assert redact_url("redis://:s3cret@host:6380/1") == "redis://:***@host:6380/1"
    assert redact_url("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"


class RedisAgainstOracle(RuleBasedStateMachine):
    """Model-based: the same operations on RedisCache and MemoryCache give the same answers."""

    url = ""
    counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"tickvault-test:{uuid.uuid4().hex[:12]}:sm{next(self.counter)}:"
        self.redis = RedisCache(self.url, prefix=self.prefix)
        self.memory = MemoryCache(1 << 20)
        self.tokens: dict[tuple[str, str], str] = {}  # (level, series) -> a remembered generation

    series = st.sampled_from([series_key("bars", "AAPL", "1m"), series_key("bars", "BTC/USDT", "5m"),
                              series_key("meta", "AAPL")])
    keys = st.sampled_from(["latest", "actions", "other"])

    @rule(series=series, key=keys, value=st.binary(max_size=64))
    def put_current(self, series: str, key: str, value: bytes) -> None:
        assert _put(self.redis, key, value, series) == _put(self.memory, key, value, series)

    @rule(series=series)
    def remember_generation(self, series: str) -> None:
        self.tokens[("redis", series)] = self.redis.generation(series)
        self.tokens[("memory", series)] = self.memory.generation(series)

    @rule(series=series, key=keys, value=st.binary(max_size=8))
    def put_remembered(self, series: str, key: str, value: bytes) -> None:
        results = []
        for name, c in (("redis", self.redis), ("memory", self.memory)):
            g = self.tokens.get((name, series))
            if g is None:
                return
            results.append(c.put(f"{series}|{key}@{g}", value, ttl=60, series=series, generation=g))
        assert results[0] == results[1]

    @rule(series=series)
    def invalidate(self, series: str) -> None:
        self.redis.invalidate_series(series)
        self.memory.invalidate_series(series)

    @rule()
    def clear(self) -> None:
        self.redis.clear()
        self.memory.clear()

    @invariant()
    def same_answers(self) -> None:
        for series in ("bars:AAPL:1m", "bars:BTC/USDT:5m", "meta:AAPL"):
            for key in ("latest", "actions", "other"):
                assert _get(self.redis, key, series) == _get(self.memory, key, series)

    def teardown(self) -> None:
        self.redis.purge()
        self.redis.close()


@pytest.mark.slow
def test_redis_cache_matches_the_memory_oracle(redis_url: str) -> None:
    RedisAgainstOracle.url = redis_url
    run_state_machine_as_test(RedisAgainstOracle,
                              settings=settings(max_examples=15, stateful_step_count=15, deadline=None))


# -- outages ------------------------------------------------------------------------------
def test_closed_port_fails_fast_with_cache_error_and_counts(closed_port_url: str, clock: FakeClock,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    c = RedisCache(closed_port_url, prefix="tickvault-test:closed:", clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="tickvault.cache"):
            with pytest.raises(CacheError):
                c.generation(S)
            for _ in range(5):  # circuit open: fail fast, no new connection attempts
                with pytest.raises(CacheError):
                    c.get("k")
        assert c.stats().errors == 1
        assert not c.available
        assert c.outages == 1
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "tickvault.cache"]
        assert len(warnings) == 1  # once per outage, not per call
        clock.advance(1.0)  # back-off over: one probe goes out, fails, the back-off doubles
        with pytest.raises(CacheError):
            c.get("k")
        assert c.stats().errors == 2
        assert c.ping() is False
    finally:
        c.close()


def test_server_killed_mid_run_then_restarted_recovers_with_a_new_epoch(
        redis_server: RedisServer, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    c = RedisCache(redis_server.url, prefix="tickvault-test:outage:", clock=clock)
    try:
        assert _put(c, "k", b"v")
        before = c.generation(S)
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="tickvault.cache"), pytest.raises(CacheError):
            c.get(f"{S}|k@{before}")
        assert not c.available
        # Still down after the back-off: the probe fails, nothing is served.
        clock.advance(1.0)
        with pytest.raises(CacheError):
            c.generation(S)
        redis_server.start()  # an empty server (no persistence), as after a crash
        clock.advance(60.0)
        after = c.generation(S)  # the probe succeeds: recovered
        assert c.available
        assert after.split(".")[0] != before.split(".")[0]  # a new epoch
        assert _put(c, "k", b"v2")
        assert _get(c, "k") == b"v2"
        assert c.outages == 1
    finally:
        c.close()


def test_recovery_renews_the_epoch_even_if_the_server_kept_its_data(
        redis_server: RedisServer, clock: FakeClock) -> None:
    # A stall rather than a restart (CLIENT PAUSE on our private server): the old entries
    # are still in Redis, but a write may have happened while we could not invalidate, so
    # none of them may be served after recovery.
    c = RedisCache(redis_server.url, prefix="tickvault-test:blip:", clock=clock)
    raw = redis.Redis.from_url(redis_server.url)
    try:
        assert _put(c, "k", b"old")
        g = c.generation(S)
        raw.client_pause(1500)
        with pytest.raises(CacheError):  # times out after the short socket timeout
            c.get(f"{S}|k@{g}")
        assert not c.available
        wait_for(lambda: bool(raw.ping()), what="the pause to end")
        clock.advance(60.0)
        assert c.generation(S) != g  # the first call after the outage started a new epoch...
        assert c.available
        assert _get(c, "k") is None  # ...so what was cached before is never found again
    finally:
        raw.close()
        c.close()
