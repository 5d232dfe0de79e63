"""Rendering for people: rich tables of bars, series status and quality reports.

Cells are built as :class:`rich.text.Text`, never markup, because they hold data (reasons,
provider names) that may contain ``[...]``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

import tickvault
from tickvault.cli._context import fmt_count, fmt_score, fmt_ts

__all__ = ["print_report", "print_status", "render_table", "short_reason"]


def render_table(console: Console, table: pa.Table, *, title: str, max_rows: int,
                 timeframe: str | None = None, hide: tuple[str, ...] = ()) -> None:
    """Print ``table`` as a rich table, showing the first and last rows past ``max_rows``.

    Columns that are empty in every row (``vwap`` of most daily data, say) and the
    ``hide`` columns are left out: the table is for reading, CSV/JSON/Parquet carry all.

    Parameters
    ----------
    console
        Where to print (stdout).
    table
        Bars or quarantined rows.
    title
        Table title.
    max_rows
        Row cap; beyond it the middle is elided with a note saying how to get everything.
    timeframe
        Bars' timeframe, so daily bars print as dates.
    hide
        Columns not shown.
    """
    keep = [name for name, col in zip(table.column_names, table.columns, strict=True)
            if name not in hide and col.null_count < len(col)]
    table = table.select(keep) if keep else table
    n = table.num_rows
    if n > max_rows:
        head = max_rows - max_rows // 2
        parts = [table.slice(0, head), table.slice(n - max_rows // 2)]
    else:
        parts = [table]
    out = Table(title=Text(title), title_justify="left", header_style="bold")
    for field in table.schema:
        numeric = pa.types.is_floating(field.type) or pa.types.is_integer(field.type)
        out.add_column(field.name, justify="right" if numeric else "left", no_wrap=field.name != "reason")
    for i, part in enumerate(parts):
        if i:
            out.add_row(*(["…"] * table.num_columns), style="dim")
        for row in part.to_pylist():
            # Text, not markup: a reason or provider name may contain "[...]".
            out.add_row(*(Text(_cell(k, v, timeframe, row)) for k, v in row.items()))
    console.print(out)
    if n > max_rows:
        console.print(Text(f"showing {max_rows} of {n:,} rows; use --max-rows, or --format csv/json/parquet "
                           "--output FILE for all of them", style="dim"))


def _cell(name: str, value: object, timeframe: str | None, row: dict[str, Any]) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return fmt_ts(pd.Timestamp(value), timeframe if name == "ts" else None)
    if isinstance(value, float):
        return f"{value:,.0f}" if name == "volume" and value.is_integer() else f"{value:.10g}"
    if name == "reason":
        return short_reason(str(row.get("rule") or ""), str(value))
    return str(value)


def short_reason(rule: str, reason: str) -> str:
    """The reason without the rule name it repeats (``"unit_jump: prices ..."``)."""
    prefix = f"{rule}: "
    return reason[len(prefix):] if rule and reason.startswith(prefix) else reason


def print_status(console: Any, rows: list[tickvault.SeriesStatus], *, title: str) -> None:
    """The status table (shared with ``demo``)."""
    table = Table(title=Text(title), title_justify="left", header_style="bold")
    for name, justify in (("symbol", "left"), ("tf", "left"), ("first", "left"), ("last", "left"),
                          ("rows", "right"), ("holes", "right"), ("quality", "right"), ("quarantined", "right"),
                          ("last update", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for s in rows:
        score = fmt_score(s.quality_score)
        table.add_row(Text(s.symbol), s.timeframe, fmt_ts(s.first, s.timeframe), fmt_ts(s.last, s.timeframe),
                      fmt_count(s.rows), Text(fmt_count(s.holes), style="yellow" if s.holes else ""),
                      score, Text(fmt_count(s.quarantined), style="yellow" if s.quarantined else ""),
                      fmt_ts(s.last_update))
    console.print(table)


def print_report(console: Any, report: tickvault.QualityReport, *, show: int) -> None:
    """A quality report: score, the rules that flagged rows, and the first flagged rows."""
    console.print(Text(f"{report.symbol} {report.timeframe}: {report.summary()}", style="bold"))
    hits = sorted(((rule, n) for rule, n in report.counts.items() if n), key=lambda kv: (-kv[1], kv[0]))
    if hits:
        counts = Table(header_style="bold", title="Rules that flagged rows", title_justify="left")
        counts.add_column("rule")
        counts.add_column("severity")
        counts.add_column("rows", justify="right")
        for rule, n in hits:
            severity = "hard: quarantined" if rule in report.hard_rules else "soft: kept, flagged"
            counts.add_row(Text(rule), severity, fmt_count(n))
        console.print(counts)
    quiet = sorted(rule for rule, n in report.counts.items() if not n)
    if quiet:
        console.print(Text(f"{len(quiet)} rule(s) flagged nothing: {', '.join(quiet)}", style="dim"))
    flags = report.flags
    if flags.num_rows and show:
        shown = flags.slice(0, show)
        table = Table(header_style="bold", title=f"Flagged rows (first {shown.num_rows} of {flags.num_rows:,})",
                      title_justify="left")
        for name in ("ts", "rule", "severity", "reason"):
            table.add_column(name, no_wrap=name != "reason")
        for row in shown.to_pylist():
            ts = fmt_ts(None if row["ts"] is None else pd.Timestamp(row["ts"]), report.timeframe)
            table.add_row(ts, Text(str(row["rule"])), str(row["severity"]),
                          Text(short_reason(str(row["rule"]), str(row["reason"] or ""))))
        console.print(table)
