"""Exit codes, and the one place that turns an expected error into one line on stderr.

Scripts branch on the exit code, people read the line; neither wants a traceback for a
typo or a missing file. Only errors tickvault raises on purpose (and the OS errors of the
files the user pointed at) are turned into a line; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import enum
import re

from tickvault import errors

__all__ = ["ExitCode", "exit_code_for", "one_line", "shell_spelling"]


class ExitCode(enum.IntEnum):
    """Exit codes of the ``tickvault`` command (documented in docs/cli.md)."""

    OK = 0
    #: Any other error tickvault raised on purpose; also "aborted" (Ctrl-C is 130).
    FAILURE = 1
    #: The input is wrong: options, symbols, timeframes, ranges, malformed files, config.
    USAGE = 2
    #: The data is missing or was rejected (``validate --fail-under`` too).
    DATA = 3
    #: The store could not do it: locked, damaged files (``verify`` too), disk errors.
    STORAGE = 4
    #: A data provider failed.
    PROVIDER = 5


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an expected error.

    Parameters
    ----------
    exc
        A :class:`~tickvault.errors.TickvaultError` or an ``OSError``.

    Returns
    -------
    ExitCode
        The code documented for the error's family.
    """
    if isinstance(exc, errors.InvalidInput | errors.ConfigError):
        return ExitCode.USAGE
    if isinstance(exc, errors.DataError):
        return ExitCode.DATA
    if isinstance(exc, errors.StorageError | errors.CacheError | OSError):
        return ExitCode.STORAGE
    if isinstance(exc, errors.ProviderError):
        return ExitCode.PROVIDER
    return ExitCode.FAILURE


def one_line(message: str, limit: int = 1000) -> str:
    """Collapse ``message`` to one line (and at most ``limit`` characters).

    Messages quote user input and file contents, which may hold newlines or be huge; the
    contract is one line on stderr.
    """
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Library messages name Python keyword arguments ("pass symbol=", "fetch='never'"); at the
# shell the same advice is an option. Only our own option names are rewritten.
_OPTIONS = "symbol|timeframe|tz|layout|fetch|adjust"
_QUOTED = re.compile(rf"\b({_OPTIONS})='([^']*)'")
_BARE = re.compile(rf"\bpass ({_OPTIONS})=(?=$|[\s;,.)])")


def shell_spelling(message: str) -> str:
    """Rewrite ``fetch='never'`` as ``--fetch never`` and ``pass symbol=`` as ``pass --symbol``."""
    return _BARE.sub(r"pass --\1", _QUOTED.sub(r"--\1 \2", message))
