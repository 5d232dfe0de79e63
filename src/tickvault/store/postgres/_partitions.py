"""Native range partitions of the bars tables: created ahead of need, on demand, or in bulk.

Each bars table is ``PARTITION BY RANGE (ts)`` with no default partition (a default
partition would have to be scanned every time a new partition is added, and rows parked
in it would block that). Before a batch is written, the partitions it needs must exist:

- :meth:`Partitions.ensure_ahead` creates the coming months at open, so live appends
  never pay for it;
- :meth:`Partitions.ensure` creates missing ones on demand, each as a plain table with a
  BRIN on time (appended rows arrive in time order) then *attached*, in a short
  transaction of its own. ``ATTACH PARTITION`` takes only a SHARE UPDATE EXCLUSIVE lock
  on the parent, which readers and writers do not conflict with (``CREATE TABLE ...
  PARTITION OF`` would take ACCESS EXCLUSIVE and stall every reader);
- :meth:`Partitions.bulk_load` builds a missing partition *inside* the caller's write
  transaction when the batch brings many rows for it (a history backfill): plain COPY
  into an index-less table, primary key built afterwards by sorting (far cheaper than
  maintaining a B-tree row by row), no BRIN (rows sorted by series leave it nothing to
  prune), then ATTACH. The table is invisible to everyone until the transaction commits,
  and vanishes with it on rollback or crash.

Partition names come from :class:`~._names.Period` (allow-listed table + digits). Each
period has its own advisory lock, so two processes never create the same partition.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from tickvault.errors import InvalidInput
from tickvault.store.postgres._codec import CopyRows, copy_rows
from tickvault.store.postgres._conn import session_lock
from tickvault.store.postgres._names import TIERS, Period, Tier, period_of

__all__ = ["Partitions", "split_by_period"]

Conn = psycopg.Connection[tuple[Any, ...]]
_MIN_US = -62_135_596_800_000_000  # 0001-01-01 UTC
_MAX_US = 253_402_300_799_999_999  # 9999-12-31 23:59:59.999999 UTC
_BOUNDS = "tickvault_bulk_bounds"
#: maintenance_work_mem for building a bulk-loaded partition's indexes (set for the transaction).
BULK_SORT_MEM = "256MB"


def split_by_period(tier: Tier, ts_us: np.ndarray) -> list[tuple[Period, int, int]]:
    """The partitions holding the *sorted* timestamps ``ts_us``, each with its row slice.

    Returns
    -------
    list of (period, start, stop)
        ``ts_us[start:stop]`` falls in ``period``; slices are contiguous and ordered.

    Raises
    ------
    InvalidInput
        For timestamps outside years 1-9999, which partitions cannot name.
    """
    if ts_us.size == 0:
        return []
    lo, hi = int(ts_us[0]), int(ts_us[-1])
    if lo < _MIN_US or hi > _MAX_US:
        raise InvalidInput("bar timestamps must lie in years 1-9999 to be stored in PostgreSQL")
    # Month numbers counted from year 0 (as Period counts them) of the first and last bar;
    # datetime64[M] counts from 1970-01. Sorted input: only the period edges are searched.
    first, last = (np.asarray([lo, hi], dtype="datetime64[us]").astype("datetime64[M]").astype(np.int64)
                   + 1970 * 12).tolist()
    step = tier.months_per_partition
    starts = np.arange(first - first % step, last + 1, step, dtype=np.int64)
    edges = (starts[1:] - 1970 * 12).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    cuts = [0, *np.searchsorted(ts_us, edges, side="left").tolist(), int(ts_us.size)]
    return [(Period(tier.name, int(m)), cuts[i], cuts[i + 1]) for i, m in enumerate(starts.tolist())
            if cuts[i + 1] > cuts[i]]


class Partitions:
    """Creates and remembers the partitions of one schema's bars tables."""

    def __init__(self, schema: str, lock_timeout_ms: int) -> None:
        self.schema = schema
        self.lock_timeout_ms = max(1, lock_timeout_ms)
        self._known: set[Period] = set()
        self._loaded = False
        self._lock = threading.Lock()

    def _lock_name(self, period: Period) -> str:
        return f"tickvault.partition:{self.schema}.{period.table}"

    def _load(self, conn: Conn) -> None:
        rows = conn.execute(
            """SELECT c.relname FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
               JOIN pg_namespace n ON n.oid = p.relnamespace
               WHERE n.nspname = %s AND p.relname = ANY(%s) AND c.relkind = 'r'""",
            (self.schema, [t.table for t in TIERS.values()]),
        ).fetchall()
        found: set[Period] = set()
        for (name,) in rows:
            for tier in TIERS.values():
                digits = str(name).removeprefix(f"{tier.table}_p")
                if digits != name and digits.isdigit():
                    found.add(period_of(tier, int(digits[:4]), int(digits[4:6] or "1")))
        with self._lock:
            self._known |= found
            self._loaded = True

    def _exists(self, conn: Conn, period: Period) -> bool:
        # A catalog *query* (fresh MVCC snapshot), not to_regclass (per-backend cache).
        row = conn.execute("""SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                             WHERE n.nspname = %s AND c.relname = %s)""",
                           (self.schema, period.table)).fetchone()
        return bool(row and row[0])

    def missing(self, conn: Conn, periods: Iterable[Period]) -> set[Period]:
        """Which of ``periods`` this process does not know to exist."""
        if not self._loaded:
            self._load(conn)
        with self._lock:
            return {p for p in periods if p not in self._known}

    def mark_known(self, periods: Iterable[Period]) -> None:
        """Remember partitions a committed transaction created."""
        with self._lock:
            self._known |= set(periods)

    def ensure(self, conn: Conn, periods: Sequence[Period]) -> int:
        """Create whichever of ``periods`` do not exist yet; return how many were created."""
        created = 0
        for period in sorted(self.missing(conn, periods)):
            if self._create(conn, period):
                created += 1
            self.mark_known([period])
        return created

    def ensure_ahead(self, conn: Conn, months: int, today: dt.date | None = None) -> int:
        """Create partitions from this month (year) up to ``months`` months ahead."""
        today = today or dt.datetime.now(dt.UTC).date()
        wanted: set[Period] = set()
        for k in range(months + 1):
            m = today.year * 12 + today.month - 1 + k
            for tier in TIERS.values():
                wanted.add(period_of(tier, m // 12, m % 12 + 1))
        return self.ensure(conn, sorted(wanted))

    def _attach(self, conn: Conn, period: Period) -> None:
        end = period.end
        conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            period.tier.ident(self.schema), period.ident(self.schema),
            sql.Literal(f"{period.start.isoformat()} 00:00:00+00"),
            sql.SQL("MAXVALUE") if end is None else sql.Literal(f"{end.isoformat()} 00:00:00+00")))

    def _create(self, conn: Conn, period: Period) -> bool:
        with session_lock(conn, self._lock_name(period), self.lock_timeout_ms), conn.transaction():
            # ATTACH waits for nothing readers or writers hold; a bounded wait still turns
            # an unexpected conflict (a bulk load attaching, a manual LOCK) into StoreLocked.
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{self.lock_timeout_ms}ms",))
            if self._exists(conn, period):
                return False  # another process made it
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                period.ident(self.schema), period.tier.ident(self.schema)))
            # Appended rows arrive in time order: here a BRIN on time prunes (see _migrations._v4).
            conn.execute(sql.SQL("CREATE INDEX ON {} USING brin (ts)").format(period.ident(self.schema)))
            self._attach(conn, period)
        return True

    def bulk_load(self, conn: Conn, period: Period, groups: Sequence[CopyRows]) -> bool:
        """In the caller's transaction, create ``period`` holding exactly the rows of ``groups``.

        Each group is one column layout (one ``COPY``); together they must hold each key
        at most once (rows in key order make the index build cheapest). Returns ``False``
        (and does nothing, leaving ``groups`` unread) when the partition exists after all:
        the caller then writes those rows the ordinary way. Call :meth:`mark_known` after
        the transaction commits.
        """
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_name(period),))
        if self._exists(conn, period):
            self.mark_known([period])
            return False
        child = period.ident(self.schema)
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
            child, period.tier.ident(self.schema)))
        # A CHECK matching the partition bounds, checked row by row as the COPY goes, lets
        # ATTACH skip its validating scan of the whole table; dropped once attached.
        end = period.end
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (ts >= {}{})").format(
            child, sql.Identifier(_BOUNDS), sql.Literal(f"{period.start.isoformat()} 00:00:00+00"),
            sql.SQL("") if end is None else sql.SQL(" AND ts < {}").format(
                sql.Literal(f"{end.isoformat()} 00:00:00+00"))))
        for rows in groups:
            copy_rows(conn, child, rows)
        # The sort behind the index build gets the same memory as the merge's hash joins.
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (BULK_SORT_MEM,))
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (series_id, ts)").format(child))
        # No BRIN on time: rows sorted by series give it nothing to prune (see _migrations._v4).
        # ATTACH adopts the primary key as a partition of the parent's.
        self._attach(conn, period)
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(child, sql.Identifier(_BOUNDS)))
        return True
