"""LocalStore behaviour beyond the shared contract: layout, locking, compaction, cleanup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from tickvault.errors import InvalidInput, InvalidTimeframe, SchemaError, StorageError, StoreLocked
from tickvault.model import BAR_SCHEMA, CoverageInterval
from tickvault.store.base import BarStore
from tickvault.store.local import FileSystem, LocalStore
from tickvault.store.local import _store as _store_mod
from tickvault.store.local._layout import SeriesKey
from tickvault.store.local._locks import SeriesLock
from tickvault.store.memory import MemoryStore
from tickvault.testing.conformance import MINUTE_US, T0_US, assert_bars_equal, make_bars, receipt_counts

Y2024_US = 1_704_067_200_000_000


def _minutes(start: int, count: int, first: int = T0_US) -> list[int]:
    return [first + (start + i) * MINUTE_US for i in range(count)]


def test_layout_is_hive_partitioned_and_path_safe(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        assert isinstance(store, BarStore)
        store.write("BTC/USDT", "1m", make_bars(_minutes(-3, 6, Y2024_US)))
        store.write("^GSPC", "1d", make_bars([Y2024_US]))
        store.write("AAPL", "60m", make_bars([Y2024_US]))  # canonical timeframe: 1h
        files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "bars").rglob("*.parquet"))
    assert [f.rsplit("/", 1)[0] for f in files] == [
        "bars/tf=1d/symbol=%5EGSPC/period=all",
        "bars/tf=1h/symbol=AAPL/period=2024",
        "bars/tf=1m/symbol=BTC%2FUSDT/period=2023",
        "bars/tf=1m/symbol=BTC%2FUSDT/period=2024",
    ]
    assert (tmp_path / "locks" / "tf=1m" / "symbol=BTC%2FUSDT.lock").exists()
    with LocalStore(tmp_path) as store:
        assert [(s.symbol, s.timeframe) for s in store.series()] == [
            ("AAPL", "1h"), ("BTC/USDT", "1m"), ("^GSPC", "1d")]
        with pytest.raises(InvalidTimeframe):
            store.read("AAPL", "1 minute; rm")


def test_duckdb_and_polars_read_the_tree(tmp_path: Path) -> None:
    ts = _minutes(-100, 300, Y2024_US)
    table = make_bars(ts, vwap=True, trade_count=True)
    odd = table.set_column(4, "close", pa.array(np.linspace(1.0, 2.0, len(ts))))  # not decimals: stays float
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", table.slice(0, 150))
        store.write("AAPL", "1m", table.slice(150))
        store.write("MSFT", "1m", odd)
        store.compact()
        expected = {sym: store.read(sym, "1m") for sym in ("AAPL", "MSFT")}
    glob = str(tmp_path / "bars" / "**" / "*.parquet")
    rel = duckdb.sql(
        "SELECT symbol, epoch_us(ts) AS ts, open::DOUBLE AS open, high::DOUBLE AS high, low::DOUBLE AS low, "
        "close::DOUBLE AS close, volume::DOUBLE AS volume, vwap::DOUBLE AS vwap, trade_count, provider "
        f"FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true) ORDER BY symbol, ts")
    got = rel.arrow()
    if not isinstance(got, pa.Table):
        got = got.read_all()
    for sym in ("AAPL", "MSFT"):
        part = got.filter(pa.compute.equal(got.column("symbol"), sym))
        exp = expected[sym]
        assert part.column("ts").to_pylist() == exp.column("ts").cast(pa.int64()).to_pylist()
        for name in ("open", "high", "low", "close", "volume", "vwap"):
            a = np.asarray(part.column(name).fill_null(0.0).to_numpy())
            b = np.asarray(exp.column(name).fill_null(0.0).to_numpy())
            # DuckDB's DECIMAL -> DOUBLE is exact (pyarrow's decimal cast is not: use read()).
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), name
    frames = [pl.read_parquet(p) for p in sorted((tmp_path / "bars" / "tf=1m" / "symbol=AAPL").rglob("*.parquet"))]
    df = pl.concat([f.with_columns(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume",
                                                                         "vwap")) for f in frames])
    assert np.array_equal(df["close"].to_numpy(), np.asarray(expected["AAPL"].column("close").to_numpy()))


def test_background_compaction_merges_crowded_partitions(tmp_path: Path) -> None:
    with LocalStore(tmp_path, durable=False, compact_threshold=3) as store:
        store.write_many([(sym, "1m", make_bars(_minutes(0, 200))) for sym in ("AAPL", "MSFT")])
        for i in range(12):
            store.write_many([(sym, "1m", make_bars(_minutes(200 + i, 1))) for sym in ("AAPL", "MSFT")])
            assert_bars_equal(store.read("AAPL", "1m"), make_bars(_minutes(0, 201 + i)))
        store.wait_for_compaction()
        for sym in ("AAPL", "MSFT"):
            assert len(store.files(sym, "1m")) <= 4
            assert_bars_equal(store.read(sym, "1m"), make_bars(_minutes(0, 212)))
        assert store.verify().ok


@contextmanager
def _lock_held_elsewhere(lock_file: Path) -> Iterator[None]:
    """Another process holds the series' writer lock (flock) until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys
        fd = open({str(lock_file)!r}, "a")
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait(timeout=10)


def test_write_many_writes_nothing_when_one_series_stays_locked(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 5)))
    with (_lock_held_elsewhere(tmp_path / "locks" / "tf=1m" / "symbol=MSFT.lock"),
          LocalStore(tmp_path, lock_timeout=0.3) as store):
        with pytest.raises(StoreLocked) as info:
            store.write_many([("AAPL", "1m", make_bars(_minutes(0, 10), version=1)),
                              ("MSFT", "1m", make_bars(_minutes(0, 3)))])
        assert "MSFT" in str(info.value)
        assert_bars_equal(store.read("AAPL", "1m"), make_bars(_minutes(0, 5)))  # no partial state
        assert store.read("MSFT", "1m").num_rows == 0
        assert store.write("AAPL", "1m", make_bars(_minutes(0, 6))).rows_new == 1  # AAPL's lock was released
    with LocalStore(tmp_path, lock_timeout=0.3) as store:
        assert [r.rows_new for r in store.write_many([("MSFT", "1m", make_bars(_minutes(0, 3))),
                                                      ("AAPL", "1m", make_bars(_minutes(0, 7)))])] == [3, 1]
        assert store.verify().ok


def test_frequent_small_appends_stay_few_files(tmp_path: Path) -> None:
    with LocalStore(tmp_path, durable=False, compact_threshold=4, background_compaction=False) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 200)))
        for i in range(60):
            receipt = store.write("AAPL", "1m", make_bars(_minutes(200 + i, 1)))
            assert receipt.rows_new == 1
            assert len(store.files("AAPL", "1m")) <= 5
        assert_bars_equal(store.read("AAPL", "1m"), make_bars(_minutes(0, 260)))
        assert_bars_equal(store.latest("AAPL", "1m", 3), make_bars(_minutes(257, 3)))
        assert store.compact("AAPL") == 1
        assert len(store.files("AAPL", "1m")) == 1
        assert store.compact() == 0


def test_a_second_writer_waits_then_gets_store_locked(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 5)))
    with (_lock_held_elsewhere(tmp_path / "locks" / "tf=1m" / "symbol=AAPL.lock"),
          LocalStore(tmp_path, lock_timeout=0.3) as store):
        started = time.monotonic()
        with pytest.raises(StoreLocked) as info:
            store.write("AAPL", "1m", make_bars(_minutes(5, 5)))
        assert time.monotonic() - started >= 0.3
        assert "AAPL" in str(info.value)
        assert_bars_equal(store.read("AAPL", "1m"), make_bars(_minutes(0, 5)))  # readers are not blocked
        store.write("MSFT", "1m", make_bars(_minutes(0, 5)))  # other series are not blocked
    with LocalStore(tmp_path, lock_timeout=0.3) as store:
        assert store.write("AAPL", "1m", make_bars(_minutes(5, 5))).rows_new == 5


class _CompactOnFirstOpen(FileSystem):
    """Compacts the series through another handle right after a reader listed its files."""

    def __init__(self, other_root: Path) -> None:
        super().__init__()
        self.root = other_root
        self.fired = False

    def open_read(self, path: Path) -> pa.NativeFile:
        if not self.fired and "symbol=AAPL" in str(path):
            self.fired = True
            with LocalStore(self.root) as other:
                assert other.compact() == 1
        return super().open_read(path)


def test_a_reader_relists_when_compaction_removes_its_files(tmp_path: Path) -> None:
    ts = _minutes(0, 40)
    with LocalStore(tmp_path) as store:
        for i in range(0, 40, 10):
            store.write("AAPL", "1m", make_bars(ts[i:i + 10], version=i))
        expected = store.read("AAPL", "1m")
        key = SeriesKey("AAPL", "1m")
        assert len(store._core.listing(key)[1]) == 4  # a Parquet file and three inline deltas
    fs = _CompactOnFirstOpen(tmp_path)
    with LocalStore(tmp_path, fs=fs, cache_bytes=0) as reader:
        assert_bars_equal(reader.read("AAPL", "1m"), expected)
        assert fs.fired
        assert len(reader._core.listing(key)[1]) == 1
        assert len(reader.files("AAPL", "1m")) == 1


def test_orphans_of_a_dead_writer_are_removed_on_open(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 5)))
        store.write("MSFT", "1m", make_bars(_minutes(0, 5)))
        kept = store.files("AAPL", "1m") + store.files("MSFT", "1m")
    assert not list((tmp_path / "sessions").iterdir())  # a clean close leaves no session
    folder = kept[0].parent
    orphan = folder / "000000000099-deadbeef.parquet"
    orphan.write_bytes(kept[0].read_bytes())
    temp = folder / ".000000000100-cafe.parquet.1234.tmp"
    temp.write_bytes(b"partial")
    busy = kept[1].parent / "000000000077-beefbeef.parquet"
    busy.write_bytes(b"being published")
    with LocalStore(tmp_path):
        assert orphan.exists()  # nobody died: open does not walk the tree
    (tmp_path / "sessions" / "4242-0badc0de.session").write_bytes(b"")  # a writer died
    lock = SeriesLock(tmp_path / "locks" / "tf=1m" / "symbol=MSFT.lock", 0, symbol="MSFT", timeframe="1m")
    assert lock.try_acquire()
    try:
        with LocalStore(tmp_path) as store:
            assert not orphan.exists()
            assert not temp.exists()
            assert busy.exists()  # MSFT's writer is alive and may be about to commit it
            assert not list((tmp_path / "sessions").iterdir())
    finally:
        lock.release()
    with LocalStore(tmp_path) as store:
        report = store.verify()  # verify() sweeps too
        assert report.ok
        assert report.repaired == ["removed 1 orphan file(s) left by an interrupted writer"]
        assert not busy.exists()
    assert all(p.exists() for p in kept)


def test_catalog_is_wal_and_fully_synchronous(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 1)))
        conn = store._core.catalog.conn()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    raw = sqlite3.connect(tmp_path / "catalog.sqlite")
    try:
        assert raw.execute("SELECT symbol, timeframe, rows FROM series").fetchall() == [("AAPL", "1m", 1)]
    finally:
        raw.close()


@pytest.mark.parametrize("background", [True, False])
def test_wal_checkpoints_run_off_the_write_path_with_the_background_thread(tmp_path: Path, background: bool) -> None:
    symbols = [f"S{i:03d}" for i in range(120)]
    with LocalStore(tmp_path, background_compaction=background) as store:
        conn = store._core.catalog.conn()
        # A commit checkpoints only past 64 MiB of WAL with the thread, else past SQLite's 1,000 pages.
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (16384 if background else 1000)
        store.write_many([(s, "1m", make_bars(_minutes(0, 10))) for s in symbols])
        # ~5 MiB of inline deltas: past the threshold at which a write asks the thread to checkpoint.
        rng = np.random.default_rng(7)  # noisy prices: the deltas must not compress to nothing
        noisy = []
        for s in symbols:
            bars = make_bars(_minutes(5, 2000), version=1)
            for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
                bars = bars.set_column(i, name, pa.array(rng.random(2000)))
            noisy.append((s, "1m", bars))
        store.write_many(noisy)
        store.wait_for_compaction()  # also waits for the checkpoint it asked for
        # Either way the BLOBs are now in the database file itself, not only in the WAL.
        assert (tmp_path / "catalog.sqlite").stat().st_size > 4 * 2**20
        assert all(store.read(s, "1m").num_rows == 2005 for s in symbols[:3])


def test_bad_input_is_rejected_before_anything_changes(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        LocalStore(tmp_path, lock_timeout=-1)
    with LocalStore(tmp_path) as store:
        good = make_bars(_minutes(0, 3))
        with pytest.raises(SchemaError):
            store.write("AAPL", "1m", good.drop_columns(["volume"]))
        with pytest.raises(SchemaError):
            store.write("AAPL", "1m", good.to_pandas())  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            store.read("AAPL", "1m", columns=["close", "nope"])
        assert store.series() == []
        assert not list((tmp_path / "bars").rglob("*.parquet"))
    with pytest.raises(StorageError):
        store.read("AAPL", "1m")  # closed


def test_threads_share_one_store_safely(tmp_path: Path) -> None:
    ts = _minutes(0, 400)
    errors: list[BaseException] = []
    with LocalStore(tmp_path, durable=False) as store:
        store.write("AAPL", "1m", make_bars(ts))

        def work(k: int) -> None:
            try:
                for i in range(8):
                    if k % 2:
                        store.write(f"S{k}", "1m", make_bars(ts[i * 10:i * 10 + 20], version=i))
                    else:
                        assert store.read("AAPL", "1m").num_rows == 400
                        store.compact("AAPL")
            except BaseException as exc:  # re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.read("S1", "1m").num_rows == 90
        assert store.verify().ok


def test_size_and_files(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        assert store.files("AAPL", "1m") == []
        receipt = store.write("AAPL", "1m", make_bars(_minutes(0, 1000)))
        assert store.size_bytes() >= receipt.bytes_written
        assert sum(p.stat().st_size for p in store.files("AAPL", "1m")) == receipt.bytes_written
        assert repr(store).startswith("LocalStore(")
        empty = store.read("AAPL", "1m", T0_US + MINUTE_US, T0_US, columns=["close"])
        assert empty.column_names == ["close"]
        assert empty.num_rows == 0
        assert store.latest("AAPL", "1m", 5).schema.equals(BAR_SCHEMA)


def test_numpy_integer_bounds_are_accepted(tmp_path: Path) -> None:
    ts = _minutes(0, 10)
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(ts))
        assert store.read("AAPL", "1m", np.int64(ts[2]), np.int64(ts[5])).num_rows == 3
        store.mark_covered("AAPL", "1m", [CoverageInterval(np.int64(ts[0]), np.int64(ts[-1]), updated_us=np.int64(7))])
        store.clear_coverage("AAPL", "1m", np.int64(ts[3]), None)
        assert store.coverage("AAPL", "1m") == [CoverageInterval(ts[0], ts[3], updated_us=7)]
        assert store.delete_range("AAPL", "1m", np.int64(ts[8]), None) == 2


def test_write_many_prepares_mixed_items_like_one_write_at_a_time(tmp_path: Path) -> None:
    # The call's items are sorted and de-duplicated together (one concatenated table):
    # unsorted, duplicated, empty, multi-chunk and other-provider items must come out
    # exactly as the oracle's item-by-item writes.
    ts = _minutes(0, 30)
    shuffled = make_bars(ts[10:20]).take(pa.array(np.random.default_rng(3).permutation(10)))
    duplicated = pa.concat_tables([make_bars(ts[:5]), make_bars(ts[3:8], version=2)])  # later rows win
    items = [
        ("AAPL", "1m", make_bars(ts[:10])),
        ("MSFT", "1m", shuffled),
        ("AAPL", "1m", duplicated),
        ("IBM", "1m", make_bars([])),
        ("MSFT", "1m", pa.concat_tables([make_bars(ts[25:28], provider="other"), make_bars(ts[28:30])])),
        ("BTC/USDT", "1m", make_bars(ts[::-1], version=1)),
        # bigger than _JOIN_MAX_ROWS: prepared on its own, between joined ones, unsorted
        ("ETH/USDT", "1m", make_bars(_minutes(0, 9_000)[::-1])),
        ("AAPL", "1m", make_bars(ts[5:12], version=3)),
    ]
    assert items[-2][2].num_rows > _store_mod._JOIN_MAX_ROWS
    oracle = MemoryStore()
    want = [oracle.write(s, tf, t) for s, tf, t in items]
    with LocalStore(tmp_path) as store:
        assert [receipt_counts(r) for r in store.write_many(items)] == [receipt_counts(r) for r in want]
        for sym in ("AAPL", "MSFT", "IBM", "BTC/USDT", "ETH/USDT"):
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
