"""``tickvault demo`` end to end: simulated universe -> read-through -> quality -> store -> summary."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

import tickvault
from tickvault.cli import ExitCode
from tickvault.cli._demo import DEMO_MARKER

from ._util import RunCli, RunProc, assert_one_line_error

SERIES = {("AAPL", "1m"), ("MSFT", "1m"), ("SPY", "1m"), ("AAPL", "1d"), ("MSFT", "1d"), ("SPY", "1d"),
          ("BTC/USDT", "1m")}


def _tried_commands(stdout: str) -> list[list[str]]:
    """The 'Try next' commands the summary printed, as argument lists (without 'tickvault')."""
    return [shlex.split(line)[1:] for line in stdout.splitlines() if line.startswith("  tickvault --home ")]


def test_demo_builds_a_vault_and_prints_a_summary(cli: RunCli, tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = cli("demo", "--home", where, "--end", "2024-06-28", "--seed", "1", "--no-serve")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in ("AAPL", "MSFT", "SPY", "BTC/USDT", "1m", "1d", "quarantined", "Try next", str(where),
                     "on disk"):
        assert fragment in out, fragment

    # The folder exists, holds the store, and the store holds the universe.
    assert (where / DEMO_MARKER).exists()
    assert any(where.rglob("*.parquet"))
    with tickvault.open(where) as vault:
        status = {(s.symbol, s.timeframe): s for s in vault.status()}
        assert set(status) == SERIES
        # 5 XNYS sessions of 390 minutes, minus no-trade minutes (empty coverage) and quarantined bars.
        aapl = status["AAPL", "1m"]
        assert 1800 < aapl.rows <= 5 * 390
        assert aapl.first is not None
        assert aapl.first.strftime("%Y-%m-%d %H:%M") == "2024-06-24 13:30"
        assert 240 < status["SPY", "1d"].rows <= 253  # a year of sessions
        btc = status["BTC/USDT", "1m"]
        assert 2700 < btc.rows <= 2 * 1440  # 24/7: nights and the weekend count
        assert vault.instrument("BTC/USDT").calendar == "24/7"
        # The injected bad ticks went through the quality rules into the quarantine, and show.
        held = sum(s.quarantined for s in status.values())
        assert held > 0
        assert all(s.quality_score is not None for s in status.values())
    assert re.search(rf"{held} quarantined by the quality rules", " ".join(out.split()))

    # The suggested commands work against that folder (they carry --home).
    tried = _tried_commands(out)
    assert len(tried) >= 6
    for args in tried:
        if "--output" in args:
            args = [*args[: args.index("--output")], "--output", str(tmp_path / "out.csv")]
        follow = cli(*args)
        assert follow.exit_code == 0, (args, follow.output)

    # Re-running into the same folder reuses it: only the holes (quarantined bars) are asked again.
    again = cli("demo", "--home", where, "--end", "2024-06-28", "--seed", "1", "--no-serve")
    assert again.exit_code == 0, again.output
    assert "not fetched again" in again.stdout
    with tickvault.open(where) as vault:
        assert {(s.symbol, s.timeframe): s.rows for s in vault.status()} == {k: v.rows for k, v in status.items()}


def test_demo_refuses_a_folder_it_did_not_make(cli: RunCli, tmp_path: Path) -> None:
    precious = tmp_path / "real-vault"
    precious.mkdir()
    (precious / "catalog.sqlite").write_bytes(b"not ours")
    result = cli("demo", "--home", precious, "--no-serve")
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "not empty", "was not made by 'tickvault demo'")
    assert sorted(p.name for p in precious.iterdir()) == ["catalog.sqlite"]


def test_real_entry_point_demo_uses_a_new_temp_folder(run_bin: RunProc, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    user_home = Path(os.environ["TICKVAULT_HOME"])  # set by the hermetic fixture; must stay untouched
    monkeypatch.setenv("TMPDIR", str(temp))
    proc = run_bin("demo", "--end", "2024-06-28", "--no-serve")
    assert proc.exit_code == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    [made] = list(temp.glob("tickvault-demo-*"))
    assert (made / DEMO_MARKER).exists()
    assert str(made) in proc.stdout
    assert f"tickvault --home {made} status" in proc.stdout
    for symbol in ("AAPL", "MSFT", "SPY", "BTC/USDT"):
        assert symbol in proc.stdout
    assert not user_home.exists()


@pytest.mark.parametrize("bad", ["2024-13-01", "June"])
def test_demo_bad_end_date(cli: RunCli, tmp_path: Path, bad: str) -> None:
    result = cli("demo", "--home", tmp_path / "d", "--end", bad, "--no-serve")
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "--end")
    assert not (tmp_path / "d").exists()
