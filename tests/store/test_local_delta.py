"""Small upsert deltas (inline Arrow IPC BLOBs in the catalog) and the one-``syncfs`` publication.

A small write to a series that already holds rows is an inline delta: an Arrow IPC file
(packed with the call's other deltas, its buffers LZ4-compressed), stored as a BLOB in the
catalog in the same transaction as its manifest row (no file). Compaction turns deltas back
into Parquet. These tests read deltas (alone and mixed with Parquet files), compact them,
damage them, crash at every step of a call that mixes them with new Parquet files, check
when the store may make a call's files durable with one ``syncfs``, and read the delta
*files* (``.arrow``) of stores written before inline deltas, including their version-1
catalog.
"""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
import zstandard

from tickvault.errors import CorruptData
from tickvault.model import BAR_SCHEMA
from tickvault.store.local import FileSystem, LocalStore
from tickvault.store.local import _delta as delta_module
from tickvault.store.local import _fs as fs_module
from tickvault.store.local import _store as store_module
from tickvault.store.local import _writer as writer_module
from tickvault.store.local._catalog import NewSegment, Segment
from tickvault.store.local._core import compaction_plan, output_seq
from tickvault.store.local._delta import (
    DELTA_MAX_ROWS,
    compress_delta,
    decode_delta,
    decode_inline,
    encode_delta,
)
from tickvault.store.local._layout import Layout, SeriesKey
from tickvault.store.local._writer import SYNC_ALL_MIN_FILES
from tickvault.store.memory import MemoryStore
from tickvault.testing.conformance import MINUTE_US, T0_US, assert_bars_equal, bars_to_rows, make_bars
from tickvault.testing.faults import PowerLossFS, SimulatedCrash

Y2024_US = 1_704_067_200_000_000
Y2025_US = 1_735_689_600_000_000


def _minutes(start: int, count: int, first: int = T0_US) -> list[int]:
    return [first + (start + i) * MINUTE_US for i in range(count)]


def _kinds(store: LocalStore, symbol: str) -> list[str]:
    """The kind of each manifest entry of a series, in publication order."""
    return ["." + s.path.rsplit(".", 1)[1] for s in store._core.listing(SeriesKey.of(symbol, "1m"))[1]]


def _catalog(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "catalog.sqlite")


def _blobs(root: Path) -> dict[str, bytes]:
    """Manifest path of every inline delta -> the BLOB holding it (its pack's, or its own)."""
    con = _catalog(root)
    try:
        rows = con.execute("SELECT g.path, p.data FROM segments g JOIN packs p ON p.id = g.pack "
                           "UNION ALL SELECT path, data FROM deltas").fetchall()
        return {r[0]: bytes(r[1]) for r in rows}
    finally:
        con.close()


def _packs(root: Path) -> dict[int, list[str]]:
    """Every pack in the catalog -> the manifest paths using it (a pack nobody uses: [])."""
    con = _catalog(root)
    try:
        out: dict[int, list[str]] = {r[0]: [] for r in con.execute("SELECT id FROM packs")}
        for pack, path in con.execute("SELECT pack, path FROM segments WHERE pack IS NOT NULL ORDER BY pack_row"):
            out.setdefault(pack, []).append(path)
        return out
    finally:
        con.close()


def _damage_blob(root: Path, path: str, change: object) -> None:
    """Apply ``change`` to the BLOB holding the inline delta ``path`` (its pack, or its own BLOB)."""
    con = _catalog(root)
    with con:
        pack = con.execute("SELECT pack FROM segments WHERE path = ?", (path,)).fetchone()[0]
        if pack is None:
            blob = bytes(con.execute("SELECT data FROM deltas WHERE path = ?", (path,)).fetchone()[0])
            con.execute("UPDATE deltas SET data = ? WHERE path = ?", (change(blob), path))  # type: ignore[operator]
        else:
            blob = bytes(con.execute("SELECT data FROM packs WHERE id = ?", (pack,)).fetchone()[0])
            con.execute("UPDATE packs SET data = ? WHERE id = ?", (change(blob), pack))  # type: ignore[operator]
    con.close()


def _flip(blob: bytes) -> bytes:
    data = bytearray(blob)
    data[len(data) // 2] ^= 0x5A
    return bytes(data)


def test_a_small_write_to_a_stored_series_is_an_inline_delta_read_back_exactly(tmp_path: Path) -> None:
    oracle = MemoryStore()
    with LocalStore(tmp_path) as store:
        for s in (store, oracle):
            s.write("AAPL", "1m", make_bars(_minutes(0, 100), vwap=True, trade_count=True))
        assert _kinds(store, "AAPL") == [".parquet"]  # a series' first write is Parquet
        files_before = sorted((tmp_path / "bars").rglob("*"))
        for s in (store, oracle):
            s.write("AAPL", "1m", make_bars(_minutes(50, 100), version=1, vwap=True))
        assert _kinds(store, "AAPL") == [".parquet", ".inline"]
        assert sorted((tmp_path / "bars").rglob("*")) == files_before  # no file, no folder
        assert len(store.files("AAPL", "1m")) == 1  # files() lists files only
        (_, blob), = _blobs(tmp_path).items()
        # A small pack's BLOB is one zstd frame of a plain Arrow IPC file of the bar schema.
        table = ipc.open_file(pa.py_buffer(zstandard.ZstdDecompressor().decompress(blob))).read_all()
        assert table.schema.remove_metadata() == BAR_SCHEMA
        assert table.num_rows == 100  # 50 changed rows, 50 new
    with LocalStore(tmp_path, cache_bytes=0) as store:  # decoded from the catalog, not the write cache
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        lo, hi = _minutes(40, 1)[0], _minutes(120, 1)[0]
        assert_bars_equal(store.read("AAPL", "1m", lo, hi, columns=["close", "vwap"]),
                          oracle.read("AAPL", "1m", lo, hi, columns=["close", "vwap"]))
        assert_bars_equal(store.latest("AAPL", "1m", 7), oracle.latest("AAPL", "1m", 7))
        assert store.verify().ok


def test_delta_encoding_round_trips_bit_for_bit() -> None:
    table = make_bars(_minutes(0, 64), vwap=True, trade_count=True)
    prices = table.column("close").to_numpy().copy()
    prices[:4] = [np.nan, -0.0, np.inf, 5e-324]
    table = table.set_column(4, "close", pa.array(prices))
    for back in (decode_delta(encode_delta(table)), decode_inline(compress_delta(encode_delta(table))),
                 decode_inline(encode_delta(table).to_pybytes())):  # an inline BLOB may be plain IPC too
        assert back.schema == BAR_SCHEMA
        assert bars_to_rows(back) == bars_to_rows(table)
    assert decode_delta(encode_delta(table), ["vwap"]).column_names == ["ts", "vwap"]
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:  # the right columns, but no format marker
        writer.write_table(table)
    with pytest.raises(ValueError, match="not a tickvault delta"):
        decode_delta(sink.getvalue())
    with pytest.raises(ValueError, match="not an inline tickvault delta"):
        decode_inline(b"PAR1 is not a delta")


def test_big_writes_stay_parquet(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 10)))
        store.write("AAPL", "1m", make_bars(_minutes(5, DELTA_MAX_ROWS + 1), version=1))
        assert _kinds(store, "AAPL") == [".parquet", ".parquet"]
        store.write("AAPL", "1m", make_bars(_minutes(0, DELTA_MAX_ROWS), version=2))
        assert _kinds(store, "AAPL")[-1] == ".inline"


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
        assert sorted(set(_kinds(store, "AAPL"))) == [".inline", ".parquet"]
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        assert store.compact() == 1
        assert _kinds(store, "AAPL") == [".parquet", ".parquet"]  # one Parquet file per partition
        assert _blobs(tmp_path) == {}  # the compaction's commit dropped the BLOBs
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))


def test_compact_turns_a_lone_delta_into_parquet(tmp_path: Path) -> None:
    with LocalStore(tmp_path) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 10, Y2024_US)))
        store.write("AAPL", "1m", make_bars(_minutes(0, 10, Y2025_US)))  # a new partition, as a delta
        assert _kinds(store, "AAPL") == [".parquet", ".inline"]
        before = store.read("AAPL", "1m")
        assert store.compact() == 1
        assert _kinds(store, "AAPL") == [".parquet", ".parquet"]
        assert_bars_equal(store.read("AAPL", "1m"), before)
        assert store.compact() == 0  # nothing left to do
        assert _blobs(tmp_path) == {}


def test_automatic_compaction_folds_deltas_into_parquet(tmp_path: Path) -> None:
    oracle = MemoryStore()
    with LocalStore(tmp_path, compact_threshold=3, background_compaction=False) as store:
        for i in range(6):
            for s in (store, oracle):
                s.write("AAPL", "1m", make_bars(_minutes(10 * i, 20), version=i))
        assert len(_kinds(store, "AAPL")) <= 3
        assert ".parquet" in _kinds(store, "AAPL")
        assert len(_blobs(tmp_path)) == _kinds(store, "AAPL").count(".inline")
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))


@pytest.mark.parametrize("background", [False, True])
def test_automatic_compaction_leaves_the_newest_file_as_written(tmp_path: Path, background: bool) -> None:
    """The newest delta (what the next write revises) stays out of the merge, still cached;
    the merged file takes the highest sequence number it replaces, so the newest rows win."""
    oracle = MemoryStore()
    key = SeriesKey("AAPL", "1m")
    with LocalStore(tmp_path, compact_threshold=4, background_compaction=background) as store:
        for s in (store, oracle):
            s.write("AAPL", "1m", make_bars(_minutes(0, 300)))
        for i in range(1, 12):
            # Each write revises the previous one's last 5 bars and adds 10: every delta
            # overlaps the one before it, so a wrong order of files shows in the values.
            for s in (store, oracle):
                s.write("AAPL", "1m", make_bars(_minutes(300 + 10 * i - 5, 15), version=i))
            store.wait_for_compaction()
            segs = store._core.listing(key)[1]
            newest = max(segs, key=lambda g: g.seq)
            assert newest.path.endswith(".inline")  # never merged by the write that made it
            assert store._core.reader._cached(f"#pack/{newest.pack}") is not None
            assert len(segs) <= 4
            assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        seqs = sorted(g.seq for g in segs)
        assert len(seqs) == len(set(seqs))  # one file per sequence number in the partition
        assert ".parquet" in _kinds(store, "AAPL")
        # compact() still merges everything, the newest file included.
        assert store.compact() == 1
        assert _kinds(store, "AAPL") == [".parquet"]
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
    with LocalStore(tmp_path) as store:
        assert store.verify().ok
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))


def test_output_seq_is_fresh_unless_a_newer_file_stays() -> None:
    def seg(seq: int, rows: int) -> Segment:
        return Segment(seq, 1, "2024", seq, f"p{seq}.inline", rows, seq, seq, 1, 0)

    group = [seg(1, 1000), *[seg(s, 10) for s in range(2, 7)]]
    pick = compaction_plan(group, 5)
    assert pick is not None
    assert [g.seq for g in pick] == [2, 3, 4, 5]  # the base and the newest file stay
    assert output_seq(group, pick, 7) == 5
    assert output_seq(group, group, 7) == 7  # everything merged: a fresh number
    # Below a threshold of 3 the newest file is not left out (else every write would compact again).
    assert compaction_plan(group[:3], 2) == group[:3][1:]
    # Deltas past a quarter of the base: the base is rewritten too, the newest still stays.
    heavy = [seg(1, 100), *[seg(s, 10) for s in range(2, 7)]]
    assert [g.seq for g in compaction_plan(heavy, 5) or []] == [1, 2, 3, 4, 5]


def _stored_delta(root: Path) -> str:
    with LocalStore(root) as store:
        store.write("AAPL", "1m", make_bars(_minutes(0, 50)))
        store.write("AAPL", "1m", make_bars(_minutes(100, 20)))
        assert _kinds(store, "AAPL") == [".parquet", ".inline"]
        return store._core.listing(SeriesKey("AAPL", "1m"))[1][1].path


def test_a_damaged_delta_is_corrupt_data_then_set_aside(tmp_path: Path) -> None:
    delta = _stored_delta(tmp_path)
    _damage_blob(tmp_path, delta, _flip)
    with LocalStore(tmp_path) as store:
        with pytest.raises(CorruptData, match="checksum") as err:
            store.read("AAPL", "1m")
        assert err.value.context["path"] == str(tmp_path / delta)
        assert store.read("AAPL", "1m").num_rows == 50  # set aside: the next read sees the gap
        assert _kinds(store, "AAPL") == [".parquet"]
    assert _blobs(tmp_path) == {}
    assert _packs(tmp_path) == {}
    aside, = (tmp_path / "damaged" / "packs").iterdir()
    assert aside.is_file()  # the damaged pack's bytes, kept for inspection


@pytest.mark.parametrize("change", [lambda b: b[:-10], lambda b: b"", _flip,
                                    lambda b: zstandard.ZstdCompressor().compress(b"ARROW1 but not IPC")])
def test_verify_checks_deltas(tmp_path: Path, change: object) -> None:
    delta = _stored_delta(tmp_path)
    with LocalStore(tmp_path) as store:
        assert store.verify().ok
    _damage_blob(tmp_path, delta, change)
    con = _catalog(tmp_path)
    with con:  # a BLOB damaged so that it still matches its manifest row: only decoding can tell
        blob = _blobs(tmp_path)[delta]
        con.execute("UPDATE segments SET bytes = ?, crc32 = ? WHERE path = ?",
                    (len(blob), zlib.crc32(blob), delta))
    con.close()
    with LocalStore(tmp_path) as store:
        report = store.verify()
        assert [path for path, _ in report.damaged] == [str(tmp_path / delta)]
        assert store.read("AAPL", "1m").num_rows == 50


def test_a_delta_gone_from_the_catalog_is_missing_not_retried_forever(tmp_path: Path) -> None:
    _stored_delta(tmp_path)
    con = _catalog(tmp_path)
    with con:
        con.execute("DELETE FROM packs")
    con.close()
    with LocalStore(tmp_path, cache_bytes=0) as store:
        with pytest.raises(CorruptData, match="missing"):
            store.read("AAPL", "1m")
        assert store.read("AAPL", "1m").num_rows == 50
        assert store.verify().ok
    assert not (tmp_path / "damaged").exists()


# -- packs: the inline deltas of one call, encoded together ------------------------------

PACKED = [f"P{i}" for i in range(10)]


def _packed_store(root: Path, oracle: MemoryStore, monkeypatch: pytest.MonkeyPatch | None = None,
                  symbols: list[str] = PACKED) -> None:
    if monkeypatch is not None:
        monkeypatch.setattr(writer_module, "PACK_ROWS", 100)  # 10 x 30 rows -> 3 packs
    with LocalStore(root) as store:
        for s in (store, oracle):
            s.write_many([(sym, "1m", make_bars(_minutes(0, 50), vwap=True)) for sym in symbols])
            s.write_many([(sym, "1m", make_bars(_minutes(40 + i, 30), version=i + 1, trade_count=True))
                          for i, sym in enumerate(symbols)])


def test_big_packs_are_lz4_buffered_and_every_pack_form_reads(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Packs of at least LZ4_MIN_ROWS rows are IPC files with LZ4 buffers; a store may also
    hold zstd-framed packs (small ones, and every pack of earlier stores) and plain ones."""
    monkeypatch.setattr(delta_module, "LZ4_MIN_ROWS", 50)  # the ~100-row packs below are "big"
    oracle = MemoryStore()
    _packed_store(tmp_path, oracle, monkeypatch)
    con = _catalog(tmp_path)
    try:
        packs = con.execute("SELECT id, data FROM packs ORDER BY id").fetchall()
        assert len(packs) == 3
        for _, blob in packs:
            assert bytes(blob[:6]) == b"ARROW1"
            plain = encode_delta(ipc.open_file(pa.py_buffer(blob)).read_all()).to_pybytes()
            assert len(blob) < len(plain)  # the buffers are compressed
        # The second pack as earlier stores wrote every pack, the third as a plain IPC file.
        for (pack_id, blob), form in zip(packs[1:], ("zstd", "plain"), strict=True):
            plain_buf = encode_delta(ipc.open_file(pa.py_buffer(blob)).read_all())
            data = compress_delta(plain_buf) if form == "zstd" else plain_buf.to_pybytes()
            con.execute("UPDATE packs SET data = ? WHERE id = ?", (data, pack_id))
            con.execute("UPDATE segments SET bytes = ?, crc32 = ? WHERE pack = ?",
                        (len(data), zlib.crc32(data), pack_id))
        con.commit()
    finally:
        con.close()
    with LocalStore(tmp_path, cache_bytes=0) as store:
        for sym in PACKED:
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
        assert store.verify().ok
    in_first = _packs(tmp_path)[packs[0][0]]  # the first pack's deltas: P0, P1, P2
    _damage_blob(tmp_path, in_first[0], _flip)  # a flipped byte in LZ4 data: the manifest's CRC32 catches it
    with LocalStore(tmp_path, cache_bytes=0) as store:
        assert sorted(path for path, _ in store.verify().damaged) == sorted(str(tmp_path / p) for p in in_first)
        assert store.compact() > 0
        for sym in PACKED[len(in_first):]:  # the series of the other two packs
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))


def test_a_write_many_packs_its_inline_deltas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    oracle = MemoryStore()
    _packed_store(tmp_path, oracle, monkeypatch)
    packs = _packs(tmp_path)
    # Consecutive deltas of ~100 rows per pack, in the items' order.
    assert [len(v) for v in packs.values()] == [3, 4, 3]
    assert [p.split("symbol=")[1].split("/")[0] for v in packs.values() for p in v] == PACKED
    blob = next(iter(_blobs(tmp_path).values()))  # one zstd frame of one IPC file with every row
    table = ipc.open_file(pa.py_buffer(zstandard.ZstdDecompressor().decompress(blob))).read_all()
    assert table.num_rows == 90
    with LocalStore(tmp_path, cache_bytes=0) as store:
        for sym in PACKED:
            assert _kinds(store, sym) == [".parquet", ".inline"]
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
            assert_bars_equal(store.latest(sym, "1m", 5), oracle.latest(sym, "1m", 5))
            lo, hi = _minutes(45, 1)[0], _minutes(60, 1)[0]
            assert_bars_equal(store.read(sym, "1m", lo, hi, columns=["close"]),
                              oracle.read(sym, "1m", lo, hi, columns=["close"]))
        assert store.verify().ok
    with LocalStore(tmp_path) as store:  # through the decoded-pack cache, and as written
        for sym in PACKED:
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
        for s in (store, oracle):
            s.write_many([(sym, "1m", make_bars(_minutes(60, 30), version=9)) for sym in PACKED])
        for sym in PACKED:
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))


def test_a_damaged_pack_fails_each_series_using_it_and_healing_one_keeps_the_others(
        tmp_path: Path) -> None:
    oracle = MemoryStore()
    symbols = PACKED[:3]
    _packed_store(tmp_path, oracle, symbols=symbols)
    (pack, paths), = _packs(tmp_path).items()
    good = _blobs(tmp_path)[paths[0]]
    _damage_blob(tmp_path, paths[0], _flip)
    with LocalStore(tmp_path, cache_bytes=0) as store:
        with pytest.raises(CorruptData, match="checksum") as err:
            store.read("P0", "1m")
        assert err.value.context["path"] == str(tmp_path / paths[0])
        assert store.read("P0", "1m").num_rows == 50  # only P0's delta was set aside
        assert _packs(tmp_path) == {pack: paths[1:]}  # the pack stays for the other series
        with pytest.raises(CorruptData, match="checksum"):  # damaged for them too: never wrong values
            store.read("P1", "1m")
        assert _packs(tmp_path) == {pack: paths[2:]}
    _damage_blob(tmp_path, paths[2], lambda _: good)  # the bytes come back: P2 never lost its rows
    with LocalStore(tmp_path, cache_bytes=0) as store:
        assert_bars_equal(store.read("P2", "1m"), oracle.read("P2", "1m"))
        assert store.verify().ok
        _damage_blob(tmp_path, paths[2], _flip)
        report = store.verify()
        assert [p for p, _ in report.damaged] == [str(tmp_path / paths[2])]
        assert _packs(tmp_path) == {}  # gone with the last manifest row using it
        assert [store.read(sym, "1m").num_rows for sym in symbols] == [50, 50, 50]
    assert [p.name for p in (tmp_path / "damaged" / "packs").iterdir()] == [f"pack-{pack}.inline"]


def test_compacting_one_series_keeps_the_pack_for_the_others(tmp_path: Path) -> None:
    oracle = MemoryStore()
    _packed_store(tmp_path, oracle, symbols=PACKED[:2])
    (pack, paths), = _packs(tmp_path).items()
    with LocalStore(tmp_path, cache_bytes=0) as store:
        assert store.compact("P0") == 1
        assert _packs(tmp_path) == {pack: paths[1:]}
        for sym in PACKED[:2]:
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
        store.delete_range("P1", "1m", *_minutes(45, 2)[::1])
        oracle.delete_range("P1", "1m", *_minutes(45, 2)[::1])
        assert _packs(tmp_path) == {}  # delete_range rewrote P1's partition
        assert_bars_equal(store.read("P1", "1m"), oracle.read("P1", "1m"))


def test_a_write_many_in_steps_diffs_and_packs_like_one_step(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A call's series are diffed in steps of about PACK_ROWS input rows (each step's packs
    encode while the next step is diffed), its small items joined on the thread pool:
    receipts and rows are those of one step on this thread."""
    symbols = [f"S{i:02d}" for i in range(12)]

    def items(version: int) -> list[tuple[str, str, pa.Table]]:
        out: list[tuple[str, str, pa.Table]] = []
        for i, sym in enumerate(symbols):
            # 30 revised + 10 unchanged + 20 new rows; S03 twice (per-series diff), S05 unsorted.
            revised = make_bars(_minutes(20, 30), version=version)
            rows = pa.concat_tables([make_bars(_minutes(10, 10)), revised, make_bars(_minutes(50, 20))])
            if i == 5:
                rows = rows.take(np.arange(rows.num_rows)[::-1])
            out.append((sym, "1m", rows))
            if i == 3:
                out.append((sym, "1m", make_bars(_minutes(45, 10), version=version + 1)))
        return out[::-1] if version == 2 else out  # steps follow the items, not the symbols

    calls: list[int] = []
    step = LocalStore._diff_step

    def counted(self: LocalStore, keys: list[SeriesKey], *args: object) -> object:
        calls.append(len(keys))
        return step(self, keys, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalStore, "_diff_step", counted)
    results = {}
    for steps in (False, True):
        if steps:  # steps and packs of ~100 rows; the items joined on the thread pool
            monkeypatch.setattr(store_module, "PACK_ROWS", 100)
            monkeypatch.setattr(writer_module, "PACK_ROWS", 100)
            monkeypatch.setattr(store_module, "_PARALLEL_JOIN_ROWS", 1)
        calls.clear()
        root = tmp_path / str(steps)
        with LocalStore(root) as store:
            store.write_many([(sym, "1m", make_bars(_minutes(0, 40))) for sym in symbols])
            receipts = [store.write_many(items(v)) for v in (1, 2)]
            results[steps] = ([[(r.rows_new, r.rows_changed, r.rows_unchanged, r.first_us, r.last_us)
                                for r in rs] for rs in receipts],
                              {sym: store.read(sym, "1m") for sym in symbols})
            assert store.verify().ok
        # The load (40 rows per series), then two upserts (60).
        assert calls == ([3] * 4 + [2] * 6 * 2 if steps else [12] * 3)
        packs = _packs(root)
        assert len(packs) > 2 if steps else len(packs) == 2  # one pack per call, or several
    oracle = MemoryStore()
    oracle.write_many([(sym, "1m", make_bars(_minutes(0, 40))) for sym in symbols])
    expected = [oracle.write_many(items(v)) for v in (1, 2)]
    for steps, (receipts, reads) in results.items():
        assert receipts == [[(r.rows_new, r.rows_changed, r.rows_unchanged, r.first_us, r.last_us) for r in rs]
                            for rs in expected], steps
        for sym in symbols:
            assert_bars_equal(reads[sym], oracle.read(sym, "1m"))


def test_a_pack_leaves_the_decoded_file_cache_with_its_last_delta(tmp_path: Path) -> None:
    oracle = MemoryStore()
    _packed_store(tmp_path, oracle, symbols=PACKED[:2])
    (pack, _paths), = _packs(tmp_path).items()
    with LocalStore(tmp_path) as store:
        cached = store._core.reader._tables
        assert_bars_equal(store.read("P0", "1m"), oracle.read("P0", "1m"))  # decodes and caches the pack
        assert f"#pack/{pack}" in cached
        assert store.compact("P0") == 1
        assert f"#pack/{pack}" in cached  # P1 still uses it
        assert store.compact("P1") == 1
        assert _packs(tmp_path) == {}
        assert not [k for k in cached if k.startswith("#pack/")]
        for sym in PACKED[:2]:
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))


def test_a_pack_id_is_never_reused(tmp_path: Path) -> None:
    # The decoded-pack cache is keyed by id: a new pack must never get a deleted one's id.
    oracle = MemoryStore()
    with LocalStore(tmp_path) as store:
        for s in (store, oracle):
            s.write("AAPL", "1m", make_bars(_minutes(0, 50)))
        seen: list[int] = []
        for v in range(1, 4):
            for s in (store, oracle):
                s.write("AAPL", "1m", make_bars(_minutes(10, 5), version=v))
            seen.extend(_packs(tmp_path))
            assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
            store.compact()
            assert _packs(tmp_path) == {}
        assert len(set(seen)) == 3


# -- stores written before inline deltas -------------------------------------------------

def _old_delta(store: LocalStore, symbol: str, rows: pa.Table, *, inline: bool) -> str:
    """Commit ``rows`` the way an older tickvault did; return the manifest path.

    ``inline``: a BLOB of its own in ``deltas`` (schema version 2); else an ``.arrow`` file
    (before inline deltas).
    """
    core = store._core
    key = SeriesKey.of(symbol, "1m")
    series, _ = core.listing(key)
    assert series is not None
    ts = rows.column("ts").cast(pa.int64()).to_numpy()
    suffix = ".inline" if inline else ".arrow"
    rel = Layout.segment_rel(key, "2024", series.next_seq, "0ldbl0b5" if inline else "0ldf0rma", suffix)
    data = compress_delta(encode_delta(rows)) if inline else encode_delta(rows).to_pybytes()
    if not inline:
        core.fs.ensure_dirs([core.layout.abs(rel).parent])
        core.fs.publish(core.layout.abs(rel), memoryview(data))
    seg = NewSegment("2024", series.next_seq, rel, rows.num_rows, int(ts[0]), int(ts[-1]), len(data),
                     zlib.crc32(data), data if inline else None)
    core.commit(key, series, add=[seg], remove=[], rows=series.rows + rows.num_rows, touched=True)
    return rel


def test_an_older_store_with_delta_files_and_a_version_1_catalog_still_reads(tmp_path: Path) -> None:
    oracle = MemoryStore()
    base = make_bars(_minutes(0, 50, Y2024_US))
    old = make_bars(_minutes(100, 20, Y2024_US))
    with LocalStore(tmp_path) as store:
        for s in (store, oracle):
            s.write("AAPL", "1m", base)
        _old_delta(store, "AAPL", old, inline=False)
        oracle.write("AAPL", "1m", old)
    _downgrade(tmp_path, "1")  # back to the catalog of that version: no deltas table, no packs
    with LocalStore(tmp_path, cache_bytes=0) as store:  # upgraded in place on open
        assert _kinds(store, "AAPL") == [".parquet", ".arrow"]
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        assert store.verify().ok
        for s in (store, oracle):  # a new small upsert is inline, over the old delta file
            s.write("AAPL", "1m", make_bars(_minutes(110, 20, Y2024_US), version=1))
        assert _kinds(store, "AAPL") == [".parquet", ".arrow", ".inline"]
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        assert store.compact() == 1
        assert _kinds(store, "AAPL") == [".parquet"]
        assert not list((tmp_path / "bars").rglob("*.arrow"))
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
    con = _catalog(tmp_path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "3"
    con.close()


def _downgrade(root: Path, version: str) -> None:
    """Turn a catalog back into one of schema ``version`` ("1" or "2"), as that tickvault made it."""
    con = _catalog(root)
    with con:
        assert con.execute("SELECT COUNT(*) FROM packs").fetchone()[0] == 0
        con.execute("DROP TRIGGER packs_follow_segments")
        con.execute("DROP INDEX segments_by_pack")
        con.execute("DROP TABLE packs")
        con.execute("ALTER TABLE segments DROP COLUMN pack")
        con.execute("ALTER TABLE segments DROP COLUMN pack_row")
        if version == "1":
            con.execute("DROP TRIGGER deltas_follow_segments")
            con.execute("DROP TABLE deltas")
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    con.close()


def test_a_version_2_store_with_inline_blobs_reads_upgrades_and_compacts(tmp_path: Path) -> None:
    oracle = MemoryStore()
    with LocalStore(tmp_path) as store:
        for s in (store, oracle):
            s.write_many([(sym, "1m", make_bars(_minutes(0, 50, Y2024_US))) for sym in ("AAPL", "MSFT")])
        old = {sym: make_bars(_minutes(40, 20, Y2024_US), version=1) for sym in ("AAPL", "MSFT")}
        paths = {sym: _old_delta(store, sym, rows, inline=True) for sym, rows in old.items()}
        for sym, rows in old.items():
            oracle.write(sym, "1m", rows)
    assert set(_blobs(tmp_path)) == set(paths.values())
    _damage_blob(tmp_path, paths["MSFT"], _flip)
    _downgrade(tmp_path, "2")
    with LocalStore(tmp_path, cache_bytes=0) as store:  # upgraded in place on open
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        with pytest.raises(CorruptData, match="checksum"):  # a damaged old BLOB is still caught
            store.read("MSFT", "1m")
        assert (tmp_path / "damaged" / paths["MSFT"].removeprefix("bars/")).is_file()
        assert store.read("MSFT", "1m").num_rows == 50
        for s in (store, oracle):  # new deltas are packed, next to the old BLOB
            s.write_many([(sym, "1m", make_bars(_minutes(55, 10, Y2024_US), version=2)) for sym in ("AAPL", "MSFT")])
        assert _kinds(store, "AAPL") == [".parquet", ".inline", ".inline"]
        assert len(_packs(tmp_path)) == 1
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
        assert store.verify().ok
        assert store.compact() == 2
        assert _blobs(tmp_path) == {}
        assert _packs(tmp_path) == {}
        assert_bars_equal(store.read("AAPL", "1m"), oracle.read("AAPL", "1m"))
    con = _catalog(tmp_path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "3"
    con.close()


def test_a_catalog_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    LocalStore(tmp_path).close()
    con = _catalog(tmp_path)
    with con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(Exception, match="schema version 99"):
        LocalStore(tmp_path)


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
NEW = [f"N{i:02d}" for i in range(SYNC_ALL_MIN_FILES + 1)]  # new series: their first files are Parquet


def _setup(store: LocalStore | MemoryStore) -> None:
    store.write_many([(s, "1m", make_bars(_minutes(0, 30))) for s in SYMBOLS])


def _upsert(store: LocalStore | MemoryStore) -> None:
    # One call: inline deltas for the stored series, Parquet files for the new ones.
    store.write_many([(s, "1m", make_bars(_minutes(20, 20), version=1)) for s in SYMBOLS]
                     + [(s, "1m", make_bars(_minutes(5, 10))) for s in NEW])


def _state(store: LocalStore | MemoryStore) -> list[list[tuple[object, ...]]]:
    return [bars_to_rows(store.read(s, "1m")) for s in SYMBOLS + NEW]


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
    # Files are written and renamed without per-file syncs, then one syncfs, then the commit
    # (which also carries the inline deltas).
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
            listed = {p for s in SYMBOLS + NEW for p in store.files(s, "1m")}
            on_disk = {p for p in (root / "bars").rglob("*") if p.is_file()}
            assert on_disk == listed, f"stray files after a crash before step {n}: {on_disk - listed}"
            inline = {seg.path for s in SYMBOLS for seg in store._core.listing(SeriesKey(s, "1m"))[1]
                      if seg.path.endswith(".inline")}
            assert inline == set(_blobs(root)), f"inline deltas without manifest rows after step {n}"
            assert len(inline) == (len(SYMBOLS) if state == new else 0)


def test_without_a_syncfs_model_a_fault_injecting_fs_gets_per_file_fsyncs(tmp_path: Path) -> None:
    assert not PowerLossFS().can_sync_all()  # it models fsync_file/fsync_dir, not syncfs
    fs = PowerLossFS()
    with LocalStore(tmp_path, fs=fs) as store:
        _setup(store)
        fs.arm()
        _upsert(store)
        assert fs.trace.count("fsync_file") == len(NEW)  # the inline deltas need none


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
        assert all(_kinds(store, sym) == [".parquet", ".inline"] for sym in SYMBOLS)
        assert all(_kinds(store, sym) == [".parquet"] for sym in NEW)
        assert _state(store) == _state(oracle)
