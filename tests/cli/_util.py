"""Types and assertions shared by the CLI tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from typer.testing import Result

RunCli = Callable[..., Result]


@dataclass(frozen=True)
class Proc:
    """A finished subprocess of the console script."""

    exit_code: int
    stdout: str
    stderr: str


RunProc = Callable[..., Proc]


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    """Stderr is exactly one ``error: ...`` line containing every fragment; no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
