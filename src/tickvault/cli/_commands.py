"""``tickvault import``, ``bars`` and ``status``: getting bars in and out, and what is there."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import TaskID
from rich.table import Table
from rich.text import Text

import tickvault
from tickvault.cli._app import HomeOption, app
from tickvault.cli._context import fmt_count, fmt_score, fmt_size, fmt_ts, get_state
from tickvault.cli._options import AdjustMode, FetchMode, SymbolArg, TimeframeOpt, canonical
from tickvault.cli._output import OutFormat, check_output, write_table
from tickvault.cli._render import print_status, render_table
from tickvault.model import validate_symbol

__all__ = ["bars_cmd", "import_cmd", "status_cmd"]


@app.command(
    "import",
    epilog="Example: `tickvault import AAPL.csv.gz --symbol AAPL --timeframe 1d`\n\n"
           "Example: `tickvault import es-*.csv --symbol ES --timeframe 1m --tz America/Chicago`",
)
def import_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV (plain or .gz), Parquet or Feather files.", exists=True,
                                                dir_okay=False, readable=True, show_default=False)],
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol of the bars (default: from the "
                                               "file name, when it tells).", show_default=False)] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="Bar timeframe (default: from the "
                                                  "file name, when it tells).", show_default=False)] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Zone of naive times in the file, e.g. America/New_York "
                                           "(default: UTC).", show_default=False)] = None,
    layout: Annotated[str | None, typer.Option("--layout", help="Force a layout instead of detecting it.",
                                               show_default=False)] = None,
    home: HomeOption = None,
) -> None:
    """Import bar files through the quality rules into the vault.

    Each file is parsed completely before anything is written, so a malformed file
    changes nothing; files are imported in order and a failure stops the run.
    """
    state = get_state(ctx, home)
    sym = validate_symbol(symbol) if symbol else None
    tf = str(tickvault.Timeframe.parse(timeframe)) if timeframe else None
    done: list[tuple[Path, tickvault.ImportResult]] = []
    try:
        with state.open(create=True) as vault, state.progress(total=False) as progress:
            for path in files:
                task = progress.add_task(f"importing {path.name}", total=None)

                def advance(rows: int, task: TaskID = task) -> None:
                    progress.advance(task, rows)

                result = vault.import_file(path, sym, tf, tz=tz, layout=layout, progress=advance)
                progress.remove_task(task)
                done.append((path, result))
    finally:
        # Whatever happened, show what did get imported (a later file may have failed).
        if done:
            _print_imports(state.out, done)


def _print_imports(console: Any, done: list[tuple[Path, tickvault.ImportResult]]) -> None:
    skipped = any(res.skipped_rows for _, res in done)
    columns = ["file", "series", "layout", "rows", *(["skipped"] if skipped else []), "written", "unchanged",
               "quarantined", "quality", "actions"]
    table = Table(title="Imported", title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, justify="left" if name in ("file", "series", "layout") else "right")
    for path, res in done:
        r = res.receipt
        cells: list[Text | str] = [
            Text(path.name), Text(f"{r.symbol} {r.timeframe}"), Text(res.layout), fmt_count(r.rows_in),
            *([fmt_count(res.skipped_rows)] if skipped else []), fmt_count(r.rows_written),
            fmt_count(r.rows_unchanged), fmt_count(r.rows_quarantined),
            fmt_score(r.report.score if r.report is not None else None), fmt_count(res.actions),
        ]
        table.add_row(*cells)
    console.print(table)
    if skipped:
        console.print(Text("skipped: rows the reader dropped on purpose (no timestamp, action-only rows).",
                           style="dim"))
    for path, res in done:
        for warning in res.warnings:
            console.print(Text(f"warning: {path.name}: {warning}", style="yellow"))
    held = [res.receipt for _, res in done if res.receipt.rows_quarantined]
    if held:
        console.print(Text("Quarantined rows failed a hard quality rule and were not stored; see them with "
                           f"'tickvault quarantine {held[0].symbol} --timeframe {held[0].timeframe}'.", style="dim"))


@app.command(
    "bars",
    epilog="Example: `tickvault bars AAPL --timeframe 1d --start 2024-01-01 --end 2024-06-30`\n\n"
           "Example: `tickvault bars BTC/USDT -t 1m --fetch never --format csv --output btc.csv`",
)
def bars_cmd(
    ctx: typer.Context,
    symbol: SymbolArg,
    timeframe: TimeframeOpt,
    start: Annotated[str | None, typer.Option(help="First bar, UTC (2024-01-02 or 2024-01-02T14:30). "
                                              "Without it: the whole stored series, nothing fetched.",
                                              show_default=False)] = None,
    end: Annotated[str | None, typer.Option(help="End, UTC; a bare date includes that day.",
                                            show_default=False)] = None,
    adjust: Annotated[AdjustMode, typer.Option(help="Price adjustment on read.")] = AdjustMode.splits,
    fetch: Annotated[FetchMode, typer.Option(help="Fetch missing bars from providers: never, auto (only what "
                                             "the coverage ledger says is missing) or always.")] = FetchMode.auto,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout "
                                                "(required for parquet).", dir_okay=False,
                                                show_default=False)] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown by --format table.", min=2)] = 40,
    home: HomeOption = None,
) -> None:
    """Print or export the bars of one series (UTC, labelled by their open)."""
    state = get_state(ctx, home)
    sym, tf = canonical(symbol, timeframe)
    check_output(fmt, output)
    with state.open() as vault:
        with state.busy(f"reading {sym} {tf}"):
            table = vault.bars(sym, tf, start, end, adjust=adjust.value, fetch=fetch.value, format="arrow")
        if table.num_rows == 0 and vault.latest(sym, tf, 1, format="arrow").num_rows == 0:
            raise tickvault.MissingData(f"no {sym} {tf} bars stored in {vault.home} (see 'tickvault status')")
    if table.num_rows == 0:
        state.note(f"no {sym} {tf} bars in that range")
    if fmt is OutFormat.table:
        if table.num_rows:
            render_table(state.out, table, title=f"{sym} {tf} · adjust={adjust.value}", max_rows=max_rows,
                         timeframe=tf)
        return
    with state.busy(f"writing {table.num_rows:,} bars", writes_stdout=output is None):
        write_table(table, fmt, sys.stdout, output)
    if output is not None:
        state.note(f"wrote {table.num_rows:,} bars to {output}")


@app.command(
    "status",
    epilog="Example: `tickvault status`\n\nExample: `tickvault status AAPL --json`",
)
def status_cmd(
    ctx: typer.Context,
    symbol: Annotated[str | None, typer.Argument(help="Only this symbol (and list its coverage holes).",
                                                 show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    home: HomeOption = None,
) -> None:
    """Per stored series: first/last bar, rows, coverage holes, quality score, last update.

    A hole is a stretch of expected bars (by the symbol's trading calendar) inside the
    stored span that is not covered: weekends, holidays and confirmed no-trade minutes
    never count.
    """
    state = get_state(ctx, home)
    sym = validate_symbol(symbol) if symbol is not None else None
    with state.open() as vault:
        with state.busy("reading the coverage ledger"):
            rows = vault.status(sym)
        size = vault.size_bytes()
        where = vault.home
        health = vault.health()  # caches: backend, size, cache hit rate, connectivity
    if sym is not None and not rows:
        raise tickvault.MissingData(f"nothing stored for {sym} in {where}")
    if json_out:
        typer.echo(json.dumps({"home": str(where), "size_bytes": size, "series": [_status_json(s) for s in rows],
                               "health": health}, indent=2))
        return
    if not rows:
        state.out.print(Text(f"The vault at {where} is empty. Try 'tickvault demo' or 'tickvault import'."))
        state.out.print(_health_line(health))
        return
    print_status(state.out, rows, title=f"Vault {where} · {fmt_size(size)}")
    state.out.print(_health_line(health))
    if sym is not None:
        for s in rows:
            if s.holes:
                state.out.print(Text(f"{s.symbol} {s.timeframe}: {s.holes} hole(s) in the stored span"
                                     + (" (first 20)" if s.holes > 20 else "") + ":", style="bold"))
                for a, b in s.missing_bars_span:
                    state.out.print(Text(f"  [{fmt_ts(a)}, {fmt_ts(b)})"))


def _health_line(health: dict[str, Any]) -> Text:
    """One line: backend, size, cache hit rate (shared across processes with Redis), Redis connectivity."""
    backend, cache = health["backend"], health["cache"]
    parts = [f"backend {backend['kind']}" + ("" if backend["connected"] else " (unreachable)")]
    if backend["size_bytes"] is not None:
        parts.append(fmt_size(backend["size_bytes"]))
    redis = cache["redis"]
    rate = (redis.get("shared") or {}).get("hit_rate") if redis else cache["hit_rate"]
    if not cache["enabled"]:
        parts.append("cache off")
    else:
        parts.append("cache hit rate " + ("n/a" if rate is None else f"{rate:.0%}"))
    if redis is not None:
        parts.append(f"redis {redis['url']} " + ("connected" if redis["connected"] else "unreachable"))
    return Text(" · ".join(parts), style="dim" if health["status"] == "ok" else "yellow")


def _iso(ts: Any) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def _status_json(s: tickvault.SeriesStatus) -> dict[str, Any]:
    return {
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "rows": s.rows,
        "first": _iso(s.first),
        "last": _iso(s.last),
        "holes": s.holes,
        "missing": [[_iso(a), _iso(b)] for a, b in s.missing_bars_span],
        "quality_score": s.quality_score,
        "quarantined": s.quarantined,
        "last_update": _iso(s.last_update),
    }
