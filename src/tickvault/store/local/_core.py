"""Shared machinery of the embedded store: snapshot reads, manifest commits, compaction.

Reading a series is: list its segments in one catalog snapshot, load those files,
merge. A file can disappear between the listing and the open only because a writer in
some process committed a manifest without it (compaction, delete, verify) and then
removed it, so the reader simply lists again; a file that is *still* listed but missing
is real damage (:class:`~tickvault.errors.CorruptData`). Readers therefore never wait
for writers and never see a half-published state.

Writers hold the series lock, publish new files, then swap manifest rows in one
transaction (the publication point) and only then delete files that left the manifest.
A crash anywhere leaves either the old or the new manifest; leftover files are orphans
removed on the next open.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from tickvault.errors import CorruptData, StorageError
from tickvault.model import BAR_SCHEMA
from tickvault.store.local._catalog import Catalog, NewSegment, Segment, SeriesRow
from tickvault.store.local._delta import is_delta, is_inline
from tickvault.store.local._fs import FileSystem
from tickvault.store.local._layout import Layout, SeriesKey
from tickvault.store.local._locks import SeriesLock
from tickvault.store.local._reader import SegmentReader, merge_segments, slice_range
from tickvault.store.local._session import Session
from tickvault.store.local._writer import Published, publish_many, publish_rows, run_parallel

__all__ = ["Core", "ManifestChange", "compaction_plan", "lock_order", "output_seq"]

_RETRIES = 64
_T = TypeVar("_T")


def lock_order(key: SeriesKey) -> tuple[str, str]:
    """The order in which a multi-series operation takes series locks (no deadlocks)."""
    return key.timeframe, key.symbol


@dataclass
class ManifestChange:
    """What one commit does to one series' manifest (see :meth:`Core.commit_many`)."""

    series: SeriesRow
    add: list[NewSegment]
    remove: list[Segment]
    rows: int
    touched: bool


# The smallest compaction threshold with which an automatic compaction leaves a partition's
# newest file out (the partition then keeps at most three files: base, merged deltas,
# newest; with a lower threshold it would be compacted again after every write).
_HOT_MIN_THRESHOLD = 3


def compaction_plan(segs: Sequence[Segment], threshold: int) -> list[Segment] | None:
    """Which files of one partition to merge, or ``None`` while it has few enough.

    Tiered: while the deltas are small next to the base file, merge only the deltas
    (cheap, the base is not rewritten); once they reach a quarter of it, merge all.

    The partition's newest file stays out (with a threshold of at least
    :data:`_HOT_MIN_THRESHOLD`): it is the one the next write most likely revises (the
    stored morning of a daily update, the last bars of a live feed), and as written it is
    in the decoded-file cache, while the merged file is not (a merged file of many series
    does not fit). Merging it made the next daily upsert of 500 series decode 500 Parquet
    files to diff against them: 1.9 s instead of ~0.2 s, once every few sessions. The
    merged file takes the highest sequence number of the files it replaces, so the newest
    file's rows still win in reads (see :func:`output_seq`).
    """
    if len(segs) <= threshold:
        return None
    ordered = sorted(segs, key=lambda s: s.seq)
    if threshold >= _HOT_MIN_THRESHOLD:
        ordered = ordered[:-1]
    base, deltas = ordered[0], ordered[1:]
    if sum(d.rows for d in deltas) * 4 < base.rows:
        return deltas
    return ordered


def output_seq(group: Sequence[Segment], pick: Sequence[Segment], fresh: int) -> int:
    """The sequence number of the file that replaces ``pick`` in its partition ``group``.

    ``fresh`` (the series' next one) unless a newer file of the partition stays out of the
    merge (:func:`compaction_plan`); then the highest of ``pick``'s, so that file's rows
    still win over the merged ones (a read orders a partition's files by sequence number).
    The merged file's name is still new: names carry a random token.
    """
    top = max(s.seq for s in pick)
    return top if any(s.seq > top for s in group) else fresh


def _full_plan(group: list[Segment]) -> list[Segment] | None:
    """What a full compaction merges in one partition: everything, unless it already is one
    Parquet file (a lone Arrow IPC delta is rewritten as Parquet too)."""
    return group if len(group) > 1 or is_delta(group[0].path) else None

class Core:
    """Paths, file system, catalog, reader and locks of one open store."""

    def __init__(self, root: Path, *, lock_timeout: float, durable: bool, cache_bytes: int,
                 compact_threshold: int, fs: FileSystem | None, defer_checkpoints: bool = False) -> None:
        self.layout = Layout(root)
        self.fs = fs if fs is not None else FileSystem(durable=durable)
        self.lock_timeout = lock_timeout
        self.compact_threshold = compact_threshold
        try:
            self.fs.makedirs(root)
        except OSError as exc:
            raise StorageError(f"cannot create the store folder: {exc}", path=str(root)) from exc
        self.catalog = Catalog(self.layout.catalog, timeout=lock_timeout, durable=durable,
                               defer_checkpoints=defer_checkpoints)
        self.reader = SegmentReader(self.layout, self.fs, cache_bytes, self.catalog.delta_data, self.catalog.pack_data)
        self.session = Session(self.layout.sessions, self.fs)
        self._lock_paths: dict[SeriesKey, Path] = {}

    # -- locks and listings ---------------------------------------------------------------
    def lock(self, key: SeriesKey, timeout: float | None = None) -> SeriesLock:
        """The writer lock of a series (not yet acquired)."""
        path = self._lock_paths.get(key)
        if path is None:
            path = self._lock_paths[key] = self.layout.abs(key.lock_rel)
        return SeriesLock(path, self.lock_timeout if timeout is None else timeout,
                          symbol=key.symbol, timeframe=key.timeframe)

    def listing(self, key: SeriesKey, lo: int | None = None,
                hi: int | None = None) -> tuple[SeriesRow | None, list[Segment]]:
        """The series row and its segments overlapping ``[lo, hi)``, in one snapshot."""
        return self.catalog.listing(key, lo, hi)

    # -- reading ------------------------------------------------------------------------
    def load(self, segs: Sequence[Segment], columns: Sequence[str] | None = None) -> list[tuple[Segment, pa.Table]]:
        """Decode ``segs`` (in parallel when there are several)."""
        tables = run_parallel([lambda s=s: self._load_one(s, columns) for s in segs],  # type: ignore[misc]
                              sum(s.rows for s in segs))
        return list(zip(segs, tables, strict=True))

    def _load_one(self, seg: Segment, columns: Sequence[str] | None) -> pa.Table:
        try:
            return self.reader.load(seg, columns)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "segment file is gone", seg.path) from None

    def snapshot(self, key: SeriesKey, lo: int | None, hi: int | None,
                 use: Callable[[list[Segment]], _T]) -> _T:
        """Call ``use`` with one consistent listing, listing again if a file vanished.

        A file vanishes only when a writer committed a manifest without it (compaction,
        delete, verify) and removed it; a file *still listed* after a fresh listing is
        really missing, which is damage, not a race.
        """
        gone: str | None = None
        for _ in range(_RETRIES):
            _, segs = self.listing(key, lo, hi)
            if gone is not None and any(s.path == gone for s in segs):
                raise CorruptData("a file listed in the manifest is missing",
                                  path=str(self.layout.abs(gone)), symbol=key.symbol, timeframe=key.timeframe)
            try:
                return use(segs)
            except FileNotFoundError as exc:
                gone = str(exc.filename)
        raise StorageError("the series kept changing while it was read", symbol=key.symbol, timeframe=key.timeframe)

    def read(self, key: SeriesKey, lo: int | None, hi: int | None,
             columns: Sequence[str] | None = None) -> pa.Table:
        """Rows of ``key`` in ``[lo, hi)`` from one consistent manifest snapshot."""
        def use(segs: list[Segment]) -> pa.Table:
            if not segs:
                table = BAR_SCHEMA.empty_table()
            else:
                table = slice_range(merge_segments(self.load(segs, columns)), lo, hi)
            return table if columns is None else table.select(list(columns))

        return self.snapshot(key, lo, hi, use)

    def latest(self, key: SeriesKey, n: int) -> pa.Table:
        """The last ``n`` rows, loading only the newest partitions needed."""
        def use(segs: list[Segment]) -> pa.Table:
            by_period: dict[str, list[Segment]] = {}
            for s in segs:
                by_period.setdefault(s.period, []).append(s)
            parts: list[pa.Table] = []
            have = 0
            for group in sorted(by_period.values(), key=lambda g: max(s.max_us for s in g), reverse=True):
                part = merge_segments(self.load(group))
                parts.insert(0, part)
                have += part.num_rows
                if have >= n:
                    break
            if not parts:
                return BAR_SCHEMA.empty_table()
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            return table.slice(max(0, table.num_rows - n))

        return self.snapshot(key, None, None, use)

    # -- committing -----------------------------------------------------------------------
    def commit(self, key: SeriesKey, series: SeriesRow, *, add: Sequence[NewSegment], remove: Sequence[Segment],
               rows: int, touched: bool) -> SeriesRow:
        """Swap manifest rows in one transaction, then delete the files that left it."""
        with self.catalog.write(before_commit=lambda: self.fs.point("before_commit")) as conn:
            Catalog.apply_manifest(conn, series, add=add, remove=[s.id for s in remove], rows=rows, touched=touched)
            fresh = Catalog.series_row(conn, key)
        self.fs.point("after_commit")
        self.discard(remove)
        assert fresh is not None
        return fresh

    def commit_many(self, entries: Sequence[ManifestChange]) -> list[tuple[int, str]]:
        """:meth:`commit` for several series in ONE transaction (one durable commit).

        Returns the ``(series id, period)`` partitions of those series that now hold more
        than ``compact_threshold`` files (what a deferred compaction should merge).
        """
        with self.catalog.write(before_commit=lambda: self.fs.point("before_commit")) as conn:
            # Pure additions (every write) in a few statements for all series at once.
            Catalog.append_manifests(conn, [(ch.series, ch.add, ch.rows, ch.touched) for ch in entries
                                            if not ch.remove])
            for ch in entries:
                if ch.remove:
                    Catalog.apply_manifest(conn, ch.series, add=ch.add, remove=[s.id for s in ch.remove],
                                           rows=ch.rows, touched=ch.touched)
            crowded = Catalog.crowded(conn, [ch.series.id for ch in entries], self.compact_threshold)
        self.fs.point("after_commit")
        self.discard([s for ch in entries for s in ch.remove])
        return crowded

    def keep_written(self, published: Sequence[Published]) -> None:
        """Put what a commit just published in the decoded-file cache (each pack once)."""
        kept: set[int] = set()
        for pub in published:
            pack = pub.segment.pack
            if pack is None:
                self.reader.keep_written(pub.segment.path, pub.rows)
            elif pub.pack_rows is not None and pack.id is not None and pack.id not in kept:
                kept.add(pack.id)
                self.reader.keep_pack(pack.id, pub.pack_rows)

    def discard(self, segs: Sequence[Segment]) -> None:
        """Delete files no longer in the manifest (readers that listed them re-list).

        Inline deltas have no file: the commit that removed their manifest rows removed
        their BLOBs too (a trigger), and the pack of the last of them (a pack that has left
        the catalog also leaves the decoded-file cache, where it would only take the room
        of live files: a compaction of many series drops many packs).
        """
        self.reader.forget([s.path for s in segs])
        packs = {s.pack for s in segs if s.pack is not None}
        if packs:
            try:
                self.reader.forget_packs(packs - self.catalog.live_packs(packs))
            except StorageError:  # the commit is done: dead packs then leave by LRU eviction
                pass
        parents = set()
        for s in segs:
            if is_inline(s.path):
                continue
            path = self.layout.abs(s.path)
            self.fs.unlink(path)
            parents.add(path.parent)
        for parent in parents:
            self.fs.rmdir_if_empty(parent)

    # -- compaction -----------------------------------------------------------------------
    def compact_files(self, key: SeriesKey, series: SeriesRow, segs: Sequence[Segment], seq: int) -> SeriesRow:
        """Merge ``segs`` (one partition, caller holds the lock) into a single file numbered
        ``seq`` (see :func:`output_seq`)."""
        merged = merge_segments(self.load(segs))
        self.session.ensure()
        new = publish_rows(self.layout, self.fs, key, merged, seq) if merged.num_rows else []
        return self.commit(key, series, add=new, remove=segs, rows=series.rows, touched=False)

    def compact_many(self, todo: dict[SeriesKey, set[str] | None], *, full: bool, wait: bool) -> int:
        """Compact several series with one publication and ONE manifest transaction.

        ``todo`` maps each series to the partitions to look at (``None``: all); the plan
        per partition is :meth:`compact_locked`'s. Locks are taken in a fixed order;
        with ``wait`` false a series whose lock is busy is skipped (a later write or
        ``compact()`` merges it). Returns how many series were compacted.
        """
        with contextlib.ExitStack() as stack:
            locked: list[SeriesKey] = []
            for key in sorted(todo, key=lock_order):
                lock = self.lock(key)
                if wait:
                    stack.enter_context(lock)
                elif lock.try_acquire():
                    stack.callback(lock.release)
                else:
                    continue
                locked.append(key)
            jobs: list[tuple[SeriesKey, pa.Table, int]] = []
            changes: dict[SeriesKey, ManifestChange] = {}
            for key in locked:
                series, segs = self.listing(key)
                if series is None:
                    continue
                periods = todo[key]
                by_period: dict[str, list[Segment]] = {}
                for seg in segs:
                    if periods is None or seg.period in periods:
                        by_period.setdefault(seg.period, []).append(seg)
                chosen: list[Segment] = []
                fresh = series.next_seq
                for label in sorted(by_period):  # one job per partition: each its own seq
                    group = by_period[label]
                    pick = _full_plan(group) if full else compaction_plan(group, self.compact_threshold)
                    if pick:
                        chosen.extend(pick)
                        seq = output_seq(group, pick, fresh)
                        if seq == fresh:
                            fresh += 1
                        jobs.append((key, merge_segments(self.load(pick)), seq))
                if not chosen:
                    continue
                changes[key] = ManifestChange(series, [], chosen, series.rows, False)
            if not changes:
                return 0
            self.session.ensure()
            published = publish_many(self.layout, self.fs, jobs)
            for pub in published:
                changes[pub.key].add.append(pub.segment)
            self.commit_many(list(changes.values()))
            self.keep_written(published)
            return len(changes)

    def compact_series(self, key: SeriesKey, *, full: bool) -> bool:
        """Take the series lock and compact it (see :meth:`compact_locked`)."""
        with self.lock(key):
            return self.compact_locked(key, full=full)

    def compact_locked(self, key: SeriesKey, *, full: bool, periods: set[str] | None = None) -> bool:
        """Compact the partitions of one series that need it; return whether any did.

        The caller holds the series lock. ``full`` merges every partition with more than
        one file (``compact()``); otherwise only partitions past the threshold are
        merged, with the tiered plan. ``periods`` restricts which partitions are looked at.
        """
        done = False
        series, segs = self.listing(key)
        if series is None:
            return False
        by_period: dict[str, list[Segment]] = {}
        for s in segs:
            if periods is None or s.period in periods:
                by_period.setdefault(s.period, []).append(s)
        for group in by_period.values():
            chosen = _full_plan(group) if full else compaction_plan(group, self.compact_threshold)
            if chosen:
                series = self.compact_files(key, series, chosen, output_seq(group, chosen, series.next_seq))
                done = True
        return done
