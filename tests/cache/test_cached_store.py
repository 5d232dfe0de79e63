"""CachedStore: what is served from the caches, invalidation, the stale-fill race, outages."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from tickvault.cache import MemoryCache
from tickvault.cache.redis import RedisCache
from tickvault.engine._cached import CachedStore, CacheSet, ttl_for
from tickvault.model import CorporateAction, Instrument
from tickvault.store.base import BarStore, VerifyReport
from tickvault.store.memory import MemoryStore

from ._bars import MINUTE, bars, recent_start

SYM, TF = "BTC/USDT", "1m"


@pytest.fixture(params=["l1", "l1+redis", "redis"])
def levels(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> Iterator[CacheSet]:
    l1 = MemoryCache(8 << 20) if "l1" in request.param else None
    l2 = RedisCache(redis_url, prefix=redis_prefix) if "redis" in request.param else None
    yield CacheSet(l1=l1, l2=l2, window=100)
    if l2 is not None:
        l2.close()


def _eq(a: pa.Table, b: pa.Table) -> None:
    assert a.schema == b.schema
    assert a.combine_chunks().equals(b.combine_chunks())


def test_ttls_scale_with_the_timeframe() -> None:
    assert ttl_for("1m") == 60
    assert ttl_for("5m") == 300
    assert ttl_for("1h") == 3600
    assert ttl_for("1d") == 86_400
    assert ttl_for("1w") == 86_400  # capped at a day
    assert ttl_for("1s") == 1
    assert ttl_for("1m", {"1m": 5.0}) == 5


def test_latest_is_served_from_the_window_after_one_fill(levels: CacheSet) -> None:
    store = MemoryStore()
    store.write(SYM, TF, bars(recent_start(), 500))
    cs = CachedStore(store, levels)
    _eq(cs.latest(SYM, TF, 10), store.latest(SYM, TF, 10))
    for n in (1, 10, 50, 100):
        _eq(cs.latest(SYM, TF, n), store.latest(SYM, TF, n))
    counts = cs.counts()
    assert counts["misses"] == 1
    assert counts["fills"] == 1
    assert counts["hits"] == 4
    _eq(cs.latest(SYM, TF, 300), store.latest(SYM, TF, 300))  # more than the window: refilled
    _eq(cs.latest(SYM, TF, 250), store.latest(SYM, TF, 250))
    assert cs.counts()["fills"] == 2


def test_every_write_invalidates_so_reads_are_never_older_than_the_last_write(levels: CacheSet) -> None:
    store = MemoryStore()
    start = recent_start()
    cs = CachedStore(store, levels)
    cs.write(SYM, TF, bars(start, 50))
    _eq(cs.latest(SYM, TF, 5), store.latest(SYM, TF, 5))
    cs.write(SYM, TF, bars(start + 50 * MINUTE, 3, price=200))  # append
    _eq(cs.latest(SYM, TF, 5), store.latest(SYM, TF, 5))
    cs.write(SYM, TF, bars(start + 10 * MINUTE, 1, price=300))  # overwrite inside the window
    _eq(cs.read(SYM, TF, start, None), store.read(SYM, TF, start, None))
    assert cs.delete_range(SYM, TF, start + 40 * MINUTE, None) == 13
    _eq(cs.latest(SYM, TF, 100), store.latest(SYM, TF, 100))


def test_identical_rewrite_keeps_the_window(levels: CacheSet) -> None:
    store = MemoryStore()
    cs = CachedStore(store, levels)
    batch = bars(recent_start(), 20)
    cs.write(SYM, TF, batch)
    cs.latest(SYM, TF, 5)
    cs.write(SYM, TF, batch)  # nothing changed in the store
    cs.latest(SYM, TF, 5)
    assert cs.counts()["hits"] == 1


def test_range_reads_inside_the_window_hit_and_others_are_exact(levels: CacheSet) -> None:
    store = MemoryStore()
    start = recent_start(1_000)
    store.write(SYM, TF, bars(start, 1_000))
    cs = CachedStore(store, levels)
    cases = [(start + 950 * MINUTE, None), (start + 900 * MINUTE, start + 990 * MINUTE),
             (start + 999 * MINUTE, start + 2_000 * MINUTE), (start + 10 * MINUTE, start + 20 * MINUTE),
             (None, None), (start + 500 * MINUTE, None)]
    for lo, hi in cases:
        _eq(cs.read(SYM, TF, lo, hi), store.read(SYM, TF, lo, hi))
    _eq(cs.read(SYM, TF, start + 950 * MINUTE, None, columns=["ts", "close"]),
        store.read(SYM, TF, start + 950 * MINUTE, None, columns=["ts", "close"]))
    assert cs.counts()["hits"] >= 3


def test_a_recent_range_before_the_window_grows_it(levels: CacheSet) -> None:
    store = MemoryStore()
    start = recent_start(1_000)
    store.write(SYM, TF, bars(start, 1_000))
    cs = CachedStore(store, levels)
    cs.latest(SYM, TF, 10)  # a 100-bar window
    lo = start + 700 * MINUTE
    _eq(cs.read(SYM, TF, lo, None), store.read(SYM, TF, lo, None))  # grown to reach lo (~300 bars)
    _eq(cs.read(SYM, TF, lo, None), store.read(SYM, TF, lo, None))
    _eq(cs.read(SYM, TF, lo + 5 * MINUTE, lo + 50 * MINUTE), store.read(SYM, TF, lo + 5 * MINUTE, lo + 50 * MINUTE))
    counts = cs.counts()
    assert counts["fills"] == 2
    assert counts["hits"] == 2


def test_a_short_series_is_complete_and_answers_everything(levels: CacheSet) -> None:
    store = MemoryStore()
    store.write(SYM, TF, bars(recent_start(), 30))
    cs = CachedStore(store, levels)
    _eq(cs.latest(SYM, TF, 5), store.latest(SYM, TF, 5))
    _eq(cs.latest(SYM, TF, 1_000), store.latest(SYM, TF, 1_000))
    _eq(cs.read(SYM, TF, None, None), store.read(SYM, TF, None, None))
    assert cs.counts()["fills"] == 1


def test_an_empty_series_is_cached_as_complete(levels: CacheSet) -> None:
    store = MemoryStore()
    cs = CachedStore(store, levels)
    _eq(cs.latest(SYM, TF, 5), store.latest(SYM, TF, 5))
    cs.write(SYM, TF, bars(recent_start(), 3))
    _eq(cs.latest(SYM, TF, 5), store.latest(SYM, TF, 5))


def test_actions_and_instruments_are_cached_and_invalidated(levels: CacheSet) -> None:
    store = MemoryStore()
    cs = CachedStore(store, levels)
    assert cs.actions("AAPL") == []
    assert cs.instrument("AAPL") is None
    cs.add_actions("AAPL", [CorporateAction.split("2020-08-31", 4.0, provider="yahoo")])
    assert cs.actions("AAPL") == store.actions("AAPL")
    assert cs.actions("AAPL") == store.actions("AAPL")  # from the cache, equal values
    cs.add_actions("AAPL", [CorporateAction.dividend("2024-02-09", 0.24, currency="USD")])
    assert cs.actions("AAPL") == store.actions("AAPL")
    inst = Instrument("AAPL", exchange="XNAS", currency="USD", name="Apple", provider_symbols={"yahoo": "AAPL"})
    cs.put_instrument(inst)
    assert cs.instrument("AAPL") == inst
    assert cs.instrument("AAPL") == inst


class PausingStore(MemoryStore):
    """Pauses a reader between its store read and its return (to interleave a writer there)."""

    def __init__(self) -> None:
        super().__init__()
        self.pause = False
        self.read_done = threading.Event()
        self.resume = threading.Event()

    def latest(self, symbol: str, timeframe: str, n: int) -> pa.Table:
        table = super().latest(symbol, timeframe, n)
        if self.pause:
            self.pause = False
            self.read_done.set()
            assert self.resume.wait(10)
        return table


class NaiveCache(MemoryCache):
    """The classic delete-on-write cache (no generations): the race test must catch it."""

    def generation(self, series: str) -> str:
        return "unversioned"

    def put_object(self, key: str, value: object, *, size: int, ttl: float, series: str, generation: str) -> bool:
        # ``put`` stores through ``put_object`` too, so this covers bytes and decoded values.
        return super().put_object(key, value, size=size, ttl=ttl, series=series, generation=super().generation(series))


def _race(cs: CachedStore, store: PausingStore) -> pa.Table:
    """Reader fills from the store; a write lands and is acknowledged before the fill is put."""
    start = recent_start()
    store.write(SYM, TF, bars(start, 10, price=1.0))
    store.pause = True
    seen: list[pa.Table] = []
    reader = threading.Thread(target=lambda: seen.append(cs.latest(SYM, TF, 5)))
    reader.start()
    assert store.read_done.wait(10)
    cs.write(SYM, TF, bars(start + 10 * MINUTE, 1, price=2.0))  # acknowledged here
    store.resume.set()
    reader.join(10)
    assert seen  # the racing reader itself may return the older data: it started before the write
    return cs.latest(SYM, TF, 5)  # a read that starts after the acknowledged write


def test_stale_fill_race_is_refused(levels: CacheSet) -> None:
    store = PausingStore()
    cs = CachedStore(store, levels)
    after = _race(cs, store)
    _eq(after, store.latest(SYM, TF, 5))
    rejected = sum(level.stats().rejected for level in cs.levels)
    assert rejected >= 1


def test_the_race_test_catches_a_cache_without_generation_checks() -> None:
    store = PausingStore()
    cs = CachedStore(store, CacheSet(l1=NaiveCache(), window=100))
    after = _race(cs, store)
    assert not after.equals(store.latest(SYM, TF, 5))  # the broken cache serves the stale window


def test_two_processes_sharing_redis_see_each_others_writes(redis_url: str, redis_prefix: str) -> None:
    store = MemoryStore()  # one store, two "processes" each with its own L1 and Redis client
    a = CachedStore(store, CacheSet(l1=MemoryCache(), l2=RedisCache(redis_url, prefix=redis_prefix), window=50))
    b = CachedStore(store, CacheSet(l1=MemoryCache(), l2=RedisCache(redis_url, prefix=redis_prefix), window=50))
    start = recent_start()
    a.write(SYM, TF, bars(start, 20))
    _eq(b.latest(SYM, TF, 5), store.latest(SYM, TF, 5))
    _eq(a.latest(SYM, TF, 5), store.latest(SYM, TF, 5))  # filled by b, served from Redis
    assert a.levels[1].stats().hits == 1
    a.write(SYM, TF, bars(start + 20 * MINUTE, 2, price=9.0))
    _eq(b.latest(SYM, TF, 5), store.latest(SYM, TF, 5))  # b's L1 entry is no longer reachable
    a.close()
    b.close()


def test_redis_down_reads_go_to_the_store_without_errors(closed_port_url: str) -> None:
    store = MemoryStore()
    cs = CachedStore(store, CacheSet(l1=MemoryCache(), l2=RedisCache(closed_port_url, prefix="t:"), window=50))
    start = recent_start()
    cs.write(SYM, TF, bars(start, 20))  # invalidation fails quietly
    for _ in range(3):
        _eq(cs.latest(SYM, TF, 5), store.latest(SYM, TF, 5))
        _eq(cs.read(SYM, TF, start, None), store.read(SYM, TF, start, None))
    assert cs.actions("AAPL") == []
    counts = cs.counts()
    assert counts["bypassed"] == 6
    assert counts["hits"] == 0
    assert counts["cache_errors"] >= 1
    assert cs.levels[1].stats().errors == 1  # one real attempt; the open circuit fails fast after


class DamagedStore(MemoryStore):
    """verify() finds damage and sets data aside behind the cache's back."""

    def verify(self) -> VerifyReport:
        self.delete_range(SYM, TF, None, None)
        return VerifyReport(checked=1, damaged=[("part-0.parquet", "checksum mismatch")])


def test_verify_that_found_damage_drops_every_cached_entry(levels: CacheSet) -> None:
    store = DamagedStore()
    cs = CachedStore(store, levels)
    cs.write(SYM, TF, bars(recent_start(), 20))
    assert cs.latest(SYM, TF, 5).num_rows == 5
    assert not cs.verify().ok
    assert cs.latest(SYM, TF, 5).num_rows == 0


def test_cached_store_keeps_the_store_protocol(levels: CacheSet) -> None:
    cs = CachedStore(MemoryStore(), levels)
    assert isinstance(cs, BarStore)
