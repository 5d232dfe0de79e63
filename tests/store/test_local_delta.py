"""Small upsert deltas (Arrow IPC files) and the one-``syncfs`` publication of many files.

A small write to a series that already holds rows is an Arrow IPC delta instead of a
Parquet file; compaction turns deltas back into Parquet. These tests read deltas (alone
and mixed with Parquet files), compact them, damage them, crash between their write and
the commit, and check when the store may make a call's files durable with one ``syncfs``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from tickvault.errors import CorruptData
from tickvault.model import BAR_SCHEMA
from tickvault.store.local import FileSystem, LocalStore
from tickvault.store.local import _fs as fs_module
from tickvault.store.local._delta import DELTA_MAX_ROWS, decode_delta, encode_delta
from tickvault.store.local._writer import SYNC_ALL_MIN_FILES
from tickvault.store.memory import MemoryStore
from tickvault.testing.conformance import MINUTE_US, T0_US, assert_bars_equal, bars_to_rows, make_bars
from tickvault.testing.faults import PowerLossFS, SimulatedCrash

Y2024_US = 1_704_067_200_000_000
Y2025_US = 1_735_689_600_000_000


def _minutes(start: int, count: int, first: int = T0_US) -> list[int]:
    return [first + (start + i) * MINUTE_US for i in range(count)]


def _kinds(store: LocalStore, symbol: str) -> list[str]:
    return [p.suffix for p in store.files(symbol, "1m")]


def test_a_small_write_to_a_stored_series_is_an_ipc_delta_read_back_exactly(tmp_path: Path) -> None:
    oracle = MemoryStore()
    with LocalStore(tmp_path) as store:
        for s in (store, oracle):
            s.write("AAPL", "1m", make_bars(_minutes(0, 100), vwap=True, trade_count=True))
        assert _kinds(store, "AAPL") == [".parquet"]  # a series' first write is Parquet
        for s in (store, oracle):
            s.write("AAPL", "1m", make_bars(_minutes(50, 100), version=1, vwap=True))
        assert _kinds(store, "AAPL") == [".parquet", ".arrow"]
        delta = store.files("AAPL", "1m")[1]
        # An external reader sees a plain Arrow IPC file of the bar schema.
        assert ipc.open_file(pa.memory_map(str(delta))).read_all().schema.remove_metadata() == BAR_SCHEMA
    with LocalStore(tmp_path, cache_bytes=0) as store:  # decoded from disk, not the write cache
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        lo, hi = _minutes(40, 1)[0], _minutes(120, 1)[0]
        assert_bars_equal(store.read("AAPL", "1m", lo, hi, columns=["close", "vwap"]),
                          oracle.read("AAPL", "1m", lo, hi, columns=["close", "vwap"]))
        assert_bars_equal(store.latest("AAPL", "1m", 7), oracle.latest("AAPL", "1m", 7))


def test_delta_encoding_round_trips_bit_for_bit() -> None:
    table = make_bars(_minutes(0, 64), vwap=True, trade_count=True)
    prices = table.column("close").to_numpy().copy()
    prices[:4] = [np.nan, -0.0, np.inf, 5e-324]
    table = table.set_column(4, "close", pa.array(prices))
    back = decode_delta(encode_delta(table))
    assert back.schema == BAR_SCHEMA
    assert bars_to_rows(back) == bars_to_rows(table)
    assert decode_delta(encode_delta(table), ["vwap"]).column_names == ["ts", "vwap"]
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:  # the right columns, but no format marker
        writer.write_table(table)
    with pytest.raises(ValueError, match="not a tickvault delta"):
        decode_delta(sink.getvalue())


def test_big_writes_stay_parquet(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 10)))
        store.write("AAPL", "1m", make_bars(_minutes(5, DELTA_MAX_ROWS + 1), version=1))
        assert _kinds(store, "AAPL") == [".parquet", ".parquet"]
        store.write("AAPL", "1m", make_bars(_minutes(0, DELTA_MAX_ROWS), version=2))
        assert _kinds(store, "AAPL")[-1] == ".arrow"


def test_mixed_partitions_merge_in_publication_order_and_compact_to_parquet(tmp_path: Path) -> None:
    oracle = MemoryStore()
    with LocalStore(tmp_path, compact_threshold=100) as store:
        for s in (store, oracle):
            # 2023 and 2024 partitions; deltas, a big Parquet delta and deltas again over both.
            s.write("AAPL", "1m", make_bars(_minutes(-300, 600, Y2024_US)))
            s.write("AAPL", "1m", make_bars(_minutes(-20, 40, Y2024_US), version=1))
            s.write("AAPL", "1m", make_bars(_minutes(-3000, 3000, Y2024_US), version=2))
            s.write("AAPL", "1m", make_bars(_minutes(-10, 15, Y2024_US), version=3))
            s.write("AAPL", "1m", make_bars(_minutes(200, 300, Y2024_US), version=4))
        assert sorted(set(_kinds(store, "AAPL"))) == [".arrow", ".parquet"]
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        assert store.compact() == 1
        files = store.files("AAPL", "1m")
        assert [p.suffix for p in files] == [".parquet", ".parquet"]  # one Parquet file per partition
        assert not list((tmp_path / "bars").rglob("*.arrow"))
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))


def test_compact_turns_a_lone_delta_into_parquet(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 10, Y2024_US)))
        store.write("AAPL", "1m", make_bars(_minutes(0, 10, Y2025_US)))  # a new partition, as a delta
        assert _kinds(store, "AAPL") == [".parquet", ".arrow"]
        before = store.read("AAPL", "1m")
        assert store.compact() == 1
        assert _kinds(store, "AAPL") == [".parquet", ".parquet"]
        assert_bars_equal(store.read("AAPL", "1m"), before)
        assert store.compact() == 0  # nothing left to do


def test_automatic_compaction_folds_deltas_into_parquet(tmp_path: Path) -> None:
    oracle = MemoryStore()
    with LocalStore(tmp_path, compact_threshold=3, background_compaction=False) as store:
        for i in range(6):
            for s in (store, oracle):
                s.write("AAPL", "1m", make_bars(_minutes(10 * i, 20), version=i))
        assert len(store.files("AAPL", "1m")) <= 3
        assert ".parquet" in _kinds(store, "AAPL")
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))


def test_a_damaged_delta_is_corrupt_data_then_set_aside(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 50)))
        store.write("AAPL", "1m", make_bars(_minutes(100, 20)))
        delta = store.files("AAPL", "1m")[1]
        assert delta.suffix == ".arrow"
    data = bytearray(delta.read_bytes())
    data[len(data) // 2] ^= 0x5A
    delta.write_bytes(bytes(data))
    with LocalStore(tmp_path) as store:
        with pytest.raises(CorruptData, match="checksum") as err:
            store.read("AAPL", "1m")
        assert err.value.context["path"] == str(delta)
        assert store.read("AAPL", "1m").num_rows == 50  # set aside: the next read sees the gap
        assert _kinds(store, "AAPL") == [".parquet"]
    assert (tmp_path / "damaged").is_dir()


def test_verify_checks_deltas(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 50)))
        store.write("AAPL", "1m", make_bars(_minutes(100, 20)))
        assert store.verify().ok
        delta = store.files("AAPL", "1m")[1]
    delta.write_bytes(delta.read_bytes()[:-10])
    with LocalStore(tmp_path) as store:
        report = store.verify()
        assert [path for path, _ in report.damaged] == [str(delta)]


# -- one syncfs for many files -----------------------------------------------------------

class SyncfsPowerLossFS(PowerLossFS):
    """:class:`PowerLossFS` that also models ``syncfs``: every pending change becomes durable."""

    def can_sync_all(self) -> bool:
        return True

    def sync_all(self, paths: Iterable[Path]) -> None:
        self._step("sync_all")
        # syncfs flushes the whole file system: every unsynced content and folder entry.
        self._unsynced.clear()
        self._pending.clear()


SYMBOLS = [f"S{i:02d}" for i in range(SYNC_ALL_MIN_FILES + 1)]


def _setup(store: LocalStore | MemoryStore) -> None:
    store.write_many([(s, "1m", make_bars(_minutes(0, 30))) for s in SYMBOLS])


def _upsert(store: LocalStore | MemoryStore) -> None:
    store.write_many([(s, "1m", make_bars(_minutes(20, 20), version=1)) for s in SYMBOLS])


def _state(store: LocalStore | MemoryStore) -> list[list[tuple[object, ...]]]:
    return [bars_to_rows(store.read(s, "1m")) for s in SYMBOLS]


def _crash_run(root: Path, crash_at: int | None) -> tuple[SyncfsPowerLossFS, list[str]]:
    fs = SyncfsPowerLossFS()
    store = LocalStore(root, fs=fs, cache_bytes=0)
    try:
        _setup(store)
        fs.arm(crash_at=crash_at)
        with contextlib.suppress(SimulatedCrash):
            _upsert(store)
        return fs, list(fs.trace)
    finally:
        with contextlib.suppress(SimulatedCrash):
            store.close()


def test_power_loss_at_every_step_of_a_syncfs_publication(tmp_path: Path) -> None:
    oracle = MemoryStore()
    _setup(oracle)
    old = _state(oracle)
    _upsert(oracle)
    new = _state(oracle)
    _, steps = _crash_run(tmp_path / "dry", None)
    # Deltas are written and renamed without per-file syncs, then one syncfs, then the commit.
    assert "sync_all" in steps
    assert "fsync_file" not in steps
    assert steps.index("sync_all") > max(i for i, s in enumerate(steps) if s == "rename")
    assert steps.index("sync_all") < steps.index("point:before_commit")
    committed_at = steps.index("point:after_commit")
    for n in range(len(steps) + 1):
        root = tmp_path / f"crash-{n}"
        fs, _ = _crash_run(root, n if n < len(steps) else None)
        fs.power_loss()
        with LocalStore(root) as store:  # recovery sweeps what the crash left
            assert store.verify().ok
            state = _state(store)
            if n >= committed_at:
                assert state == new, f"a committed write was lost by a crash before step {n}"
            else:
                assert state in (old, new), f"a crash before step {n} left a mixed state"
            listed = {p for s in SYMBOLS for p in store.files(s, "1m")}
            on_disk = {p for p in (root / "bars").rglob("*") if p.is_file()}
            assert on_disk == listed, f"stray files after a crash before step {n}: {on_disk - listed}"


def test_without_a_syncfs_model_a_fault_injecting_fs_gets_per_file_fsyncs(tmp_path: Path) -> None:
    assert not PowerLossFS().can_sync_all()  # it models fsync_file/fsync_dir, not syncfs
    fs = PowerLossFS()
    with LocalStore(tmp_path, fs=fs) as store:
        _setup(store)
        fs.arm()
        store.write_many([(s, "1m", make_bars(_minutes(20, 20), version=1)) for s in SYMBOLS])
        assert fs.trace.count("fsync_file") == len(SYMBOLS)


def test_syncfs_only_while_little_is_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FileSystem()
    if fs_module._syncfs() is None:
        pytest.skip("syncfs needs Linux >= 5.8")
    dirty = fs_module.dirty_bytes()
    assert dirty is not None
    assert dirty >= 0
    monkeypatch.setattr(fs_module, "dirty_bytes", lambda: fs_module.SYNCFS_MAX_DIRTY)
    assert fs.can_sync_all()
    assert not FileSystem(durable=False).can_sync_all()
    monkeypatch.setattr(fs_module, "dirty_bytes", lambda: fs_module.SYNCFS_MAX_DIRTY + 1)
    assert not fs.can_sync_all()
    monkeypatch.setattr(fs_module, "dirty_bytes", lambda: None)
    assert not fs.can_sync_all()
    (tmp_path / "a").mkdir()
    fs.sync_all([tmp_path, tmp_path / "a"])  # a real syncfs of the test's file system


def test_a_durable_write_many_through_syncfs_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if fs_module._syncfs() is None:
        pytest.skip("syncfs needs Linux >= 5.8")
    monkeypatch.setattr(fs_module, "dirty_bytes", lambda: 0)
    oracle = MemoryStore()
    with LocalStore(tmp_path) as store:
        for s in (store, oracle):
            _setup(s)
            _upsert(s)
        assert all(_kinds(store, sym) == [".parquet", ".arrow"] for sym in SYMBOLS)
        assert _state(store) == _state(oracle)
