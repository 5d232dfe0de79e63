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

``write_many`` does the same for many batches in one transaction: the series locks (in id
order), the span probe, the direct COPY (one per NULL layout), the bulk-built partitions
(the rows of all the batches count towards the threshold), the merge (the overlapping
rows of several series staged together, one statement per chunk) and the commit are
shared. A series named twice is written in a second round of the same transaction.

Changed rows bump ``revisions``, a record of how often a vendor revised a bar.
"""

from __future__ import annotations

import datetime as dt
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    CopyRows,
    concat,
    copy_rows,
    decode_arrays,
    direct_columns,
    direct_layout,
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
_STAGE_MANY = "tickvault_stage_many"
_STAGE_MANY_DDL = f"""CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE_MANY} (series_id int4 NOT NULL,
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


def _merge_parts(stage: str, *keys: str) -> dict[str, sql.Composable]:
    """The fragments both merge statements share: the staged rows decoded (``keys`` first,
    then provider and the nullable columns), the SET list, and the old/new value tuples."""
    decoded = sql.SQL(", ").join(
        [sql.SQL(f"s.{k}") for k in keys]  # fixed column names of the stage
        + [sql.SQL("NULLIF(s.provider_id, -1) AS provider_id")]
        + [sql.SQL("CASE WHEN s.nulls & {} = 0 THEN s.{} END AS {}").format(
            sql.Literal(1 << i), sql.Identifier(c), sql.Identifier(c)) for i, c in enumerate(NULLABLE)])
    return {
        "staged": sql.SQL("(SELECT {} FROM pg_temp.{} s)").format(decoded, sql.Identifier(stage)),
        "cols": _ids(*_VALUES),
        "sets": sql.SQL(", ").join(sql.SQL("{0} = n.{0}").format(sql.Identifier(c)) for c in _VALUES),
        "old": sql.SQL(", ").join(sql.SQL("b.{}").format(sql.Identifier(c)) for c in _VALUES),
        "new": sql.SQL(", ").join(sql.SQL("n.{}").format(sql.Identifier(c)) for c in _VALUES),
    }


def _merge_sql(schema: str, tier: Tier) -> sql.Composed:
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
        table=table, **_merge_parts(_STAGE, "ts"),
        b_range=key_range.format(a=sql.Identifier("b")), x_range=key_range.format(a=sql.Identifier("x")),
    )


@dataclass(eq=False)
class _Item:
    """One prepared batch of :meth:`Bars.write_many`: sorted, deduplicated, with its ids."""

    pos: int
    tier: Tier
    batch: pa.Table
    ts: np.ndarray
    provider_ids: np.ndarray
    sid: int
    keep: np.ndarray  # rows not yet written (a bulk load clears its slice)
    new: int = 0
    changed: int = 0
    _layouts: dict[tuple[int, int], tuple[str, ...] | None] = field(default_factory=dict)

    def layout(self, a: int, b: int) -> tuple[str, ...] | None:
        """The direct COPY columns of rows ``a:b`` (cached), ``None`` if one is partly NULL."""
        if (a, b) not in self._layouts:
            self._layouts[(a, b)] = direct_layout(self.batch.slice(a, b - a), self.provider_ids[a:b])
        return self._layouts[(a, b)]

    def columns(self, a: int, b: int) -> list[Column]:
        """The direct COPY columns of rows ``a:b`` (whose :meth:`layout` is not ``None``)."""
        cols = direct_columns(self.batch.slice(a, b - a), self.sid, self.provider_ids[a:b], self.layout(a, b))
        if cols is None:
            raise ValueError("a partly-NULL slice cannot be copied directly")  # a bug: callers check layout()
        return cols


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The maximal ``(start, stop)`` runs of True in a boolean mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def _copy_groups(pieces: Sequence[tuple[_Item, int, int]]) -> list[CopyRows]:
    """Row slices with a direct layout, as one COPY per layout (pieces keep their order).

    The columns of each slice are built only when its COPY reaches it: nothing is
    concatenated, and the server starts inserting as soon as the first chunk is ready.
    """
    by_layout: dict[tuple[str, ...], list[tuple[_Item, int, int]]] = {}
    for it, a, b in pieces:
        names = it.layout(a, b)
        if names is None:
            raise ValueError("a partly-NULL slice cannot be copied directly")  # a bug: callers check layout()
        by_layout.setdefault(names, []).append((it, a, b))
    return [CopyRows(names, sum(b - a for _, a, b in group), (it.columns(a, b) for it, a, b in group))
            for names, group in by_layout.items()]


def _merge_many_sql(schema: str, tier: Tier) -> sql.Composed:
    """:func:`_merge_sql` for the rows of several series staged together (keyed by series_id).

    Returns one row per series with new or changed rows: (series_id, new, changed).
    """
    table = tier.ident(schema)
    return sql.SQL(
        "WITH upd AS ("
        "UPDATE {table} AS b SET {sets}, revisions = least(b.revisions + 1, 32767) FROM {staged} AS n "
        "WHERE b.series_id = n.series_id AND b.ts = n.ts AND b.series_id = ANY(%(sids)s::int4[]) "
        "AND b.ts >= %(lo)s AND b.ts <= %(hi)s "
        "AND ({old}) IS DISTINCT FROM ({new}) RETURNING b.series_id), "
        "ins AS ("
        "INSERT INTO {table} (series_id, ts, {cols}) SELECT n.series_id, n.ts, {new} FROM {staged} AS n "
        "WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.series_id = n.series_id AND x.ts = n.ts "
        "AND x.series_id = ANY(%(sids)s::int4[]) AND x.ts >= %(lo)s AND x.ts <= %(hi)s) RETURNING series_id) "
        "SELECT series_id, sum(i)::int8, sum(u)::int8 FROM "
        "(SELECT series_id, 1 AS i, 0 AS u FROM ins UNION ALL SELECT series_id, 0, 1 FROM upd) z GROUP BY series_id"
    ).format(table=table, **_merge_parts(_STAGE_MANY, "series_id", "ts"))


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
        self._merge_many = {tier.name: _merge_many_sql(schema, tier) for tier in TIERS.values()}
        self._staged_many: weakref.WeakSet[Conn] = weakref.WeakSet()

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
        return self.write_many(conn, [(symbol, timeframe, tier, table)])[0]

    def write_many(self, conn: Conn, items: Sequence[tuple[str, str, Tier, pa.Table]]) -> list[StoreReceipt]:
        """Upsert every ``(symbol, timeframe, tier, table)`` in one transaction; one receipt each.

        The result is that of :meth:`write` called for each item in order, applied all or
        nothing. Items of distinct series are written together (one span probe, one COPY
        per column layout, bulk-built partitions shared by all of them); an item whose
        series already appeared earlier in ``items`` is written in a later round of the
        same transaction, so it sees the earlier item's rows exactly as a second
        ``write`` would.
        """
        receipts = [StoreReceipt() for _ in items]
        batches = [(pos, dedupe_last(item[3])) for pos, item in enumerate(items)]  # tables come conformed
        batches = [(pos, batch) for pos, batch in batches if batch.num_rows]
        if not batches:
            return receipts
        sids = self.registry.series_ids(conn, [(items[pos][0], items[pos][1]) for pos, _ in batches])
        prepared: list[_Item] = []
        for (pos, batch), sid in zip(batches, sids, strict=True):
            ts = np.asarray(batch.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
            names, idx = provider_codes(batch)
            lookup = np.asarray([*self.registry.provider_ids(conn, names), -1], dtype=np.int16)
            # idx == -1 picks the trailing -1
            prepared.append(_Item(pos, items[pos][2], batch, ts, lookup[idx], sid,
                                  np.ones(batch.num_rows, dtype=bool)))
        rounds: list[list[_Item]] = []
        seen: dict[int, int] = {}
        for item in prepared:
            k = seen.get(item.sid, 0)
            seen[item.sid] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(item)
        bulk = self._plan_partitions(conn, prepared, rounds[0])
        built: list[Period] = []
        staged = [False, False]
        with conn.transaction():
            self.lock_series_many(conn, "write", sorted(seen))
            for group in rounds:
                for tier in TIERS.values():
                    mine = [it for it in group if it.tier is tier]
                    if mine:
                        built += self._write_round(conn, tier, mine, bulk if group is rounds[0] else {}, staged)
            self._update_series(conn, prepared)
        if self.partitions is not None:
            self.partitions.mark_known(built)
        for it in prepared:
            n = it.batch.num_rows
            receipts[it.pos] = StoreReceipt(it.new, it.changed, n - it.new - it.changed,
                                            (it.new + it.changed) * ROW_BYTES, int(it.ts[0]), int(it.ts[-1]))
        return receipts

    def lock_series_many(self, conn: Conn, space: str, sids: Sequence[int]) -> None:
        """:meth:`lock_series` for every id of ``sids`` (ascending, so two callers cannot deadlock)."""
        if len(sids) == 1:
            self.lock_series(conn, space, sids[0])
            return
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{self.lock_timeout_ms}ms",))
        conn.execute("SELECT count(pg_advisory_xact_lock(hashtext(%s), s)) FROM unnest(%s::int4[]) AS s",
                     (f"tickvault.{space}:{self.schema}", sorted(sids)))

    def _plan_partitions(self, conn: Conn, items: Sequence[_Item],
                         first_round: Sequence[_Item]) -> dict[Period, list[tuple[_Item, int, int]]]:
        """Create the partitions the items need, except those worth building in bulk (returned).

        A missing partition is built in bulk when the first round of items brings at
        least :data:`BULK_MIN_ROWS` rows for it, each item's slice in a NULL layout the
        direct COPY can carry.
        """
        if self.partitions is None:
            return {}
        pieces = {id(it): split_by_period(it.tier, it.ts) for it in items}
        wanted = {p for ps in pieces.values() for p, _, _ in ps}
        missing = self.partitions.missing(conn, wanted)
        candidates: dict[Period, list[tuple[_Item, int, int]]] = {}
        for it in first_round:
            for period, a, b in pieces[id(it)]:
                if period in missing:
                    candidates.setdefault(period, []).append((it, a, b))
        bulk = {p: slices for p, slices in candidates.items()
                if sum(b - a for _, a, b in slices) >= BULK_MIN_ROWS
                and all(it.layout(a, b) is not None for it, a, b in slices)}
        self.partitions.ensure(conn, sorted(wanted - set(bulk)))
        return bulk

    def _write_round(self, conn: Conn, tier: Tier, items: Sequence[_Item],
                     bulk: dict[Period, list[tuple[_Item, int, int]]], staged: list[bool]) -> list[Period]:
        """Write items of distinct series of ``tier`` (inside the caller's transaction).

        ``staged[0]`` (``staged[1]``) says whether the (multi-series) staging table may
        hold rows of an earlier merge of this transaction (they are emptied only at
        commit); it is set after a merge.
        """
        target = tier.ident(self.schema)
        # Stored bars of each series inside its batch's range: only keys between the first
        # and the last of them can exist already, everything else is new.
        if len(items) == 1:  # constants let the planner prune partitions
            one = items[0]
            spans = conn.execute(sql.SQL(
                "SELECT (extract(epoch FROM min(ts)) * 1000000)::bigint, "
                "(extract(epoch FROM max(ts)) * 1000000)::bigint "
                "FROM {} WHERE series_id = %s AND ts >= %s AND ts <= %s").format(target),
                (one.sid, us_to_datetime(int(one.ts[0])), us_to_datetime(int(one.ts[-1])))).fetchall()
        else:
            spans = conn.execute(sql.SQL(
                "SELECT (extract(epoch FROM m.lo) * 1000000)::bigint, (extract(epoch FROM m.hi) * 1000000)::bigint "
                "FROM unnest(%s::int4[], %s::int8[], %s::int8[]) WITH ORDINALITY AS u(sid, lo, hi, i) "
                "CROSS JOIN LATERAL (SELECT min(ts) AS lo, max(ts) AS hi FROM {} "
                "WHERE series_id = u.sid AND ts >= timestamptz 'epoch' + u.lo * interval '1 microsecond' "
                "AND ts <= timestamptz 'epoch' + u.hi * interval '1 microsecond') AS m ORDER BY u.i").format(target),
                ([x.sid for x in items], [int(x.ts[0]) for x in items], [int(x.ts[-1]) for x in items])).fetchall()
        built: list[Period] = []
        for period, slices in sorted(bulk.items()):
            if period.tier is not tier:
                continue
            assert self.partitions is not None
            slices = sorted(slices, key=lambda s: s[0].sid)  # presorted keys make the index build cheap
            if self.partitions.bulk_load(conn, period, _copy_groups(slices)):
                for it, a, b in slices:
                    it.keep[a:b] = False
                    it.new += b - a
                built.append(period)
        direct: list[tuple[_Item, int, int]] = []
        merges: list[tuple[_Item, np.ndarray]] = []
        for it, (lo, hi) in zip(items, spans, strict=True):
            inside = np.zeros_like(it.keep) if lo is None else it.keep & (it.ts >= int(lo)) & (it.ts <= int(hi))
            for a, b in _runs(it.keep & ~inside):
                if it.layout(a, b) is None:  # a partly-NULL column: these rows go through the merge
                    inside[a:b] = True
                else:
                    direct.append((it, a, b))
                    it.new += b - a
            if inside.any():
                merges.append((it, inside))
        for rows in _copy_groups(direct):
            copy_rows(conn, target, rows)
        if len(merges) == 1:  # one series: its key range bounds the statement tightly
            it, inside = merges[0]
            n_new, n_changed = self._merge_batch(conn, tier, it.batch.filter(pa.array(inside)),
                                                 it.provider_ids[inside], it.sid, it.ts[inside], staged)
            staged[0] = True
            it.new += n_new
            it.changed += n_changed
        elif merges:
            self._merge_several(conn, tier, merges, staged)
        return built

    def _update_series(self, conn: Conn, items: Sequence[_Item]) -> None:
        """Add the items' new rows to their series rows (count, bounds, last write)."""
        acc: dict[int, list[int]] = {}
        for it in items:
            if it.new or it.changed:
                first, last = int(it.ts[0]), int(it.ts[-1])
                got = acc.setdefault(it.sid, [0, first, last])
                got[0] += it.new
                got[1], got[2] = min(got[1], first), max(got[2], last)
        if not acc:
            return
        sids = sorted(acc)
        conn.execute(sql.SQL(
            "UPDATE {}.series AS s SET row_count = s.row_count + u.n, first_us = least(s.first_us, u.lo), "
            "last_us = greatest(s.last_us, u.hi), last_write_us = %s "
            "FROM unnest(%s::int4[], %s::int8[], %s::int8[], %s::int8[]) AS u(id, n, lo, hi) WHERE s.id = u.id"
        ).format(self._s), (time.time_ns() // 1000, sids, [acc[i][0] for i in sids], [acc[i][1] for i in sids],
                            [acc[i][2] for i in sids]))

    def _merge_batch(self, conn: Conn, tier: Tier, batch: pa.Table, provider_ids: np.ndarray, sid: int,
                     ts: np.ndarray, staged: list[bool]) -> tuple[int, int]:
        """Stage ``batch`` (sorted timestamps ``ts``) and merge it; return (new, changed).

        ``staged[0]``: the staging table may hold an earlier merge's rows (see
        :meth:`_write_round`), so it is emptied first.

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
            if a or staged[0]:
                conn.execute(sql.SQL("TRUNCATE {}").format(stage))
            copy_rows(conn, stage, CopyRows.of(stage_columns(batch.slice(a, b - a), provider_ids[a:b])))
            bounds = {"sid": sid, "lo": us_to_datetime(int(ts[a])), "hi": us_to_datetime(int(ts[b - 1]))}
            row = conn.execute(self._merge[tier.name], bounds).fetchone()
            if row is not None:
                new, changed = new + int(row[0]), changed + int(row[1])
        return new, changed

    def _merge_several(self, conn: Conn, tier: Tier, merges: Sequence[tuple[_Item, np.ndarray]],
                       staged: list[bool]) -> None:
        """Stage the rows ``inside`` of several items (distinct series) together and merge them.

        One COPY and one statement per :data:`MERGE_CHUNK` rows instead of both per item;
        the counts come back per series and are added to the items.
        """
        if conn not in self._staged_many:
            conn.execute(_STAGE_MANY_DDL)
            self._staged_many.add(conn)
        # JIT compiling the statement costs more than it saves at these sizes (~150 ms).
        conn.execute("SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)", (MERGE_WORK_MEM,))
        stage = sql.SQL("pg_temp.{}").format(sql.Identifier(_STAGE_MANY))
        parts = []
        merges = sorted(merges, key=lambda m: m[0].sid)  # staged in key order, as the joins want it
        for it, inside in merges:
            cols = stage_columns(it.batch.filter(pa.array(inside)), it.provider_ids[inside])
            parts.append([("series_id", np.full(int(inside.sum()), it.sid, dtype=np.int32)), *cols])
        columns = [(name, np.concatenate([p[k][1] for p in parts])) for k, (name, _) in enumerate(parts[0])]
        ts = np.concatenate([it.ts[inside] for it, inside in merges])
        by_sid = {it.sid: it for it, _ in merges}
        total = ts.size
        for a in range(0, total, MERGE_CHUNK):
            b = min(total, a + MERGE_CHUNK)
            if a or staged[1]:
                conn.execute(sql.SQL("TRUNCATE {}").format(stage))
            copy_rows(conn, stage, CopyRows.of([(name, values[a:b]) for name, values in columns]))
            staged[1] = True
            bounds = {"lo": us_to_datetime(int(ts[a:b].min())), "hi": us_to_datetime(int(ts[a:b].max())),
                      "sids": sorted({int(x) for x in np.unique(columns[0][1][a:b])})}
            for sid, n_new, n_changed in conn.execute(self._merge_many[tier.name], bounds).fetchall():
                it = by_sid[int(sid)]
                it.new += int(n_new)
                it.changed += int(n_changed)

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
            # The plan wanted is always the ordered Append of primary-key index scans. On
            # partitions loaded since the last ANALYZE the planner underestimates the rows
            # and picks a bitmap scan plus a sort that spills to disk (~25 % more server CPU).
            conn.execute("SELECT set_config('enable_sort', 'off', true)")
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
