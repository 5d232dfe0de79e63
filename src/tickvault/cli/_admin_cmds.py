"""``tickvault copy`` and ``tickvault migrate``: moving data between backends, upgrading schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

import tickvault
from tickvault.cli._app import app
from tickvault.cli._context import State, fmt_count, get_state

__all__ = ["copy_cmd", "migrate_cmd"]


def _is_url(value: str) -> bool:
    return "://" in value


def _open(state: State, where: str, *, create: bool) -> tickvault.Vault:
    """A vault on a folder or a ``postgresql://`` URL (no providers: copying never fetches)."""
    settings = state.settings()
    if _is_url(where):
        return tickvault.open(settings=settings.replace(database_url=where), providers=[])
    path = Path(where).expanduser()
    if not create and not path.is_dir():
        raise tickvault.InvalidInput(f"no vault at {path}")
    return tickvault.open(path, settings=settings.replace(home=path, database_url=None), providers=[])


def _shown(where: str) -> str:
    """A location safe to print: a URL loses its user information (it may hold a password)."""
    if not _is_url(where):
        return where
    scheme, rest = where.split("://", 1)
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


@app.command(
    "copy",
    epilog="Example: `tickvault copy --from ~/.tickvault --to postgresql://localhost/market`\n\n"
           "Example: `tickvault copy --from postgresql://db.internal/market --to ./snapshot`",
)
def copy_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--from", help="Vault folder or postgresql:// URL to read.")],
    destination: Annotated[str, typer.Option("--to", help="Vault folder or postgresql:// URL to write "
                                             "(created if missing).")],
) -> None:
    """Copy every series, its coverage, reports, quarantine, instruments and corporate actions.

    Idempotent: running it again writes nothing new, so an interrupted copy is finished by
    running it again. Data is copied as stored (it was validated on the way in).
    """
    state = get_state(ctx, None)
    if source == destination:
        raise tickvault.InvalidInput("--from and --to are the same place")
    with _open(state, source, create=False) as src, _open(state, destination, create=True) as dst:
        total = sum(s.rows for s in src.status())
        with state.progress(total=True) as progress:
            task = progress.add_task(f"copying {fmt_count(total)} bars", total=total or None)

            def advance(symbol: str, timeframe: str, rows: int) -> None:
                progress.update(task, advance=rows, description=f"{symbol} {timeframe}")

            report = src.copy_to(dst, progress=advance)
    state.out.print(Text(
        f"copied {report.series} series from {_shown(source)} to {_shown(destination)}: "
        f"{fmt_count(report.rows_read)} bars read, {fmt_count(report.rows_written)} written, "
        f"{fmt_count(report.rows_unchanged)} already there; {report.instruments} instruments, "
        f"{report.actions} corporate actions, {report.quarantined} quarantined rows"))


@app.command(
    "migrate",
    epilog="Example: `tickvault migrate --database-url postgresql://localhost/market`\n\n"
           "Example: `TICKVAULT_DATABASE_URL=postgresql://db/market tickvault migrate`",
)
def migrate_cmd(
    ctx: typer.Context,
    database_url: Annotated[str | None, typer.Option(help="postgresql:// URL (default: TICKVAULT_DATABASE_URL).",
                                                     show_default=False)] = None,
) -> None:
    """Create or upgrade the PostgreSQL schema in place (safe to run again)."""
    state = get_state(ctx, None)
    settings = state.settings()
    url = database_url or (settings.database_url.get_secret_value() if settings.database_url else None)
    if url is None:
        raise tickvault.errors.ConfigError("no database: pass --database-url or set TICKVAULT_DATABASE_URL")
    with state.busy("migrating"):
        before, after = tickvault.migrate(url)
    where = _shown(url)
    if before == after:
        state.out.print(Text(f"{where}: schema is at version {after}; nothing to do"))
    else:
        state.out.print(Text(f"{where}: schema upgraded from version {before} to {after}"))
