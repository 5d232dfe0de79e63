"""The catalog on PostgreSQL: coverage ledger, corporate actions, instruments, reports, quarantine.

Ordinary tables, small next to the bars, so clarity wins over cleverness here: the
coverage ledger is read, changed with :func:`~tickvault.model.apply_marks` (the very
function the oracle uses, so the semantics cannot drift) and rewritten in one
transaction under the series' coverage lock; actions are upserted one by one in one
transaction so repeated keys inside a call count exactly like the oracle counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb

from tickvault.model import (
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    QualityReport,
    apply_marks,
)
from tickvault.store.base import QUARANTINE_SCHEMA
from tickvault.store.postgres._bars import Bars
from tickvault.store.postgres._conn import Conn

__all__ = ["Catalog", "clip_out"]

_Q_VALUES = ("open", "high", "low", "close", "volume", "vwap")


def clip_out(intervals: Sequence[CoverageInterval], lo: int, hi: int) -> list[CoverageInterval]:
    """``intervals`` with ``[lo, hi)`` removed (pieces outside it are kept)."""
    out: list[CoverageInterval] = []
    for iv in intervals:
        if iv.end_us <= lo or iv.start_us >= hi:
            out.append(iv)
            continue
        if iv.start_us < lo:
            out.append(iv.with_bounds(iv.start_us, lo))
        if iv.end_us > hi:
            out.append(iv.with_bounds(hi, iv.end_us))
    return out


class Catalog:
    """Catalog operations of one schema."""

    def __init__(self, schema: str, bars: Bars) -> None:
        self.schema = schema
        self.bars = bars
        self._s = sql.Identifier(schema)

    def _q(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(s=self._s)

    # -- coverage --------------------------------------------------------------------------
    def coverage(self, conn: Conn, sid: int) -> list[CoverageInterval]:
        """The ledger of series ``sid``, sorted."""
        rows = conn.execute(self._q(
            "SELECT start_us, end_us, state, provider, updated_us FROM {s}.coverage "
            "WHERE series_id = %s ORDER BY start_us"), (sid,)).fetchall()
        return [CoverageInterval(int(a), int(b), CoverageState(str(st)), None if p is None else str(p), int(u))
                for a, b, st, p, u in rows]

    def _rewrite(self, conn: Conn, sid: int, intervals: Sequence[CoverageInterval]) -> None:
        conn.execute(self._q("DELETE FROM {s}.coverage WHERE series_id = %s"), (sid,))
        if intervals:
            with conn.cursor() as cur:
                cur.executemany(self._q(
                    "INSERT INTO {s}.coverage (series_id, start_us, end_us, state, provider, updated_us) "
                    "VALUES (%s, %s, %s, %s, %s, %s)"),
                    [(sid, iv.start_us, iv.end_us, str(iv.state), iv.provider, iv.updated_us) for iv in intervals])

    def mark_covered(self, conn: Conn, sid: int, marks: Sequence[CoverageInterval]) -> None:
        """Apply ``marks`` atomically (latest mark wins)."""
        with conn.transaction():
            self.bars.lock_series(conn, "coverage", sid)
            self._rewrite(conn, sid, apply_marks(self.coverage(conn, sid), marks))

    def clear_coverage(self, conn: Conn, sid: int, start_us: int | None, end_us: int | None) -> None:
        """Forget coverage inside the range."""
        lo = start_us if start_us is not None else -(2**62)
        hi = end_us if end_us is not None else 2**62
        with conn.transaction():
            self.bars.lock_series(conn, "coverage", sid)
            self._rewrite(conn, sid, clip_out(self.coverage(conn, sid), lo, hi))

    # -- corporate actions -------------------------------------------------------------------
    def add_actions(self, conn: Conn, symbol: str, actions: Sequence[CorporateAction]) -> int:
        """Upsert actions by (ex_date, kind); count the new or changed ones."""
        upsert = self._q(
            "INSERT INTO {s}.actions AS a (symbol, ex_date, kind, value, currency, provider) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (symbol, ex_date, kind) DO UPDATE "
            "SET value = EXCLUDED.value, currency = EXCLUDED.currency, provider = EXCLUDED.provider "
            "WHERE (a.value, a.currency, a.provider) IS DISTINCT FROM "
            "(EXCLUDED.value, EXCLUDED.currency, EXCLUDED.provider) RETURNING 1")
        changed = 0
        with conn.transaction():
            for a in actions:
                row = conn.execute(upsert, (symbol, a.ex_date, str(a.kind), float(a.value), a.currency,
                                            a.provider)).fetchone()
                changed += row is not None
        return changed

    def actions(self, conn: Conn, symbol: str) -> list[CorporateAction]:
        """Actions of ``symbol`` sorted by ex_date."""
        rows = conn.execute(self._q(
            "SELECT ex_date, kind, value, currency, provider FROM {s}.actions WHERE symbol = %s"), (symbol,)).fetchall()
        out = [CorporateAction(d, k, float(v), symbol, c, p) for d, k, v, c, p in rows]
        return sorted(out, key=lambda a: (a.ex_date, str(a.kind)))

    # -- instruments -----------------------------------------------------------------------
    _I_COLS = ("symbol", "asset_class", "exchange", "currency", "calendar", "status", "listed", "delisted", "name",
               "provider_symbols")

    def put_instrument(self, conn: Conn, inst: Instrument) -> None:
        """Insert or replace."""
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self._I_COLS)
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in self._I_COLS[1:])
        conn.execute(sql.SQL("INSERT INTO {s}.instruments ({cols}) VALUES ({ph}) ON CONFLICT (symbol) DO UPDATE SET "
                             "{sets}").format(s=self._s, cols=cols, sets=sets,
                                              ph=sql.SQL(", ").join(sql.Placeholder() * len(self._I_COLS))),
                     (inst.symbol, str(inst.asset_class), inst.exchange, inst.currency, inst.calendar,
                      str(inst.status), inst.listed, inst.delisted, inst.name, Jsonb(dict(inst.provider_symbols))))

    @staticmethod
    def _instrument(row: Sequence[Any]) -> Instrument:
        sym, asset_class, exchange, currency, calendar, status, listed, delisted, name, provider_symbols = row
        return Instrument(str(sym), asset_class, exchange, currency, str(calendar), status, listed, delisted, name,
                          {str(k): str(v) for k, v in dict(provider_symbols or {}).items()})

    def instrument(self, conn: Conn, symbol: str) -> Instrument | None:
        """Lookup by canonical symbol."""
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self._I_COLS)
        row = conn.execute(sql.SQL("SELECT {} FROM {}.instruments WHERE symbol = %s").format(cols, self._s),
                           (symbol,)).fetchone()
        return None if row is None else self._instrument(row)

    def delete_instrument(self, conn: Conn, symbol: str) -> bool:
        """Remove a record; whether there was one."""
        row = conn.execute(self._q("DELETE FROM {s}.instruments WHERE symbol = %s RETURNING 1"), (symbol,)).fetchone()
        return row is not None

    def instruments(self, conn: Conn) -> list[Instrument]:
        """Every record sorted by symbol (code point order, like the oracle)."""
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self._I_COLS)
        rows = conn.execute(sql.SQL("SELECT {} FROM {}.instruments").format(cols, self._s)).fetchall()
        return sorted((self._instrument(r) for r in rows), key=lambda i: i.symbol)

    # -- key-value entries -----------------------------------------------------------------
    def get_meta(self, conn: Conn, key: str) -> str | None:
        """The value under ``key`` (already checked), if any."""
        row = conn.execute(self._q("SELECT value FROM {s}.kv WHERE key = %s"), (key,)).fetchone()
        return None if row is None else bytes(row[0]).decode("utf-8")

    def set_meta(self, conn: Conn, key: str, value: str | None) -> None:
        """Store, replace or (``None``) delete the value under ``key`` (already checked)."""
        if value is None:
            conn.execute(self._q("DELETE FROM {s}.kv WHERE key = %s"), (key,))
        else:
            conn.execute(self._q("INSERT INTO {s}.kv (key, value) VALUES (%s, %s) "
                                 "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"),
                         (key, value.encode("utf-8")))

    # -- quality reports -------------------------------------------------------------------
    def save_report(self, conn: Conn, sid: int, report: QualityReport) -> None:
        """Keep ``report`` as the latest of its series."""
        conn.execute(self._q(
            "INSERT INTO {s}.reports (series_id, row_count, score, created_us, body) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (series_id) DO UPDATE SET row_count = EXCLUDED.row_count, score = EXCLUDED.score, "
            "created_us = EXCLUDED.created_us, body = EXCLUDED.body"),
            (sid, report.rows, float(report.score), report.created_us, report.to_json()))

    def latest_report(self, conn: Conn, sid: int) -> QualityReport | None:
        """The latest report of series ``sid``."""
        row = conn.execute(self._q("SELECT body FROM {s}.reports WHERE series_id = %s"), (sid,)).fetchone()
        return None if row is None else QualityReport.from_json(str(row[0]))

    # -- quarantine ------------------------------------------------------------------------
    def quarantine(self, conn: Conn, sid: int, rows: pa.Table) -> None:
        """Append quarantined rows (one statement; quarantine is small and off the hot path)."""
        t = rows.cast(QUARANTINE_SCHEMA)
        if t.num_rows == 0:
            return
        cols: list[list[Any]] = [[sid] * t.num_rows, t.column("ts").to_pylist()]
        cols += [t.column(c).to_pylist() for c in _Q_VALUES]
        cols += [t.column("trade_count").to_pylist(), t.column("provider").cast(pa.string()).to_pylist(),
                 t.column("rule").to_pylist(), t.column("reason").to_pylist(), t.column("quarantined_at").to_pylist()]
        types = ["int4", "timestamptz", *["float8"] * len(_Q_VALUES), "int8", "text", "text", "text", "timestamptz"]
        unnest = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t_)) for t_ in types)
        conn.execute(sql.SQL(
            "INSERT INTO {}.quarantine (series_id, ts, open, high, low, close, volume, vwap, trade_count, provider, "
            "rule, reason, quarantined_at) SELECT * FROM unnest({})").format(self._s, unnest), cols)

    def quarantined(self, conn: Conn, sid: int | None) -> pa.Table:
        """All quarantined rows of the series, in arrival order."""
        if sid is None:
            return QUARANTINE_SCHEMA.empty_table()
        rows = conn.execute(self._q(
            "SELECT ts, open, high, low, close, volume, vwap, trade_count, provider, rule, reason, quarantined_at "
            "FROM {s}.quarantine WHERE series_id = %s ORDER BY id"), (sid,)).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(QUARANTINE_SCHEMA)
        arrays = []
        for field, values in zip(QUARANTINE_SCHEMA, columns, strict=True):
            if pa.types.is_dictionary(field.type):
                arrays.append(pa.array(list(values), pa.string()).dictionary_encode().cast(field.type))
            else:
                arrays.append(pa.array(list(values), field.type))
        return pa.Table.from_arrays(arrays, schema=QUARANTINE_SCHEMA)
