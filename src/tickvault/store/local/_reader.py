"""Loading published segment files and merging them into one sorted, unique series.

Files are immutable once published (a new version is always a new file name), so the
decoded tables and parsed footers are cached in-process by path with no invalidation
problem: the manifest decides *which* files make up a series, the cache only saves
decoding them again. A pack of inline deltas is decoded and cached once, by its id (never
reused), and each delta in it is a zero-copy slice. The cache is bounded in bytes (LRU).

Merging follows publication order inside each period partition: a later file's row
replaces an earlier one with the same ``ts``. When the files of a partition do not
overlap in time (the common case: a base file plus appended deltas) they are simply
concatenated; otherwise a stable sort keeps the last version of each key.
"""

from __future__ import annotations

import errno
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from tickvault.errors import CorruptData
from tickvault.model import BAR_SCHEMA, dedupe_last
from tickvault.store.local._catalog import Segment
from tickvault.store.local._codec import decode, open_file
from tickvault.store.local._crc import crc32
from tickvault.store.local._delta import decode_delta, decode_inline, is_delta, is_inline
from tickvault.store.local._fs import FileSystem
from tickvault.store.local._layout import Layout

__all__ = ["SegmentReader", "merge_segments", "slice_range", "ts_array"]

_FOOTERS = 8192
_WRITTEN_ROWS = 8192  # files up to this size are cached as written (see keep_written)
# What a damaged Parquet file or delta can raise while being decoded.
_DECODE_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError, IndexError, zstandard.ZstdError)
_ROW_BYTES = 72  # a BAR_SCHEMA row in memory (8 eight-byte columns and a 4-byte dictionary index)


def _pack_key(pack: int) -> str:
    """The decoded-file cache's key of a pack of inline deltas (no manifest path starts with "#")."""
    return f"#pack/{pack}"


def _chunk_ts(chunk: Any) -> np.ndarray:
    """One timestamp Array's values as int64 (the stubs type chunks otherwise)."""
    if chunk.null_count == 0:
        # The values buffer as is (~1 us; a view + to_numpy costs ~15 us).
        return np.frombuffer(chunk.buffers()[1], dtype=np.int64, count=len(chunk), offset=chunk.offset * 8)
    return np.asarray(chunk.view(pa.int64()).to_numpy(zero_copy_only=False))


def ts_array(table: pa.Table) -> np.ndarray:
    """The ``ts`` column as int64 epoch microseconds (numpy)."""
    col = table.column("ts")
    if col.num_chunks == 1:
        return _chunk_ts(col.chunk(0))
    if col.num_chunks == 0:
        return np.zeros(0, dtype=np.int64)
    # Each chunk as above, one copy: a cast of the chunked column costs ~5x more, and a diff
    # of 500 series' stored slices concatenates 500 chunks.
    return np.concatenate([_chunk_ts(c) for c in col.chunks])


def slice_range(table: pa.Table, lo: int | None, hi: int | None) -> pa.Table:
    """Rows of a sorted table with ``lo <= ts < hi`` (zero-copy slice)."""
    if table.num_rows == 0 or (lo is None and hi is None):
        return table
    ts = ts_array(table)
    if (lo is None or ts[0] >= lo) and (hi is None or ts[-1] < hi):  # all of it (a day's delta)
        return table
    a = 0 if lo is None else int(ts.searchsorted(lo, side="left"))
    b = ts.size if hi is None else int(ts.searchsorted(hi, side="left"))
    if a == 0 and b == ts.size:
        return table
    return table.slice(a, max(0, b - a))


def _select(table: pa.Table, columns: Sequence[str] | None) -> pa.Table:
    """``ts`` plus ``columns`` of a decoded file (all of it for ``None``)."""
    return table if columns is None else table.select(["ts", *[c for c in columns if c != "ts"]])


def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables)


def merge_segments(loaded: Sequence[tuple[Segment, pa.Table]]) -> pa.Table:
    """Merge loaded segments (any order) into one sorted table with unique keys.

    Within a period partition later ``seq`` wins; partitions never overlap in time.
    """
    if not loaded:
        return BAR_SCHEMA.empty_table()
    if len(loaded) == 1:
        return loaded[0][1]
    groups: dict[str, list[tuple[Segment, pa.Table]]] = {}
    for seg, table in loaded:
        groups.setdefault(seg.period, []).append((seg, table))
    parts: list[tuple[int, pa.Table]] = []
    for items in groups.values():
        items.sort(key=lambda st: st[0].seq)
        by_time = sorted(items, key=lambda st: st[0].min_us)
        disjoint = all(by_time[i][0].min_us > by_time[i - 1][0].max_us for i in range(1, len(by_time)))
        if disjoint:
            merged = _concat([t for _, t in by_time])
        else:
            # Publication order, then a stable sort: the last version of each key wins.
            stacked = pa.concat_tables([t for _, t in items]).unify_dictionaries().combine_chunks()
            merged = dedupe_last(stacked)
        parts.append((by_time[0][0].min_us, merged))
    parts.sort(key=lambda p: p[0])
    return _concat([t for _, t in parts])


def _decode_delta(path: str, buf: pa.Buffer) -> pa.Table:
    return decode_inline(buf) if is_inline(path) else decode_delta(buf)


class SegmentReader:
    """Loads segment files with footer and decoded-table caches (see the module docstring).

    Parameters
    ----------
    layout
        Paths of the store.
    fs
        File-system layer used to open files.
    cache_bytes
        Budget of the decoded-table cache; ``0`` disables it.
    inline
        The BLOB of a per-path inline delta by manifest path (``None`` once it left the manifest).
    packs
        The BLOB of a pack of inline deltas by pack id (``None`` once no manifest row uses it).
    """

    def __init__(self, layout: Layout, fs: FileSystem, cache_bytes: int,
                 inline: Callable[[str], bytes | None], packs: Callable[[int], bytes | None]) -> None:
        self._layout = layout
        self._fs = fs
        self._inline = inline
        self._packs = packs
        self._budget = cache_bytes
        self._lock = threading.Lock()
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()
        self._used = 0
        self._footers: OrderedDict[str, pq.FileMetaData] = OrderedDict()

    def load(self, seg: Segment, columns: Sequence[str] | None = None) -> pa.Table:
        """The decoded rows of one segment (``ts`` plus ``columns``, or all columns).

        The whole file is read into memory and its CRC32 compared with the manifest
        before a single byte reaches the Parquet decoder: a damaged file becomes a
        :class:`~tickvault.errors.CorruptData`, never a wrong value or a decoder abort.

        An inline delta is read from the catalog instead, with the same checks; a packed
        one is a zero-copy slice of its decoded pack (cached once per pack, by id).

        Raises
        ------
        FileNotFoundError
            If the file (or inline delta) is gone (the caller re-lists the manifest: it
            was compacted away).
        CorruptData
            If the file is damaged or disagrees with its manifest row.
        """
        if seg.pack is not None:
            table, problem = self._packed(seg)
            if problem is not None:
                raise CorruptData(f"stored pack of inline deltas is damaged: {problem}",
                                  path=str(self._layout.abs(seg.path)))
            assert table is not None
            return _select(table, columns)
        hit = self._cached(seg.path)
        if hit is not None:
            return _select(hit, columns)
        path = self._layout.abs(seg.path)
        buf, problem = self._read_checked(seg)
        if problem is not None:
            raise CorruptData(f"stored file is damaged: {problem}", path=str(path))
        # An Arrow IPC delta is decoded (and cached) whole: it costs microseconds.
        delta = is_delta(seg.path)
        try:
            # The whole file's CRC32 was just checked: page CRCs would check the same bytes.
            table = _decode_delta(seg.path, buf) if delta else decode(self._open(seg, buf), columns=columns, buffer=buf)
        except _DECODE_ERRORS as exc:
            raise CorruptData(f"stored file cannot be decoded: {exc}", path=str(path)) from exc
        if table.num_rows != seg.rows:
            raise CorruptData(f"stored file has {table.num_rows} rows, the manifest says {seg.rows}",
                              path=str(path))
        if delta or columns is None:
            self._remember(seg.path, table)
        return _select(table, columns) if delta else table

    def _cached(self, key: str) -> pa.Table | None:
        with self._lock:
            hit = self._tables.get(key)
            if hit is not None:
                self._tables.move_to_end(key)
        return hit

    def _packed(self, seg: Segment, *, full: bool = False,
                checked: dict[int, tuple[pa.Table | None, str | None]] | None = None,
                ) -> tuple[pa.Table | None, str | None]:
        """The rows of a packed inline delta, or what is wrong with it or its pack.

        The pack's BLOB is checked against the size and CRC32 of the manifest row, decoded
        once and cached by pack id; the delta is then its rows ``pack_row`` to
        ``pack_row + rows``, whose first and last ``ts`` must be the manifest's bounds.
        ``full`` (verify) decodes the pack again, validated fully, once per ``checked``
        (the packs this verify pass already checked).

        Raises
        ------
        FileNotFoundError
            If the pack is gone (the manifest row left meanwhile: the caller re-lists).
        """
        assert seg.pack is not None
        assert seg.pack_row is not None
        key = _pack_key(seg.pack)
        table = None if full else self._cached(key)
        if full and checked is not None and seg.pack in checked:
            table, problem = checked[seg.pack]
            if problem is not None:
                return None, problem
        if table is None:
            table, problem = self._decode_pack(seg, full=full)
            if checked is not None:
                checked[seg.pack] = (table, problem)
            if problem is not None:
                return None, problem
            assert table is not None
            if not full:
                self._remember(key, table)
        a, n = seg.pack_row, seg.rows
        if a < 0 or n < 1 or a + n > table.num_rows:
            return None, f"rows {a}..{a + n} are not in the pack of {table.num_rows} rows"
        rows = table.slice(a, n)
        ts = ts_array(rows)
        if int(ts[0]) != seg.min_us or int(ts[-1]) != seg.max_us:
            return None, "the rows in the pack do not span the manifest's time range"
        return rows, None

    def _decode_pack(self, seg: Segment, *, full: bool) -> tuple[pa.Table | None, str | None]:
        """The decoded pack of ``seg`` (checked against its manifest row), or the problem."""
        assert seg.pack is not None
        data = self._packs(seg.pack)
        if data is None:
            raise FileNotFoundError(errno.ENOENT, "pack of inline deltas is gone", seg.path)
        if len(data) != seg.bytes:
            return None, f"size {len(data)} != {seg.bytes} recorded at publish time"
        if crc32(data) != seg.crc32:
            return None, "checksum mismatch"
        try:
            table = decode_inline(data)
            if full:
                table.validate(full=True)
        except _DECODE_ERRORS as exc:
            return None, f"cannot decode: {exc}"
        return table, None

    def _read_checked(self, seg: Segment) -> tuple[pa.Buffer, str | None]:
        """The file's bytes and what is wrong with them (``None``: size and CRC match)."""
        if is_inline(seg.path):
            data = self._inline(seg.path)
            if data is None:
                raise FileNotFoundError(errno.ENOENT, "inline delta is gone", seg.path)
            buf = pa.py_buffer(data)
        else:
            with self._fs.open_read(self._layout.abs(seg.path)) as handle:
                buf = handle.read_buffer()
        if buf.size != seg.bytes:
            return buf, f"size {buf.size} != {seg.bytes} recorded at publish time"
        if crc32(memoryview(buf)) != seg.crc32:
            return buf, "checksum mismatch"
        return buf, None

    def _open(self, seg: Segment, buf: pa.Buffer) -> pq.ParquetFile:
        """The checked file ready to decode, its footer parsed once per path (cached)."""
        with self._lock:
            md = self._footers.get(seg.path)
        pf = open_file(pa.BufferReader(buf), md, verify_pages=False)
        if md is None:
            with self._lock:
                self._footers[seg.path] = pf.metadata
                while len(self._footers) > _FOOTERS:
                    self._footers.popitem(last=False)
        return pf

    def _remember(self, path: str, table: pa.Table, size: int | None = None) -> None:
        # The memory the entry keeps alive (whole buffers, also under a slice); ~100x
        # cheaper than ``nbytes``, which walks the referenced ranges of every array.
        if size is None:
            size = table.get_total_buffer_size()
        if size > self._budget // 4:
            return
        with self._lock:
            if path in self._tables:
                return
            self._tables[path] = table
            self._used += size
            while self._used > self._budget and self._tables:
                _, old = self._tables.popitem(last=False)
                self._used -= old.get_total_buffer_size()

    def keep_pack(self, pack: int, table: pa.Table) -> None:
        """Cache a pack of inline deltas this process just committed, as decoding it returns its rows."""
        self._remember(_pack_key(pack), table)

    def keep_written(self, path: str, table: pa.Table) -> None:
        """Cache a file this process just published, as the rows it was encoded from.

        The encoding is lossless (bit-exact by construction), so these rows are exactly
        what decoding the file returns; only small files are kept: the next write of the
        series usually overlaps its latest delta and then needs no decode.
        """
        n = table.num_rows
        if n > _WRITTEN_ROWS:
            return
        size: int | None = table.get_total_buffer_size()
        assert size is not None
        if size > 4 * _ROW_BYTES * max(n, 64):
            # A slice of a bigger batch (write_many prepares all items as one table):
            # keep a copy of its rows, not the whole batch's buffers.
            table, size = table.take(np.arange(n)), None
        if not table.schema.equals(BAR_SCHEMA, check_metadata=True):
            table = pa.Table.from_arrays(table.columns, schema=BAR_SCHEMA)
        self._remember(path, table, size)

    def clear(self) -> None:
        """Drop every cached table and footer (the store is closing: its memory goes now)."""
        with self._lock:
            self._tables.clear()
            self._used = 0
            self._footers.clear()

    def forget_packs(self, packs: Iterable[int]) -> None:
        """Drop cached packs that left the catalog."""
        self.forget([_pack_key(p) for p in packs])

    def forget(self, paths: Sequence[str]) -> None:
        """Drop cached entries of files that left the manifest."""
        with self._lock:
            for p in paths:
                old = self._tables.pop(p, None)
                if old is not None:
                    self._used -= old.get_total_buffer_size()
                self._footers.pop(p, None)

    def check(self, seg: Segment, packs: dict[int, tuple[pa.Table | None, str | None]] | None = None) -> str | None:
        """Verify one file completely; return the problem, or ``None`` if it is sound.

        ``packs``: the packs of inline deltas a verify pass checked already (each pack is
        decoded and validated once per pass, however many deltas it holds).
        """
        if seg.pack is not None:
            try:
                return self._packed(seg, full=True, checked=packs)[1]
            except FileNotFoundError:
                return "missing"
        try:
            buf, problem = self._read_checked(seg)
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            return f"unreadable: {exc}"
        if problem is not None:
            return problem
        try:
            if is_delta(seg.path):
                table = _decode_delta(seg.path, buf)
                table.validate(full=True)
            else:
                table = decode(pa.BufferReader(buf))  # page CRCs checked too
        except _DECODE_ERRORS as exc:
            return f"cannot decode: {exc}"
        if table.num_rows != seg.rows:
            return f"{table.num_rows} rows != {seg.rows} recorded at publish time"
        return None
