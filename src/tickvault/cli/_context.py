"""What every command shares: the vault folder, the two consoles and progress displays.

Config is read at the edge: ``--home`` wins, then :class:`tickvault.Settings` (which reads
``TICKVAULT_HOME`` and ``tickvault.toml``). Data goes to stdout, everything for people
(progress, notes, errors) to stderr, so ``tickvault bars ... --format csv > f.csv`` stays clean.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydantic
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import tickvault

__all__ = ["State", "fmt_count", "fmt_score", "fmt_size", "fmt_ts", "get_state"]

#: Width used when stdout is not a terminal (pipes, files, tests): wide enough that
#: tables do not wrap timestamps, narrow enough to read.
_PIPE_WIDTH = 160


def _console(stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal or "COLUMNS" in os.environ:
        return probe
    return Console(stderr=stderr, width=_PIPE_WIDTH)


@dataclass
class State:
    """Per-invocation state, kept in the click context's ``obj``.

    Parameters
    ----------
    home
        ``--home`` as given (``None``: from settings).
    """

    home: Path | None = None
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _settings: tickvault.Settings | None = field(default=None, repr=False)

    def with_home(self, home: Path | None) -> State:
        """Apply a command-level ``--home`` (it overrides the global one)."""
        if home is not None:
            self.home = home
        return self

    def settings(self) -> tickvault.Settings:
        """Settings from the environment and ``tickvault.toml``, read once per invocation.

        Raises
        ------
        ConfigError
            A ``TICKVAULT_*`` variable or ``tickvault.toml`` holds a bad value (one line,
            exit 2, instead of pydantic's multi-line report).
        """
        if self._settings is None:
            try:
                self._settings = tickvault.Settings()
            except pydantic.ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise tickvault.errors.ConfigError(
                    f"invalid configuration (TICKVAULT_* environment or tickvault.toml): {problems}") from None
        return self._settings

    def resolved_home(self) -> Path:
        """The vault folder this invocation uses."""
        if self.home is not None:
            return self.home.expanduser()
        return self.settings().home.expanduser()

    def open(self, *, create: bool = False) -> tickvault.Vault:
        """Open the vault.

        Parameters
        ----------
        create
            Whether a missing folder may be created (writers); readers refuse, so a typo
            in ``--home`` is reported instead of silently creating an empty vault.

        Raises
        ------
        InvalidInput
            ``create`` is false and there is no vault folder.
        """
        home = self.resolved_home()
        if not create and not home.is_dir():
            raise tickvault.InvalidInput(
                f"no vault at {home}; run 'tickvault demo' or 'tickvault import' first, or pass --home")
        return tickvault.open(home, settings=self.settings())

    def note(self, message: str) -> None:
        """A message for people (stderr), never mixed into the data on stdout."""
        self.err.print(message, markup=False, highlight=False)  # paths may contain "[...]"

    def progress(self, *, total: bool) -> Progress:
        """A progress display on stderr, shown only on a terminal (transient).

        Parameters
        ----------
        total
            Whether tasks have a known total (bar) or only a count (spinner).
        """
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        else:
            columns += [TextColumn("{task.completed:,.0f} rows")]
        columns.append(TimeElapsedColumn())
        return Progress(*columns, console=self.err, transient=True, disable=not self.err.is_terminal)

    @contextlib.contextmanager
    def busy(self, message: str, *, writes_stdout: bool = False) -> Iterator[None]:
        """A spinner on stderr while something that may take a while runs (terminal only).

        Parameters
        ----------
        message
            What is going on.
        writes_stdout
            The work prints to stdout: no spinner if stdout is the same terminal, where
            the two would garble each other.
        """
        if not self.err.is_terminal or (writes_stdout and self.out.is_terminal):
            yield
            return
        with self.err.status(message):
            yield


def get_state(ctx: typer.Context, home: Path | None = None) -> State:
    """The invocation's :class:`State` (created on first use), with a command-level ``--home``."""
    return ctx.ensure_object(State).with_home(home)


def fmt_ts(ts: pd.Timestamp | None, timeframe: str | None = None) -> str:
    """A compact UTC timestamp: a date for daily and longer bars, minutes otherwise."""
    if ts is None or pd.isna(ts):
        return "—"
    if timeframe is not None and not tickvault.Timeframe.parse(timeframe).is_intraday:
        return ts.strftime("%Y-%m-%d")
    if ts.second or ts.microsecond:
        return ts.strftime("%Y-%m-%d %H:%M:%SZ")
    return ts.strftime("%Y-%m-%d %H:%MZ")


def fmt_score(score: float | None) -> str:
    """A quality score, rounded down so ``1.000`` only ever means "nothing flagged"."""
    if score is None:
        return "—"
    return f"{math.floor(score * 1000) / 1000:.3f}"


def fmt_count(n: int) -> str:
    """``12,345``."""
    return f"{n:,}"


def fmt_size(n: int) -> str:
    """Bytes for people: ``1.2 MB``."""
    units = ("B", "kB", "MB", "GB", "TB")
    size = float(n)
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{n} B" if i == 0 else f"{size:.1f} {units[i]}"
