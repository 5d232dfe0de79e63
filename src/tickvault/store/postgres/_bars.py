"""Bars on PostgreSQL: binary COPY in, one merging statement per batch, binary arrays out.

Write path, one transaction (all or nothing):

1. take the series' advisory write lock (``lock_timeout`` -> :class:`StoreLocked`);
   in-batch duplicates are already resolved last-wins by
   :func:`~tickvault.model.dedupe_last`, so no statement ever sees a key twice;
2. if the batch's time range holds no stored bar of the series (one index probe), there
   is nothing to merge: the batch is binary-COPYed straight into the partitioned table
   (PostgreSQL's multi-insert path). Rows for a partition that does not exist yet, when
   there are many (a history backfill), go into a partition built in bulk inside this
   same transaction (see :mod:`._partitions`), which is cheaper still;
3. otherwise it is binary-COPYed into a per-connection temporary staging table and
   merged by one statement: an ``UPDATE ... FROM`` of the rows whose values differ plus
   an ``INSERT ... WHERE NOT EXISTS`` of the new keys, both in one ``WITH`` so they see
   the same snapshot and return their counts. Unlike ``INSERT ... ON CONFLICT DO
   UPDATE`` this never locks (and so never rewrites) an unchanged row: re-writing
   identical data writes nothing;
4. update the series row (count, bounds, last write) and commit.

Changed rows bump ``revisions``, a record of how often a vendor revised a bar.
"""

from __future__ import annotations

import datetime as dt
import time
import weakref
from typing import Any

import numpy as np
import pyarrow as pa
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.pq import Format

from tickvault.model import BAR_SCHEMA, StoreReceipt, dedupe_last
from tickvault.store.base import SeriesInfo
from tickvault.store.postgres._codec import (
    ARRAY_COLUMNS,
    NULLABLE,
    Column,
    concat,
    conform,
    decode_arrays,
    direct_columns,
    encode_copy,
    provider_codes,
    read_columns_sql,
    stage_columns,
)
from tickvault.store.postgres._conn import Conn
from tickvault.store.postgres._names import TIERS, Period, Tier
from tickvault.store.postgres._partitions import Partitions, split_by_period
from tickvault.store.postgres._registry import Registry

__all__ = ["ROW_BYTES", "Bars", "us_to_datetime"]

#: Approximate bytes one stored bar costs (heap tuple + primary-key entry), for receipts.
ROW_BYTES = 104
#: Rows per read round trip (bounded server memory for the arrays).
READ_CHUNK = 1_000_000
#: A missing partition receiving at least this many rows of one batch is built in bulk.
BULK_MIN_ROWS = 20_000
#: work_mem for the merging statement's hash joins, and the most keys merged per statement.
MERGE_WORK_MEM = "64MB"
MERGE_CHUNK = 500_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_STAGE = "tickvault_stage"
_STAGE_DDL = f"""CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    ts timestamptz NOT NULL, open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL,
    close float8 NOT NULL, volume float8 NOT NULL, vwap float8 NOT NULL, trade_count int8 NOT NULL,
    provider_id int2 NOT NULL, nulls int2 NOT NULL) ON COMMIT DELETE ROWS"""
_VALUES = ("provider_id", *NULLABLE)
# Binary array types the read query returns: int8[], float8[], timestamptz[], int2[].
_ARRAY_OIDS = (1016, 1022, 1185, 1005)


class _RawArray(Loader):
    """Hand binary arrays over as bytes; :mod:`._codec` parses them with numpy."""

    format = Format.BINARY

    def load(self, data: Any) -> bytes:
        return bytes(data)


def us_to_datetime(us: int) -> dt.datetime | None:
    """An exact tz-aware datetime for epoch µs, ``None`` outside what Python can represent."""
    try:
        return _EPOCH + dt.timedelta(microseconds=int(us))
    except OverflowError:
        return None


def _ids(*names: str) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _merge_sql(schema: str, tier: Tier) -> sql.Composed:
    decoded = sql.SQL(", ").join(
        [sql.SQL("s.ts"), sql.SQL("NULLIF(s.provider_id, -1) AS provider_id")]
        + [sql.SQL("CASE WHEN s.nulls & {} = 0 THEN s.{} END AS {}").format(
            sql.Literal(1 << i), sql.Identifier(c), sql.Identifier(c)) for i, c in enumerate(NULLABLE)])
    staged = sql.SQL("(SELECT {} FROM pg_temp.{} s)").format(decoded, sql.Identifier(_STAGE))
    table = tier.ident(schema)
    key_range = sql.SQL("{a}.series_id = %(sid)s AND {a}.ts >= %(lo)s AND {a}.ts <= %(hi)s")
    return sql.SQL(
        "WITH upd AS ("
        "UPDATE {table} AS b SET {sets}, revisions = least(b.revisions + 1, 32767) FROM {staged} AS n "
        "WHERE {b_range} AND b.ts = n.ts AND ({old}) IS DISTINCT FROM ({new}) RETURNING 1), "
        "ins AS ("
        "INSERT INTO {table} (series_id, ts, {cols}) SELECT %(sid)s, n.ts, {new} FROM {staged} AS n "
        "WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE {x_range} AND x.ts = n.ts) RETURNING 1) "
        "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd)"
    ).format(
        table=table, staged=staged, cols=_ids(*_VALUES),
        sets=sql.SQL(", ").join(sql.SQL("{0} = n.{0}").format(sql.Identifier(c)) for c in _VALUES),
        old=sql.SQL(", ").join(sql.SQL("b.{}").format(sql.Identifier(c)) for c in _VALUES),
        new=sql.SQL(", ").join(sql.SQL("n.{}").format(sql.Identifier(c)) for c in _VALUES),
        b_range=key_range.format(a=sql.Identifier("b")), x_range=key_range.format(a=sql.Identifier("x")),
    )


class Bars:
    """Bar operations of one schema (stateless apart from id and partition caches)."""

    def __init__(self, schema: str, registry: Registry, partitions: Partitions | None,
                 lock_timeout_ms: int) -> None:
        self.schema = schema
        self.registry = registry
        self.partitions = partitions  # None in TimescaleDB mode: chunks are automatic
        self.lock_timeout_ms = max(1, lock_timeout_ms)
        self._staged: weakref.WeakSet[Conn] = weakref.WeakSet()
        self._s = sql.Identifier(schema)
        self._merge = {tier.name: _merge_sql(schema, tier) for tier in TIERS.values()}

    # -- locking ---------------------------------------------------------------------------
    def lock_series(self, conn: Conn, space: str, sid: int) -> None:
        """Take the transaction-scoped advisory lock ``space`` of series ``sid``.

        Waits up to the store's lock timeout; PostgreSQL then raises LockNotAvailable,
        which :func:`~._conn.translate_errors` turns into :class:`StoreLocked`.
        """
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{self.lock_timeout_ms}ms",))
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"tickvault.{space}:{self.schema}", sid))

    # -- write -----------------------------------------------------------------------------
    def write(self, conn: Conn, symbol: str, timeframe: str, tier: Tier, table: pa.Table) -> StoreReceipt:
        """Upsert ``table`` into the series (see the module docstring)."""
        batch = dedupe_last(conform(table))
        if batch.num_rows == 0:
            return StoreReceipt()
        ts = np.asarray(batch.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
        names, idx = provider_codes(batch)
        lookup = np.asarray([*self.registry.provider_ids(conn, names), -1], dtype=np.int16)
        provider_ids = lookup[idx]  # idx == -1 picks the trailing -1
        sid = self.registry.series_id(conn, symbol, timeframe, create=True)
        assert sid is not None
        bulk = self._plan_partitions(conn, tier, batch, ts, sid, provider_ids)
        first, last = int(ts[0]), int(ts[-1])
        target = tier.ident(self.schema)
        built: list[Period] = []
        with conn.transaction():
            self.lock_series(conn, "write", sid)
            # Stored bars of the series inside the batch's range: only keys between the
            # first and the last of them can exist already, everything else is new.
            span = conn.execute(sql.SQL(
                "SELECT (extract(epoch FROM min(ts)) * 1000000)::bigint, "
                "(extract(epoch FROM max(ts)) * 1000000)::bigint "
                "FROM {} WHERE series_id = %s AND ts >= %s AND ts <= %s").format(target),
                (sid, us_to_datetime(first), us_to_datetime(last))).fetchone()
            stored = span is not None and span[0] is not None
            keep = np.ones(batch.num_rows, dtype=bool)
            for period, a, b, columns in bulk:
                assert self.partitions is not None
                if self.partitions.bulk_load(conn, period, columns):
                    keep[a:b] = False
                    built.append(period)
            new = int(batch.num_rows - keep.sum())
            changed = 0
            if stored and span is not None:
                inside = keep & (ts >= int(span[0])) & (ts <= int(span[1]))
            else:
                inside = np.zeros_like(keep)
            outside = keep & ~inside
            direct = direct_columns(batch.filter(pa.array(outside)), sid, provider_ids[outside]) \
                if outside.any() else None
            if direct is None:  # a partly-NULL column: everything goes through the merge
                inside, outside = keep, np.zeros_like(keep)
            else:
                self._copy(conn, target, direct)
                new += int(outside.sum())
            if inside.any():
                n_new, changed = self._merge_batch(conn, tier, batch.filter(pa.array(inside)), provider_ids[inside],
                                                   sid, ts[inside])
                new += n_new
            if new or changed:
                conn.execute(sql.SQL(
                    "UPDATE {}.series SET row_count = row_count + %s, first_us = least(first_us, %s), "
                    "last_us = greatest(last_us, %s), last_write_us = %s WHERE id = %s").format(self._s),
                    (new, first, last, time.time_ns() // 1000, sid))
        if self.partitions is not None:
            self.partitions.mark_known(built)
        unchanged = batch.num_rows - new - changed
        return StoreReceipt(new, changed, unchanged, (new + changed) * ROW_BYTES, first, last)

    def _plan_partitions(self, conn: Conn, tier: Tier, batch: pa.Table, ts: np.ndarray, sid: int,
                         provider_ids: np.ndarray) -> list[tuple[Period, int, int, list[Column]]]:
        """Create the partitions the batch needs, except those worth building in bulk (returned)."""
        if self.partitions is None:
            return []
        pieces = split_by_period(tier, ts)
        missing = self.partitions.missing(conn, [p for p, _, _ in pieces])
        bulk = []
        for period, a, b in pieces:
            if period in missing and b - a >= BULK_MIN_ROWS:
                columns = direct_columns(batch.slice(a, b - a), sid, provider_ids[a:b])
                if columns is not None:
                    bulk.append((period, a, b, columns))
        chosen = {p for p, _, _, _ in bulk}
        self.partitions.ensure(conn, [p for p, _, _ in pieces if p not in chosen])
        return bulk

    @staticmethod
    def _copy(conn: Conn, target: sql.Composable, columns: list[Column]) -> None:
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                target, _ids(*(name for name, _ in columns)))) as copy:
            for chunk in encode_copy(columns):
                copy.write(chunk)

    def _merge_batch(self, conn: Conn, tier: Tier, batch: pa.Table, provider_ids: np.ndarray, sid: int,
                     ts: np.ndarray) -> tuple[int, int]:
        """Stage ``batch`` (sorted timestamps ``ts``) and merge it; return (new, changed).

        A very large batch is merged in slices of :data:`MERGE_CHUNK` keys (still in the
        caller's one transaction), so each statement's hash joins stay within work_mem
        instead of spilling to disk.
        """
        if conn not in self._staged:
            conn.execute(_STAGE_DDL)
            self._staged.add(conn)
        conn.execute("SELECT set_config('work_mem', %s, true)", (MERGE_WORK_MEM,))
        stage = sql.SQL("pg_temp.{}").format(sql.Identifier(_STAGE))
        new = changed = 0
        for a in range(0, batch.num_rows, MERGE_CHUNK):
            b = min(batch.num_rows, a + MERGE_CHUNK)
            if a:
                conn.execute(sql.SQL("TRUNCATE {}").format(stage))
            self._copy(conn, stage, stage_columns(batch.slice(a, b - a), provider_ids[a:b]))
            bounds = {"sid": sid, "lo": us_to_datetime(int(ts[a])), "hi": us_to_datetime(int(ts[b - 1]))}
            row = conn.execute(self._merge[tier.name], bounds).fetchone()
            if row is not None:
                new, changed = new + int(row[0]), changed + int(row[1])
        return new, changed

    # -- read ------------------------------------------------------------------------------
    def _fetch(self, conn: Conn, inner: sql.Composable, params: dict[str, Any]) -> tuple[pa.Table, int]:
        """Run ``inner`` (a bars subquery aliased ``q``) as binary arrays; return (table, rows)."""
        exprs = read_columns_sql("q")
        query = sql.SQL("SELECT {} FROM ({}) q").format(
            sql.SQL(", ").join(sql.SQL("array_agg({})").format(sql.SQL(e)) for e in exprs), inner)
        with conn.cursor(binary=True) as cur:
            for oid in _ARRAY_OIDS:
                cur.adapters.register_loader(oid, _RawArray)
            row = cur.execute(query, params).fetchone()
        arrays = list(row) if row is not None else [None] * len(ARRAY_COLUMNS)
        table = decode_arrays(arrays, lambda top: self.registry.provider_names(conn, needed=top))
        if table.num_rows > 1:
            ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy())
            if not bool(np.all(ts[1:] > ts[:-1])):
                # array_agg keeps the subquery's order in practice, but SQL does not promise it.
                table = table.take(np.argsort(ts, kind="stable"))
        return table, table.num_rows

    def read(self, conn: Conn, sid: int, tier: Tier, start_us: int | None, end_us: int | None) -> pa.Table:
        """Bars of series ``sid`` with ``start_us <= ts < end_us``, sorted."""
        lo = us_to_datetime(start_us) if start_us is not None else None
        hi = us_to_datetime(end_us) if end_us is not None else None
        if (start_us is not None and lo is None and start_us > 0) or (end_us is not None and hi is None and end_us < 0):
            return BAR_SCHEMA.empty_table()  # the range lies beyond years 1-9999
        where = [sql.SQL("series_id = %(sid)s")]
        params: dict[str, Any] = {"sid": sid, "limit": READ_CHUNK}
        if lo is not None:
            where.append(sql.SQL("ts >= %(lo)s"))
            params["lo"] = lo
        if hi is not None:
            where.append(sql.SQL("ts < %(hi)s"))
            params["hi"] = hi
        first = sql.SQL("SELECT * FROM {} WHERE {} ORDER BY ts LIMIT %(limit)s").format(
            tier.ident(self.schema), sql.SQL(" AND ").join(where))
        following = sql.SQL("SELECT * FROM {} WHERE {} AND ts > %(after)s ORDER BY ts LIMIT %(limit)s").format(
            tier.ident(self.schema), sql.SQL(" AND ").join(where))
        parts: list[pa.Table] = []
        with conn.transaction():
            # Several round trips must see one snapshot, or a concurrent write could tear the read.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            table, n = self._fetch(conn, first, params)
            parts.append(table)
            while n == READ_CHUNK:
                params["after"] = us_to_datetime(int(table.column("ts")[-1].value))
                table, n = self._fetch(conn, following, params)
                parts.append(table)
        return concat(parts)

    def latest(self, conn: Conn, sid: int, tier: Tier, n: int) -> pa.Table:
        """The last ``n`` bars of series ``sid``, ascending."""
        inner = sql.SQL("SELECT * FROM {} WHERE series_id = %(sid)s ORDER BY ts DESC LIMIT %(n)s").format(
            tier.ident(self.schema))
        return self._fetch(conn, inner, {"sid": sid, "n": n})[0]

    # -- delete / series --------------------------------------------------------------------
    def delete_range(self, conn: Conn, sid: int, tier: Tier, start_us: int | None, end_us: int | None) -> int:
        """Delete bars in the range atomically; return the count."""
        where = [sql.SQL("series_id = %(sid)s")]
        params: dict[str, Any] = {"sid": sid}
        lo = us_to_datetime(start_us) if start_us is not None else None
        hi = us_to_datetime(end_us) if end_us is not None else None
        if (start_us is not None and lo is None and start_us > 0) or (end_us is not None and hi is None and end_us < 0):
            return 0
        if lo is not None:
            where.append(sql.SQL("ts >= %(lo)s"))
            params["lo"] = lo
        if hi is not None:
            where.append(sql.SQL("ts < %(hi)s"))
            params["hi"] = hi
        table = tier.ident(self.schema)
        with conn.transaction():
            self.lock_series(conn, "write", sid)
            cur = conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(table, sql.SQL(" AND ").join(where)), params)
            removed = cur.rowcount
            if removed:
                us = sql.SQL("(extract(epoch FROM {}(ts)) * 1000000)::bigint")
                conn.execute(sql.SQL(
                    "UPDATE {s}.series SET row_count = row_count - %(n)s, "
                    "first_us = (SELECT {mn} FROM {t} WHERE series_id = %(sid)s), "
                    "last_us = (SELECT {mx} FROM {t} WHERE series_id = %(sid)s), "
                    "last_write_us = %(now)s WHERE id = %(sid)s").format(
                        s=self._s, t=table, mn=us.format(sql.SQL("min")), mx=us.format(sql.SQL("max"))),
                    {"n": removed, "sid": sid, "now": time.time_ns() // 1000})
        return int(removed)

    def series(self, conn: Conn) -> list[SeriesInfo]:
        """Every series with at least one bar, sorted like MemoryStore (by code point)."""
        rows = conn.execute(sql.SQL(
            "SELECT symbol, timeframe, row_count, first_us, last_us, last_write_us FROM {}.series "
            "WHERE row_count > 0").format(self._s)).fetchall()
        out = [SeriesInfo(str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else int(r[3]),
                          None if r[4] is None else int(r[4]), None if r[5] is None else int(r[5])) for r in rows]
        return sorted(out, key=lambda s: (s.symbol, s.timeframe))
