"""The write path (DESIGN §5): quality rules -> quarantine -> upsert -> coverage -> events.

Every way bars enter the store — ``Vault.write``, file imports, provider results — goes
through :func:`write_bars`, so the policy cannot be bypassed: rows failing a hard rule
are quarantined with the rule and reason and never stored; nothing is "repaired".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickvault import quality
from tickvault.calendars import TradingCalendar
from tickvault.model import (
    BAR_SCHEMA,
    CorporateAction,
    CoverageInterval,
    CoverageState,
    QualityReport,
    Timeframe,
    WriteReceipt,
    dedupe_last,
    intervals_from_mask,
)
from tickvault.store.base import QUARANTINE_SCHEMA, BarStore

__all__ = ["BarEvent", "CoverageMode", "bar_ends", "relabel_daily", "write_bars"]

CoverageMode = Literal["bars", "span", "none"]


@dataclass(frozen=True)
class BarEvent:
    """Published after bars were stored: which series, which span, how many rows."""

    symbol: str
    timeframe: str
    first_us: int
    last_us: int
    rows: int


def bar_ends(starts_us: np.ndarray, timeframe: Timeframe) -> np.ndarray:
    """End instants (µs) of bars starting at ``starts_us`` (months by calendar)."""
    if timeframe.unit != "mo":
        return starts_us + np.int64(timeframe.micros)
    months = starts_us.astype("datetime64[us]").astype("datetime64[M]") + np.timedelta64(timeframe.n, "M")
    return np.asarray(months.astype("datetime64[us]").astype(np.int64))


def relabel_daily(table: pa.Table, calendar: TradingCalendar) -> pa.Table:
    """Key daily bars by session date 00:00 UTC whatever instant the source stamped."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    if ts.size == 0 or not np.any(ts % 86_400_000_000):
        return table
    labels = calendar.session_labels(ts)
    col = pa.array(labels, pa.int64()).cast(BAR_SCHEMA.field("ts").type)
    return table.set_column(0, "ts", col)


def _quarantine_rows(bad: pa.Table) -> pa.Table:
    now = pa.scalar(time.time_ns() // 1000, pa.int64()).cast(QUARANTINE_SCHEMA.field("quarantined_at").type)
    cols = [bad.column(n) if n in bad.column_names else pa.nulls(bad.num_rows, QUARANTINE_SCHEMA.field(n).type)
            for n in QUARANTINE_SCHEMA.names if n != "quarantined_at"]
    cols.append(pa.array([now.as_py()] * bad.num_rows, QUARANTINE_SCHEMA.field("quarantined_at").type))
    return pa.Table.from_arrays(cols, schema=QUARANTINE_SCHEMA)


_IDENTITY = ("ts", "open", "high", "low", "close", "volume", "rule")


def _not_yet_quarantined(store: BarStore, symbol: str, tf: str, bad: pa.Table) -> pa.Table:
    """Drop rows identical to ones already quarantined (re-fetching a bad bar adds nothing)."""
    held = store.quarantined(symbol, tf)
    if held.num_rows == 0:
        return bad
    seen = set(zip(*(held.column(c).to_pylist() for c in _IDENTITY), strict=True))
    keys = list(zip(*(bad.column(c).to_pylist() for c in _IDENTITY), strict=True))
    keep = [k not in seen for k in keys]
    return bad.filter(pa.array(keep, pa.bool_()))


def write_bars(
    store: BarStore,
    symbol: str,
    timeframe: Timeframe,
    table: pa.Table,
    *,
    calendar: TradingCalendar,
    hard_rules: Collection[str],
    actions: Sequence[CorporateAction] = (),
    coverage: CoverageMode = "bars",
    extra_coverage: Sequence[CoverageInterval] = (),
    provider: str | None = None,
    publish: Callable[[BarEvent], None] | None = None,
    currency: str | None = None,
) -> WriteReceipt:
    """Run one batch through the write path.

    Parameters
    ----------
    store
        Target store.
    symbol, timeframe
        Canonical series.
    table
        Bars in BAR_SCHEMA (not yet sorted or de-duplicated).
    calendar
        The symbol's trading calendar (session checks, daily labels).
    hard_rules
        Rules whose failures are quarantined.
    actions
        Known corporate actions (so split jumps they explain are not flagged).
    coverage
        ``"bars"``: mark each stored bar's interval covered (``final``); ``"span"``: mark
        ``[first, last bar end)`` covered, declaring the batch complete; ``"none"``.
    extra_coverage
        Marks a provider vouched for (``empty`` no-trade minutes, ``provisional`` data).
    provider
        Provenance, for the receipt and the coverage marks.
    publish
        Called with a :class:`BarEvent` when rows were stored.
    currency
        Quote currency (``GBp`` tells the unit rule which side of a ×100 switch is right).

    Returns
    -------
    WriteReceipt
        Rows written / unchanged / quarantined and the quality report.
    """
    tf = str(timeframe)
    rows_in = table.num_rows
    if timeframe.unit == "d" and timeframe.n == 1:
        table = relabel_daily(table, calendar)
    context = None
    if rows_in:
        first = pc.min(table.column("ts")).cast(pa.int64()).as_py()
        context = store.read(symbol, tf, first - 30 * timeframe.micros, first)
        if context.num_rows > 50:
            context = context.slice(context.num_rows - 50)
    report: QualityReport = quality.check(
        table, symbol=symbol, timeframe=tf, calendar=calendar, actions=actions,
        hard_rules=hard_rules, context=context, currency=currency,
    )
    report = QualityReport(report.symbol, report.timeframe, report.rows, report.counts, report.hard_rules,
                           report.flags, report.score, time.time_ns() // 1000)
    good, bad = quality.partition(table, report)
    good = dedupe_last(good)
    receipt = store.write(symbol, tf, good)
    if bad.num_rows:
        fresh = _not_yet_quarantined(store, symbol, tf, bad)
        if fresh.num_rows:
            store.quarantine(symbol, tf, _quarantine_rows(fresh))
    if rows_in:
        store.save_report(report)
    marks: list[CoverageInterval] = []
    now_us = time.time_ns() // 1000
    if good.num_rows and coverage != "none":
        starts = good.column("ts").cast(pa.int64()).to_numpy()
        ends = bar_ends(starts, timeframe)
        if coverage == "span":
            runs = [(int(starts[0]), int(ends[-1]))]
        else:
            runs = intervals_from_mask(starts, ends, np.ones(starts.size, dtype=bool))
        marks.extend(CoverageInterval(s, e, CoverageState.FINAL, provider, now_us) for s, e in runs)
    marks.extend(extra_coverage)
    if marks:
        store.mark_covered(symbol, tf, sorted(marks, key=lambda m: (m.state != CoverageState.FINAL, m.start_us)))
    if bad.num_rows and marks:
        # A quarantined bar is not stored, so it must stay missing (and be re-fetched), whatever
        # the provider vouched for; a bad duplicate of a stored key is not a hole.
        stored = set(good.column("ts").cast(pa.int64()).to_pylist())
        bad_keys = {k for k in bad.column("ts").cast(pa.int64()).to_pylist() if k is not None}
        for ts_us in sorted(bad_keys - stored):
            end_us = int(bar_ends(np.array([ts_us], dtype=np.int64), timeframe)[0])
            store.clear_coverage(symbol, tf, ts_us, end_us)
    if publish is not None and receipt.rows_written and receipt.first_us is not None and receipt.last_us is not None:
        publish(BarEvent(symbol, tf, receipt.first_us, receipt.last_us, receipt.rows_written))
    return WriteReceipt(
        symbol=symbol,
        timeframe=tf,
        rows_in=rows_in,
        rows_written=receipt.rows_written,
        rows_unchanged=receipt.rows_unchanged,
        rows_quarantined=bad.num_rows,
        bytes_written=receipt.bytes_written,
        report=report,
    )
