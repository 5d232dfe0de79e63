"""``tickvault indicators`` and ``tickvault screen``: technical values and universe filters."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer

import tickvault
from tickvault.cli._app import HomeOption, app
from tickvault.cli._context import get_state
from tickvault.cli._options import AdjustMode, SymbolArg, TimeframeOpt, canonical
from tickvault.cli._output import OutFormat, check_output, write_table
from tickvault.cli._render import render_table

__all__ = ["indicators_cmd", "screen_cmd"]

MAX_UNIVERSE_FILE = 1_000_000  # bytes


@app.command(
    "indicators",
    epilog="Example: `tickvault indicators AAPL --timeframe 1d --ind rsi_14,macd_12_26_9 --start 2024-01-01`\n\n"
           "Example: `tickvault indicators BTC/USDT -t 1h --ind bb_20_2,vwap --format csv`",
)
def indicators_cmd(
    ctx: typer.Context,
    symbol: SymbolArg,
    timeframe: TimeframeOpt,
    ind: Annotated[str, typer.Option("--ind", "-i", help="Comma-separated indicator names: sma_N ema_N wma_N "
                                     "rsi_N macd_F_S_G bb_N_K atr_N stoch_N_K_D adx_N obv vwap.")],
    start: Annotated[str | None, typer.Option(help="First row, UTC (history before it is used as look-back).",
                                              show_default=False)] = None,
    end: Annotated[str | None, typer.Option(help="End, UTC; a bare date includes that day.",
                                            show_default=False)] = None,
    adjust: Annotated[AdjustMode, typer.Option(help="Adjustment of the bars the values are computed on.")]
    = AdjustMode.splits,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                                                dir_okay=False, show_default=False)] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown by --format table.", min=2)] = 40,
    home: HomeOption = None,
) -> None:
    """Compute indicators on stored bars (any timeframe: coarser ones are resampled)."""
    state = get_state(ctx, home)
    sym, tf = canonical(symbol, timeframe)
    names = [n.strip() for n in ind.split(",") if n.strip()]
    check_output(fmt, output)
    with state.open() as vault, state.busy(f"computing {', '.join(names)} on {sym} {tf}"):
        table: pa.Table = vault.indicators(sym, tf, names, start, end, adjust=adjust.value, format="arrow")
    if table.num_rows == 0:
        raise tickvault.MissingData(f"no {sym} {tf} bars stored for that range (see 'tickvault status')")
    if fmt is OutFormat.table:
        render_table(state.out, table, title=f"{sym} {tf} · {', '.join(names)}", max_rows=max_rows, timeframe=tf)
        return
    write_table(table, fmt, sys.stdout, output)


def _universe(value: str | None) -> list[str] | None:
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        if path.stat().st_size > MAX_UNIVERSE_FILE:
            raise tickvault.InvalidInput(f"universe file {path} is larger than {MAX_UNIVERSE_FILE} bytes")
        text = path.read_text(encoding="utf-8-sig")
    else:
        text = value
    symbols = [s.strip() for s in text.replace("\n", ",").replace(" ", ",").split(",") if s.strip()]
    if not symbols:
        raise tickvault.InvalidInput("the universe is empty")
    return symbols


@app.command(
    "screen",
    epilog="Example: `tickvault screen \"rsi_14 < 30 and close > sma_200\"`\n\n"
           "Example: `tickvault screen \"chg_5d > 0.05\" --universe AAPL,MSFT,NVDA --timeframe 1d`",
)
def screen_cmd(
    ctx: typer.Context,
    expression: Annotated[str, typer.Argument(help="Condition over snapshot fields, e.g. 'rsi_14 < 30 and "
                                              "close > sma_200' (fields: open high low close volume, chg_*, "
                                              "any indicator column).")],
    universe: Annotated[str | None, typer.Option(help="Symbols: a file (one per line or comma-separated) or a "
                                                 "comma-separated list. Default: every stored series of the "
                                                 "timeframe.", show_default=False)] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Timeframe of the snapshot.")] = "1d",
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                                                dir_okay=False, show_default=False)] = None,
    home: HomeOption = None,
) -> None:
    """List the symbols whose latest snapshot satisfies a condition."""
    state = get_state(ctx, home)
    check_output(fmt, output)
    syms = _universe(universe)
    if syms is not None:
        syms = [canonical(s, timeframe)[0] for s in syms]
    with state.open() as vault, state.busy("screening"):
        hits = vault.screen(expression, syms, timeframe)
    table = pa.Table.from_pandas(hits.reset_index(), preserve_index=False)
    if fmt is OutFormat.table:
        if table.num_rows == 0:
            state.note("no symbol matches")
            return
        keep = [c for c in table.column_names if c in ("symbol", "ts", "close", "chg_1d", "chg_5d", "chg_21d")
                or c in set(_fields(expression))]
        render_table(state.out, table.select(keep), title=f"screen: {expression}", max_rows=200)
        return
    write_table(table, fmt, sys.stdout, output)


def _fields(expression: str) -> list[str]:
    import ast

    return [n.id for n in ast.walk(ast.parse(expression, mode="eval")) if isinstance(n, ast.Name)]
