"""L1 keeps decoded windows (and pandas answers): exact answers, zero copies, safe to mutate, honest bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tickvault
from tickvault.cache import MemoryCache
from tickvault.cache.redis import RedisCache
from tickvault.engine._cached import CachedStore, CacheSet, known_symbol, known_timeframe
from tickvault.errors import InvalidSymbol, InvalidTimeframe
from tickvault.model import CorporateAction, Timeframe
from tickvault.store.memory import MemoryStore

from ._bars import MINUTE, bars, recent_start

SYM, TF = "BTC/USDT", "1m"


def _exact(a: pa.Table, b: pa.Table) -> None:
    """Same schema, same values, same chunking and the same dictionaries."""
    assert a.schema == b.schema
    assert a.num_rows == b.num_rows
    for x, y in zip(a.columns, b.columns, strict=True):
        if a.num_rows:  # (an empty answer may have no chunk or one empty chunk, then and now)
            assert x.num_chunks == y.num_chunks == 1
        assert x.equals(y)
        if pa.types.is_dictionary(x.type) and a.num_rows:
            assert x.chunk(0).dictionary.equals(y.chunk(0).dictionary)


def _canonical(table: pa.Table) -> pa.Table:
    """The answer's form as the old L1 path made it, for every hit: the reference."""
    table = table.combine_chunks()
    idx = table.schema.get_field_index("provider")
    field_ = table.schema.field(idx)
    encoded = pc.dictionary_encode(table.column(idx).cast(pa.string())).cast(field_.type)
    return table.set_column(idx, field_, encoded).combine_chunks()


def _store_with(providers: list[str], sizes: list[int], start: int) -> MemoryStore:
    store = MemoryStore()
    at = start
    for provider, size in zip(providers, sizes, strict=True):
        store.write(SYM, TF, bars(at, size, provider=provider, price=100.0 + at % 7))
        at += size * MINUTE
    return store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(providers=st.lists(st.sampled_from(["alpha", "beta", "gamma"]), min_size=1, max_size=5),
       sizes=st.lists(st.integers(1, 60), min_size=5, max_size=5),
       ns=st.lists(st.integers(1, 200), min_size=1, max_size=6),
       ranges=st.lists(st.tuples(st.integers(-5, 200), st.integers(0, 80)), max_size=4))
def test_decoded_hits_equal_the_old_canonicalised_store_answer(providers: list[str], sizes: list[int], ns: list[int],
                                                              ranges: list[tuple[int, int]]) -> None:
    # The old L1 path canonicalised every answer: ``_canonical(store answer)``. The decoded
    # window must give exactly that, dictionary order included, with or without a copy.
    start = recent_start(400)
    store = _store_with(providers, sizes[:len(providers)], start)
    cs = CachedStore(store, CacheSet(l1=MemoryCache(8 << 20), window=100))
    for n in ns:
        _exact(cs.latest(SYM, TF, n), _canonical(store.latest(SYM, TF, n)))
    for lo, span in ranges:
        a, b = start + lo * MINUTE, start + (lo + span) * MINUTE
        _exact(cs.read(SYM, TF, a, b), _canonical(store.read(SYM, TF, a, b)))
        _exact(cs.read(SYM, TF, a, None), _canonical(store.read(SYM, TF, a, None)))
    hits = cs.counts()["hits"]
    _exact(cs.latest(SYM, TF, 1), _canonical(store.latest(SYM, TF, 1)))
    assert cs.counts()["hits"] == hits + 1


def test_a_hit_is_a_zero_copy_slice_of_the_window() -> None:
    store = MemoryStore()
    store.write(SYM, TF, bars(recent_start(), 300))
    cs = CachedStore(store, CacheSet(l1=MemoryCache(8 << 20), window=200))
    cs.latest(SYM, TF, 200)  # the fill
    first, second = cs.latest(SYM, TF, 50), cs.latest(SYM, TF, 50)
    assert cs.counts()["hits"] == 2
    for name in ("ts", "close", "provider"):
        a, b = first.column(name).chunk(0), second.column(name).chunk(0)
        assert a.buffers()[1].address == b.buffers()[1].address  # the same memory, not a copy
    _exact(first, _canonical(store.latest(SYM, TF, 50)))


def test_callers_mutating_what_they_got_never_reach_the_cache(tmp_path: Path) -> None:
    with tickvault.open(tmp_path / "v") as vault:
        vault.write(SYM, TF, _frame(300, 100.0))
        want_arrow = vault.latest(SYM, TF, 100, adjust="none", format="arrow")
        want_frame = vault.latest(SYM, TF, 100)
        want_arrow, want_frame = want_arrow.combine_chunks(), want_frame.copy()

        # pandas answers are the cached frame's copies: every way of writing into them stays theirs
        got = vault.latest(SYM, TF, 100)
        got.iloc[0, 0] = -1.0
        got["close"] *= 2
        got.loc[got.index[5], "volume"] = -5.0
        values = got["high"].to_numpy()
        if not values.flags.writeable:
            values = np.array(values, copy=True)
        values[:] = 0.0
        del got["low"]
        pd.testing.assert_frame_equal(vault.latest(SYM, TF, 100), want_frame)
        one, two = vault.latest(SYM, TF, 100), vault.latest(SYM, TF, 100)
        assert one is not two
        for column in ("open", "close", "trade_count"):  # deep copies: no memory in common
            assert not np.shares_memory(one[column].to_numpy(), two[column].to_numpy())

        # Arrow answers are immutable; numpy/pandas views of them are read-only or copies
        table = vault.latest(SYM, TF, 100, adjust="none", format="arrow")
        for column in ("close", "ts"):
            arr = table.column(column).to_numpy()
            if arr.flags.writeable:  # a copy: writing to it is the caller's business
                arr[:] = arr[0]
            else:
                with pytest.raises(ValueError, match="read-only"):
                    arr[0] = arr[1]
        frame = table.to_pandas()
        frame.iloc[:, 1] = 0.0
        frame2 = table.to_pandas(split_blocks=True, self_destruct=False)
        frame2["open"] = -1.0
        assert vault.latest(SYM, TF, 100, adjust="none", format="arrow").equals(want_arrow)
        pd.testing.assert_frame_equal(vault.latest(SYM, TF, 100), want_frame)


def _frame(n: int, price: float, end: pd.Timestamp | None = None) -> pd.DataFrame:
    last = (end or pd.Timestamp.now(tz="UTC")).floor("min") - pd.Timedelta(minutes=1)
    idx = pd.date_range(end=last, periods=n, freq="1min", tz="UTC")
    close = price + np.arange(n) * 0.01
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close + 0.5,
                         "volume": 10.0}, index=idx)


def test_a_write_through_another_vault_in_this_process_is_seen(tmp_path: Path) -> None:
    end = pd.Timestamp.now(tz="UTC")  # one clock reading: both writes end on the same bar
    with tickvault.open(tmp_path / "v") as reader, tickvault.open(tmp_path / "v") as writer:
        writer.write(SYM, TF, _frame(300, 100.0, end))
        before = reader.latest(SYM, TF, 10, adjust="none", format="arrow")
        frame_before = reader.latest(SYM, TF, 10)
        reader.latest(SYM, TF, 10)  # both answers are cached now
        writer.write(SYM, TF, _frame(2, 500.0, end))  # rewrites the two newest bars
        after = reader.latest(SYM, TF, 10, adjust="none", format="arrow")
        assert not after.equals(before)
        assert after.column("close").to_pylist()[-1] == pytest.approx(500.51)
        frame_after = reader.latest(SYM, TF, 10)
        assert frame_after["close"].iloc[-1] == pytest.approx(500.51)
        assert frame_after["close"].iloc[0] == frame_before["close"].iloc[0]
        # a new split reaches the cached (adjusted) pandas answer too
        day = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)).date()
        writer.add_actions(SYM, [CorporateAction.split(day, 2.0, provider="test")])
        split = reader.latest(SYM, TF, 10)
        assert split["close"].iloc[-1] == pytest.approx(frame_after["close"].iloc[-1] / 2)
        pd.testing.assert_frame_equal(split, writer.latest(SYM, TF, 10))


_OTHER_PROCESS = textwrap.dedent("""
    import sys
    import pandas as pd
    import tickvault
    from tickvault.model import CorporateAction
    home, url, prefix, what = sys.argv[1:]
    with tickvault.open(home, redis_url=url, cache_prefix=prefix) as vault:
        if what == "write":
            last = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=1)
            idx = pd.date_range(end=last, periods=2, freq="1min", tz="UTC")
            vault.write("BTC/USDT", "1m", pd.DataFrame({"open": 700.0, "high": 701.0, "low": 699.0,
                                                        "close": 700.5, "volume": 1.0}, index=idx))
        else:
            day = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)).date()
            vault.add_actions("BTC/USDT", [CorporateAction.split(day, 4.0, provider="test")])
""")


def test_a_write_in_another_process_is_seen_through_redis(tmp_path: Path, redis_url: str,
                                                         redis_prefix: str) -> None:
    home = tmp_path / "v"
    with tickvault.open(home, redis_url=redis_url, cache_prefix=redis_prefix) as vault:
        vault.write(SYM, TF, _frame(300, 100.0))
        for _ in range(2):  # filled, then served from L1
            vault.latest(SYM, TF, 10, adjust="none", format="arrow")
            vault.latest(SYM, TF, 10)
        hits = vault.cache_stats()["reads"]["hits"]
        assert hits >= 2

        def other(what: str) -> None:
            done = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(home), redis_url, redis_prefix, what],
                                  capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr

        other("write")
        assert vault.latest(SYM, TF, 10, adjust="none", format="arrow").column("close").to_pylist()[-1] == 700.5
        assert vault.latest(SYM, TF, 10)["close"].iloc[-1] == 700.5
        other("split")
        assert vault.latest(SYM, TF, 10)["close"].iloc[-1] == pytest.approx(700.5 / 4)
        assert vault.latest(SYM, TF, 10, adjust="none", format="arrow").column("close").to_pylist()[-1] == 700.5


def test_l1_charges_what_a_window_keeps_alive() -> None:
    store = MemoryStore()
    store.write(SYM, TF, bars(recent_start(20_000), 20_000))
    big = store.latest(SYM, TF, 20_000).get_total_buffer_size()
    l1 = MemoryCache(8 << 20)
    cs = CachedStore(store, CacheSet(l1=l1, window=100))
    got = cs.latest(SYM, TF, 100)
    stats = l1.stats()
    assert stats.entries == 1
    assert stats.bytes is not None
    # The window owns copies of its 100 rows (never a view keeping the store's 20,000 alive) ...
    assert got.get_total_buffer_size() * 0.9 <= stats.bytes <= got.get_total_buffer_size() + 1_000
    assert stats.bytes < big / 50
    # ... and those are the buffers its answers point into.
    window = l1.get_object(next(iter(l1._entries)))
    assert window is not None
    assert got.column("close").chunk(0).buffers()[1].address == \
        window.table.column("close").chunk(0).buffers()[1].address  # type: ignore[attr-defined]


def test_cached_pandas_answers_are_charged_and_bounded(tmp_path: Path) -> None:
    with tickvault.open(tmp_path / "v", cache_bytes=1 << 20) as vault:
        vault.write(SYM, TF, _frame(1_000, 100.0))
        frame = vault.latest(SYM, TF, 500)
        level = vault.cache_stats()["levels"]["memory"]
        assert level["bytes"] >= int(frame.memory_usage(index=True, deep=True).sum())
        for n in range(400, 520, 3):  # many different answers: the budget still holds
            vault.latest(SYM, TF, n)
            level = vault.cache_stats()["levels"]["memory"]
            assert level["bytes"] <= 1 << 20
        assert level["evictions"] > 0


def test_l1_only_window_round_trips_through_redis_exactly(redis_url: str, redis_prefix: str) -> None:
    # Process A fills L2; process B (its own L1) decodes it into its L1: same exact answers.
    store = _store_with(["alpha", "beta", "alpha"], [40, 30, 50], recent_start(400))
    a = CachedStore(store, CacheSet(l1=MemoryCache(), l2=RedisCache(redis_url, prefix=redis_prefix), window=100))
    b = CachedStore(store, CacheSet(l1=MemoryCache(), l2=RedisCache(redis_url, prefix=redis_prefix), window=100))
    try:
        for n in (5, 60, 100):
            _exact(a.latest(SYM, TF, n), _canonical(store.latest(SYM, TF, n)))
            _exact(b.latest(SYM, TF, n), _canonical(store.latest(SYM, TF, n)))
        assert b.counts()["fills"] == 0  # every window of b came from Redis, then from its L1
        assert b.levels[1].stats().hits == 1
    finally:
        a.close()
        b.close()


def test_known_symbols_and_timeframes_are_the_validators_remembered() -> None:
    for raw in ("aapl", "AAPL", "brk.b", "BTC/USDT", "btc/usdt:usdt"):
        assert known_symbol(raw) == known_symbol(raw) == tickvault.model.validate_symbol(raw)
    for bad in ("", "a b", "../x"):
        for _ in range(2):
            with pytest.raises(InvalidSymbol):
                known_symbol(bad)
    with pytest.raises(InvalidSymbol):
        known_symbol(["AAPL"])
    for tf in ("1m", "60min", "5m", "1d"):
        assert known_timeframe(tf) == Timeframe.parse(tf)
        assert known_timeframe(tf) is known_timeframe(tf)
    assert known_timeframe(Timeframe.parse("1h")) == Timeframe.parse("1h")
    for bad_tf in ("1M", "xx"):
        for _ in range(2):
            with pytest.raises(InvalidTimeframe):
                known_timeframe(bad_tf)


def test_an_l1_hit_backed_by_redis_costs_one_round_trip(tmp_path: Path, redis_url: str, redis_prefix: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    sent: list[str] = []
    execute = redis.Redis.execute_command

    def counting(self: redis.Redis, *args: object, **kwargs: object) -> object:
        sent.append(str(args[0]))
        return execute(self, *args, **kwargs)

    with tickvault.open(tmp_path / "v", redis_url=redis_url, cache_prefix=redis_prefix) as vault:
        vault.write(SYM, TF, _frame(300, 100.0))
        vault.latest(SYM, TF, 100, adjust="none", format="arrow")
        vault.latest(SYM, TF, 100)
        monkeypatch.setattr(redis.Redis, "execute_command", counting)
        for _ in range(3):
            vault.latest(SYM, TF, 100, adjust="none", format="arrow")  # the bars' generation
            vault.latest(SYM, TF, 100)  # the bars' and the meta generations, in one MGET
        monkeypatch.undo()
        assert sent == ["MGET"] * 6
