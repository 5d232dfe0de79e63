"""The write side: what changed in a batch, and turning rows into published files.

``diff`` compares a (sorted, de-duplicated) batch with the stored rows of the same time
span, vectorised: only new and changed rows are written, so re-writing identical data
costs one read and zero bytes. ``publish_rows`` and ``publish_many`` split rows into
period partitions, encode each partition (in parallel threads: Parquet encoding releases
the GIL) and publish every file atomically through
:class:`~tickvault.store.local._fs.FileSystem`; small deltas of ``publish_many`` become
inline deltas, packed per call (a few packs whose bytes travel with the manifest rows
that reference them). The manifest commit that makes them visible (and writes the packs)
is the caller's job.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from tickvault.model import BAR_SCHEMA
from tickvault.store.local._catalog import NewSegment, Pack
from tickvault.store.local._codec import encode
from tickvault.store.local._crc import crc32
from tickvault.store.local._delta import (
    DELTA_MAX_ROWS,
    INLINE_SUFFIX,
    PACK_ROWS,
    is_inline,
    pack_blob,
)
from tickvault.store.local._fs import TEMP_SUFFIX, FileSystem
from tickvault.store.local._layout import Layout, SeriesKey, period_labels
from tickvault.store.local._pools import ProcessPool
from tickvault.store.local._reader import ts_array

__all__ = ["SYNC_ALL_MIN_FILES", "Diff", "Published", "Publisher", "diff", "diff_many", "publish_many", "publish_rows",
           "run_parallel", "submit"]

_T = TypeVar("_T")


# Below this many rows per task a thread hand-off costs more than it saves.
PARALLEL_MIN_ROWS = 20_000
# Jobs mix CPU (encoding releases the GIL) and fsync waits; concurrent fsyncs share the
# file system's journal commits (measured on ext4: 8 threads sync 200 small files ~3x
# faster than one), so there are more workers than cores.
_WORKERS = 8
# A call publishing at least this many files makes them durable with one syncfs when it
# can (see FileSystem.can_sync_all); below it, per-file fsyncs cost little and never wait
# for other processes' dirty data.
SYNC_ALL_MIN_FILES = 8
_POOL = ProcessPool(_WORKERS, "tickvault-store")


def submit(task: Callable[[], _T]) -> Future[_T]:
    """Run ``task`` on the shared thread pool; its future."""
    return _POOL.get().submit(task)


def run_parallel(tasks: Sequence[Callable[[], _T]], rows: int = PARALLEL_MIN_ROWS * 2, *,
                 force: bool = False) -> list[_T]:
    """Run ``tasks`` on a small shared thread pool; inline when few or small.

    ``rows`` is the total amount of work, used to skip threads for small jobs; ``force``
    uses the threads whenever there are several tasks (jobs that wait on fsync).
    """
    if len(tasks) <= 1 or (not force and rows < PARALLEL_MIN_ROWS * len(tasks)):
        return [t() for t in tasks]
    pool = _POOL.get()
    futures: list[Future[_T]] = [pool.submit(t) for t in tasks]
    return [f.result() for f in futures]


@dataclass(frozen=True)
class Diff:
    """How a batch relates to what is stored."""

    write: np.ndarray | None  # mask of rows to write; None means all of them
    new: int
    changed: int
    unchanged: int


def _values(col: pa.ChunkedArray[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, validity or None when there are no nulls) of a numeric column."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if arr.null_count == 0:
        return np.asarray(arr.to_numpy(zero_copy_only=False)), None
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(arr.fill_null(pa.scalar(0, arr.type)).to_numpy(zero_copy_only=False)), valid


def _codes(col: pa.ChunkedArray[Any], ids: dict[str, int]) -> np.ndarray:
    """Provider strings as integer codes shared between tables (null is -1)."""
    out = np.empty(len(col), dtype=np.int64)
    pos = 0
    for chunk in col.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = chunk.cast(pa.string()).dictionary_encode()
        dictionary: pa.Array[Any] = chunk.dictionary  # type: ignore[attr-defined]
        indices: pa.Array[Any] = chunk.indices  # type: ignore[attr-defined]
        mapping = np.array([ids.setdefault(str(v), len(ids)) for v in dictionary.to_pylist()] + [-1], dtype=np.int64)
        idx = np.asarray(indices.fill_null(pa.scalar(-1, indices.type)).to_numpy(zero_copy_only=False),
                         dtype=np.int64)
        out[pos:pos + len(chunk)] = mapping[idx]
        pos += len(chunk)
    return out


def _only_value(col: pa.ChunkedArray[Any]) -> str | None:
    """The single value of a dictionary column without nulls whose chunks each have a
    one-entry dictionary, else ``None`` (then the caller compares row by row)."""
    if col.null_count or not pa.types.is_dictionary(col.type):
        return None
    value: str | None = None
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        dictionary: pa.Array[Any] = chunk.dictionary  # type: ignore[attr-defined]
        if len(dictionary) != 1:
            return None
        v = str(dictionary[0].as_py())
        if value is not None and v != value:
            return None
        value = v
    return value


def _same(a: pa.ChunkedArray[Any], b: pa.ChunkedArray[Any], ia: np.ndarray | None, ib: np.ndarray) -> np.ndarray | None:
    """Which rows ``a[ia]`` and ``b[ib]`` hold the same stored value (``None``: all of them).

    Nulls equal nulls, NaN equals NaN and ``0.0 == -0.0``, exactly like the oracle.
    """
    if a.null_count == len(a) and b.null_count == len(b):
        return None
    if pa.types.is_dictionary(a.type) or pa.types.is_string(a.type):
        one_a, one_b = _only_value(a), _only_value(b)
        if one_a is not None and one_b is not None:  # the usual one-provider series: no per-row work
            return None if one_a == one_b else np.zeros(ib.size, dtype=bool)
        ids: dict[str, int] = {}
        ca, cb = _codes(a, ids), _codes(b, ids)
        return np.asarray((ca if ia is None else ca[ia]) == cb[ib])
    xa, va = _values(a)
    xb, vb = _values(b)
    if ia is not None:
        xa = xa[ia]
        va = None if va is None else va[ia]
    xb = xb[ib]
    vb = None if vb is None else vb[ib]
    eq = xa == xb
    if xa.dtype.kind == "f":
        eq |= np.isnan(xa) & np.isnan(xb)
    if va is None and vb is None:
        return np.asarray(eq)
    na = np.ones(xa.size, dtype=bool) if va is None else va
    nb = np.ones(xb.size, dtype=bool) if vb is None else vb
    return np.asarray((na == nb) & (~na | eq))


def diff(batch: pa.Table, stored: pa.Table) -> Diff:
    """Classify every row of ``batch`` as new, changed or unchanged against ``stored``.

    Both tables are sorted with unique ``ts``; ``stored`` may hold other rows too.
    """
    n = batch.num_rows
    if stored.num_rows == 0:
        return Diff(None, n, 0, 0)
    bts, sts = ts_array(batch), ts_array(stored)
    if bts.size == sts.size and np.array_equal(bts, sts):
        # Re-ingest of the same keys (the common idempotent case): rows line up already.
        found = np.ones(n, dtype=bool)
        ia: np.ndarray | None = None
        ib = np.arange(n)
    else:
        idx = np.searchsorted(sts, bts)
        safe = np.minimum(idx, sts.size - 1)
        found = (idx < sts.size) & (sts[safe] == bts)
        ia = np.flatnonzero(found)
        ib = idx[ia]
    n_found = int(ib.size)
    if n_found == 0:
        return Diff(None, n, 0, 0)
    # Column by column, only the rows still equal so far are compared: a revision that
    # changes a price in every row is settled by the first column.
    pos: np.ndarray | None = None  # positions in (ia, ib) still equal; None: all of them
    for name in batch.column_names[1:]:
        sub_a = ia if pos is None else (pos if ia is None else ia[pos])
        eq = _same(batch.column(name), stored.column(name), sub_a, ib if pos is None else ib[pos])
        if eq is not None:
            pos = np.flatnonzero(eq) if pos is None else pos[eq]
            if pos.size == 0:
                return Diff(None, n - n_found, n_found, 0)
    n_same = n_found if pos is None else int(pos.size)
    unchanged = np.zeros(n, dtype=bool)
    rows = np.arange(n) if ia is None else ia
    unchanged[rows if pos is None else rows[pos]] = True
    return Diff(~unchanged, n - n_found, n_found - n_same, n_same)


def diff_many(batch: pa.Table, starts: np.ndarray, sizes: np.ndarray,
              stored: Sequence[pa.Table]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`diff` of many items at once: a few numpy operations for the whole call.

    Item ``j`` is the rows ``starts[j]`` to ``starts[j] + sizes[j]`` of ``batch`` (in
    increasing order, not overlapping; each sorted with unique ``ts``), compared with
    ``stored[j]`` (sorted, unique ``ts``; it may hold other rows too). Both sides are
    keyed by ``j * span + (ts - base)``, increasing over the whole call, so one
    ``searchsorted`` finds every stored row and each column is compared once over all of
    them, with :func:`diff`'s semantics (:func:`_same`).

    Returns ``(write, new, changed, unchanged)``: the mask of ``batch``'s rows to write
    (``False`` outside the items) and per item counts; ``None`` when the keys would not
    fit in int64 (the caller then diffs item by item).
    """
    k = int(sizes.size)
    total = int(sizes.sum())
    ends = np.cumsum(sizes)
    item = np.repeat(np.arange(k, dtype=np.int64), sizes)
    if total == batch.num_rows:  # the items are the whole batch (the usual call): no gathers
        pos = np.arange(total, dtype=np.int64)
        bts = ts_array(batch)
    else:
        pos = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - sizes), sizes)  # rows of batch
        bts = ts_array(batch)[pos]
    live = [t for t in stored if t.num_rows]
    write = np.zeros(batch.num_rows, dtype=bool)
    new = np.bincount(item, minlength=k)
    if not live or total == 0:
        write[pos] = True
        return write, new, np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    table = pa.concat_tables(live) if len(live) > 1 else live[0]
    sts = ts_array(table)
    sitem = np.repeat(np.arange(k, dtype=np.int64), [t.num_rows for t in stored])
    base = min(int(bts.min()), int(sts.min()))
    span = max(int(bts.max()), int(sts.max())) - base + 1
    if span * k >= 2**62:
        return None
    bkey = item * span + (bts - base)
    skey = sitem * span + (sts - base)
    idx = np.searchsorted(skey, bkey)
    safe = np.minimum(idx, skey.size - 1)
    found = (idx < skey.size) & (skey[safe] == bkey)
    fa = np.flatnonzero(found)  # item rows (in pos order) found in the stored rows
    ia, ib = pos[fa], idx[fa]
    keep = np.arange(fa.size)  # positions in fa still equal so far
    for name in batch.column_names[1:]:
        if keep.size == 0:
            break
        eq = _same(batch.column(name), table.column(name), ia[keep], ib[keep])
        if eq is not None:
            keep = keep[eq]
    same = fa[keep]
    unchanged = np.bincount(item[same], minlength=k)
    n_found = np.bincount(item[fa], minlength=k)
    row_write = np.ones(total, dtype=bool)
    row_write[same] = False
    write[pos] = row_write
    return write, sizes - n_found, n_found - unchanged, unchanged


def publish_rows(layout: Layout, fs: FileSystem, key: SeriesKey, rows: pa.Table,
                 first_seq: int) -> list[NewSegment]:
    """Write ``rows`` (sorted, unique) as one new file per period partition.

    Every file is fully published (temp, fsync, rename, directory fsync) when this
    returns; none is visible until the caller commits the returned manifest rows.
    """
    ts = ts_array(rows)
    labels, starts = period_labels(key.timeframe, ts)
    footer = {"symbol": key.symbol, "timeframe": key.timeframe}
    rels = [Layout.segment_rel(key, label, first_seq + i, secrets.token_hex(4)) for i, label in enumerate(labels)]
    fs.ensure_dirs({layout.abs(rel).parent for rel in rels})

    def job(i: int) -> NewSegment:
        a, b = int(starts[i]), int(starts[i + 1])
        part = rows.slice(a, b - a)
        data = encode(part, metadata=footer)
        fs.publish(layout.abs(rels[i]), memoryview(data))
        return NewSegment(labels[i], first_seq + i, rels[i], b - a, int(ts[a]), int(ts[b - 1]), data.size,
                          crc32(memoryview(data)))

    return run_parallel([lambda i=i: job(i) for i in range(len(labels))], rows.num_rows)  # type: ignore[misc]


@dataclass(frozen=True)
class Published:
    """One file written by :func:`publish_many`: its manifest row and the rows it holds.

    For a packed inline delta, ``pack_rows`` are the rows of its whole pack as decoding
    the pack returns them (``rows`` is a zero-copy slice of them) and ``bytes`` is its
    share of the pack's bytes (by rows); else ``bytes`` is the file's size.
    """

    key: SeriesKey
    segment: NewSegment
    rows: pa.Table
    pack_rows: pa.Table | None = None
    bytes: int = 0


class _Tokens:
    """Random name tokens (8 hex digits each), drawn from the OS 1,024 at a time.

    One ``secrets.token_hex(4)`` per segment was one ``getrandom`` call each: 15 ms of a
    500-series write on this VM.
    """

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0

    def next(self) -> str:
        if self._at >= len(self._hex):
            self._hex, self._at = secrets.token_hex(4096), 0
        self._at += 8
        return self._hex[self._at - 8:self._at]


def _encode_pack(parts: Sequence[pa.Table]) -> tuple[Pack, pa.Table]:
    """One pack of inline deltas: the rows of ``parts`` concatenated, one compressed IPC file
    (:func:`~tickvault.store.local._delta.pack_blob`).

    Returns the pack and its rows, equal to what decoding the pack returns, in buffers of
    their own (a copy: they keep no bigger batch of the caller's alive in the cache).
    """
    table = pa.concat_tables(parts).unify_dictionaries() if len(parts) > 1 else parts[0]
    if table.column(0).num_chunks == 1:
        # One chunk is a slice of the caller's batch: an empty chunk makes combine_chunks copy.
        table = pa.concat_tables([table, table.slice(0, 0)])
    rows = pa.Table.from_arrays(table.combine_chunks().columns, schema=BAR_SCHEMA)
    return Pack(pack_blob(rows), rows.num_rows), rows


def _stage_chunk(stage: Callable[[int], _T], indices: Sequence[int]) -> list[_T]:
    return [stage(i) for i in indices]


def publish_many(layout: Layout, fs: FileSystem, jobs: Sequence[tuple[SeriesKey, pa.Table, int]], *,
                 deltas: Collection[SeriesKey] = ()) -> list[Published]:
    """Write each job's rows (sorted, unique) as one new segment per period partition.

    ``jobs`` are ``(series, rows, first_seq)``; this is a :class:`Publisher` given all of
    them at once (see there).
    """
    publisher = Publisher(layout, fs, deltas=deltas,
                          inline_rows=sum(rows.num_rows for key, rows, _ in jobs if key in deltas))
    publisher.add(jobs)
    return publisher.finish()


class Publisher:
    """Publishes the new segments of one call; jobs come in steps, packs encode meanwhile.

    A partition of a series in ``deltas`` with at most :data:`DELTA_MAX_ROWS` rows becomes
    an *inline delta* (see ``_delta``): the call's inline deltas, in the order they are
    added, are packed into a few groups of about :data:`PACK_ROWS` rows (one :class:`Pack`
    each), each delta's manifest row references its pack and first row, and the packs
    reach the disk with the caller's catalog commit, so they cost no file, no fsync and no
    folder. A group starts encoding on the shared pool as soon as it is complete (big
    buffers release the GIL), while the caller works out the next jobs: a writer that
    diffs its series in steps and gives each step's jobs to :meth:`add` overlaps the encoding
    of the first packs with the diff of the next series. ``inline_rows`` is about how many
    rows the inline deltas will hold (an upper bound will do): the groups are balanced for
    it.

    Every other partition is a Parquet file, published by :meth:`finish`, together, so the
    fixed costs are paid once per call, not per file: new folders are created (and their
    parents synced) once; every file is encoded and written under a temp name (Parquet
    encodings on the shared thread pool when they are big enough to pay for it), then
    renamed to its final name. Durability is then one ``syncfs`` of the store's file
    system when the call publishes many files and the machine has little other dirty data
    (:meth:`FileSystem.can_sync_all`); otherwise each file is fsync'd before its rename (on
    the pool, so fsyncs overlap) and each folder that gained a file once after the renames.
    When :meth:`finish` returns every file is durable under its final name, and nothing is
    visible until the caller commits the manifest rows.

    A fault-injecting :class:`FileSystem` subclass gets the same steps one file at a time
    in job order (packs encoded on the calling thread), so its trace of steps is
    deterministic.
    """

    def __init__(self, layout: Layout, fs: FileSystem, *, deltas: Collection[SeriesKey] = (),
                 inline_rows: int = 0) -> None:
        self._layout = layout
        self._fs = fs
        self._deltas = deltas
        self._concurrent = type(fs) is FileSystem
        self._target = inline_rows / max(1, -(-inline_rows // PACK_ROWS))
        self._groups: list[tuple[list[int], Callable[[], tuple[Pack, pa.Table]]]] = []
        self._group: list[int] = []
        self._grouped = 0
        self._plan: list[tuple[SeriesKey, str, int, str, pa.Table, int, int]] = []
        self._tokens = _Tokens()

    def _flush(self, *, here: bool = False) -> None:
        """Start encoding the group of inline deltas planned so far (``here``: on this thread)."""
        group, self._group = self._group, []
        parts = [self._plan[i][4] for i in group]
        if self._concurrent and not here:
            self._groups.append((group, submit(functools.partial(_encode_pack, parts)).result))
        else:  # a fault-injecting file system: in order, on this thread
            done = _encode_pack(parts)
            self._groups.append((group, lambda: done))

    def add(self, jobs: Sequence[tuple[SeriesKey, pa.Table, int]]) -> None:
        """Plan ``jobs`` (``(series, rows, first_seq)``); start encoding every pack they complete."""
        plan = self._plan
        for key, rows, first_seq in jobs:
            if rows.num_rows == 0:
                continue
            ts = ts_array(rows)
            labels, starts = period_labels(key.timeframe, ts)
            small = key in self._deltas
            for i, label in enumerate(labels):
                a, b = int(starts[i]), int(starts[i + 1])
                inline = small and b - a <= DELTA_MAX_ROWS
                rel = Layout.segment_rel(key, label, first_seq + i, self._tokens.next(),
                                         INLINE_SUFFIX if inline else ".parquet")
                plan.append((key, label, first_seq + i, rel, rows.slice(a, b - a), int(ts[a]), int(ts[b - 1])))
                if inline:
                    self._group.append(len(plan) - 1)
                    self._grouped += b - a
                    if self._grouped >= self._target * (len(self._groups) + 1) - (b - a) / 2:
                        self._flush()

    def finish(self) -> list[Published]:
        """Publish the files, wait for the packs; one :class:`Published` per partition, in plan order."""
        if self._group:
            # The last group on this thread, which would only wait for it (while the pool
            # may still be encoding earlier ones).
            self._flush(here=True)
        plan = self._plan
        if not plan:
            return []
        segments: list[NewSegment | None] = [None] * len(plan)
        tables = [p[4] for p in plan]
        packs: list[pa.Table | None] = [None] * len(plan)
        shares = [0] * len(plan)
        files = [i for i, p in enumerate(plan) if not is_inline(p[3])]
        if files:
            for i, seg in zip(files, _publish_files(self._layout, self._fs, [plan[i] for i in files]), strict=True):
                segments[i] = seg
                shares[i] = seg.bytes
        for group, result in self._groups:
            pack, rows = result()
            size, crc, first = len(pack.data), crc32(pack.data), 0
            for i in group:
                _key, label, seq, rel, part, lo, hi = plan[i]
                n = part.num_rows
                segments[i] = NewSegment(label, seq, rel, n, lo, hi, size, crc, pack=pack, pack_row=first)
                tables[i], packs[i] = rows.slice(first, n), rows
                shares[i] = max(1, size * n // pack.rows)
                first += n
        out: list[Published] = []
        for p, done, rows, whole, share in zip(plan, segments, tables, packs, shares, strict=True):
            assert done is not None
            out.append(Published(p[0], done, rows, whole, share))
        return out


def _publish_files(layout: Layout, fs: FileSystem,
                   plan: Sequence[tuple[SeriesKey, str, int, str, pa.Table, int, int]]) -> list[NewSegment]:
    """The Parquet files of :func:`publish_many`, published durably (see there)."""
    finals = [layout.abs(p[3]) for p in plan]
    folders = list(dict.fromkeys(f.parent for f in finals))
    fs.ensure_dirs(folders)
    concurrent = type(fs) is FileSystem
    batch_sync = fs.durable and len(plan) >= SYNC_ALL_MIN_FILES and fs.can_sync_all()

    def stage(i: int) -> tuple[Path, NewSegment]:
        key, label, seq, _rel, part, lo, hi = plan[i]
        data = encode(part, metadata={"symbol": key.symbol, "timeframe": key.timeframe})
        tmp = finals[i].with_name(f".{finals[i].name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        fs.write_new(tmp, memoryview(data))
        if not batch_sync:
            fs.fsync_file(tmp)
        return tmp, NewSegment(label, seq, plan[i][3], part.num_rows, lo, hi, data.size, crc32(memoryview(data)))

    # Threads pay off for Parquet encodings (they release the GIL) and overlapping fsyncs.
    encoded_rows = sum(p[4].num_rows for p in plan)
    if concurrent and (encoded_rows >= PARALLEL_MIN_ROWS or (fs.durable and not batch_sync)):
        # Few tasks of many files each (file i in task i % n): a thread hand-off per small
        # file would cost about as much as encoding it.
        n = min(len(plan), _WORKERS * 2)
        chunks = run_parallel([functools.partial(_stage_chunk, stage, range(k, len(plan), n)) for k in range(n)],
                              force=True)
        staged: list[tuple[Path, NewSegment]] = [chunks[i % n][i // n] for i in range(len(plan))]
    else:
        staged = [stage(i) for i in range(len(plan))]
    for (tmp, _), final in zip(staged, finals, strict=True):
        fs.rename(tmp, final)
    if batch_sync:
        fs.sync_all(folders)
    elif concurrent:
        run_parallel([functools.partial(fs.fsync_dir, d) for d in folders], force=fs.durable)
    else:
        for d in folders:
            fs.fsync_dir(d)
    return [seg for _, seg in staged]
