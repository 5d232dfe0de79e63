"""Fixtures for the command-line tests: an in-process runner and the real console script.

Every test drives ``tickvault`` the way a user does — through typer's ``CliRunner`` on the
real ``app`` (the same ``_Group.main`` the console script runs) or through a subprocess of
the installed ``tickvault`` script — and checks exit codes, stdout/stderr and what is on disk
(by opening the vault with the public facade).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tickvault.cli import app

from ._util import Proc, RunCli, RunProc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A vault folder (not created: ``import`` and ``demo`` create it)."""
    return tmp_path / "vault"


@pytest.fixture
def cli() -> RunCli:
    """Invoke the app in-process: ``cli("status", "--home", h)`` -> Result (stdout/stderr apart)."""
    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def tickvault_bin() -> Path:
    """The installed console script next to this interpreter (``.venv/bin/tickvault``)."""
    path = Path(sys.executable).parent / "tickvault"
    if not path.exists():
        pytest.fail(f"console script not found at {path}; install the package (pip install -e .)")
    return path


@pytest.fixture
def run_bin(tickvault_bin: Path, tmp_path: Path) -> RunProc:
    """Run the real console script in a subprocess (the test's hermetic environment, no colour)."""

    def run(*args: str | Path, timeout: float = 300) -> Proc:
        env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="160")
        done = subprocess.run([str(tickvault_bin), *map(str, args)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=timeout, check=False)
        return Proc(done.returncode, done.stdout, done.stderr)

    return run
