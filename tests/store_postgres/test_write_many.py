"""PostgresStore.write_many: the same result as one write per item, in one transaction."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tickvault.errors import SchemaError, StorageError, StoreLocked
from tickvault.model import BAR_SCHEMA, StoreReceipt
from tickvault.store.memory import MemoryStore
from tickvault.store.postgres import PostgresStore, _bars
from tickvault.store.postgres._partitions import Partitions
from tickvault.testing.conformance import MINUTE_US, T0_US, assert_bars_equal, make_bars, receipt_counts

DAY_US = 86_400_000_000
SERIES = [("AAPL", "1m", T0_US, MINUTE_US), ("MSFT", "1m", T0_US, MINUTE_US),
          ("AAPL", "1d", T0_US - T0_US % DAY_US, DAY_US), ("BTC/USDT", "4h", T0_US, 4 * 3600 * 1_000_000)]


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, lock_timeout=0.3) as s:
        yield s


def _partitions(url: str, schema: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("""SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE 'bars%%'""",
                            (schema,)).fetchall()
    return {str(r[0]) for r in rows}


def _random_batch(rng: random.Random, base: int, step: int, most: int = 60) -> pa.Table:
    n = rng.randrange(0, most)
    ts = [base + rng.randrange(-50, 150) * step for _ in range(n)]
    table = make_bars(ts, version=rng.randrange(3), provider=rng.choice(["a", "b", None]),
                      vwap=rng.random() < 0.5, trade_count=rng.random() < 0.5)
    if n and rng.random() < 0.25:  # a partly-NULL column forces the staging path
        close = table.column("close").to_pylist()
        close[rng.randrange(n)] = None
        table = table.set_column(4, "close", pa.array(close, pa.float64()))
    if n and rng.random() < 0.2:  # mixed providers, some missing
        prov = [rng.choice(["a", None, "c"]) for _ in range(n)]
        table = table.set_column(8, "provider", pa.array(prov, pa.string()).dictionary_encode()
                                 .cast(BAR_SCHEMA.field("provider").type))
    return table


def _check_same(store: PostgresStore, oracle: MemoryStore) -> None:
    for sym, tf, _, _ in SERIES:
        assert_bars_equal(store.read(sym, tf), oracle.read(sym, tf))
    assert [(s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in store.series()] == [
        (s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in oracle.series()]


def _sequential(oracle: MemoryStore, items: list[tuple[str, str, pa.Table]]) -> list[StoreReceipt]:
    return [oracle.write(sym, tf, t) for sym, tf, t in items]


@pytest.mark.parametrize(("seed", "bulk_min", "merge_chunk"),
                         [(1, 20_000, 500_000), (2, 20_000, 7), (3, 30, 500_000), (4, 30, 7)])
def test_write_many_matches_one_write_per_item(store: PostgresStore, monkeypatch: pytest.MonkeyPatch,
                                               seed: int, bulk_min: int, merge_chunk: int) -> None:
    # Groups of items over four series and both tiers (a series may repeat inside a
    # group), against the oracle's one write per item; with a small bulk threshold
    # the first items into each month share a bulk-built partition, with a small merge
    # chunk the rows several series merge together go in several statements.
    monkeypatch.setattr(_bars, "BULK_MIN_ROWS", bulk_min)
    monkeypatch.setattr(_bars, "MERGE_CHUNK", merge_chunk)
    several: list[int] = []
    original = _bars.Bars._merge_several

    def spy(self: _bars.Bars, conn: Any, tier: Any, merges: Any, staged: list[bool]) -> None:
        several.append(len(merges))
        original(self, conn, tier, merges, staged)

    monkeypatch.setattr(_bars.Bars, "_merge_several", spy)
    rng = random.Random(seed)
    oracle = MemoryStore()
    for step in range(25):
        items = []
        for _ in range(rng.randrange(1, 6)):
            sym, tf, base, unit = rng.choice(SERIES)
            items.append((sym, tf, _random_batch(rng, base + rng.randrange(-3, 3) * 40 * 24 * unit, unit)))
        got = store.write_many(items)
        want = _sequential(oracle, items)
        assert [receipt_counts(r) for r in got] == [receipt_counts(r) for r in want], step
        assert [r.bytes_written for r in got] == [(r.rows_new + r.rows_changed) * _bars.ROW_BYTES for r in got]
        _check_same(store, oracle)
    assert several, "no call merged several series together"
    report = store.verify()
    assert (report.ok, report.repaired) == (True, [])


@pytest.fixture
def paired(store: PostgresStore) -> tuple[PostgresStore, MemoryStore]:
    return store, MemoryStore()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_write_many_differential(paired: tuple[PostgresStore, MemoryStore], data: st.DataObject) -> None:
    # Hypothesis picks the groups; the store (its state carried over the examples) must
    # stay equal to the oracle fed the same items one write at a time.
    store, oracle = paired
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    picks = data.draw(st.lists(st.sampled_from(range(len(SERIES))), min_size=0, max_size=5))
    items = [(SERIES[i][0], SERIES[i][1], _random_batch(rng, SERIES[i][2], SERIES[i][3], most=30)) for i in picks]
    got = store.write_many(items)
    want = _sequential(oracle, items)
    assert [receipt_counts(r) for r in got] == [receipt_counts(r) for r in want]
    _check_same(store, oracle)


def test_a_backfill_of_many_series_builds_new_partitions_in_bulk(store: PostgresStore, pg_url: str, pg_schema: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bars, "BULK_MIN_ROWS", 500)
    loads: list[tuple[str, int]] = []
    original = Partitions.bulk_load

    def spy(self: Partitions, conn: Any, period: Any, groups: Any) -> bool:
        loads.append((period.table, sum(int(g.count) for g in groups)))
        return original(self, conn, period, groups)

    monkeypatch.setattr(Partitions, "bulk_load", spy)
    base = pd.Timestamp("1991-01-01", tz="UTC").value // 1000
    # 310 and 280 rows per symbol in January and February: no one symbol reaches the
    # threshold, the three together do
    ts = [base + d * DAY_US + m * MINUTE_US for d in range(0, 59) for m in range(10)]
    items = [(sym, "1m", make_bars(ts, version=k, vwap=k == 1)) for k, sym in enumerate(["AAA", "BBB", "CCC"])]
    items.append(("DDD", "1m", make_bars(ts[:5])))  # a partly-NULL layout of its own below
    close = items[3][2].column("close").to_pylist()
    close[2] = None
    items[3] = ("DDD", "1m", items[3][2].set_column(4, "close", pa.array(close, pa.float64())))
    receipts = store.write_many(items)
    assert [r.rows_new for r in receipts] == [len(ts)] * 3 + [5]
    # DDD's partly-NULL rows cannot join January's bulk load, so January is made the ordinary way
    assert loads == [("bars_intraday_p199102", 3 * 280)]
    assert {"bars_intraday_p199101", "bars_intraday_p199102"} <= _partitions(pg_url, pg_schema)
    oracle = _oracle_of(items)
    for sym, tf, _ in items:
        assert_bars_equal(store.read(sym, tf), oracle.read(sym, tf))
    again = store.write_many(items)  # everything is stored now: all unchanged, nothing written
    assert [(r.rows_new, r.rows_changed, r.bytes_written) for r in again] == [(0, 0, 0)] * 4
    assert store.verify().ok


def _oracle_of(items: list[tuple[str, str, pa.Table]]) -> MemoryStore:
    oracle = MemoryStore()
    _sequential(oracle, items)
    return oracle


def test_write_many_is_all_or_nothing(store: PostgresStore, pg_url: str, pg_schema: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    stored = make_bars([T0_US + i * MINUTE_US for i in range(10)])
    store.write("AAPL", "1m", stored)
    old = pd.Timestamp("1987-03-02", tz="UTC").value // 1000
    new_month = make_bars([old + i * MINUTE_US for i in range(100)])
    overlap = make_bars([T0_US + i * MINUTE_US for i in range(5, 15)], version=1)
    # an invalid item anywhere: nothing is written (validated before anything is sent)
    with pytest.raises(SchemaError):
        store.write_many([("MSFT", "1m", new_month), ("AAPL", "1m", overlap), ("IBM", "1m", pa.table({"x": [1]}))])
    # a failure inside the transaction, after a bulk load and a direct COPY: rolled back
    monkeypatch.setattr(_bars, "BULK_MIN_ROWS", 50)

    def boom(*args: Any, **kwargs: Any) -> tuple[int, int]:
        raise psycopg.errors.QueryCanceled("injected")

    monkeypatch.setattr(_bars.Bars, "_merge_batch", boom)
    with pytest.raises(StorageError):
        store.write_many([("MSFT", "1m", new_month), ("IBM", "1m", new_month), ("AAPL", "1m", overlap)])
    monkeypatch.undo()
    assert "bars_intraday_p198703" not in _partitions(pg_url, pg_schema)
    assert [(s.symbol, s.rows) for s in store.series()] == [("AAPL", 10)]
    assert_bars_equal(store.read("AAPL", "1m"), stored)
    assert store.read("MSFT", "1m").num_rows == 0
    # a locked series: StoreLocked, and the other items are not written either
    sid = _series_id(pg_url, pg_schema, "AAPL", "1m")
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", (f"tickvault.write:{pg_schema}", sid))
        with pytest.raises(StoreLocked):
            store.write_many([("MSFT", "1m", new_month), ("AAPL", "1m", overlap)])
    assert store.read("MSFT", "1m").num_rows == 0
    assert store.verify().ok
    receipts = store.write_many([("MSFT", "1m", new_month), ("AAPL", "1m", overlap)])
    assert [(r.rows_new, r.rows_changed, r.rows_unchanged) for r in receipts] == [(100, 0, 0), (5, 5, 0)]


def _series_id(url: str, schema: str, symbol: str, timeframe: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT id FROM {}.series WHERE symbol = %s AND timeframe = %s").format(
            sql.Identifier(schema)), (symbol, timeframe)).fetchone()
    assert row is not None
    return int(row[0])


def test_write_many_of_nothing(store: PostgresStore) -> None:
    assert store.write_many([]) == []
    assert store.write_many([("AAPL", "1m", BAR_SCHEMA.empty_table())]) == [StoreReceipt()]
    assert store.series() == []


def test_two_write_many_calls_over_the_same_series_do_not_deadlock(pg_url: str, pg_schema: str) -> None:
    # Series locks are taken in id order, so two calls naming the same series in
    # opposite orders wait for each other instead of deadlocking.
    import threading

    PostgresStore.migrate(pg_url, schema=pg_schema)
    syms = [f"S{i}" for i in range(6)]
    tables = {s: make_bars((T0_US + np.arange(0, 2_000) * MINUTE_US).tolist(), version=i)
              for i, s in enumerate(syms)}
    errors: list[BaseException] = []

    def writer(order: list[str]) -> None:
        try:
            with PostgresStore(pg_url, schema=pg_schema, lock_timeout=30.0) as s:
                for _ in range(5):
                    s.write_many([(sym, "1m", tables[sym]) for sym in order])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (syms, syms[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with PostgresStore(pg_url, schema=pg_schema) as s:
        for sym in syms:
            assert_bars_equal(s.read(sym, "1m"), tables[sym])


def test_registering_overlapping_series_sets_concurrently_does_not_deadlock(pg_url: str, pg_schema: str) -> None:
    # write_many registers all its new series in one statement; two of them over the
    # same keys in opposite orders would each wait for the other's uncommitted insert.
    import threading

    from tickvault.store.postgres._registry import Registry

    PostgresStore.migrate(pg_url, schema=pg_schema)
    errors: list[BaseException] = []
    found: list[list[int]] = []

    def register(order: list[tuple[str, str]], keys: list[tuple[str, str]], barrier: threading.Barrier) -> None:
        try:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                registry = Registry(pg_schema)
                barrier.wait()
                ids = dict(zip(order, registry.series_ids(conn, order), strict=True))
                found.append([ids[k] for k in keys])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    for trial in range(10):
        keys = [(f"K{trial}_{i:03d}", "1m") for i in range(300)]
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=register, args=(o, keys, barrier)) for o in (keys, keys[::-1])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert all(ids == found[k - k % 2] for k, ids in enumerate(found))  # both saw the same ids
