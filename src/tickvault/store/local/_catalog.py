"""The transactional catalog of the embedded store: one SQLite database in WAL mode.

It holds the *segment manifest* (which Parquet files make up each series; a file exists
for readers only once its row is committed here), the bytes of inline deltas (small
upserts kept as BLOBs: the packs of one write's deltas, or one BLOB per delta in stores of
version 2; committed with their manifest rows), per-series statistics, the
coverage ledger, corporate actions, instruments, quality reports and quarantined rows.

WAL mode lets readers in any process run while one writer commits, and
``synchronous=FULL`` makes every commit durable before it returns. Each thread gets its
own connection (a connection must not be shared by concurrent transactions). Every
value reaches SQL as a bound parameter, never by string formatting.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tickvault.errors import StorageError, StoreLocked
from tickvault.store.local._layout import SeriesKey

__all__ = ["Catalog", "NewSegment", "Pack", "Segment", "SeriesRow", "now_us"]

SCHEMA_VERSION = "3"
#: Version 2 added the ``deltas`` table (per-path inline deltas) and its trigger; version 3
#: the ``packs`` table (the inline deltas of one write, packed), the ``pack`` and
#: ``pack_row`` columns of ``segments`` and their index and trigger. An older catalog is
#: upgraded in place when it is opened (one transaction; no row changes).
_OLD_VERSIONS = ("1", "2")

_DELTAS_SCHEMA = """
CREATE TABLE IF NOT EXISTS deltas (path TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS deltas_follow_segments AFTER DELETE ON segments
    BEGIN DELETE FROM deltas WHERE path = OLD.path; END;
"""

# ``packs``: AUTOINCREMENT so that an id is never reused (the decoded-file cache keys a
# decoded pack by its id). The trigger deletes a pack with the last manifest row using it.
_PACKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS segments_by_pack ON segments (pack) WHERE pack IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS packs_follow_segments AFTER DELETE ON segments
    WHEN OLD.pack IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments WHERE pack = OLD.pack)
    BEGIN DELETE FROM packs WHERE id = OLD.pack; END;
"""
_PACK_COLUMNS = ("ALTER TABLE segments ADD COLUMN pack INTEGER", "ALTER TABLE segments ADD COLUMN pack_row INTEGER")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    rel_dir TEXT NOT NULL UNIQUE,
    rows INTEGER NOT NULL DEFAULT 0,
    first_us INTEGER,
    last_us INTEGER,
    last_write_us INTEGER,
    next_seq INTEGER NOT NULL DEFAULT 1,
    UNIQUE (symbol, timeframe)
);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES series(id),
    period TEXT NOT NULL,
    seq INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    rows INTEGER NOT NULL,
    min_us INTEGER NOT NULL,
    max_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    crc32 INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    pack INTEGER,
    pack_row INTEGER
);
CREATE INDEX IF NOT EXISTS segments_by_series ON segments (series_id, max_us);
CREATE TABLE IF NOT EXISTS coverage (
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    state TEXT NOT NULL,
    provider TEXT,
    updated_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS coverage_by_series ON coverage (symbol, timeframe, start_us);
CREATE TABLE IF NOT EXISTS actions (
    symbol TEXT NOT NULL,
    ex_date TEXT NOT NULL,
    kind TEXT NOT NULL,
    value REAL NOT NULL,
    currency TEXT,
    provider TEXT,
    PRIMARY KEY (symbol, ex_date, kind)
);
CREATE TABLE IF NOT EXISTS instruments (symbol TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (symbol, timeframe)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    rows INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_by_series ON quarantine (symbol, timeframe, id);
CREATE TABLE IF NOT EXISTS damaged (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    original TEXT NOT NULL,
    moved_to TEXT,
    problem TEXT NOT NULL,
    min_us INTEGER NOT NULL,
    max_us INTEGER NOT NULL,
    at_us INTEGER NOT NULL
);
""" + _DELTAS_SCHEMA + _PACKS_SCHEMA

#: With deferred checkpoints a commit still checkpoints past this many WAL pages (64 MiB
#: of 4 KiB pages), so the WAL stays bounded if the checkpointing thread never runs.
DEFERRED_CHECKPOINT_PAGES = 16384

_SEGMENT_COLS = "id, series_id, period, seq, path, rows, min_us, max_us, bytes, crc32, pack, pack_row"
_SERIES_COLS = "id, symbol, timeframe, rel_dir, rows, first_us, last_us, last_write_us, next_seq"
_PREFETCH_BYTES = 16 * 2**20


def _prefetch(path: Path) -> None:
    """Ask the kernel to start reading the catalog (and its WAL) now, in one request.

    On a cold page cache SQLite otherwise reads the B-tree pages one at a time as queries
    need them: the header and schema at open, then the manifest pages of the first read,
    each a separate blocking read (0.3-2 ms on a VM disk). A catalog is small (a few
    hundred KB for hundreds of series); the first 16 MB cover it. Best effort: a file that
    is missing (new store) or refuses the hint is simply read as before.
    """
    if not hasattr(os, "posix_fadvise"):  # pragma: no cover - not on Linux
        return
    for name in (path, path.with_name(path.name + "-wal")):
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, _PREFETCH_BYTES, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def _statements(script: str) -> list[str]:
    """The statements of a schema script (a trigger body's ``;`` does not end it)."""
    out: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    return out


_UPDATE_SERIES = ("UPDATE series SET rows = ?, first_us = ?, last_us = ?, next_seq = ?, "
                  "last_write_us = CASE WHEN ? THEN ? ELSE last_write_us END WHERE id = ?")


def _insert_segments(conn: sqlite3.Connection, added: Sequence[tuple[SeriesRow, NewSegment]]) -> int:
    """Insert manifest rows (and the packs or BLOBs of inline deltas among them); return their ``created_us``.

    Each :class:`Pack` is inserted once, before the manifest rows that reference it, and
    gets its (never reused) id here.
    """
    created = now_us()
    for pack in dict.fromkeys(s.pack for _, s in added if s.pack is not None):
        pack.id = conn.execute("INSERT INTO packs (data) VALUES (?)", (pack.data,)).lastrowid
    conn.executemany(
        "INSERT INTO segments (series_id, period, seq, path, rows, min_us, max_us, bytes, crc32, created_us, "
        "pack, pack_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(series.id, s.period, s.seq, s.path, s.rows, s.min_us, s.max_us, s.bytes, s.crc32, created,
          None if s.pack is None else s.pack.id, s.pack_row)
         for series, s in added])
    inline = [(s.path, s.data) for _, s in added if s.data is not None]
    if inline:
        conn.executemany("INSERT INTO deltas (path, data) VALUES (?, ?)", inline)
    return created


def _in_lists(values: list[int]) -> Iterator[tuple[list[int], str]]:
    """``values`` in chunks of 500 with their ``?, ?, ...`` marks for ``IN (...)`` (far below
    SQLite's bound-parameter limit)."""
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500]
        yield chunk, ", ".join("?" * len(chunk))


def now_us() -> int:
    """Wall-clock time in epoch microseconds."""
    return time.time_ns() // 1000


class Segment(NamedTuple):
    """One published Parquet file of a series (a manifest row).

    Named tuples, not frozen dataclasses: a 500-series write makes ~1,500 of these rows
    (listing, plan, commit), and a frozen dataclass costs ~3.6 µs each to build, a named
    tuple ~0.7 µs.
    """

    id: int
    series_id: int
    period: str
    seq: int
    path: str
    rows: int
    min_us: int
    max_us: int
    bytes: int
    crc32: int
    pack: int | None = None  # a packed inline delta: the id of its pack ...
    pack_row: int | None = None  # ... and its first row in it (bytes and crc32 are the pack's)


@dataclass(eq=False)
class Pack:
    """The BLOB of one pack of inline deltas (see ``_delta``), shared by their :class:`NewSegment` rows.

    ``id`` is set when the commit inserts it.
    """

    data: builtins.bytes
    rows: int
    id: int | None = None


class NewSegment(NamedTuple):
    """A file (or an inline delta, with its ``data``) about to be committed to the manifest."""

    period: str
    seq: int
    path: str
    rows: int
    min_us: int
    max_us: int
    bytes: int
    crc32: int
    data: builtins.bytes | None = None  # a per-path inline delta's BLOB (schema 2), inserted with the manifest row
    pack: Pack | None = None  # a packed inline delta's pack (bytes and crc32 are the pack's) ...
    pack_row: int | None = None  # ... and its first row in it


class SeriesRow(NamedTuple):
    """Statistics row of one series."""

    id: int
    symbol: str
    timeframe: str
    rel_dir: str
    rows: int
    first_us: int | None
    last_us: int | None
    last_write_us: int | None
    next_seq: int


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Catalog:
    """Thread-safe access to the SQLite catalog (see the module docstring).

    Parameters
    ----------
    path
        The database file.
    timeout
        Seconds to wait for another writer's transaction before :class:`StoreLocked`.
    durable
        ``synchronous=FULL`` when true, ``NORMAL`` (survives process crashes only) when false.
    defer_checkpoints
        Commits leave WAL checkpoints to :meth:`checkpoint` (called off the write path)
        up to :data:`DEFERRED_CHECKPOINT_PAGES`; else SQLite's automatic checkpoint
        (1,000 pages) runs inside the commit that crosses it.
    """

    def __init__(self, path: Path, *, timeout: float, durable: bool, defer_checkpoints: bool = False) -> None:
        self._path = path
        self._timeout = timeout
        self._sync = "FULL" if durable else "NORMAL"
        self._autocheckpoint = DEFERRED_CHECKPOINT_PAGES if defer_checkpoints else 1000
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False
        self._known: set[SeriesKey] = set()
        _prefetch(path)
        conn = self.conn()
        try:
            # Both checks are reads, so an ordinary open writes (and fsyncs) nothing.
            self._use_wal(conn)
            version = self._schema_version(conn)
            if version is None:
                with self.write() as c:
                    for stmt in _statements(_SCHEMA):
                        c.execute(stmt)
                    c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                              (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                self._upgrade(conn)
        except sqlite3.Error as exc:
            self.close()
            raise StorageError(f"cannot open the catalog: {exc}", path=str(path)) from exc
        except BaseException:
            self.close()
            raise

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new catalog to WAL mode, waiting for others that open it at the same time.

        Changing the journal mode needs an exclusive lock and SQLite does not wait for it,
        so processes or threads creating one store at once retry here (up to the timeout).
        """
        deadline = time.monotonic() + self._timeout
        while str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> str | None:
        """The catalog's schema version (``None``: a new catalog), checked to be one we read."""
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        if row is None:
            return None
        version = str(row[0])
        if version != SCHEMA_VERSION and version not in _OLD_VERSIONS:
            raise StorageError(f"catalog schema version {version} is not supported (expected {SCHEMA_VERSION})")
        return version

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Bring an older catalog to :data:`SCHEMA_VERSION` in one transaction.

        Once upgraded, a tickvault that only knows an older version refuses to open the
        store (it could not read inline deltas or packs) instead of taking them for
        missing files.
        """
        with self.write() as c:
            version = self._schema_version(c)  # another process may have upgraded it meanwhile
            if version == SCHEMA_VERSION:
                return
            if version == "1":
                for stmt in _statements(_DELTAS_SCHEMA):
                    c.execute(stmt)
            for stmt in (*_PACK_COLUMNS, *_statements(_PACKS_SCHEMA)):
                c.execute(stmt)
            c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    # -- connections and transactions ----------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._guard:
            if self._closed:
                raise StorageError("the store is closed", path=str(self._path))
            try:
                conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA synchronous={self._sync}")
                conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
                conn.execute(f"PRAGMA wal_autocheckpoint={self._autocheckpoint}")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open the catalog: {exc}", path=str(self._path)) from exc
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def write(self, before_commit: Callable[[], None] | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); commit is the publication point."""
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise StoreLocked("the catalog is locked by another writer", path=str(self._path),
                                  waited_s=self._timeout) from exc
            raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc
        try:
            yield conn
            if before_commit is not None:
                before_commit()
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot (WAL readers never wait for writers)."""
        conn = self.conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database file (``PASSIVE``: never waits).

        Commits are durable once their WAL frames are synced; this only keeps the WAL
        short. Readers and writers keep running meanwhile.
        """
        try:
            self.conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"catalog checkpoint failed: {exc}", path=str(self._path)) from exc

    def close(self) -> None:
        """Close every connection (idempotent)."""
        with self._guard:
            self._closed = True
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    # -- series and manifest ---------------------------------------------------------------
    @staticmethod
    def series_row(conn: sqlite3.Connection, key: SeriesKey) -> SeriesRow | None:
        """The statistics row of ``key``, if the series was ever created."""
        row = conn.execute(f"SELECT {_SERIES_COLS} FROM series WHERE symbol = ? AND timeframe = ?",
                           (key.symbol, key.timeframe)).fetchone()
        return SeriesRow(*row) if row else None

    def ensure_series(self, key: SeriesKey) -> None:
        """Create the series row (in its own committed transaction) if it is missing.

        Creating it *before* any file is written means every series folder on disk has a
        row, so open-time cleanup can tell orphans from data even after a crash. Series
        rows are never deleted, so a key seen once is remembered for the process.
        """
        if key in self._known:
            return
        row = self.conn().execute("SELECT id FROM series WHERE symbol = ? AND timeframe = ?",
                                  (key.symbol, key.timeframe)).fetchone()
        if row is None:
            with self.write() as conn:
                conn.execute("INSERT OR IGNORE INTO series (symbol, timeframe, rel_dir) VALUES (?, ?, ?)",
                             (key.symbol, key.timeframe, key.rel_dir))
        self._known.add(key)

    def ensure_series_many(self, keys: Sequence[SeriesKey]) -> None:
        """:meth:`ensure_series` for several keys: the missing rows in one transaction."""
        todo = [k for k in dict.fromkeys(keys) if k not in self._known]
        if not todo:
            return
        conn = self.conn()
        missing = [k for k in todo if conn.execute("SELECT id FROM series WHERE symbol = ? AND timeframe = ?",
                                                   (k.symbol, k.timeframe)).fetchone() is None]
        if missing:
            with self.write() as wconn:
                wconn.executemany("INSERT OR IGNORE INTO series (symbol, timeframe, rel_dir) VALUES (?, ?, ?)",
                                  [(k.symbol, k.timeframe, k.rel_dir) for k in missing])
        self._known.update(todo)

    @staticmethod
    def crowded(conn: sqlite3.Connection, series_ids: Sequence[int], threshold: int) -> list[tuple[int, str]]:
        """(series id, period) of the partitions of ``series_ids`` holding more than ``threshold`` files."""
        out: list[tuple[int, str]] = []
        for chunk, marks in _in_lists(list(dict.fromkeys(series_ids))):
            out.extend((int(r[0]), str(r[1])) for r in conn.execute(
                f"SELECT series_id, period FROM segments WHERE series_id IN ({marks}) "
                "GROUP BY series_id, period HAVING COUNT(*) > ?", [*chunk, threshold]))
        return out

    def listing(self, key: SeriesKey, lo: int | None, hi: int | None) -> tuple[SeriesRow | None, list[Segment]]:
        """The series row and its segments overlapping ``[lo, hi)``, in publication order.

        One statement (a consistent snapshot on its own), because this runs on every read.
        """
        cond = ""
        args: list[object] = []
        if lo is not None:
            cond += " AND g.max_us >= ?"
            args.append(lo)
        if hi is not None:
            cond += " AND g.min_us < ?"
            args.append(hi)
        cols = ", ".join("s." + c.strip() for c in _SERIES_COLS.split(",")) + ", " + ", ".join(
            "g." + c.strip() for c in _SEGMENT_COLS.split(","))
        sql = (f"SELECT {cols} FROM series s LEFT JOIN segments g ON g.series_id = s.id{cond} "
               "WHERE s.symbol = ? AND s.timeframe = ? ORDER BY g.seq")
        try:
            rows = self.conn().execute(sql, [*args, key.symbol, key.timeframe]).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc
        if not rows:
            return None, []
        n = len(_SERIES_COLS.split(","))
        series = SeriesRow(*rows[0][:n])
        return series, [Segment(*r[n:]) for r in rows if r[n] is not None]

    def listings(self, spans: dict[SeriesKey, tuple[int, int]]) -> dict[SeriesKey, tuple[SeriesRow, list[Segment]]]:
        """:meth:`listing` of many series at once, each over its own ``[lo, hi)``.

        For writers that hold every one of these series' locks (the rows cannot change
        under them): a few statements instead of one per series. Series without a row
        are left out.
        """
        out: dict[SeriesKey, tuple[SeriesRow, list[Segment]]] = {}
        keys = list(spans)
        n = len(_SERIES_COLS.split(","))
        cols = ", ".join("s." + c.strip() for c in _SERIES_COLS.split(",")) + ", " + ", ".join(
            "g." + c.strip() for c in _SEGMENT_COLS.split(","))
        conn = self.conn()
        for i in range(0, len(keys), 200):  # 4 parameters each: far below SQLite's limit
            chunk = keys[i:i + 200]
            values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
            sql = (f"WITH want(symbol, timeframe, lo, hi) AS (VALUES {values}) "
                   f"SELECT {cols} FROM want w JOIN series s ON s.symbol = w.symbol AND s.timeframe = w.timeframe "
                   "LEFT JOIN segments g ON g.series_id = s.id AND g.max_us >= w.lo AND g.min_us < w.hi "
                   "ORDER BY s.id, g.seq")
            args = [v for k in chunk for v in (k.symbol, k.timeframe, *spans[k])]
            try:
                rows = conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc
            by_id: dict[int, tuple[SeriesRow, list[Segment]]] = {}
            for r in rows:
                entry = by_id.get(r[0])
                if entry is None:
                    entry = by_id[r[0]] = (SeriesRow(*r[:n]), [])
                    out[SeriesKey(entry[0].symbol, entry[0].timeframe)] = entry
                if r[n] is not None:
                    entry[1].append(Segment(*r[n:]))
        return out

    @staticmethod
    def segments(conn: sqlite3.Connection, series_id: int, lo: int | None = None,
                 hi: int | None = None) -> list[Segment]:
        """Manifest rows of a series overlapping ``[lo, hi)``, in publication order."""
        sql = f"SELECT {_SEGMENT_COLS} FROM segments WHERE series_id = ?"
        args: list[int] = [series_id]
        if lo is not None:
            sql += " AND max_us >= ?"
            args.append(lo)
        if hi is not None:
            sql += " AND min_us < ?"
            args.append(hi)
        return [Segment(*r) for r in conn.execute(sql + " ORDER BY seq", args)]

    def delta_data(self, path: str) -> bytes | None:
        """The BLOB of a per-path inline delta, or ``None`` once it left the manifest."""
        return self._blob("SELECT data FROM deltas WHERE path = ?", path)

    def pack_data(self, pack: int) -> bytes | None:
        """The BLOB of a pack of inline deltas, or ``None`` once no manifest row uses it."""
        return self._blob("SELECT data FROM packs WHERE id = ?", pack)

    def live_packs(self, ids: Collection[int]) -> set[int]:
        """Those of the pack ids ``ids`` that some manifest row still uses."""
        out: set[int] = set()
        try:
            for chunk, marks in _in_lists(list(ids)):
                out.update(int(r[0]) for r in self.conn().execute(f"SELECT id FROM packs WHERE id IN ({marks})",
                                                                   chunk))
        except sqlite3.Error as exc:
            raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc
        return out

    def _blob(self, sql: str, key: str | int) -> bytes | None:
        try:
            row = self.conn().execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"catalog error: {exc}", path=str(self._path)) from exc
        return None if row is None else bytes(row[0])

    @staticmethod
    def all_series(conn: sqlite3.Connection) -> list[SeriesRow]:
        """Every series row, sorted by (symbol, timeframe)."""
        return [SeriesRow(*r) for r in conn.execute(f"SELECT {_SERIES_COLS} FROM series ORDER BY symbol, timeframe")]

    @staticmethod
    def apply_manifest(conn: sqlite3.Connection, series: SeriesRow, *, add: Sequence[NewSegment],
                       remove: Sequence[int], rows: int, touched: bool) -> None:
        """Swap manifest rows and refresh the series statistics (inside a write txn).

        ``rows`` is the new exact row count; ``touched`` updates ``last_write_us``.
        """
        if remove:
            conn.executemany("DELETE FROM segments WHERE id = ?", [(i,) for i in remove])
        created = _insert_segments(conn, [(series, s) for s in add])
        next_seq = max([series.next_seq - 1, *[s.seq for s in add]]) + 1
        bounds = conn.execute("SELECT MIN(min_us), MAX(max_us) FROM segments WHERE series_id = ?",
                              (series.id,)).fetchone()
        conn.execute(_UPDATE_SERIES, (rows, bounds[0], bounds[1], next_seq, 1 if touched else 0, created, series.id))

    @staticmethod
    def append_manifests(conn: sqlite3.Connection,
                         entries: Sequence[tuple[SeriesRow, Sequence[NewSegment], int, bool]]) -> None:
        """:meth:`apply_manifest` without removals for many series: a few statements in all.

        Each entry is ``(series, add, rows, touched)``; ``series`` must be the current row
        (read under the series lock), so the new bounds follow from it and ``add``
        without querying the manifest.
        """
        if not entries:
            return
        created = _insert_segments(conn, [(series, s) for series, add, _, _ in entries for s in add])
        updates = []
        for series, add, rows, touched in entries:
            los = [s.min_us for s in add] + ([] if series.first_us is None else [series.first_us])
            his = [s.max_us for s in add] + ([] if series.last_us is None else [series.last_us])
            next_seq = max([series.next_seq - 1, *[s.seq for s in add]]) + 1
            updates.append((rows, min(los) if los else None, max(his) if his else None, next_seq,
                            1 if touched else 0, created, series.id))
        conn.executemany(_UPDATE_SERIES, updates)

    @staticmethod
    def all_segments(conn: sqlite3.Connection) -> list[tuple[Segment, str, str]]:
        """Every manifest row with its series' symbol and timeframe."""
        sql = (f"SELECT {', '.join('g.' + c.strip() for c in _SEGMENT_COLS.split(','))}, s.symbol, s.timeframe "
               "FROM segments g JOIN series s ON s.id = g.series_id ORDER BY g.id")
        return [(Segment(*r[:12]), r[12], r[13]) for r in conn.execute(sql)]

    @staticmethod
    def record_damage(conn: sqlite3.Connection, symbol: str, timeframe: str, original: str, moved_to: str | None,
                      problem: str, min_us: int, max_us: int) -> None:
        """Keep a trace of a file set aside by verify()."""
        conn.execute(
            "INSERT INTO damaged (symbol, timeframe, original, moved_to, problem, min_us, max_us, at_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (symbol, timeframe, original, moved_to, problem, min_us, max_us, now_us()),
        )
