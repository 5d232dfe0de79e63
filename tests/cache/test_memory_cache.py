"""MemoryCache (L1): byte budget, LRU order, TTL on an injected clock, generations, threads."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.cache import Cache, MemoryCache, series_key
from tickvault.errors import InvalidInput

from ._util import FakeClock

S = series_key("bars", "AAPL", "1m")


def _put(c: MemoryCache, key: str, value: bytes, ttl: float = 60.0, series: str = S) -> bool:
    return c.put(key, value, ttl=ttl, series=series, generation=c.generation(series))


def test_memory_cache_is_a_cache() -> None:
    assert isinstance(MemoryCache(), Cache)


def test_get_put_roundtrip_and_counters() -> None:
    c = MemoryCache(10_000)
    assert c.get("k") is None
    assert _put(c, "k", b"abc")
    assert c.get("k") == b"abc"
    s = c.stats()
    assert (s.hits, s.misses, s.puts, s.entries) == (1, 1, 1, 1)
    assert s.hit_rate == 0.5


def test_byte_budget_evicts_least_recently_used(clock: FakeClock) -> None:
    c = MemoryCache(2_000, clock=clock)
    for k in "abc":
        assert _put(c, k, bytes(500))
    assert c.get("a") is not None  # "a" becomes the most recently used
    assert _put(c, "d", bytes(500))  # over budget: evicts the LRU, which is now "b"
    assert c.get("b") is None
    assert c.get("a") is not None
    assert c.get("c") is not None
    assert c.get("d") is not None
    s = c.stats()
    assert s.bytes is not None
    assert s.bytes <= 2_000
    assert s.evictions >= 1


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 900)), max_size=60))
def test_budget_is_never_exceeded(puts: list[tuple[int, int]]) -> None:
    c = MemoryCache(4_000)
    for key, size in puts:
        _put(c, f"k{key}", bytes(size))
        s = c.stats()
        assert s.bytes is not None
        assert s.bytes <= 4_000


def test_value_larger_than_half_the_budget_is_not_kept() -> None:
    c = MemoryCache(1_000)
    assert _put(c, "small", b"x")
    assert not _put(c, "big", bytes(600))
    assert c.get("small") == b"x"
    assert c.get("big") is None


def test_ttl_expires_on_the_injected_clock(clock: FakeClock) -> None:
    c = MemoryCache(10_000, clock=clock)
    _put(c, "k", b"v", ttl=60)
    clock.advance(59.9)
    assert c.get("k") == b"v"
    clock.advance(0.2)
    assert c.get("k") is None
    assert c.stats().expirations == 1


def test_invalidate_series_drops_its_entries_and_moves_the_generation() -> None:
    c = MemoryCache()
    other = series_key("bars", "MSFT", "1m")
    g0 = c.generation(S)
    _put(c, f"a@{g0}", b"1")
    _put(c, "b", b"2", series=other)
    g1 = c.invalidate_series(S)
    assert g1 != g0
    assert c.generation(S) == g1
    assert c.get(f"a@{g0}") is None
    assert c.get("b") == b"2"  # other series untouched


def test_put_with_a_stale_generation_is_refused() -> None:
    c = MemoryCache()
    g = c.generation(S)
    c.invalidate_series(S)  # a writer got in between the read of g and the put
    assert not c.put(f"k@{g}", b"stale", ttl=60, series=S, generation=g)
    assert c.get(f"k@{g}") is None
    assert c.stats().rejected == 1


def test_clear_starts_a_new_epoch() -> None:
    c = MemoryCache()
    g = c.generation(S)
    _put(c, "k", b"v")
    c.clear()
    assert c.get("k") is None
    assert c.generation(S) != g
    assert not c.put("k", b"late", ttl=60, series=S, generation=g)


def test_invalidate_one_key() -> None:
    c = MemoryCache()
    _put(c, "k", b"v")
    c.invalidate("k")
    c.invalidate("absent")
    assert c.get("k") is None


def test_negative_capacity_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        MemoryCache(-1)


def test_concurrent_use_keeps_the_books_straight() -> None:
    c = MemoryCache(50_000)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(300):
                key = f"k{(i * 7 + j) % 40}"
                series = series_key("bars", f"S{j % 3}", "1m")
                c.put(key, bytes(j % 500), ttl=60, series=series, generation=c.generation(series))
                c.get(key)
                if j % 50 == 0:
                    c.invalidate_series(series)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = c.stats()
    assert s.bytes is not None
    assert 0 <= s.bytes <= 50_000
    assert s.entries == len(c._entries)
    assert s.bytes == sum(e.size for e in c._entries.values())


def test_decoded_values_are_kept_as_they_are_and_charged_their_stated_size() -> None:
    c = MemoryCache(10_000)
    value = ("a decoded", "immutable", "value")
    g = c.generation(S)
    assert c.put_object("obj", value, size=1_000, ttl=60, series=S, generation=g)
    assert c.get_object("obj") is value  # not copied
    assert c.get("obj") is None  # ``get`` (the Cache protocol) only hands out bytes
    assert _put(c, "raw", b"xyz")
    assert c.get_object("raw") == b"xyz"
    s = c.stats()
    assert s.bytes == (1_000 + len("obj") + 96) + (3 + len("raw") + 96)
    assert not c.put_object("huge", value, size=6_000, ttl=60, series=S, generation=g)  # > half the budget
    c.invalidate_series(S)
    assert c.get_object("obj") is None
    assert not c.put_object("late", value, size=10, ttl=60, series=S, generation=g)  # stale generation
    assert c.stats().bytes == 0


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 900), st.booleans()), max_size=60))
def test_budget_is_never_exceeded_with_decoded_values(puts: list[tuple[int, int, bool]]) -> None:
    c = MemoryCache(4_000)
    for key, size, decoded in puts:
        g = c.generation(S)
        if decoded:
            c.put_object(f"k{key}", object(), size=size, ttl=60, series=S, generation=g)
        else:
            c.put(f"k{key}", bytes(size), ttl=60, series=S, generation=g)
        s = c.stats()
        assert s.bytes is not None
        assert s.bytes <= 4_000
        assert s.bytes == sum(e.size for e in c._entries.values())
