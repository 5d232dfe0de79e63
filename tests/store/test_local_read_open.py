"""Opening a store on a cold page cache: the catalog prefetch is a harmless hint.

``Catalog`` asks the kernel to read the catalog file (and its WAL) in one request before
SQLite touches it page by page. The hint must never change what is read, nor fail on a
new store (no file yet) or a file it cannot open.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tickvault.model import BAR_SCHEMA
from tickvault.store.local import LocalStore
from tickvault.store.local._catalog import _prefetch


def _bars(n: int) -> pa.Table:
    ts = np.arange(n, dtype=np.int64) * 60_000_000 + 1_700_000_000_000_000
    px = np.round(100 + np.arange(n) * 0.01, 2)
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "open": px, "high": px, "low": px, "close": px,
        "volume": np.ones(n), "vwap": px, "trade_count": pa.array(np.ones(n, dtype=np.int64)),
        "provider": pa.array(["sim"] * n).dictionary_encode(),
    }).cast(BAR_SCHEMA)


def _evict(root: Path) -> None:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def test_prefetch_ignores_missing_files(tmp_path: Path) -> None:
    _prefetch(tmp_path / "absent.sqlite")  # new store: nothing to read, no error


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="posix_fadvise is Linux-only")
def test_cold_open_reads_the_same_rows(tmp_path: Path) -> None:
    table = _bars(3000)
    with LocalStore(tmp_path / "s") as store:
        store.write("AAA", "1m", table)
        store.write("BBB", "1m", table.slice(0, 10))
        with LocalStore(tmp_path / "s") as other:  # keeps the WAL alive: both files get the hint
            _evict(tmp_path / "s")
            with LocalStore(tmp_path / "s") as third:
                assert third.read("AAA", "1m").equals(table)
            assert other.read("BBB", "1m").equals(table.slice(0, 10))
    _evict(tmp_path / "s")
    with LocalStore(tmp_path / "s") as cold:
        assert cold.read("AAA", "1m").equals(table)
        assert [s.symbol for s in cold.series()] == ["AAA", "BBB"]


def test_close_frees_the_decoded_tables(tmp_path: Path) -> None:
    # A closed store keeps no decoded file alive: its memory (recycled block memory
    # included, see tickvault.model._memory) is free for the next store's reads.
    table = _bars(60_000)
    with LocalStore(tmp_path / "s") as store:
        store.write("AAA", "1m", table)
    store = LocalStore(tmp_path / "s")
    got = store.read("AAA", "1m")
    assert got.equals(table)
    reader = store._core.reader
    assert reader._tables
    del got
    store.close()
    assert not reader._tables
    assert reader._used == 0
