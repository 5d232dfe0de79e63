"""PostgreSQL-specific behaviour: schema, partitions, locking, errors, wiring, oracle parity."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import tickvault
from tickvault._wiring import build_store
from tickvault.config import Settings
from tickvault.errors import ConfigError, InvalidTimeframe, SchemaError, StorageError, StoreLocked
from tickvault.model import BAR_SCHEMA, CorporateAction
from tickvault.store.memory import MemoryStore
from tickvault.store.postgres import LATEST_VERSION, PostgresStore, _bars
from tickvault.testing.conformance import MINUTE_US, T0_US, assert_bars_equal, make_bars, receipt_counts

DAY_US = 86_400_000_000


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema, lock_timeout=0.3) as s:
        yield s


def _sql(url: str, query: sql.Composable | str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _partitions(url: str, schema: str) -> dict[str, set[str]]:
    rows = _sql(url, """SELECT p.relname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
                        WHERE n.nspname = %s AND c.relkind = 'r'""", (schema,))
    out: dict[str, set[str]] = {}
    for parent, child in rows:
        out.setdefault(parent, set()).add(child)
    return out


# -- schema, partitions, tiers ---------------------------------------------------------------
def test_schema_layout_partitions_and_indexes(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    assert store.schema_version() == LATEST_VERSION == 4
    assert store.mode == "native"
    kinds = dict(_sql(pg_url, """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n
                                 ON n.oid = c.relnamespace WHERE n.nspname = %s""", (pg_schema,)))
    assert (kinds["bars_intraday"], kinds["bars_session"]) == ("p", "p")  # partitioned tables
    for table in ("series", "providers", "coverage", "actions", "instruments", "reports", "quarantine", "meta", "kv"):
        assert kinds[table] == "r", table
    assert kinds["bars"] == "v"
    indexes = dict(_sql(pg_url, "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = %s "
                               "AND tablename LIKE 'bars_%%' AND indexdef LIKE '%%brin%%'", (pg_schema,)))
    assert not {"bars_intraday", "bars_session"} & set(indexes)  # BRIN per partition, not on the parent
    assert any("bars_intraday_pkey" in r[0] and "(series_id, ts)" in r[0] for r in _sql(
        pg_url, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s", (pg_schema,)))
    # partitions exist ahead of need: this month and the next three, this year and the next;
    # their rows will arrive in time order, so each has a BRIN on time
    parts = _partitions(pg_url, pg_schema)
    today = pd.Timestamp.now(tz="UTC")
    for k in range(4):
        month = today + pd.DateOffset(months=k)
        assert f"bars_intraday_p{month.year:04d}{month.month:02d}" in parts["bars_intraday"]
        assert "USING brin (ts)" in indexes[f"bars_intraday_p{month.year:04d}{month.month:02d}"]
    assert f"bars_session_p{today.year}" in parts["bars_session"]
    assert all(re.fullmatch(r"bars_(intraday|session)_p\d{4,6}", p) for ps in parts.values() for p in ps)


def test_partitions_are_created_on_demand_and_rows_land_in_them(store: PostgresStore, pg_url: str,
                                                                  pg_schema: str) -> None:
    old = pd.Timestamp("1999-03-31 23:58", tz="UTC").value // 1000
    store.write("IBM", "1m", make_bars([old, old + MINUTE_US, old + 2 * MINUTE_US]))  # crosses into April
    store.write("IBM", "1d", make_bars([pd.Timestamp("1962-01-02", tz="UTC").value // 1000]))
    store.write("IBM", "1w", make_bars([pd.Timestamp("1962-01-08", tz="UTC").value // 1000]))
    store.write("IBM", "5s", make_bars([old]))
    where = _sql(pg_url, sql.SQL("SELECT tableoid::regclass::text, count(*) FROM {}.bars_intraday GROUP BY 1 "
                                 "UNION ALL SELECT tableoid::regclass::text, count(*) FROM {}.bars_session GROUP BY 1")
                 .format(sql.Identifier(pg_schema), sql.Identifier(pg_schema)))
    got = {name.split(".")[-1].strip('"'): n for name, n in where}
    assert got == {"bars_intraday_p199903": 3, "bars_intraday_p199904": 1, "bars_session_p1962": 2}
    # the SQL view speaks symbols and provider names
    view = _sql(pg_url, sql.SQL("SELECT symbol, timeframe, count(*), min(provider) FROM {}.bars GROUP BY 1, 2 "
                                "ORDER BY 2").format(sql.Identifier(pg_schema)))
    assert view == [("IBM", "1d", 1, "test"), ("IBM", "1m", 3, "test"), ("IBM", "1w", 1, "test"),
                    ("IBM", "5s", 1, "test")]
    with pytest.raises(InvalidTimeframe):
        store.write("IBM", "fortnight", make_bars([old]))


def test_reads_page_through_many_partitions(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ts = [T0_US + i * 7 * DAY_US + i for i in range(60)]  # one bar a week for 14 months
    table = make_bars(ts, vwap=True)
    store.write("AAPL", "1m", table)
    monkeypatch.setattr(_bars, "READ_CHUNK", 7)  # force several round trips in one snapshot
    assert_bars_equal(store.read("AAPL", "1m"), table)
    assert_bars_equal(store.read("AAPL", "1m", ts[5], ts[40]), table.slice(5, 35))
    assert_bars_equal(store.latest("AAPL", "1m", 9), table.slice(51))


def test_commits_are_durable_even_if_the_session_default_is_not(pg_url: str, pg_schema: str) -> None:
    url = make_conninfo(pg_url, options="-c synchronous_commit=off")
    with PostgresStore(url, schema=pg_schema) as store, store._pool.borrow() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_malformed_batches_are_schema_errors(store: PostgresStore) -> None:
    good = make_bars([T0_US, T0_US + MINUTE_US])
    with pytest.raises(SchemaError):
        store.write("AAPL", "1m", good.drop_columns(["close"]))
    with pytest.raises(SchemaError):
        store.write("AAPL", "1m", good.set_column(4, "close", pa.array(["x", "y"])))
    with pytest.raises(SchemaError):
        store.write("AAPL", "1m", good.set_column(0, "ts", pa.array([T0_US, None], pa.int64())
                                                  .cast(BAR_SCHEMA.field("ts").type)))
    with pytest.raises(SchemaError):
        store.write("AAPL", "1m", good.to_pandas())  # type: ignore[arg-type]
    assert store.series() == []
    reordered = good.select(list(reversed(good.column_names)))  # column order does not matter
    assert store.write("AAPL", "1m", reordered).rows_new == 2


def test_far_timestamps(store: PostgresStore) -> None:
    ts = [pd.Timestamp("1900-01-01", tz="UTC").value // 1000, pd.Timestamp("2200-12-31 23:59", tz="UTC").value // 1000]
    table = make_bars(ts)
    store.write("OLD", "1d", table)
    assert_bars_equal(store.read("OLD", "1d"), table)
    assert_bars_equal(store.read("OLD", "1d", -(2**62), 2**62), table)
    assert store.read("OLD", "1d", 2**62).num_rows == 0
    assert store.delete_range("OLD", "1d", None, -(2**62)) == 0
    with pytest.raises(tickvault.InvalidInput):
        store.write("OLD", "1d", make_bars([253_402_300_800_000_000]))  # year 10000


# -- oracle parity on both write paths ---------------------------------------------------------
def _random_batch(rng: random.Random, base: int, step: int) -> pa.Table:
    n = rng.randrange(1, 60)
    ts = [base + rng.randrange(-50, 150) * step for _ in range(n)]
    table = make_bars(ts, version=rng.randrange(3), provider=rng.choice(["a", "b", None]),
                      vwap=rng.random() < 0.5, trade_count=rng.random() < 0.5)
    if rng.random() < 0.3:  # a column that is only partly NULL forces the staging path
        close = table.column("close").to_pylist()
        close[rng.randrange(n)] = None
        table = table.set_column(4, "close", pa.array(close, pa.float64()))
    if rng.random() < 0.2:  # mixed providers, some missing
        prov = [rng.choice(["a", None, "c"]) for _ in range(n)]
        table = table.set_column(8, "provider", pa.array(prov, pa.string()).dictionary_encode()
                                 .cast(BAR_SCHEMA.field("provider").type))
    return table


@pytest.mark.parametrize("seed", [11, 12])
def test_matches_the_oracle_across_tiers_and_write_paths(store: PostgresStore, seed: int) -> None:
    rng = random.Random(seed)
    oracle = MemoryStore()
    series = [("AAPL", "1m", T0_US, MINUTE_US), ("AAPL", "1d", T0_US - T0_US % DAY_US, DAY_US),
              ("BTC/USDT", "4h", T0_US, 4 * 3600 * 1_000_000)]
    for step in range(60):
        sym, tf, base, unit = rng.choice(series)
        if rng.random() < 0.85:
            batch = _random_batch(rng, base, unit)
            assert receipt_counts(store.write(sym, tf, batch)) == receipt_counts(oracle.write(sym, tf, batch)), step
        else:
            lo = base + rng.randrange(-60, 160) * unit
            hi = lo + rng.randrange(1, 40) * unit
            assert store.delete_range(sym, tf, lo, hi) == oracle.delete_range(sym, tf, lo, hi)
        assert_bars_equal(store.read(sym, tf), oracle.read(sym, tf))
    assert [(s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in store.series()] == [
        (s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in oracle.series()]
    for sym, tf, _, _ in series:
        assert_bars_equal(store.latest(sym, tf, 17), oracle.latest(sym, tf, 17))
    report = store.verify()
    assert (report.ok, report.repaired) == (True, [])


@pytest.mark.parametrize("merge_chunk", [500_000, 4_000])
def test_large_batch_with_duplicates_never_trips_on_conflict(store: PostgresStore, merge_chunk: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # "ON CONFLICT DO UPDATE command cannot affect row a second time" must never escape:
    # a big batch, a third of its keys repeated, half of them already stored. With a small
    # merge chunk the overlapping part is merged in several statements of one transaction.
    monkeypatch.setattr(_bars, "MERGE_CHUNK", merge_chunk)
    oracle = MemoryStore()
    rng = np.random.default_rng(5)
    first = make_bars(T0_US + np.arange(0, 20_000, 2) * MINUTE_US)
    keys = T0_US + rng.integers(0, 30_000, size=30_000) * MINUTE_US
    batch = make_bars(keys, version=1, vwap=True)
    for s in (store, oracle):
        s.write("ES", "1m", first)
    assert receipt_counts(store.write("ES", "1m", batch)) == receipt_counts(oracle.write("ES", "1m", batch))
    assert_bars_equal(store.read("ES", "1m"), oracle.read("ES", "1m"))


def test_bulk_built_partitions_match_the_oracle(store: PostgresStore, pg_url: str, pg_schema: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bars, "BULK_MIN_ROWS", 5)  # small batches take the bulk path too
    oracle = MemoryStore()
    day = pd.Timestamp("1995-01-30", tz="UTC").value // 1000
    stored = make_bars([day + i * DAY_US for i in range(3)])  # January 1995 exists, with rows
    later = [day + i * DAY_US for i in range(0, 80, 2)]  # Jan (overlap) .. April 1995 (new partitions)
    batches = [stored, make_bars(later, version=1, vwap=True), make_bars(later[5:], version=2)]
    for batch in batches:
        assert receipt_counts(store.write("AAPL", "1m", batch)) == receipt_counts(oracle.write("AAPL", "1m", batch))
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
    parts = _partitions(pg_url, pg_schema)["bars_intraday"]
    assert {"bars_intraday_p199501", "bars_intraday_p199502", "bars_intraday_p199503",
            "bars_intraday_p199504"} <= parts
    # a bulk-built partition has the same key as any other, and no BRIN (sorted by series, it could not prune)
    idx = _sql(pg_url, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'bars_intraday_p199503'",
               (pg_schema,))
    (only,) = idx
    assert "UNIQUE" in only[0]
    assert "(series_id, ts)" in only[0]
    assert store.verify().ok


def test_a_failed_bulk_load_leaves_no_partition(store: PostgresStore, pg_url: str, pg_schema: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bars, "BULK_MIN_ROWS", 5)
    batch = make_bars([pd.Timestamp("1990-06-01", tz="UTC").value // 1000 + i * MINUTE_US for i in range(50)])
    with psycopg.connect(pg_url) as other:  # blocks ATTACH (and only ATTACH) until released
        other.execute(sql.SQL("LOCK TABLE {}.bars_intraday IN SHARE UPDATE EXCLUSIVE MODE")
                      .format(sql.Identifier(pg_schema)))
        with pytest.raises(StoreLocked):
            store.write("AAPL", "1m", batch)
        other.rollback()
    assert "bars_intraday_p199006" not in _partitions(pg_url, pg_schema)["bars_intraday"]
    assert _sql(pg_url, "SELECT count(*) FROM pg_class WHERE relname = 'bars_intraday_p199006'") == [(0,)]
    assert store.series() == []
    assert store.write("AAPL", "1m", batch).rows_new == 50
    assert_bars_equal(store.read("AAPL", "1m"), batch)


def test_two_bulk_loads_of_one_new_partition(pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bars, "BULK_MIN_ROWS", 5)
    base = pd.Timestamp("1980-02-01", tz="UTC").value // 1000
    tables = {sym: make_bars([base + i * MINUTE_US for i in range(200)], version=k)
              for k, sym in enumerate(["AAA", "BBB", "CCC"])}
    errors: list[BaseException] = []

    def writer(sym: str) -> None:
        try:
            with PostgresStore(pg_url, schema=pg_schema) as s:
                s.write(sym, "1m", tables[sym])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    PostgresStore.migrate(pg_url, schema=pg_schema)
    threads = [threading.Thread(target=writer, args=(sym,)) for sym in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with PostgresStore(pg_url, schema=pg_schema) as s:
        for sym, table in tables.items():
            assert_bars_equal(s.read(sym, "1m"), table)
        assert s.verify().ok


def test_catalog_values_keep_any_text(store: PostgresStore) -> None:
    text = "nul \x00 inside, unicode \u00e9\u6f22 and emoji \U0001f4c8"  # PostgreSQL text cannot hold NUL
    store.set_meta("blob", text)
    assert store.get_meta("blob") == text
    store.set_meta("blob", "")
    assert store.get_meta("blob") == ""


# -- locking -----------------------------------------------------------------------------------
def test_a_second_writer_times_out_with_store_locked(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    store.write("AAPL", "1m", make_bars([T0_US]))
    sid = _sql(pg_url, sql.SQL("SELECT id FROM {}.series WHERE symbol = 'AAPL'").format(sql.Identifier(pg_schema)))
    with psycopg.connect(pg_url) as other:  # a writer stuck mid-transaction holding the series lock
        other.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"tickvault.write:{pg_schema}", sid[0][0]))
        with pytest.raises(StoreLocked):
            store.write("AAPL", "1m", make_bars([T0_US + MINUTE_US]))
        with pytest.raises(StoreLocked):
            store.delete_range("AAPL", "1m", None, None)
        assert store.read("AAPL", "1m").num_rows == 1  # readers are not blocked
        store.write("MSFT", "1m", make_bars([T0_US]))  # other series are not blocked
        other.rollback()
    assert store.write("AAPL", "1m", make_bars([T0_US + MINUTE_US])).rows_new == 1


def test_partition_creation_does_not_wait_for_readers(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    store.write("AAPL", "1m", make_bars([T0_US]))
    with psycopg.connect(pg_url) as reader:  # a long read transaction on the parent table
        reader.execute(sql.SQL("SELECT count(*) FROM {}.bars_intraday").format(sql.Identifier(pg_schema)))
        store.write("AAPL", "1m", make_bars([pd.Timestamp("2001-05-05", tz="UTC").value // 1000]))  # new partition
        reader.rollback()
    assert "bars_intraday_p200105" in _partitions(pg_url, pg_schema)["bars_intraday"]


def test_many_handles_opening_a_fresh_schema_migrate_once(pg_url: str, pg_schema: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            stores.append(PostgresStore(pg_url, schema=pg_schema))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    versions = _sql(pg_url, sql.SQL("SELECT version FROM {}.schema_version ORDER BY 1").format(
        sql.Identifier(pg_schema)))
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]


# -- migrations ----------------------------------------------------------------------------------
def test_migrate_upgrades_a_v1_database_in_place(pg_url: str, pg_schema: str) -> None:
    assert PostgresStore.migrate(pg_url, schema=pg_schema, target=1) == (0, 1)
    s = sql.Identifier(pg_schema)
    day = pd.Timestamp("2024-03-01", tz="UTC")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # data written by a v1 tickvault
        conn.execute(sql.SQL("CREATE TABLE {}.bars_session_p2024 PARTITION OF {}.bars_session "
                             "FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2025-01-01 00:00+00')").format(s, s))
        sid = conn.execute(sql.SQL("INSERT INTO {}.series (symbol, timeframe, tier, row_count, first_us, last_us, "
                                   "last_write_us) VALUES ('AAPL', '1d', 'session', 2, %s, %s, 1) RETURNING id")
                           .format(s), (day.value // 1000, day.value // 1000 + DAY_US)).fetchone()
        assert sid is not None
        pid = conn.execute(sql.SQL("INSERT INTO {}.providers (name) VALUES ('yahoo') RETURNING id")
                           .format(s)).fetchone()
        assert pid is not None
        conn.execute(sql.SQL("INSERT INTO {}.bars_session (series_id, provider_id, ts, open, high, low, close, "
                             "volume) VALUES (%s, %s, %s, 1.5, 2.5, 0.5, 2.0, 100), "
                             "(%s, %s, %s, 2.0, 3.0, 1.0, 2.5, 200)").format(s),
                     (sid[0], pid[0], day.to_pydatetime(),
                      sid[0], pid[0], (day + pd.Timedelta(days=1)).to_pydatetime()))
        conn.execute(sql.SQL("INSERT INTO {}.coverage VALUES (%s, %s, %s, 'final', 'yahoo', 7)").format(s),
                     (sid[0], day.value // 1000, day.value // 1000 + 2 * DAY_US))
        conn.execute(sql.SQL("INSERT INTO {}.actions VALUES ('AAPL', '2024-03-02', 'split', 4.0, NULL, 'yahoo')")
                     .format(s))
    with pytest.raises(StorageError, match="tickvault migrate"):
        PostgresStore(pg_url, schema=pg_schema, migrate=False)
    assert PostgresStore.migrate(pg_url, schema=pg_schema) == (1, LATEST_VERSION)
    assert PostgresStore.migrate(pg_url, schema=pg_schema) == (LATEST_VERSION, LATEST_VERSION)
    with PostgresStore(pg_url, schema=pg_schema, migrate=False) as store:
        assert store.schema_version() == LATEST_VERSION
        store.set_meta("fundamentals:AAPL", "{}")  # v3's table
        assert store.get_meta("fundamentals:AAPL") == "{}"
        got = store.read("AAPL", "1d").to_pydict()
        assert (got["close"], got["provider"], got["vwap"]) == ([2.0, 2.5], ["yahoo", "yahoo"], [None, None])
        assert [(c.start_us, c.provider) for c in store.coverage("AAPL", "1d")] == [(day.value // 1000, "yahoo")]
        assert store.actions("AAPL") == [CorporateAction.split("2024-03-02", 4.0, provider="yahoo", symbol="AAPL")]
        assert store.write("AAPL", "1d", store.read("AAPL", "1d")).rows_unchanged == 2
        assert store.verify().ok
    rows = _sql(pg_url, sql.SQL("SELECT symbol, provider FROM {}.bars").format(s))  # the v2 view
    assert rows == [("AAPL", "yahoo"), ("AAPL", "yahoo")]
    # v4: the BRIN on time left the parents; the partition that existed kept one of its own
    brin = _sql(pg_url, "SELECT tablename FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE '%%brin%%'",
                (pg_schema,))
    assert ("bars_session_p2024",) in brin
    assert not {("bars_intraday",), ("bars_session",)} & set(brin)


def test_a_newer_database_is_refused(pg_url: str, pg_schema: str) -> None:
    PostgresStore.migrate(pg_url, schema=pg_schema)
    _sql(pg_url, sql.SQL("INSERT INTO {}.schema_version (version, description) VALUES (99, 'future')")
         .format(sql.Identifier(pg_schema)))
    with pytest.raises(StorageError, match="newer"):
        PostgresStore(pg_url, schema=pg_schema)


def test_a_failed_migration_leaves_nothing_behind(pg_url: str, pg_schema: str) -> None:
    # The TimescaleDB extension is not installable here, so asking for it fails mid-migration.
    with pytest.raises(StorageError, match="timescaledb"):
        PostgresStore(pg_url, schema=pg_schema, timescale=True)
    assert _sql(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (pg_schema,)) == [(0,)]


# -- verify ----------------------------------------------------------------------------------------
def test_verify_repairs_drifted_bookkeeping_and_reports_orphans(store: PostgresStore, pg_url: str,
                                                                 pg_schema: str) -> None:
    store.write("AAPL", "1m", make_bars([T0_US, T0_US + MINUTE_US]))
    s = sql.Identifier(pg_schema)
    _sql(pg_url, sql.SQL("UPDATE {}.series SET row_count = 7, last_us = 0").format(s))
    report = store.verify()
    assert report.ok
    assert len(report.repaired) == 1
    assert "AAPL 1m" in report.repaired[0]
    assert [(i.rows, i.last_us) for i in store.series()] == [(2, T0_US + MINUTE_US)]
    _sql(pg_url, sql.SQL("INSERT INTO {}.bars_intraday (series_id, ts) VALUES (999, %s)").format(s),
         (pd.Timestamp(T0_US * 1000, tz="UTC").to_pydatetime(),))
    report = store.verify()
    assert not report.ok
    assert "series_id=999" in report.damaged[0][0]


# -- safety: parameters only, errors without secrets ----------------------------------------------------
def test_symbols_travel_only_as_parameters(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

    def text(cur: psycopg.Cursor[Any], query: Any) -> str:
        return query.as_string(cur.connection) if isinstance(query, sql.Composable) else str(query)

    def spy_execute(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        seen.append(text(cur, query))
        return execute(cur, query, *args, **kw)

    def spy_copy(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        seen.append(text(cur, query))
        return copy(cur, query, *args, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy_execute)
    monkeypatch.setattr(psycopg.Cursor, "copy", spy_copy)
    sym = "ZQX.Q/ZQY:ZQZ"
    store.write(sym, "1m", make_bars([T0_US, T0_US + MINUTE_US]))
    store.write(sym, "1m", make_bars([T0_US], version=1))
    store.read(sym, "1m")
    store.latest(sym, "1m", 1)
    store.add_actions(sym, [CorporateAction.split("2024-01-02", 2.0)])
    store.actions(sym)
    store.delete_range(sym, "1m", None, None)
    assert len(seen) > 10
    assert not [q for q in seen if "ZQX" in q or "ZQY" in q]


def test_errors_name_the_server_never_the_password(pg_url: str) -> None:
    with pytest.raises(StorageError) as info:
        PostgresStore("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/nodb")
    assert "127.0.0.1:1/nodb" in str(info.value)
    assert "s3cr3t-pw" not in str(info.value)
    with pytest.raises(ConfigError) as bad:
        build_store(Settings(database_url="mysql://root:s3cr3t-pw@db/x"))
    assert "s3cr3t-pw" not in str(bad.value)
    with pytest.raises(ConfigError):
        PostgresStore(pg_url, schema="Robert'); DROP TABLE x;--")
    with pytest.raises(ConfigError):
        PostgresStore("this is not a url =")


# -- wiring: TICKVAULT_DATABASE_URL and tickvault.open(database_url=...) -----------------------------
def _daily(n: int) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.bdate_range("2024-06-03", periods=n, tz="UTC"), name="ts")
    close = 100.0 + np.arange(n)
    return pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
                         "volume": 1000.0}, index=idx)


@pytest.fixture
def default_schema(pg_url: str) -> Iterator[str]:
    yield "tickvault"
    _sql(pg_url, "DROP SCHEMA IF EXISTS tickvault CASCADE")


def test_open_with_a_database_url_matches_the_memory_vault(pg_url: str, default_schema: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _daily(8)
    split = [CorporateAction.split("2024-06-07", 2.0)]
    with tickvault.open(":memory:") as mem, tickvault.open(database_url=pg_url) as pg:
        assert "PostgresStore" in repr(pg)
        for vault in (mem, pg):
            vault.write("AAPL", "1d", frame)
            vault.add_actions("AAPL", split)
        for adjust in ("splits", "none", "all"):
            pd.testing.assert_frame_equal(pg.bars("AAPL", "1d", adjust=adjust, fetch="never"),
                                          mem.bars("AAPL", "1d", adjust=adjust, fetch="never"))
    monkeypatch.setenv("TICKVAULT_DATABASE_URL", pg_url)
    with tickvault.open() as again:  # the environment variable picks the same database
        assert len(again.bars("AAPL", "1d", fetch="never")) == 8


# -- the TimescaleDB path (generated, not executable here: the extension is not installable) ------
def test_timescale_statements_use_only_allow_listed_identifiers() -> None:
    from tickvault.store.postgres._timescale import AGGREGATES, timescale_statements

    text = [s.as_string(None) for s in timescale_statements("tv_x")]
    assert text[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    hyper = [t for t in text if "create_hypertable" in t]
    assert hyper == [
        "SELECT create_hypertable('\"tv_x\".\"bars_intraday\"', 'ts', chunk_time_interval => '1 month'::interval, "
        "create_default_indexes => false, if_not_exists => true)",
        "SELECT create_hypertable('\"tv_x\".\"bars_session\"', 'ts', chunk_time_interval => '1 year'::interval, "
        "create_default_indexes => false, if_not_exists => true)",
    ]
    assert sum("timescaledb.compress_segmentby = 'series_id'" in t for t in text) == 2
    assert sum("add_compression_policy" in t for t in text) == 2
    assert not any("add_retention_policy" in t for t in text)
    for name in AGGREGATES:
        assert any(t.startswith(f'CREATE MATERIALIZED VIEW "tv_x"."{name}" WITH (timescaledb.continuous)')
                   for t in text)
    with_retention = [s.as_string(None) for s in timescale_statements("tv_x", retention="5 years")]
    assert sum("add_retention_policy" in t and "'5 years'::interval" in t for t in with_retention) == 2


def test_public_names_are_pinned() -> None:
    import tickvault.store.postgres as pkg

    assert pkg.__all__ == ["DEFAULT_SCHEMA", "LATEST_VERSION", "PostgresStore"]
    assert {n for n in dir(PostgresStore) if not n.startswith("_")} >= {
        "write", "read", "latest", "delete_range", "series", "coverage", "mark_covered", "clear_coverage",
        "add_actions", "actions", "put_instrument", "instrument", "delete_instrument", "instruments",
        "save_report", "latest_report", "quarantine", "quarantined", "get_meta", "set_meta", "compact", "verify",
        "size_bytes", "close", "migrate", "schema_version", "ensure_partitions"}
