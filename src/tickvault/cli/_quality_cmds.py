"""``tickvault validate``, ``quarantine`` and ``verify``: is the data right, and are the files intact."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table
from rich.text import Text

import tickvault
from tickvault.cli._app import HomeOption, app
from tickvault.cli._context import fmt_count, get_state
from tickvault.cli._errors import ExitCode
from tickvault.cli._options import SymbolArg, TimeframeOpt, canonical
from tickvault.cli._output import OutFormat, check_output, write_table
from tickvault.cli._render import print_report, render_table

__all__ = ["quarantine_cmd", "validate_cmd", "verify_cmd"]


@app.command(
    "validate",
    epilog="Example: `tickvault validate AAPL --timeframe 1d`\n\n"
           "Example (CI): `tickvault validate SPY -t 1m --fail-under 0.99`",
)
def validate_cmd(
    ctx: typer.Context,
    symbol: SymbolArg,
    timeframe: TimeframeOpt,
    fail_under: Annotated[float | None, typer.Option(help="Exit 3 when the quality score is below this (0..1).",
                                                     min=0.0, max=1.0, show_default=False)] = None,
    show: Annotated[int, typer.Option(help="How many flagged rows to list.", min=0)] = 20,
    home: HomeOption = None,
) -> None:
    """Run the quality rules over a stored series and print the report.

    The report becomes the series' latest (shown by 'tickvault status'). Rows already
    stored are not moved: hard-rule failures are quarantined on the way in, so what this
    finds in stored data is soft flags (spikes, stale runs, gaps) and cross-batch issues.
    """
    state = get_state(ctx, home)
    sym, tf = canonical(symbol, timeframe)
    with state.open() as vault:
        if vault.latest(sym, tf, 1, format="arrow").num_rows == 0:
            raise tickvault.MissingData(f"no {sym} {tf} bars stored in {vault.home}; nothing to validate")
        with state.busy(f"validating {sym} {tf}"):
            report = vault.validate(sym, tf)
    print_report(state.out, report, show=show)
    if fail_under is not None and report.score < fail_under:
        typer.echo(f"error: {sym} {tf} quality score {report.score:.4f} is below {fail_under}", err=True)
        raise typer.Exit(ExitCode.DATA)


@app.command(
    "quarantine",
    epilog="Example: `tickvault quarantine AAPL --timeframe 1m`\n\n"
           "Example: `tickvault quarantine AAPL -t 1m --format csv --output held.csv`",
)
def quarantine_cmd(
    ctx: typer.Context,
    symbol: SymbolArg,
    timeframe: TimeframeOpt,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                                                dir_okay=False, show_default=False)] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown by --format table.", min=2)] = 40,
    home: HomeOption = None,
) -> None:
    """List the rows held back by hard quality rules, with the rule and the reason.

    Quarantined rows are never stored as bars and never silently repaired; their bars
    stay missing in the coverage ledger, so the next read-through fetches them again.
    """
    state = get_state(ctx, home)
    sym, tf = canonical(symbol, timeframe)
    check_output(fmt, output)
    with state.open() as vault, state.busy(f"reading the quarantine of {sym} {tf}"):
        table: pa.Table = vault.quarantine(sym, tf, format="arrow")
    if table.num_rows == 0:
        state.note(f"no quarantined rows for {sym} {tf}")
    if fmt is OutFormat.table:
        if table.num_rows:
            render_table(state.out, table, title=f"{sym} {tf} · quarantined", max_rows=max_rows, timeframe=tf,
                         hide=("vwap", "trade_count", "quarantined_at"))
        return
    with state.busy(f"writing {table.num_rows:,} rows", writes_stdout=output is None):
        write_table(table, fmt, sys.stdout, output)
    if output is not None:
        state.note(f"wrote {table.num_rows:,} quarantined rows to {output}")


@app.command("verify", epilog="Example: `tickvault verify`\n\n"
                              "Example (cron): `tickvault --home /data/vault verify || alert`")
def verify_cmd(ctx: typer.Context, home: HomeOption = None) -> None:
    """Check every stored file against its checksum; exit 4 if any was damaged.

    Damaged files are set aside and the coverage of their range is cleared, so the next
    read-through fetches those bars again instead of serving bad data.
    """
    state = get_state(ctx, home)
    with state.open() as vault:
        with state.busy("verifying stored files"):
            report = vault.verify()
        where = vault.home
    if report.ok:
        state.out.print(Text(f"{where}: {fmt_count(report.checked)} file(s) checked, all intact.", style="green"))
        return
    table = Table(title=Text(f"{where}: {len(report.damaged)} damaged file(s) of {fmt_count(report.checked)}"),
                  title_justify="left", header_style="bold")
    table.add_column("file")
    table.add_column("problem")
    for path, problem in report.damaged:
        table.add_row(Text(path), Text(problem))
    state.out.print(table)
    if report.repaired:
        state.out.print(Text("Set aside (those bars are missing now; the next read-through fetches them again):"))
        for line in report.repaired:
            state.out.print(Text(f"  {line}"))
    typer.echo(f"error: {len(report.damaged)} damaged file(s) in {where}", err=True)
    raise typer.Exit(ExitCode.STORAGE)
