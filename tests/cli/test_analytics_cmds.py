"""`tickvault indicators`, `tickvault screen` and `bars` over a derived timeframe (issue 6 point 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import tickvault
from tickvault.model import ts_to_us
from tickvault.providers.sim import simulate_bars

from ._util import RunCli, assert_one_line_error


def _fill(home: Path) -> None:
    with tickvault.open(home) as vault:
        for i, sym in enumerate(["AAPL", "MSFT", "NVDA"]):
            table, _ = simulate_bars(sym, "1d", ts_to_us(pd.Timestamp("2023-01-03", tz="UTC")),
                                     ts_to_us(pd.Timestamp("2024-03-01", tz="UTC")), seed=i)
            vault.write(sym, "1d", table)


def test_bars_weekly_through_resampling(cli: RunCli, home: Path) -> None:
    _fill(home)
    result = cli("bars", "AAPL", "--timeframe", "1w", "--format", "json", "--home", home)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) >= 60
    assert all(r["provider"] == "derived:1d" for r in rows)


def test_indicators_table_and_csv(cli: RunCli, home: Path) -> None:
    _fill(home)
    table = cli("indicators", "AAPL", "-t", "1d", "--ind", "rsi_14,macd_12_26_9", "--start", "2024-01-02",
                "--home", home)
    assert table.exit_code == 0, table.stderr
    assert "rsi_14" in table.stdout
    assert "macd_12_26_9" in table.stdout
    csv = cli("indicators", "AAPL", "-t", "1d", "--ind", "rsi_14", "--start", "2024-01-02", "--format", "csv",
              "--home", home)
    lines = csv.stdout.strip().splitlines()
    assert lines[0].split(",") == ["ts", "rsi_14"]
    assert len(lines) > 30


def test_indicators_errors_are_one_line(cli: RunCli, home: Path) -> None:
    _fill(home)
    bad = cli("indicators", "AAPL", "-t", "1d", "--ind", "rsi_abc", "--home", home)
    assert bad.exit_code == 2
    assert_one_line_error(bad.stderr, "rsi")
    none = cli("indicators", "ZZZ", "-t", "1d", "--ind", "rsi_14", "--home", home)
    assert none.exit_code == 3


def test_screen_with_list_file_and_errors(cli: RunCli, home: Path, tmp_path: Path) -> None:
    _fill(home)
    everything = cli("screen", "close > 0", "--format", "json", "--home", home)
    assert everything.exit_code == 0, everything.stderr
    assert sorted(r["symbol"] for r in json.loads(everything.stdout)) == ["AAPL", "MSFT", "NVDA"]
    universe = tmp_path / "universe.txt"
    universe.write_text("AAPL\nNVDA\n")
    some = cli("screen", "close > 0", "--universe", universe, "--format", "json", "--home", home)
    assert sorted(r["symbol"] for r in json.loads(some.stdout)) == ["AAPL", "NVDA"]
    listed = cli("screen", "rsi_14 >= 0", "--universe", "MSFT", "--home", home)
    assert listed.exit_code == 0
    assert "MSFT" in listed.stdout
    unknown = cli("screen", "foo < 1", "--home", home)
    assert unknown.exit_code == 2
    assert_one_line_error(unknown.stderr, "unknown field 'foo'")
    hostile = cli("screen", "__import__('os').system('echo pwned')", "--home", home)
    assert hostile.exit_code == 2
    assert "pwned" not in hostile.stdout
