"""Damaged files: found by verify() (or the first read), set aside, never a crash loop."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from tickvault.errors import CorruptData
from tickvault.model import CoverageInterval
from tickvault.store.local import LocalStore, _maintenance
from tickvault.store.local._layout import SeriesKey
from tickvault.testing.conformance import MINUTE_US, assert_bars_equal, make_bars

Y2023_US = 1_672_531_200_000_000  # 2023-01-01
Y2024_US = 1_704_067_200_000_000  # 2024-01-01
END_US = 1_735_689_600_000_000  # 2025-01-01


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x5A
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * path.stat().st_size)


def _footer(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF
    path.write_bytes(bytes(data))


def _minutes(first: int, count: int) -> list[int]:
    return [first + i * MINUTE_US for i in range(count)]


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, pa.Table, pa.Table, pa.Table]:
    """AAPL with a 2023 and a 2024 file, MSFT with one file, all covered."""
    root = tmp_path / "store"
    a23 = make_bars(_minutes(END_US - 3 * 365 * 86_400_000_000 // 2, 40))  # mid-2023
    a24 = make_bars(_minutes(Y2024_US + 86_400_000_000, 40))
    msft = make_bars(_minutes(Y2024_US + 86_400_000_000, 10))
    with LocalStore(root) as store:
        store.write("AAPL", "1m", pa.concat_tables([a23, a24]))
        store.write("MSFT", "1m", msft)
        for sym in ("AAPL", "MSFT"):
            store.mark_covered(sym, "1m", [CoverageInterval(Y2023_US, END_US)])
        assert len(store.files("AAPL", "1m")) == 2
    return root, a23, a24, msft


@pytest.mark.parametrize(("damage", "problem"), [
    (_flip, "checksum mismatch"),
    (_truncate, "size"),
    (_garbage, "checksum mismatch"),
    (_footer, "checksum mismatch"),
    (lambda p: p.unlink(), "missing"),
])
def test_verify_names_the_file_sets_it_aside_and_clears_its_coverage(
        filled: tuple[Path, pa.Table, pa.Table, pa.Table], damage: Callable[[Path], None], problem: str) -> None:
    root, a23, a24, msft = filled
    with LocalStore(root) as store:
        victim = store.files("AAPL", "1m")[1]  # the 2024 file
        assert "period=2024" in str(victim)
    damage(victim)
    with LocalStore(root) as store:  # a store with a damaged file opens fine
        report = store.verify()
        assert not report.ok
        assert report.checked == 3
        assert [path for path, _ in report.damaged] == [str(victim)]
        assert problem in report.damaged[0][1]
        assert len(report.repaired) == 1
        assert not victim.exists()
        moved = root / "damaged" / victim.relative_to(root / "bars")
        assert moved.exists() == (problem != "missing")
        assert store.files("AAPL", "1m") == [p for p in store.files("AAPL", "1m") if p != victim]
        assert_bars_equal(store.read("AAPL", "1m"), a23)  # the rest still reads
        assert_bars_equal(store.read("MSFT", "1m"), msft)
        first, last = a24["ts"][0].value, a24["ts"][-1].value
        assert store.coverage("AAPL", "1m") == [CoverageInterval(Y2023_US, first),
                                                CoverageInterval(last + MINUTE_US, END_US)]
        assert store.coverage("MSFT", "1m") == [CoverageInterval(Y2023_US, END_US)]
        assert [(s.symbol, s.rows) for s in store.series()] == [("AAPL", 40), ("MSFT", 10)]
        assert store.verify().ok
        store.write("AAPL", "1m", a24)  # re-fetched data goes back in
        assert_bars_equal(store.read("AAPL", "1m"), pa.concat_tables([a23, a24]))
    with LocalStore(root) as store:
        assert store.verify().ok


def test_a_damaged_delta_leaves_the_base_rows(tmp_path: Path) -> None:
    ts = _minutes(Y2024_US, 30)
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(ts))
        store.write("AAPL", "1m", make_bars(ts[10:20], version=1))
        store.mark_covered("AAPL", "1m", [CoverageInterval(ts[0], ts[-1] + MINUTE_US)])
        _, delta = store._core.listing(SeriesKey("AAPL", "1m"))[1]
        assert delta.path.endswith(".inline")  # a small upsert: a BLOB in the catalog
        con = sqlite3.connect(tmp_path / "catalog.sqlite")
        with con:
            assert delta.pack is not None  # its rows are in a pack of the call's inline deltas
            blob = bytearray(con.execute("SELECT data FROM packs WHERE id = ?", (delta.pack,)).fetchone()[0])
            blob[len(blob) // 3] ^= 0x5A
            con.execute("UPDATE packs SET data = ? WHERE id = ?", (bytes(blob), delta.pack))
        con.close()
        report = store.verify()
        assert [p for p, _ in report.damaged] == [str(tmp_path / delta.path)]
        assert_bars_equal(store.read("AAPL", "1m"), make_bars(ts))  # the older version shows again...
        assert store.coverage("AAPL", "1m") == [CoverageInterval(ts[0], ts[10]),  # ...but is marked missing
                                                CoverageInterval(ts[20], ts[-1] + MINUTE_US)]


def test_the_first_read_of_a_damaged_file_fails_once_then_sees_a_gap(
        filled: tuple[Path, pa.Table, pa.Table, pa.Table]) -> None:
    root, a23, _, _ = filled
    with LocalStore(root, cache_bytes=0) as store:
        victim = store.files("AAPL", "1m")[1]
        _flip(victim)
        with pytest.raises(CorruptData) as info:
            store.read("AAPL", "1m")
        assert str(victim) in str(info.value)
        assert any("set aside" in n or "moved" in n for n in getattr(info.value, "__notes__", []))
        assert_bars_equal(store.read("AAPL", "1m"), a23)  # no crash loop: the range is just missing
        assert store.verify().ok


def test_a_file_missing_from_disk_is_reported_not_retried_forever(
        filled: tuple[Path, pa.Table, pa.Table, pa.Table]) -> None:
    root, a23, _, _ = filled
    with LocalStore(root, cache_bytes=0) as store:
        victim = store.files("AAPL", "1m")[1]
        victim.unlink()
        with pytest.raises(CorruptData, match="missing"):
            store.latest("AAPL", "1m", 5)
        assert_bars_equal(store.latest("AAPL", "1m", 5), a23.slice(35))


@pytest.mark.parametrize("damage", [_flip, lambda p: p.unlink()])
def test_a_write_many_that_meets_a_damaged_file_fails_once_then_writes(
        filled: tuple[Path, pa.Table, pa.Table, pa.Table], damage: Callable[[Path], None]) -> None:
    root, a23, a24, msft = filled
    with LocalStore(root, cache_bytes=0) as store:
        victim = store.files("AAPL", "1m")[1]  # the 2024 file, which the write overlaps
        damage(victim)
        items = [("MSFT", "1m", make_bars(_minutes(Y2024_US + 86_400_000_000, 12), version=1)),
                 ("AAPL", "1m", a24.slice(0, 5))]
        with pytest.raises(CorruptData) as info:
            store.write_many(items)
        assert str(victim) in str(info.value)
        assert_bars_equal(store.read("MSFT", "1m"), msft)  # nothing of the call was written
        receipts = store.write_many(items)  # the damaged file was set aside: a gap, not an error
        assert [r.rows_new for r in receipts] == [2, 5]
        assert_bars_equal(store.read("AAPL", "1m"), pa.concat_tables([a23, a24.slice(0, 5)]))
        assert store.verify().ok


def test_setting_aside_a_file_compacted_meanwhile_touches_nothing(tmp_path: Path) -> None:
    # SQLite reuses the row ids of deleted rows: after a compaction the merged file can
    # carry the id of a file it replaced. A verify that listed before the compaction must
    # not take the new file for the old (missing) one.
    ts = _minutes(Y2024_US, 30)
    with LocalStore(tmp_path, background_compaction=False) as store:
        store.write("AAPL", "1m", make_bars(ts[:10]))
        store.write("AAPL", "1m", make_bars(ts[10:20]))
        store.write("AAPL", "1m", make_bars(ts[20:]))
        key = SeriesKey("AAPL", "1m")
        core = store._core
        _, stale = core.listing(key)
        assert store.compact() == 1
        _, fresh = core.listing(key)
        assert fresh[0].id in {s.id for s in stale}  # the id was reused
        assert _maintenance._set_aside(core, key, [(s, "missing") for s in stale]) == []
        assert_bars_equal(store.read("AAPL", "1m"), make_bars(ts))
        assert store.verify().ok
