"""``LocalStore``: the embedded :class:`~tickvault.store.base.BarStore` (one folder, no server).

Bars live in Parquet files partitioned by timeframe / symbol / period, written once and
never modified; a SQLite catalog lists which files make up each series. A write
publishes new files for the new and changed rows only, then commits their manifest rows
in one transaction: that commit is the instant the write becomes visible and durable.
Small appends therefore create small deltas (Arrow IPC, kept as BLOBs in the catalog and
committed with their manifest rows: no Parquet encoding, no file), which
are merged into Parquet once a partition crosses the compaction threshold (on a
background thread by default, so no write waits for it) or by
:meth:`LocalStore.compact`, so reads stay a few files per partition.
:meth:`LocalStore.write_many` writes many series in one commit, paying a write's fixed
costs once per call.
See ``docs/store.md`` for the layout, the file format and the crash-safety argument.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa

from tickvault.errors import CorruptData, InvalidInput, StorageError
from tickvault.model import (
    BAR_SCHEMA,
    CorporateAction,
    CoverageInterval,
    Instrument,
    QualityReport,
    StoreReceipt,
    dedupe_last,
    validate_symbol,
)
from tickvault.store.base import SeriesInfo, VerifyReport, check_meta_key, conform_table
from tickvault.store.local import _ledger, _maintenance
from tickvault.store.local._catalog import Catalog, Segment, SeriesRow
from tickvault.store.local._compactor import Compactor, Todo
from tickvault.store.local._core import Core, ManifestChange, lock_order
from tickvault.store.local._delta import INLINE_SUFFIX, PACK_ROWS, is_inline
from tickvault.store.local._fs import FileSystem
from tickvault.store.local._layout import SeriesKey, canonical_timeframe
from tickvault.store.local._reader import merge_segments, slice_range, ts_array
from tickvault.store.local._writer import Publisher, diff, diff_many, publish_rows, submit

__all__ = ["LocalStore"]

_log = logging.getLogger("tickvault.store.local")
_DEFAULT_CACHE = 128 * 2**20
# Inline-delta bytes after which a write asks the background thread for a WAL checkpoint
# (about SQLite's own automatic threshold of 1,000 pages).
_CHECKPOINT_BYTES = 4 * 2**20


_EMPTY = BAR_SCHEMA.empty_table()


def _upsert(*tables: pa.Table) -> pa.Table:
    """Sorted tables merged into one, a later table's row winning for a duplicated ``ts``."""
    live = [t for t in tables if t.num_rows]
    if len(live) <= 1:
        return live[0] if live else tables[0]
    return dedupe_last(pa.concat_tables(live).unify_dictionaries().combine_chunks())


# Items of at most this many rows are prepared together (one concatenation); bigger ones
# one by one: concatenating a backfill's year-long items would copy (and fault in) every
# byte of the call once more for nothing (measured: ingest of 500 symbol-years 4.6 -> 7.8 s).
_JOIN_MAX_ROWS = 8_192
# Joined tables of at least this many rows are copied into single chunks on the thread pool.
_PARALLEL_JOIN_ROWS = 20_000


class _Prepared:
    """The call's items after :func:`_prepare`.

    ``stamps``, ``sizes`` and ``starts`` are there at once; the rows (``batches``,
    ``whole``) may still be being joined on the thread pool: the first access waits.
    """

    def __init__(self, stamps: list[np.ndarray], sizes: list[int], starts: list[int],
                 own: list[pa.Table | None], whole: Callable[[], pa.Table] | None) -> None:
        self.stamps = stamps  # per item: its ts (int64 µs), sorted and unique
        self.sizes = sizes  # per item: its rows
        self.starts = starts  # per item: its first row in ``whole`` (its rows are that slice), or -1
        self._own = own  # per item whose rows are not a slice of ``whole``: its rows
        self._whole = whole
        self._joined: pa.Table | None = None
        self._batches: list[pa.Table] | None = None

    @property
    def whole(self) -> pa.Table | None:
        """The small items joined (one chunk per column), or None."""
        if self._joined is None and self._whole is not None:
            self._joined = self._whole()
        return self._joined

    @property
    def batches(self) -> list[pa.Table]:
        """Per item: ``dedupe_last(table)`` in one chunk."""
        if self._batches is None:
            whole = self.whole
            self._batches = [t if t is not None else whole.slice(a, n)  # type: ignore[union-attr]
                             for t, a, n in zip(self._own, self.starts, self.sizes, strict=True)]
        return self._batches


def _prepare(conformed: Sequence[pa.Table]) -> _Prepared:
    """Per conformed table, ``dedupe_last(t)`` in one chunk and its ``ts`` (int64 µs).

    Small tables (a daily upsert's) are done once on all of them concatenated, not per
    table: one ``ts`` array and one vectorised "strictly increasing?" test; only those that
    are not sorted and unique get their own sort. Their rows are copied into single chunks
    (the joined table, kept with each item's offset in it for the call's vectorised diff)
    on the thread pool when there are many, while the caller takes its locks and lists
    its series. A table of more than :data:`_JOIN_MAX_ROWS` rows is done on its own.
    """
    stamps: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(conformed)
    own: list[pa.Table | None] = [None] * len(conformed)
    offsets = [-1] * len(conformed)
    whole: Callable[[], pa.Table] | None = None
    small = [i for i, t in enumerate(conformed) if t.num_rows <= _JOIN_MAX_ROWS]
    for i, t in enumerate(conformed):
        if t.num_rows > _JOIN_MAX_ROWS:
            part = dedupe_last(t).combine_chunks()
            own[i], stamps[i] = part, ts_array(part)
    if small:
        joined = pa.concat_tables([conformed[i] for i in small]).unify_dictionaries()
        ts = ts_array(joined)
        sizes = np.fromiter((conformed[i].num_rows for i in small), dtype=np.int64, count=len(small))
        starts = np.concatenate(([0], np.cumsum(sizes)))
        # Steps that are not increasing, except across the border of two tables.
        bad = np.flatnonzero(ts[1:] <= ts[:-1]) + 1
        bad = bad[~np.isin(bad, starts)]
        unsorted = set(np.searchsorted(starts, bad, side="right").tolist())
        for j, i in enumerate(small):
            a, n = int(starts[j]), int(sizes[j])
            if j + 1 in unsorted:  # searchsorted numbers the tables from 1
                part = dedupe_last(conformed[i]).combine_chunks()
                own[i], stamps[i] = part, ts_array(part)
            else:
                stamps[i] = ts[a:a + n]
                offsets[i] = a
        if joined.num_rows >= _PARALLEL_JOIN_ROWS:
            whole = submit(joined.combine_chunks).result
        else:
            combined = joined.combine_chunks()
            whole = lambda: combined  # noqa: E731
    return _Prepared(stamps, [int(t.size) for t in stamps], offsets, own, whole)


def _steps(keys: list[SeriesKey], order: dict[SeriesKey, list[int]], sizes: list[int]) -> Iterator[list[SeriesKey]]:
    """``keys`` in consecutive steps of at least about :data:`PACK_ROWS` input rows each."""
    step: list[SeriesKey] = []
    rows = 0
    for key in keys:
        step.append(key)
        rows += sum(sizes[i] for i in order[key])
        if rows >= PACK_ROWS:
            yield step
            step, rows = [], 0
    if step:
        yield step


def _bound(value: int | None) -> int | None:
    """A range bound as a plain int (numpy integers are not valid SQLite parameters)."""
    return None if value is None else int(value)


class LocalStore:
    """Embedded bar store under one folder (see the module docstring).

    Parameters
    ----------
    root
        The store folder (created if missing).
    lock_timeout
        Seconds a writer waits for another writer of the same series (or of the catalog)
        before :class:`~tickvault.errors.StoreLocked`.
    durable
        ``True`` (default): every acknowledged write survives a power loss (fsync of
        files, directories and the catalog). ``False`` skips the fsyncs: writes still
        survive a crash of the process, not of the machine. For bulk loads and tests.
    cache_bytes
        In-process cache of decoded files (immutable, so always consistent); ``0`` disables it.
    compact_threshold
        A period partition with more files than this is compacted after the write that
        crossed it.
    background_compaction
        ``True`` (default): that compaction runs on a background thread, so no write
        waits for it; ``False``: the write compacts after its commit, before returning.
    fs
        File-system layer; tests pass a fault-injecting subclass of :class:`FileSystem`.

    Raises
    ------
    StorageError
        If the folder or its catalog cannot be opened.
    """

    def __init__(self, root: Path | str, *, lock_timeout: float = 30.0, durable: bool = True,
                 cache_bytes: int = _DEFAULT_CACHE, compact_threshold: int = 8,
                 background_compaction: bool = True, fs: FileSystem | None = None) -> None:
        if lock_timeout < 0:
            raise InvalidInput(f"lock_timeout must be >= 0, got {lock_timeout}")
        if compact_threshold < 1:
            raise InvalidInput(f"compact_threshold must be >= 1, got {compact_threshold}")
        self.root = Path(root).expanduser().resolve()
        # With the background thread, WAL checkpoints are its job too (off the write path).
        self._core = Core(self.root, lock_timeout=lock_timeout, durable=durable, cache_bytes=cache_bytes,
                          compact_threshold=compact_threshold, fs=fs, defer_checkpoints=background_compaction)
        self._closed = False
        self._close_lock = threading.Lock()
        self._compactor = Compactor(self._auto_compact, lock_order, idle=self._checkpoint) \
            if background_compaction else None
        self._wal_bytes = 0  # inline-delta bytes committed since the last checkpoint request
        try:
            _maintenance.recover(self._core)
        except BaseException:
            self._core.catalog.close()
            raise

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed", path=str(self.root))

    def _key(self, symbol: str, timeframe: str) -> SeriesKey:
        self._open()
        return SeriesKey.of(symbol, timeframe)

    @contextmanager
    def _healing(self, key: SeriesKey) -> Iterator[None]:
        """Turn a damaged file met while reading into a set-aside file, then re-raise."""
        try:
            yield
        except CorruptData as exc:
            self._heal(key, exc)
            raise

    def _heal(self, key: SeriesKey, exc: CorruptData) -> None:
        """Set aside the damaged file ``exc`` names (the caller holds no series lock)."""
        path = exc.context.get("path")
        if path is None:
            return
        try:
            rel = Path(str(path)).relative_to(self.root).as_posix()
            done = _maintenance.heal(self._core, key, rel)
        except (StorageError, ValueError) as heal_exc:
            exc.add_note(f"setting the file aside failed: {heal_exc}")
        else:
            if done:
                exc.add_note(done + "; the range is now missing and will be fetched again")

    # -- bars -------------------------------------------------------------------------
    def write(self, symbol: str, timeframe: str, table: pa.Table) -> StoreReceipt:
        """Upsert ``table`` (BAR_SCHEMA) atomically and durably.

        The batch is sorted and de-duplicated (last row wins), compared with the stored
        rows of its span, and only new or changed rows are written; identical rows cost
        zero bytes. Returns after the manifest commit (durable unless ``durable=False``).
        This is :meth:`write_many` with one item.

        Parameters
        ----------
        symbol, timeframe
            The series (validated, canonicalised).
        table
            Bars with :data:`~tickvault.model.BAR_SCHEMA` columns, in any order of rows.

        Returns
        -------
        StoreReceipt
            New, changed and unchanged row counts, bytes written, the batch's first/last ts.

        Raises
        ------
        SchemaError
            If ``table`` does not match :data:`~tickvault.model.BAR_SCHEMA`.
        StoreLocked
            If another writer holds the series longer than ``lock_timeout``.
        """
        return self.write_many([(symbol, timeframe, table)])[0]

    def write_many(self, items: Sequence[tuple[str, str, pa.Table]]) -> list[StoreReceipt]:
        """Upsert several ``(symbol, timeframe, table)`` items in one atomic, durable commit.

        Each item means exactly what :meth:`write` of it means, applied in order (a series
        named twice: the later item upserts over the earlier one and its receipt counts
        against it). All items become visible at once, in ONE catalog transaction, or none
        does. The fixed costs of a write are paid once per call: the series locks are
        taken in a fixed order (no deadlock between two ``write_many`` calls), every new
        file is encoded and fsync'd on a thread pool, each folder is fsync'd once, one
        commit. A partition the call leaves with more than ``compact_threshold`` files is
        compacted after the commit: on the background thread (default; the call does not
        wait for it), or by this call once its locks are released. Either way a series
        another writer holds then is skipped, and a later write hands it over again.
        Small partitions (at most 2,048 rows) of series that already hold rows are inline
        Arrow IPC deltas, written into the catalog by the commit itself (no file); a call
        of many files is made durable by one ``syncfs`` when the machine has little dirty
        data (see ``docs/store.md``).

        Returns
        -------
        list[StoreReceipt]
            One receipt per item, in order. The bytes of a series named several times
            are split over its items that wrote rows, by rows written.

        Raises
        ------
        SchemaError, InvalidSymbol, InvalidTimeframe
            For an invalid item (before anything is locked or written).
        StoreLocked
            If another writer holds one of the series longer than ``lock_timeout``;
            nothing of the call is written.
        """
        self._open()
        keys: list[SeriesKey] = []
        conformed: list[pa.Table] = []
        for symbol, timeframe, table in items:  # item by item: the first invalid one raises
            keys.append(SeriesKey.of(symbol, timeframe))
            conformed.append(conform_table(table))
        # One chunk per column: every later step (diff, filter, encode, cache) is cheaper.
        ready = _prepare(conformed)
        receipts = [StoreReceipt() for _ in keys]
        order: dict[SeriesKey, list[int]] = {}
        for i, key in enumerate(keys):
            if ready.sizes[i]:
                order.setdefault(key, []).append(i)
        if not order:
            return receipts
        self._core.catalog.ensure_series_many(list(order))
        reading: list[SeriesKey] = []
        try:
            with self._compactor.writing() if self._compactor is not None else nullcontext():
                crowded = self._write_locked(keys, ready, order, receipts, reading)
        except CorruptData as exc:
            if reading:
                self._heal(reading[-1], exc)
            raise
        if crowded:
            if self._compactor is not None:
                self._compactor.submit(crowded)
            else:
                self._auto_compact(crowded)
        if self._compactor is not None and self._wal_bytes >= _CHECKPOINT_BYTES:
            self._wal_bytes = 0
            self._compactor.request_idle()
        return receipts

    def _write_locked(self, items: list[SeriesKey], ready: _Prepared, order: dict[SeriesKey, list[int]],
                      receipts: list[StoreReceipt], reading: list[SeriesKey]) -> Todo:
        """The locked part of :meth:`write_many`; returns the partitions to compact."""
        core = self._core
        with ExitStack() as stack:
            keys = sorted(order, key=lock_order)
            for key in keys:
                stack.enter_context(core.lock(key))
            changes: dict[SeriesKey, ManifestChange] = {}
            writing: dict[SeriesKey, list[int]] = {}
            times = {key: [ready.stamps[i] for i in order[key]] for key in keys}
            bounds = {key: (min(int(t[0]) for t in spans), max(int(t[-1]) for t in spans) + 1)
                      for key, spans in times.items()}
            listings = core.catalog.listings(bounds)  # one query for all series (we hold their locks)
            # Series with rows already: their small partitions are inline deltas.
            deltas = {key for key in keys if listings[key][0].rows}
            publisher = Publisher(core.layout, core.fs, deltas=deltas,
                                  inline_rows=sum(ready.sizes[i] for key in deltas for i in order[key]))
            # The series in steps of about a pack's rows: each step's packs encode on the
            # pool while this thread reads and diffs the next step's series. Steps follow the
            # items' order (the locks are all held), so a step's items are one stretch of the
            # joined table whatever the order of the symbols.
            for step in _steps(sorted(keys, key=lambda k: order[k][0]), order, ready.sizes):
                jobs = self._diff_step(step, items, ready, order, times, listings, bounds, receipts, reading,
                                       changes, writing)
                if jobs:
                    core.session.ensure()
                    publisher.add(jobs)
            if not changes:
                return {}
            published = publisher.finish()
            written: dict[SeriesKey, int] = {}
            for pub in published:
                changes[pub.key].add.append(pub.segment)
                written[pub.key] = written.get(pub.key, 0) + pub.bytes
            crowded = core.commit_many(list(changes.values()))
        core.keep_written(published)
        self._wal_bytes += sum(len(p.data) for p in {pub.segment.pack for pub in published} if p is not None)
        for key in changes:
            # The series' bytes, split over the items that wrote rows by rows written.
            total = written[key]
            writers = writing[key]
            weight = sum(receipts[i].rows_written for i in writers)
            for n, i in enumerate(writers):
                r = receipts[i]
                share = total - sum(receipts[w].bytes_written for w in writers[:n]) if n == len(writers) - 1 \
                    else max(1, total * r.rows_written // weight)
                receipts[i] = StoreReceipt(r.rows_new, r.rows_changed, r.rows_unchanged, max(1, share),
                                           r.first_us, r.last_us)
        by_id = {done.series.id: key for key, done in changes.items()}
        todo: Todo = {}
        for series_id, period in crowded:
            periods = todo.setdefault(by_id[series_id], set())
            assert periods is not None
            periods.add(period)
        return todo

    def _diff_step(self, keys: list[SeriesKey], items: list[SeriesKey], ready: _Prepared,
                   order: dict[SeriesKey, list[int]],
                   times: dict[SeriesKey, list[np.ndarray]],
                   listings: dict[SeriesKey, tuple[SeriesRow, list[Segment]]],
                   bounds: dict[SeriesKey, tuple[int, int]], receipts: list[StoreReceipt], reading: list[SeriesKey],
                   changes: dict[SeriesKey, ManifestChange],
                   writing: dict[SeriesKey, list[int]]) -> list[tuple[SeriesKey, pa.Table, int]]:
        """One step of :meth:`_write_locked`: the jobs (rows to write) of ``keys``.

        Reads each series' stored rows of its span, diffs the items, fills in their
        receipts, ``changes`` and ``writing``.
        """
        currents: dict[SeriesKey, pa.Table] = {}
        for key in keys:
            reading.append(key)
            currents[key] = self._stored(key, listings[key][1], *bounds[key])
        vector = self._diff_vectorised(items, ready, {key: order[key] for key in keys}, currents, receipts)
        jobs: list[tuple[SeriesKey, pa.Table, int]] = []
        for key in keys:
            idxs = order[key]
            series = listings[key][0]
            if idxs[0] in vector:  # a series named once, diffed with the whole step
                i = idxs[0]
                if vector[i].num_rows:
                    jobs.append((key, vector[i], series.next_seq))
                    writing[key] = [i]
                    changes[key] = ManifestChange(series, [], [], series.rows + receipts[i].rows_new, True)
                continue
            spans = times[key]
            current = currents[key]
            parts: list[pa.Table] = []
            new_rows = 0
            for j, i in enumerate(idxs):
                batch = ready.batches[i]
                change = diff(batch, current)
                rows = batch if change.write is None else batch.filter(pa.array(change.write))
                receipts[i] = StoreReceipt(change.new, change.changed, change.unchanged, 0,
                                           int(spans[j][0]), int(spans[j][-1]))
                new_rows += change.new
                if rows.num_rows:
                    parts.append(rows)
                    writing.setdefault(key, []).append(i)
                    if j + 1 < len(idxs):
                        current = _upsert(current, rows)
            if not parts:
                continue
            jobs.append((key, parts[0] if len(parts) == 1 else _upsert(*parts), series.next_seq))
            changes[key] = ManifestChange(series, [], [], series.rows + new_rows, True)
        return jobs

    def _stored(self, key: SeriesKey, segs: list[Segment], lo: int, hi: int) -> pa.Table:
        """The stored rows of ``key`` in ``[lo, hi)`` (listed under the series lock).

        Each segment is sliced to the range before the merge (zero-copy), so a year-long
        base file is never concatenated or searched whole for a day's upsert.
        """
        if not segs:
            return _EMPTY
        return merge_segments([(s, slice_range(t, lo, hi)) for s, t in self._load_listed(key, segs)])

    @staticmethod
    def _diff_vectorised(items: list[SeriesKey], ready: _Prepared, order: dict[SeriesKey, list[int]],
                         currents: dict[SeriesKey, pa.Table],
                         receipts: list[StoreReceipt]) -> dict[int, pa.Table]:
        """Diff every item of a series named once in the call, that is a slice of the joined
        table, in one :func:`diff_many`; returns their rows to write by item (and fills in
        their receipts). Other items (a series named twice, a big or unsorted item) are
        left to the per-series :func:`diff`.
        """
        fast = sorted(idxs[0] for idxs in order.values() if len(idxs) == 1 and ready.starts[idxs[0]] >= 0)
        joined = ready.whole
        if not fast or joined is None:
            return {}
        starts = np.array([ready.starts[i] for i in fast], dtype=np.int64)
        sizes = np.array([ready.sizes[i] for i in fast], dtype=np.int64)
        # Only the part of the joined table these items span (a step's items are usually
        # consecutive in it).
        lo, hi = int(starts[0]), int((starts + sizes).max())
        whole = joined.slice(lo, hi - lo)
        got = diff_many(whole, starts - lo, sizes, [currents[items[i]] for i in fast])
        if got is None:
            return {}
        write, new, changed, unchanged = got
        # The items' rows to write, in item order (all of the span's rows: no copy).
        rows = whole if write.all() else whole.filter(pa.array(write))
        out: dict[int, pa.Table] = {}
        first = 0
        for j, i in enumerate(fast):
            n = int(new[j] + changed[j])
            out[i] = rows.slice(first, n)
            first += n
            receipts[i] = StoreReceipt(int(new[j]), int(changed[j]), int(unchanged[j]), 0,
                                       int(ready.stamps[i][0]), int(ready.stamps[i][-1]))
        return out

    def _load_listed(self, key: SeriesKey, segs: list[Segment]) -> list[tuple[Segment, pa.Table]]:
        """Load files listed under the series lock: none can vanish, so a missing one is damage."""
        try:
            return self._core.load(segs)
        except FileNotFoundError as exc:
            path = self._core.layout.abs(str(exc.filename))
            raise CorruptData("a file listed in the manifest is missing", path=str(path), symbol=key.symbol,
                              timeframe=key.timeframe) from None

    def _checkpoint(self) -> None:
        # Like a compaction: the writes are committed; a failed checkpoint only leaves
        # the WAL longer (SQLite's own checkpoint still bounds it).
        try:
            self._core.catalog.checkpoint()
        except StorageError as exc:
            _log.warning("catalog checkpoint failed: %s", exc)

    def _auto_compact(self, todo: Todo) -> None:
        # The write is already committed: a failed compaction must not turn it into an
        # error the caller would retry; the next write or compact() tries again.
        try:
            self._core.compact_many(todo, full=False, wait=False)
        except (StorageError, OSError) as exc:
            _log.warning("compaction of %d series failed: %s", len(todo), exc)

    def read(self, symbol: str, timeframe: str, start_us: int | None = None,
             end_us: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Bars with ``start_us <= ts < end_us``, sorted, unique, :data:`BAR_SCHEMA`.

        Never blocked by writers; always one consistent published state.

        Parameters
        ----------
        symbol, timeframe
            The series.
        start_us, end_us
            Half-open bounds in epoch microseconds; ``None`` is unbounded.
        columns
            Bar columns to return (in that order); all of :data:`BAR_SCHEMA` by default.

        Raises
        ------
        CorruptData
            If a stored file of the range is damaged. The file is then set aside and its
            coverage cleared (as :meth:`verify` does), so the next read sees that range as
            missing instead of failing again.
        """
        key = self._key(symbol, timeframe)
        start_us, end_us = _bound(start_us), _bound(end_us)
        if columns is not None:
            unknown = [c for c in columns if c not in BAR_SCHEMA.names]
            if unknown:
                raise InvalidInput(f"unknown bar column(s) {', '.join(unknown)}")
        if start_us is not None and end_us is not None and end_us <= start_us:
            empty = BAR_SCHEMA.empty_table()
            return empty if columns is None else empty.select(list(columns))
        with self._healing(key):
            return self._core.read(key, start_us, end_us, columns)

    def latest(self, symbol: str, timeframe: str, n: int) -> pa.Table:
        """The last ``n`` bars, ascending: reads only the newest partitions needed."""
        key = self._key(symbol, timeframe)
        if n <= 0:
            return BAR_SCHEMA.empty_table()
        with self._healing(key):
            return self._core.latest(key, n)

    def delete_range(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> int:
        """Remove bars in ``[start_us, end_us)`` atomically; return how many were removed.

        Each touched period partition is rewritten without the range and swapped in one
        manifest transaction; ``None`` bounds are unbounded.
        """
        key = self._key(symbol, timeframe)
        start_us, end_us = _bound(start_us), _bound(end_us)
        core = self._core
        if core.listing(key)[0] is None:
            return 0
        with self._healing(key), core.lock(key):
            series, segs = core.listing(key)
            assert series is not None
            touched = {s.period for s in core.listing(key, start_us, end_us)[1]}
            groups = [[s for s in segs if s.period == p] for p in sorted(touched)]
            add, remove, removed = [], [], 0
            seq = series.next_seq
            for group in groups:
                merged = merge_segments(core.load(group))
                inside = slice_range(merged, start_us, end_us).num_rows
                if inside == 0:
                    continue
                keep_before = slice_range(merged, None, start_us) if start_us is not None else merged.slice(0, 0)
                keep_after = slice_range(merged, end_us, None) if end_us is not None else merged.slice(0, 0)
                kept = pa.concat_tables([keep_before, keep_after])
                if kept.num_rows:
                    core.session.ensure()
                    new = publish_rows(core.layout, core.fs, key, kept, seq)
                    seq += len(new)
                    add.extend(new)
                remove.extend(group)
                removed += inside
            if removed:
                core.commit(key, series, add=add, remove=remove, rows=series.rows - removed, touched=True)
        return removed

    def series(self) -> list[SeriesInfo]:
        """Every non-empty (symbol, timeframe) with row count and bounds."""
        self._open()
        with self._core.catalog.read() as conn:
            rows = Catalog.all_series(conn)
        return [SeriesInfo(r.symbol, r.timeframe, r.rows, r.first_us, r.last_us, r.last_write_us)
                for r in rows if r.rows > 0]

    # -- coverage ledger ----------------------------------------------------------------
    def coverage(self, symbol: str, timeframe: str) -> list[CoverageInterval]:
        """The coverage intervals, sorted and non-overlapping."""
        return _ledger.coverage(self._core.catalog, self._key(symbol, timeframe))

    def mark_covered(self, symbol: str, timeframe: str, intervals: Sequence[CoverageInterval]) -> None:
        """Apply coverage marks atomically (latest mark wins on overlap)."""
        _ledger.mark_covered(self._core.catalog, self._key(symbol, timeframe), intervals)

    def clear_coverage(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> None:
        """Forget coverage inside the range (it becomes missing)."""
        _ledger.clear_coverage(self._core.catalog, self._key(symbol, timeframe), _bound(start_us), _bound(end_us))

    # -- catalog ------------------------------------------------------------------------
    def add_actions(self, symbol: str, actions: Sequence[CorporateAction]) -> int:
        """Store actions keyed by (ex_date, kind); return how many were new or changed."""
        self._open()
        return _ledger.add_actions(self._core.catalog, symbol, actions)

    def actions(self, symbol: str) -> list[CorporateAction]:
        """All actions for ``symbol`` sorted by ex_date."""
        self._open()
        return _ledger.actions(self._core.catalog, symbol)

    def put_instrument(self, instrument: Instrument) -> None:
        """Insert or replace an instrument record."""
        self._open()
        _ledger.put_instrument(self._core.catalog, instrument)

    def delete_instrument(self, symbol: str) -> bool:
        """Remove an instrument record (its bars stay); whether one existed."""
        self._open()
        return _ledger.delete_instrument(self._core.catalog, validate_symbol(symbol))

    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument record, if any."""
        self._open()
        return _ledger.instrument(self._core.catalog, symbol)

    def instruments(self) -> list[Instrument]:
        """Every instrument record, sorted by symbol."""
        self._open()
        return _ledger.instruments(self._core.catalog)

    def save_report(self, report: QualityReport) -> None:
        """Keep ``report`` as the latest for its (symbol, timeframe)."""
        _ledger.save_report(self._core.catalog, self._key(report.symbol, report.timeframe), report)

    def latest_report(self, symbol: str, timeframe: str) -> QualityReport | None:
        """The latest quality report, if any."""
        return _ledger.latest_report(self._core.catalog, self._key(symbol, timeframe))

    def quarantine(self, symbol: str, timeframe: str, rows: pa.Table) -> None:
        """Append quarantined rows (QUARANTINE_SCHEMA) durably."""
        _ledger.quarantine(self._core.catalog, self._key(symbol, timeframe), rows)

    def quarantined(self, symbol: str, timeframe: str) -> pa.Table:
        """All quarantined rows for the series (QUARANTINE_SCHEMA)."""
        return _ledger.quarantined(self._core.catalog, self._key(symbol, timeframe))

    def get_meta(self, key: str) -> str | None:
        """A small catalog value, if any."""
        return _ledger.get_meta(self._core.catalog, check_meta_key(key))

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or delete) a small catalog value durably."""
        _ledger.set_meta(self._core.catalog, check_meta_key(key, value), value)

    # -- maintenance --------------------------------------------------------------------
    def wait_for_compaction(self) -> None:
        """Wait until the background compactions queued so far are done (or skipped)."""
        if self._compactor is not None:
            self._compactor.drain()

    def compact(self, symbol: str | None = None, timeframe: str | None = None) -> int:
        """Merge every partition to a single Parquet file; return how many series changed.

        Crash-safe: the merged file is published before the manifest swap, and the old
        files are deleted only after it. Readers in other processes keep working.

        Parameters
        ----------
        symbol, timeframe
            Restrict to one symbol and/or timeframe (``None``: all).
        """
        self._open()
        sym = None if symbol is None else validate_symbol(symbol)
        tf = None if timeframe is None else canonical_timeframe(timeframe)
        count = 0
        for info in self.series():
            if (sym is None or info.symbol == sym) and (tf is None or info.timeframe == tf):
                key = SeriesKey(info.symbol, info.timeframe)
                with self._healing(key):
                    count += self._core.compact_series(key, full=True)
        return count

    def verify(self) -> VerifyReport:
        """Check every stored file; set aside damaged ones and clear their coverage."""
        self._open()
        self.wait_for_compaction()
        return _maintenance.verify(self._core)

    def size_bytes(self) -> int:
        """Bytes on disk: every listed data file plus the catalog."""
        self._open()
        with self._core.catalog.read() as conn:
            # Inline deltas live in the catalog file, counted below.
            data = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE path NOT LIKE ?",
                                (f"%{INLINE_SUFFIX}",)).fetchone()[0]
        catalog = self._core.layout.catalog
        extra = 0
        for suffix in ("", "-wal", "-shm"):
            p = catalog.with_name(catalog.name + suffix)
            if p.exists():
                extra += p.stat().st_size
        return int(data) + extra

    def files(self, symbol: str, timeframe: str) -> list[Path]:
        """The published files of a series, in publication order.

        Parquet files (and Arrow IPC ``.arrow`` deltas of stores written before inline
        deltas). Small upserts not yet compacted are inline deltas in the catalog, not
        files, so they are not listed: after :meth:`compact` each period partition is
        exactly one Parquet file holding every row, and external engines (DuckDB,
        Polars) can read the ``bars/`` tree directly.
        """
        key = self._key(symbol, timeframe)
        return [self._core.layout.abs(s.path) for s in self._core.listing(key)[1] if not is_inline(s.path)]

    def close(self) -> None:
        """End the writer session and release the catalog connections. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._compactor is not None:
            self._compactor.close()
        try:
            self._core.session.close()
        finally:
            self._core.reader.clear()
            self._core.catalog.close()
