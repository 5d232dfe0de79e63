"""``tickvault fetch``, ``providers``, ``fundamentals`` and ``search``: talking to data providers.

``fetch`` fills what the coverage ledger says is missing (or everything, with ``--refresh``)
and reports, per series, what came back, from whom, at what cost in provider calls, and
which gaps are left and why. The others show the configured providers and their health
in this process, merged fundamentals with the source of every field, and the symbol master.
Provider errors are shown one line each through :func:`reason`, which keeps the vendor's
message and status but not the request URL (long, and already redacted anyway).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

import tickvault
from tickvault.cli._app import HomeOption, app
from tickvault.cli._context import State, fmt_count, fmt_ts, get_state
from tickvault.cli._errors import ExitCode, one_line
from tickvault.cli._options import TimeframeOpt, canonical
from tickvault.model import validate_symbol

__all__ = ["FundamentalsFormat", "fetch_cmd", "fundamentals_cmd", "providers_cmd", "reason", "search_cmd"]

_SHOW_GAPS = 3  # gap intervals listed per series
_SHOW_REASONS = 3  # distinct provider errors listed per series
_URL_CONTEXT = re.compile(r"(, )?\burl=[^\s,)]+")  # the (redacted) request URL in an error's context


def reason(exc: BaseException) -> str:
    """One line for a provider error: ``provider: message (status 500)``, never a URL or a key.

    Provider messages are already scrubbed of configured secrets by the adapters; the URL
    (redacted, but long) is left out because the provider and status say where it failed.
    """
    if not isinstance(exc, tickvault.TickvaultError):
        return one_line(f"{type(exc).__name__}: {exc}", 300)
    ctx = exc.context
    extra = [f"status {ctx['status']}"] if ctx.get("status") is not None else []
    if ctx.get("page") not in (None, 0):  # the first page is the only one of most requests: not worth saying
        extra.append(f"page {ctx['page']}")
    who = f"{ctx['provider']}: " if ctx.get("provider") else ""
    return one_line(f"{who}{exc.message}" + (f" ({', '.join(extra)})" if extra else ""), 300)


@dataclass
class _Series:
    """What one ``fetch`` did for one series."""

    symbol: str
    timeframe: str
    received: int = 0
    written: int = 0
    unchanged: int = 0
    quarantined: int = 0
    providers: list[str] = field(default_factory=list)
    calls: int = 0
    served: int = 0  # provider answers that were stored
    errors: list[str] = field(default_factory=list)
    gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)


@contextlib.contextmanager
def _provider_warnings(state: State) -> Iterator[None]:
    """Show the HTTP layer's retry warnings as one dim line each on stderr (not Python's
    default multi-field format), for the duration of a command."""
    log = logging.getLogger("tickvault")

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = one_line(_URL_CONTEXT.sub("", record.getMessage()), 300)
            state.err.print(Text(f"warning: {text}", style="dim"), soft_wrap=True)

    handler = _Handler(logging.WARNING)
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


@app.command(
    "fetch",
    epilog="Example: `tickvault fetch AAPL MSFT --timeframe 1d --start 2024-01-01 --end 2024-06-30`\n\n"
           "Example: `tickvault fetch BTC/USDT -t 1m --start 2024-06-01 --provider ccxt --refresh`",
)
def fetch_cmd(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Canonical symbols: AAPL BRK.B BTC/USDT ^GSPC.",
                                                 show_default=False)],
    timeframe: TimeframeOpt,
    start: Annotated[str, typer.Option(help="Start, UTC (2024-01-02 or 2024-01-02T14:30).", show_default=False)],
    end: Annotated[str | None, typer.Option(help="End, UTC; a bare date includes that day. Default: now.",
                                            show_default=False)] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider (see 'tickvault providers'). Default: "
                                                 "the selection rules, failing over in order.",
                                                 show_default=False)] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch the whole range again, even what is "
                                          "stored.")] = False,
    home: HomeOption = None,
) -> None:
    """Fetch bars from providers into the vault: only what is missing, unless --refresh.

    Prints one row per series: rows received / written / unchanged / quarantined, the
    provider(s) that served them, provider calls, and the gaps left after the fetch with
    the reason (each provider error on one line). Exit 0 when nothing is missing, 3 when
    gaps remain, 5 when every provider failed.
    """
    state = get_state(ctx, home)
    checked = [canonical(s, timeframe) for s in symbols]  # bad symbols or timeframe: exit 2, nothing fetched
    syms, tf = list(dict.fromkeys(sym for sym, _ in checked)), checked[0][1]
    until = end if end is not None else pd.Timestamp.now(tz="UTC").ceil("min")
    rng = tickvault.TimeRange.of(start, until)  # bad dates: exit 2 before anything opens
    done: list[_Series] = []
    with state.open(create=True) as vault:
        if provider is not None:
            names = [p.name for p in vault.providers()]
            if provider not in names:
                raise tickvault.InvalidInput(f"provider {provider!r} is not configured (configured: "
                                             f"{', '.join(names) or 'none'}); see 'tickvault providers'")
        try:
            with _provider_warnings(state), state.progress(total=True) as progress:
                for sym in syms:
                    task = progress.add_task(f"{sym} {tf}", total=1)
                    row = _fetch_one(vault, sym, tf, start, until, rng, provider, refresh)
                    progress.update(task, completed=1, description=f"{sym} {tf} · {row.received:,} rows")
                    done.append(row)
        finally:
            if done:  # whatever happened, show what was fetched
                _print_fetched(state, done)
    _exit_for(done)


def _fetch_one(vault: tickvault.Vault, sym: str, tf: str, start: str, until: Any, rng: tickvault.TimeRange,
               provider: str | None, refresh: bool) -> _Series:
    outcome = vault.fetch(sym, tf, start, until, provider=provider, refresh=refresh)
    row = _Series(sym, tf, calls=outcome.calls, served=len(outcome.receipts), providers=sorted(outcome.providers))
    for r in outcome.receipts:
        row.received += r.rows_in
        row.written += r.rows_written
        row.unchanged += r.rows_unchanged
        row.quarantined += r.rows_quarantined
    row.errors = list(dict.fromkeys(reason(e) for e in outcome.errors))
    row.gaps = vault.missing(sym, tf, rng.start, rng.end)
    return row


def _print_fetched(state: State, done: Sequence[_Series]) -> None:
    table = Table(title="Fetched", title_justify="left", header_style="bold")
    for name in ("series", "received", "written", "unchanged", "quarantined", "provider", "calls", "gaps left"):
        table.add_column(name, justify="left" if name in ("series", "provider") else "right", no_wrap=True)
    for s in done:
        table.add_row(Text(f"{s.symbol} {s.timeframe}"), fmt_count(s.received), fmt_count(s.written),
                      fmt_count(s.unchanged), Text(fmt_count(s.quarantined), style="yellow" if s.quarantined else ""),
                      Text(", ".join(s.providers) or "—"), fmt_count(s.calls),
                      Text(fmt_count(len(s.gaps)), style="yellow" if s.gaps else ""))
    state.out.print(table)
    idle = [s for s in done if s.calls == 0 and not s.gaps and not s.errors]
    if idle:
        state.out.print(Text(f"nothing was missing for {len(idle)} series: no provider was called "
                             "(--refresh fetches the range again)", style="dim"))
    for s in done:
        if s.gaps:
            shown = ", ".join(f"[{fmt_ts(a, s.timeframe)}, {fmt_ts(b, s.timeframe)})" for a, b in s.gaps[:_SHOW_GAPS])
            more = f" and {len(s.gaps) - _SHOW_GAPS} more" if len(s.gaps) > _SHOW_GAPS else ""
            state.out.print(Text(f"{s.symbol} {s.timeframe}: {len(s.gaps)} gap(s) left: {shown}{more}", style="bold"))
            why = s.errors or ["the providers' answers do not cover them (nothing was returned for those bars)"]
            for line in why[:_SHOW_REASONS]:
                state.out.print(Text(f"  why: {line}"))
            if len(why) > _SHOW_REASONS:
                state.out.print(Text(f"  ... and {len(why) - _SHOW_REASONS} more provider error(s)", style="dim"))
        elif s.errors:
            state.out.print(Text(f"{s.symbol} {s.timeframe}: fetched after failing over ({s.errors[0]})", style="dim"))
    if any(s.quarantined for s in done):
        first = next(s for s in done if s.quarantined)
        state.out.print(Text("Quarantined rows failed a hard quality rule and were not stored; see them with "
                             f"'tickvault quarantine {first.symbol} --timeframe {first.timeframe}'.", style="dim"))


def _exit_for(done: Sequence[_Series]) -> None:
    """0: nothing missing; 5: gaps remain and no provider answered anything; 3: other gaps."""
    gappy = [s for s in done if s.gaps]
    if not gappy:
        return
    if all(s.served == 0 for s in done) and any(s.errors for s in gappy):
        first = next(s for s in gappy if s.errors)
        n = sum(len(s.errors) for s in gappy)
        more = f" (and {n - 1} more)" if n > 1 else ""
        typer.echo(f"error: every provider failed for {first.symbol} {first.timeframe}: {first.errors[0]}{more}",
                   err=True)
        raise typer.Exit(ExitCode.PROVIDER)
    typer.echo(f"error: gaps remain in {len(gappy)} of {len(done)} series (listed above)", err=True)
    raise typer.Exit(ExitCode.DATA)


# -- providers ----------------------------------------------------------------------------------


def _open_for_reading(state: State) -> tickvault.Vault:
    """The vault if it exists, else a throw-away in-memory one (providers are configured the same)."""
    if state.resolved_home().is_dir():
        return state.open()
    return tickvault.open(":memory:", settings=state.settings())


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


@app.command(
    "providers",
    epilog="Example: `tickvault providers`\n\n"
           "Example: `TICKVAULT_PROVIDERS=yahoo,polygon TICKVAULT_POLYGON_API_KEY=... tickvault providers --json`",
)
def providers_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    home: HomeOption = None,
) -> None:
    """List the configured providers: what they serve, credentials, and health in this process.

    Providers come from TICKVAULT_PROVIDERS (auto: keyless ones plus every provider whose
    TICKVAULT_<NAME>_API_KEY is set). Keys are never shown, only whether one is set. Calls,
    errors, last error and last success count this process only.
    """
    state = get_state(ctx, home)
    with _open_for_reading(state) as vault:
        rows = vault.providers()
    if json_out:
        typer.echo(json.dumps([{
            "name": p.name, "kinds": list(p.kinds), "asset_classes": list(p.asset_classes),
            "timeframes": list(p.timeframes), "needs_credentials": p.needs_credentials,
            "credentials_set": p.credentials_set, "calls": p.calls, "errors": p.errors, "last_error": p.last_error,
            "last_ok": _iso(p.last_ok)} for p in rows], indent=2))
        return
    if not rows:
        state.out.print(Text("No provider is configured. Set TICKVAULT_PROVIDERS (auto, or names such as "
                             "yahoo,polygon) and the TICKVAULT_<NAME>_API_KEY of key-based providers."))
        return
    table = Table(title="Providers", title_justify="left", header_style="bold")
    for name in ("name", "kinds", "asset classes", "timeframes", "credentials", "calls", "errors", "last error",
                 "last ok"):
        table.add_column(name, justify="right" if name in ("calls", "errors") else "left",
                         no_wrap=name not in ("last error", "asset classes", "timeframes"))
    for p in rows:
        if not p.needs_credentials:
            cred = Text("not needed", style="dim")
        else:
            cred = Text("needed, set") if p.credentials_set else Text("needed, MISSING", style="yellow")
        table.add_row(Text(p.name), Text(" ".join(p.kinds)), Text(" ".join(p.asset_classes)),
                      Text(" ".join(p.timeframes)), cred, fmt_count(p.calls),
                      Text(fmt_count(p.errors), style="yellow" if p.errors else ""),
                      Text(one_line(p.last_error or "—", 200)), fmt_ts(p.last_ok))
    state.out.print(table)


# -- fundamentals -------------------------------------------------------------------------------


class FundamentalsFormat(enum.StrEnum):
    """``fundamentals --format``."""

    table = "table"
    json = "json"


def _fmt_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if value.is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.10g}"


@app.command(
    "fundamentals",
    epilog="Example: `tickvault fundamentals AAPL`\n\n"
           "Example: `tickvault fundamentals MSFT --refresh --format json`",
)
def fundamentals_cmd(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Canonical symbol: AAPL, BRK.B.", show_default=False)],
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the providers even if the cached answer is "
                                          "younger than the TTL (7 days by default).")] = False,
    fmt: Annotated[FundamentalsFormat, typer.Option("--format", "-f", help="Output format.")]
    = FundamentalsFormat.table,
    home: HomeOption = None,
) -> None:
    """Company fundamentals merged across providers, with the source of every field.

    Each field comes from the first provider (in preference order) that has it; the
    source names the vendor, endpoint and period (yahoo:quoteSummary/price,
    alpha_vantage:INCOME_STATEMENT:annual:2024-09-28). Answers are kept in the vault for
    TICKVAULT_FUNDAMENTALS_TTL_DAYS.
    """
    state = get_state(ctx, home)
    sym = validate_symbol(symbol)
    with state.open(create=True) as vault, state.busy(f"fundamentals of {sym}"):
        fields = vault.fundamentals(sym, refresh=refresh)
    # Profile and ratios first, then the statement groups (income.*, balance_q.*, ...).
    names = sorted(fields, key=lambda n: ("." in n, n))
    if fmt is FundamentalsFormat.json:
        typer.echo(json.dumps({"symbol": sym, "fields": {n: {"value": fields[n][0], "source": fields[n][1]}
                                                         for n in names}}, indent=2, allow_nan=False))
        return
    if not fields:
        state.note(f"no fundamentals for {sym}")
        return
    table = Table(title=Text(f"{sym} fundamentals"), title_justify="left", header_style="bold")
    table.add_column("field", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True)
    for n in names:
        value, source = fields[n]
        table.add_row(Text(n), Text(_fmt_value(value)), Text(source, style="dim"))
    state.out.print(table)


# -- search -------------------------------------------------------------------------------------


@app.command(
    "search",
    epilog="Example: `tickvault search brk-b`\n\nExample: `tickvault search apple --json`",
)
def search_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Symbol, provider spelling (BRK-B, BTCUSDT, BTC-USD) or part of a "
                                         "name.", show_default=False)],
    limit: Annotated[int, typer.Option(help="At most this many results.", min=1, max=1000)] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    home: HomeOption = None,
) -> None:
    """Find instruments in the vault's symbol master by symbol, provider spelling or name.

    Exact matches (a provider's spelling maps to the canonical symbol: brk-b finds BRK.B)
    come first, then prefix and substring matches. Exit 3 when nothing matches.
    """
    state = get_state(ctx, home)
    with state.open() as vault:
        found = vault.search(query, limit=limit)
    if json_out:
        typer.echo(json.dumps([{
            "symbol": i.symbol, "name": i.name, "asset_class": str(i.asset_class), "exchange": i.exchange,
            "currency": i.currency, "status": str(i.status), "provider_symbols": dict(i.provider_symbols)}
            for i in found], indent=2))
    if not found:
        raise tickvault.MissingData(f"no instrument matches {one_line(query, 64)!r}")
    if json_out:
        return
    table = Table(title=Text(f"search: {one_line(query, 64)}"), title_justify="left", header_style="bold")
    for name in ("symbol", "name", "asset class", "exchange", "status", "provider spellings"):
        table.add_column(name, no_wrap=name != "name")
    for i in found:
        spellings = " ".join(f"{k}={v}" for k, v in sorted(i.provider_symbols.items())) or "—"
        table.add_row(Text(i.symbol), Text(i.name or "—"), str(i.asset_class), Text(i.exchange or "—"),
                      Text(str(i.status), style="yellow" if str(i.status) != "active" else ""), Text(spellings))
    state.out.print(table)
