"""``verify()`` for PostgreSQL: reconcile the series bookkeeping with the bars themselves.

PostgreSQL protects pages (WAL, optional checksums) and keys (the primary key), so
there are no damaged files to set aside as in the embedded store. What could drift is
our own summary in ``series`` (row count, first/last bar) if someone edits tables by
hand: it is recomputed here and repaired. Bars whose series row is missing cannot be
read through the API and are reported as damaged.
"""

from __future__ import annotations

from psycopg import sql

from tickvault.store.base import VerifyReport
from tickvault.store.postgres._conn import Conn
from tickvault.store.postgres._migrations import LATEST_VERSION, current_version
from tickvault.store.postgres._names import TIERS

__all__ = ["verify"]


def verify(conn: Conn, schema: str) -> VerifyReport:
    """Check and repair the series rows of ``schema`` (one transaction)."""
    s = sql.Identifier(schema)
    damaged: list[tuple[str, str]] = []
    repaired: list[str] = []
    version = current_version(conn, schema)
    if version != LATEST_VERSION:
        damaged.append((f"{schema}.schema_version", f"version {version}, expected {LATEST_VERSION}"))
        return VerifyReport(0, damaged, repaired)
    with conn.transaction():
        series = {int(r[0]): (str(r[1]), str(r[2]), str(r[3]), int(r[4]), r[5], r[6]) for r in conn.execute(
            sql.SQL("SELECT id, symbol, timeframe, tier, row_count, first_us, last_us FROM {}.series FOR UPDATE")
            .format(s)).fetchall()}
        actual: dict[int, tuple[str, int, int | None, int | None]] = {}
        for tier in TIERS.values():
            for sid, n, lo, hi in conn.execute(sql.SQL(
                    "SELECT series_id, count(*), (extract(epoch FROM min(ts)) * 1000000)::bigint, "
                    "(extract(epoch FROM max(ts)) * 1000000)::bigint FROM {} GROUP BY series_id")
                    .format(tier.ident(schema))).fetchall():
                actual[int(sid)] = (tier.name, int(n), None if lo is None else int(lo), None if hi is None else int(hi))
        for sid, (tier_name, n, _lo, _hi) in sorted(actual.items()):
            if sid not in series:
                damaged.append((f"{schema}.{TIERS[tier_name].table} series_id={sid}",
                                f"{n} bar(s) without a series row"))
                continue
            sym, tf, stier, _count, _first, _last = series[sid]
            if stier != tier_name:
                damaged.append((f"{sym} {tf}", f"bars stored in the {tier_name} table, series says {stier}"))
        for sid, (sym, tf, _stier, count, first, last) in sorted(series.items()):
            _t, n, lo, hi = actual.get(sid, ("", 0, None, None))
            if (count, first, last) != (n, lo, hi):
                conn.execute(sql.SQL("UPDATE {}.series SET row_count = %s, first_us = %s, last_us = %s WHERE id = %s")
                             .format(s), (n, lo, hi, sid))
                repaired.append(f"{sym} {tf}: row count/bounds {count}/{first}/{last} -> {n}/{lo}/{hi}")
    return VerifyReport(len(series), damaged, repaired)
