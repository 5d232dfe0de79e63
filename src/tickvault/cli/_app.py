"""The ``tickvault`` typer app: the global ``--home`` option and the error contract.

Every expected error — a :class:`~tickvault.errors.TickvaultError`, a usage error, an
``OSError`` on a file the user named — ends as one line ``error: ...`` on stderr and the
exit code of its family (:class:`~tickvault.cli._errors.ExitCode`). That happens in
:meth:`_Group.main`, the one place every invocation passes through (the console script and
typer's ``CliRunner`` alike). Other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

import tickvault
from tickvault.cli._context import State
from tickvault.cli._errors import ExitCode, exit_code_for, one_line, shell_spelling

__all__ = ["HomeOption", "app", "main"]


class _Group(TyperGroup):
    """The root command group; see the module docstring for the error contract."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:  # embedding callers get the exceptions themselves
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # typer's (vendored click's) usage and parameter errors
            code = ExitCode.USAGE if exc.exit_code == ExitCode.USAGE else ExitCode.FAILURE
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            hint = f" (see '{where} --help')" if code is ExitCode.USAGE and where else ""
            # typer validates with pydantic, whose messages carry a "Value error, " prefix.
            _fail(exc.format_message().replace("Value error, ", "") + hint, code)
        except typer.Abort:
            _fail("aborted", ExitCode.FAILURE)
        except (tickvault.TickvaultError, OSError) as exc:
            _fail(shell_spelling(_describe(exc)), exit_code_for(exc))
        sys.exit(rv if isinstance(rv, int) else ExitCode.OK)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, tickvault.TickvaultError):
        target = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{target}"
    return str(exc)


def _fail(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


app = typer.Typer(
    name="tickvault",
    cls=_Group,
    help="tickvault: market data you can trust — import, validate, store and read bars.",
    epilog="Start with `tickvault demo`, then try the commands it prints. Exit codes: 0 ok, "
           "2 bad input, 3 data missing or rejected, 4 storage, 5 provider (docs/cli.md).",
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals may hold keys; bugs still show a traceback
    context_settings={"help_option_names": ["-h", "--help"]},
)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Vault folder. Default: $TICKVAULT_HOME, else ~/.tickvault.", show_default=False,
                 file_okay=False, dir_okay=True),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tickvault {tickvault.__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    home: HomeOption = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_version)] = False,
) -> None:
    """Keep the global options for the command that runs (help text: ``app``'s ``help``)."""
    ctx.obj = State(home=home)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def main() -> None:
    """Console-script entry point (``tickvault = "tickvault.cli:main"``)."""
    app()
