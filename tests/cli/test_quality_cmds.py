"""``validate``, ``quarantine`` and ``verify`` on data written through the public facade."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
import pytest

import tickvault
from tickvault.cli import ExitCode

from ._util import RunCli, assert_one_line_error

DAYS = pd.DatetimeIndex(pd.bdate_range("2024-03-04", "2024-03-29"), tz="UTC", name="ts")  # no US holiday


def _frame(close: float = 100.0) -> pd.DataFrame:
    n = len(DAYS)
    return pd.DataFrame({"open": [close] * n, "high": [close + 1] * n, "low": [close - 1] * n,
                         "close": [close] * n, "volume": [1000.0] * n}, index=DAYS)


@pytest.fixture
def held(home: Path) -> Path:
    """A vault where one written bar broke OHLC consistency (high below low) and was quarantined."""
    frame = _frame()
    frame.loc[DAYS[5], ["high", "low"]] = [95.0, 105.0]
    with tickvault.open(home) as vault:
        receipt = vault.write("XYZ", "1d", frame)
    assert receipt.rows_quarantined == 1
    return home


def test_quarantine_lists_rule_and_reason(cli: RunCli, held: Path, tmp_path: Path) -> None:
    table = cli("quarantine", "XYZ", "--timeframe", "1d", "--home", held)
    assert table.exit_code == 0, table.output
    assert "ohlc_consistency" in table.stdout
    assert "2024-03-11" in table.stdout

    js = cli("quarantine", "XYZ", "-t", "1d", "--format", "json", "--home", held)
    [row] = json.loads(js.stdout)
    assert row["ts"] == "2024-03-11T00:00:00Z"
    assert row["rule"] == "ohlc_consistency"
    assert row["high"] == 95.0
    assert row["low"] == 105.0
    assert row["reason"]

    out = tmp_path / "held.csv"
    written = cli("quarantine", "XYZ", "-t", "1d", "-f", "csv", "-o", out, "--home", held)
    assert written.exit_code == 0
    assert "wrote 1 quarantined rows" in written.stderr
    assert pd.read_csv(out)["rule"].tolist() == ["ohlc_consistency"]


def test_quarantined_bar_is_a_hole_in_status(cli: RunCli, held: Path) -> None:
    result = cli("status", "XYZ", "--json", "--home", held)
    [series] = json.loads(result.stdout)["series"]
    assert series["rows"] == len(DAYS) - 1
    assert series["quarantined"] == 1
    assert series["holes"] == 1
    assert series["missing"] == [["2024-03-11T00:00:00Z", "2024-03-12T00:00:00Z"]]


def test_validate_reports_soft_flags_and_fail_under(cli: RunCli, held: Path) -> None:
    result = cli("validate", "XYZ", "-t", "1d", "--home", held)
    assert result.exit_code == 0, result.output
    assert "gap" in result.stdout  # the quarantined session is missing from what is stored
    assert "soft" in result.stdout
    with tickvault.open(held) as vault:
        report = vault.quality("XYZ", "1d")
    assert report is not None
    assert report.score < 1.0

    strict = cli("validate", "XYZ", "-t", "1d", "--fail-under", "1.0", "--home", held)
    assert strict.exit_code == ExitCode.DATA
    assert "gap" in strict.stdout  # the report is still printed
    assert_one_line_error(strict.stderr, "quality score", "below 1.0")


def test_validate_show_limits_flagged_rows(cli: RunCli, held: Path) -> None:
    result = cli("validate", "XYZ", "-t", "1d", "--show", "0", "--home", held)
    assert result.exit_code == 0
    assert "Flagged rows" not in result.stdout


def test_verify_finds_a_damaged_file_and_exits_4(cli: RunCli, home: Path) -> None:
    with tickvault.open(home) as vault:
        vault.write("XYZ", "1d", _frame())
    assert cli("verify", "--home", home).exit_code == 0
    [stored] = sorted(home.rglob("*.parquet"))
    data = bytearray(stored.read_bytes())
    data[100:140] = bytes(b ^ 0xFF for b in data[100:140])
    stored.write_bytes(bytes(data))

    result = cli("verify", "--home", home)
    assert result.exit_code == ExitCode.STORAGE
    assert "damaged" in result.stdout
    assert stored.name in result.stdout
    assert_one_line_error(result.stderr, "1 damaged file")
    # Set aside: the next verify is clean and the bars are missing, not served damaged.
    assert cli("verify", "--home", home).exit_code == 0
    missing = cli("bars", "XYZ", "-t", "1d", "--start", "2024-03-04", "--end", "2024-03-29", "--home", home)
    assert missing.exit_code == ExitCode.DATA


def test_bars_adjust_applies_stored_splits(cli: RunCli, home: Path) -> None:
    frame = _frame(100.0)
    frame.loc[DAYS[10]:, ["open", "high", "low", "close"]] /= 2  # a 2:1 split on 2024-03-18
    with tickvault.open(home) as vault:
        vault.add_actions("XYZ", [tickvault.CorporateAction(ex_date=dt.date(2024, 3, 18), kind="split", value=2.0,
                                                           symbol="XYZ")])
        vault.write("XYZ", "1d", frame)
    raw = pd.read_csv(io.StringIO(cli("bars", "XYZ", "-t", "1d", "--adjust", "none", "-f", "csv",
                                      "--home", home).stdout))
    adjusted = pd.read_csv(io.StringIO(cli("bars", "XYZ", "-t", "1d", "--adjust", "splits", "-f", "csv",
                                           "--home", home).stdout))
    assert raw["close"].iloc[0] == 100.0
    assert adjusted["close"].iloc[0] == pytest.approx(50.0)
    assert adjusted["close"].iloc[-1] == raw["close"].iloc[-1] == 50.0
