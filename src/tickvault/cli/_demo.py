"""``tickvault demo``: a small vault built from simulated data, through the real machinery,
then served with the dashboard while simulated bars keep arriving.

The simulator is configured as the vault's only provider, and each series is asked for
with :meth:`tickvault.Vault.fetch`, so the demo runs exactly what a user's read-through
runs: the planner reads the coverage ledger, asks the provider for what is missing, the
quality rules quarantine the few bad ticks the simulator injects, the rest is upserted
into the embedded store. No network, no keys. After the summary the demo serves the vault
on 127.0.0.1 (:mod:`._demo_live`) until Ctrl-C; ``--no-serve`` stops after the summary.

Where: ``--home`` if given, else a new folder in the OS temp dir (docs/cli.md says why).
The demo never writes into a non-empty folder it did not create, so pointing it at a real
vault by mistake is refused rather than mixing simulated bars into real ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shlex
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.table import Table
from rich.text import Text

import tickvault
from tickvault.cli._app import app
from tickvault.cli._context import State, fmt_count, fmt_size, fmt_ts, get_state
from tickvault.cli._demo_live import check_service_extra, listen, serve_demo
from tickvault.cli._render import print_status, short_reason
from tickvault.model import AssetClass

__all__ = ["DEMO_MARKER", "LIVE_SYMBOLS", "DemoSeries", "demo_cmd", "demo_plan"]

#: File the demo leaves in folders it created, so a re-run may reuse them.
DEMO_MARKER = ".tickvault-demo"

_INSTRUMENTS = (
    tickvault.Instrument("AAPL", AssetClass.EQUITY, "XNAS", "USD", "XNYS", name="Apple Inc. (simulated)"),
    tickvault.Instrument("MSFT", AssetClass.EQUITY, "XNAS", "USD", "XNYS", name="Microsoft Corp. (simulated)"),
    tickvault.Instrument("SPY", AssetClass.EQUITY, "ARCX", "USD", "XNYS", name="SPDR S&P 500 ETF (simulated)"),
    tickvault.Instrument("BTC/USDT", AssetClass.CRYPTO, "SIM", "USDT", "24/7", name="Bitcoin / Tether (simulated)"),
)


#: The series the served demo keeps writing new 1m bars for (every minute series of the plan).
LIVE_SYMBOLS = ("AAPL", "MSFT", "SPY", "BTC/USDT")


DemoHomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Folder for the demo vault: new, empty, or made by an earlier demo. Default: a new "
                 "folder in the OS temp dir (never $TICKVAULT_HOME or ~/.tickvault).", show_default=False,
                 file_okay=False, dir_okay=True),
]


@dataclass(frozen=True)
class DemoSeries:
    """One series the demo asks for: ``[start, end]`` are inclusive UTC dates."""

    symbol: str
    timeframe: str
    start: dt.date
    end: dt.date
    label: str


def demo_plan(vault: tickvault.Vault, last_day: dt.date) -> list[DemoSeries]:
    """The demo universe up to ``last_day`` (inclusive).

    Minute bars for the last five XNYS sessions of AAPL, MSFT and SPY, a year of daily
    bars for the same, and two days of BTC/USDT minutes on the 24/7 calendar.
    """
    sessions = vault.calendar("AAPL").sessions(last_day - dt.timedelta(days=20), last_day)
    first_minute_day = sessions[-5].date() if len(sessions) >= 5 else last_day - dt.timedelta(days=6)
    year_ago = last_day - dt.timedelta(days=364)
    plan = [DemoSeries(s, "1m", first_minute_day, last_day, "5 sessions") for s in ("AAPL", "MSFT", "SPY")]
    plan += [DemoSeries(s, "1d", year_ago, last_day, "1 year") for s in ("AAPL", "MSFT", "SPY")]
    plan.append(DemoSeries("BTC/USDT", "1m", last_day - dt.timedelta(days=1), last_day, "2 days, 24/7"))
    return plan


def _demo_home(state: State) -> tuple[Path, bool]:
    """The demo's folder, and whether an earlier demo run made it."""
    if state.home is None:
        # A fresh folder per run in the temp dir: never the user's ~/.tickvault or
        # $TICKVAULT_HOME, never litter in the current folder (docs/cli.md).
        home = Path(tempfile.mkdtemp(prefix="tickvault-demo-"))
    else:
        home = state.home.expanduser().resolve()
        if home.exists() and not home.is_dir():
            raise tickvault.InvalidInput(f"--home {home} is a file")
        if home.is_dir() and any(home.iterdir()) and not (home / DEMO_MARKER).exists():
            raise tickvault.InvalidInput(
                f"{home} is not empty and was not made by 'tickvault demo'; the demo only writes simulated "
                "data into a new or empty folder (or one an earlier demo made)")
    reused = (home / DEMO_MARKER).exists()
    home.mkdir(parents=True, exist_ok=True)
    (home / DEMO_MARKER).write_text("made by 'tickvault demo': simulated data, safe to delete\n", encoding="utf-8")
    return home, reused


def _last_day(end: str | None) -> dt.date:
    if end is None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(end)
    except ValueError:
        raise tickvault.InvalidInput(f"--end must be a date like 2024-06-28, got {end!r}") from None


@app.command(
    "demo",
    epilog="Example: `tickvault demo` (then open the URL it prints; Ctrl-C stops)\n\n"
           "Example: `tickvault demo --home ./demo-vault --end 2024-06-28 --seed 1 --port 8080`\n\n"
           "Example: `tickvault demo --no-serve` (fill the vault, print the summary, exit)",
)
def demo_cmd(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Simulator seed: same seed, same bars.")] = 7,
    bad_ticks: Annotated[float, typer.Option(help="Share of simulated bars made bad, so the quality rules "
                                             "have something to quarantine.", min=0.0, max=0.5)] = 0.001,
    end: Annotated[str | None, typer.Option(help="Last day simulated, UTC (default: yesterday).",
                                            show_default=False)] = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="After the summary, serve the vault with the "
                                        "dashboard on 127.0.0.1 while new simulated bars arrive, until "
                                        "Ctrl-C.")] = True,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one). "
                                             "Default: 8001, or the next free port after it.",
                                             show_default=False)] = None,
    interval: Annotated[float, typer.Option("--interval", min=0.05, max=3600.0,
                                            help="Seconds between new simulated bars (one per symbol).")] = 1.0,
    home: DemoHomeOption = None,
) -> None:
    """Build a small vault from simulated data, then serve it with the dashboard while new bars arrive.

    Simulates AAPL, MSFT and SPY (XNYS: minutes for 5 sessions, days for a year) and
    BTC/USDT (24/7: minutes for 2 days), fetches them through the vault's read-through and
    write path with the quality rules on, and prints what was stored and what to try next.
    Then it serves the vault on 127.0.0.1 (dashboard at /, API under /v1, reads open, writes
    need a key) and writes a new simulated 1m bar per symbol every --interval seconds, until
    Ctrl-C. Without --home the vault goes into a new folder in the OS temp dir.
    """
    state = get_state(ctx, home)
    last_day = _last_day(end)
    from tickvault.providers.sim import SimProvider  # only the demo needs the simulator

    settings = state.settings()  # a bad TICKVAULT_* value fails before any folder is made
    with contextlib.ExitStack() as stack:
        sock: socket.socket | None = None
        if serve:  # a busy --port or a missing web framework fails before anything is simulated
            check_service_extra()
            sock = stack.enter_context(listen(port))
        where, reused = _demo_home(state)
        t0 = time.perf_counter()
        received = written = quarantined = 0
        sim = SimProvider(seed=seed, bad_ticks=bad_ticks)
        vault = stack.enter_context(tickvault.open(where, providers=[sim], settings=settings))
        for inst in _INSTRUMENTS:
            vault.add_instrument(inst)
        plan = demo_plan(vault, last_day)
        with state.progress(total=True) as progress:
            task = progress.add_task("simulating", total=len(plan))
            for item in plan:
                progress.update(task, description=f"{item.symbol} {item.timeframe} ({item.label})")
                # The planner fetches only what the ledger lacks (one request for a new series; nothing
                # on a re-run).
                outcome = vault.fetch(item.symbol, item.timeframe, item.start.isoformat(), item.end.isoformat())
                if outcome.errors and not outcome.receipts:
                    raise outcome.errors[0]
                received += sum(r.rows_in for r in outcome.receipts)
                written += sum(r.rows_written for r in outcome.receipts)
                quarantined += sum(r.rows_quarantined for r in outcome.receipts)
                # The latest report is the last batch's; re-check the stored series as a whole so
                # the quality column describes what is stored (and a re-run's one-bar batch of a
                # re-fetched bad tick does not stand for the series).
                vault.validate(item.symbol, item.timeframe)
                progress.advance(task)
        rows = vault.status()
        samples = _quarantine_samples(vault, plan)
        size = vault.size_bytes()
        calls = sum(vault.provider_calls.values())
        elapsed = time.perf_counter() - t0
        _print_summary(state, where, rows, samples, size=size, calls=calls, received=received, written=written,
                       quarantined=quarantined, elapsed=elapsed, plan=plan, reused=reused)
        if sock is None:
            return
        live = serve_demo(state, vault, sock, symbols=LIVE_SYMBOLS, seed=seed, interval=interval)
    state.out.print(Text(f"Stopped: the service is down and {fmt_count(live)} live bar(s) were stored; "
                         f"the vault stays in {where}."), soft_wrap=True)


def _quarantine_samples(vault: tickvault.Vault, plan: list[DemoSeries], limit: int = 5) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in dict.fromkeys((p.symbol, p.timeframe) for p in plan):
        table: pa.Table = vault.quarantine(*key, format="arrow")
        for row in table.slice(0, limit - len(out)).to_pylist():
            out.append({"symbol": key[0], "timeframe": key[1], **row})
        if len(out) >= limit:
            break
    return out


def _print_summary(state: State, where: Path, rows: list[tickvault.SeriesStatus], samples: list[dict[str, Any]],
                   *, size: int, calls: int, received: int, written: int, quarantined: int, elapsed: float,
                   plan: list[DemoSeries], reused: bool) -> None:
    out = state.out
    out.print(Text("tickvault demo", style="bold"), Text(f"— a vault built from simulated data in {where}"))
    out.print(Text(f"The simulator (provider 'sim', no network) was asked through the read-through for {len(plan)} "
                   f"series: {fmt_count(calls)} provider call(s), {fmt_count(received)} bars received, "
                   f"{fmt_count(written)} stored, {fmt_count(quarantined)} quarantined by the quality rules."
                   + (" Series already covered by an earlier run were not fetched again." if reused else "")))
    print_status(out, rows, title="What is stored")
    out.print(Text("holes: expected bars (by each symbol's trading calendar) not covered — here the quarantined "
                   "bars, which stay missing so the next read-through fetches them again; weekends, holidays and "
                   "nights never count. quality: score of the quality rules over the stored series (1.000: nothing "
                   "flagged).", style="dim"))
    if samples:
        table = Table(title="Quarantined (simulated bad ticks), first few", title_justify="left",
                      header_style="bold")
        for name in ("series", "ts", "rule", "reason"):
            table.add_column(name, no_wrap=name != "reason")
        for s in samples:
            table.add_row(Text(f"{s['symbol']} {s['timeframe']}"), fmt_ts(_ts(s["ts"]), s["timeframe"]),
                          Text(str(s["rule"])), Text(short_reason(str(s["rule"]), str(s["reason"] or ""))))
        out.print(table)
    out.print(Text(f"Files: {where} ({fmt_size(size)} on disk: Parquet bars under bars/, the catalog in "
                   "catalog.sqlite). "
                   f"Took {elapsed:.1f} s.", style="bold"))
    out.print(Text("Try next:", style="bold"))
    for command in _next_commands(where, rows):
        # soft_wrap: never broken by rich, so a command copies and pastes whole.
        out.print(Text(f"  {command}"), soft_wrap=True)


def _ts(value: Any) -> Any:
    import pandas as pd

    return None if value is None else pd.Timestamp(value)


def _next_commands(where: Path, rows: list[tickvault.SeriesStatus]) -> list[str]:
    h = shlex.quote(str(where))
    day = next((s.last for s in rows if s.symbol == "AAPL" and s.timeframe == "1m" and s.last is not None), None)
    day_s = day.strftime("%Y-%m-%d") if day is not None else "2024-06-28"
    return [
        f"tickvault --home {h} status",
        f"tickvault --home {h} bars AAPL --timeframe 1d",
        f"tickvault --home {h} bars AAPL --timeframe 1m --start {day_s} --end {day_s} --fetch never",
        f"tickvault --home {h} bars BTC/USDT --timeframe 1m --format csv --output btc.csv",
        f"tickvault --home {h} quarantine AAPL --timeframe 1m",
        f"tickvault --home {h} validate SPY --timeframe 1d",
        f"tickvault --home {h} verify",
        f"python -c \"import tickvault; print(tickvault.open({str(where)!r}).bars('SPY', '1d').tail())\"",
    ]
