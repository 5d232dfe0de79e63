"""``import`` of real third-party files, then ``bars``/``status``/``validate``/``quarantine``/``verify`` on them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import tickvault
from tickvault.cli import ExitCode

from ._util import RunCli, RunProc, assert_one_line_error

DEFAULT_CSV = ("Stock.Indicators", "default.csv")  # SPY-like daily, 502 rows 2017-01-03..2018-12-31, clean
BAD_CSV = ("Stock.Indicators", "bad.csv")  # the library's deliberately damaged copy


@pytest.fixture
def spy(cli: RunCli, home: Path, shared_data: Path) -> Path:
    """A vault holding default.csv imported as SPY 1d."""
    result = cli("import", shared_data / "ohlcv" / Path(*DEFAULT_CSV), "--symbol", "SPY", "--timeframe", "1d",
                 "--home", home)
    assert result.exit_code == 0, result.output
    return home


def test_import_reports_what_was_stored(cli: RunCli, home: Path, shared_data: Path) -> None:
    result = cli("import", shared_data / "ohlcv" / Path(*DEFAULT_CSV), "--symbol", "spy", "--timeframe", "1d",
                 "--home", home)
    assert result.exit_code == 0, result.output
    assert "default.csv" in result.stdout
    assert "SPY 1d" in result.stdout  # canonical upper-case symbol
    assert "502" in result.stdout
    assert result.stderr == ""
    with tickvault.open(home) as vault:
        df = vault.bars("SPY", "1d")
    assert len(df) == 502
    assert df.index[0] == pd.Timestamp("2017-01-03", tz="UTC")
    assert df["close"].iloc[0] == pytest.approx(212.8)


def test_import_several_files_symbol_from_file_name_and_actions(cli: RunCli, home: Path, shared_data: Path) -> None:
    folder = shared_data / "ohlcv" / "zipline-reloaded"
    result = cli("import", folder / "AAPL.csv.gz", folder / "MSFT.csv.gz", "--timeframe", "1d", "--home", home)
    assert result.exit_code == 0, result.output
    assert "AAPL 1d" in result.stdout
    assert "MSFT 1d" in result.stdout
    with tickvault.open(home) as vault:
        assert {(s.symbol, s.timeframe, s.rows) for s in vault.status()} == {("AAPL", "1d", 754), ("MSFT", "1d", 754)}
        assert len(vault.action_list("MSFT")) == 12  # the dividend column became corporate actions


def test_import_of_damaged_data_quarantines_and_says_so(cli: RunCli, home: Path, shared_data: Path) -> None:
    result = cli("import", shared_data / "ohlcv" / Path(*BAD_CSV), "-s", "BAD", "-t", "1d", "--home", home)
    assert result.exit_code == 0, result.output
    assert "tickvault quarantine BAD --timeframe 1d" in result.stdout
    held = cli("quarantine", "BAD", "-t", "1d", "--format", "csv", "--home", home)
    assert held.exit_code == 0
    frame = pd.read_csv(io.StringIO(held.stdout))
    assert len(frame) > 0
    assert {"ts", "open", "rule", "reason", "quarantined_at"} <= set(frame.columns)
    assert set(frame["rule"]) & {"duplicate_ts", "ohlc_consistency", "required_columns", "non_finite_price"}


def test_malformed_file_one_line_naming_file_and_line_nothing_written(cli: RunCli, home: Path,
                                                                      tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("date,open,high,low,close,volume\n"
                   "2024-01-02,10,11,9,10.5,1000\n"
                   "2024-01-03,10,11,9,abc,1000\n"
                   "2024-01-04,10,11,9,10.5,1000\n")
    result = cli("import", bad, "--symbol", "AAA", "--timeframe", "1d", "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "broken.csv:3", "abc")
    assert result.stdout == ""
    with tickvault.open(home) as vault:
        assert vault.status() == []
        assert vault.bars("AAA", "1d").empty


def test_failure_stops_the_run_and_shows_what_was_imported(cli: RunCli, home: Path, shared_data: Path,
                                                           tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("date,open,high,low,close,volume\n2024-01-02,10,11,9,oops,1000\n")
    good = shared_data / "ohlcv" / Path(*DEFAULT_CSV)
    result = cli("import", good, bad, good, "--symbol", "SPY", "--timeframe", "1d", "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "broken.csv:2")
    assert result.stdout.count("default.csv") == 1  # the first file was imported, the third never ran
    with tickvault.open(home) as vault:
        assert [s.rows for s in vault.status("SPY")] == [502]


def test_bars_formats(cli: RunCli, spy: Path, tmp_path: Path) -> None:
    table = cli("bars", "SPY", "-t", "1d", "--max-rows", "10", "--home", spy)
    assert table.exit_code == 0, table.output
    assert "2017-01-03" in table.stdout
    assert "2018-12-31" in table.stdout
    assert "showing 10 of 502 rows" in table.stdout
    assert "vwap" not in table.stdout  # all-empty columns are left out of the table view

    csv = cli("bars", "SPY", "-t", "1d", "--format", "csv", "--home", spy)
    assert csv.exit_code == 0
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert len(frame) == 502
    assert list(frame.columns[:6]) == ["ts", "open", "high", "low", "close", "volume"]
    assert frame["ts"].iloc[0] == "2017-01-03T00:00:00Z"
    assert csv.stderr == ""  # data only on stdout

    js = cli("bars", "SPY", "-t", "1d", "--format", "json", "--start", "2018-12-24", "--end", "2018-12-31",
             "--fetch", "never", "--home", spy)
    assert js.exit_code == 0
    records = json.loads(js.stdout)
    assert [r["ts"] for r in records] == ["2018-12-24T00:00:00Z", "2018-12-26T00:00:00Z", "2018-12-27T00:00:00Z",
                                          "2018-12-28T00:00:00Z", "2018-12-31T00:00:00Z"]
    assert records[-1]["close"] == pytest.approx(245.28)
    assert records[-1]["vwap"] is None

    out = tmp_path / "spy.parquet"
    pq_result = cli("bars", "SPY", "-t", "1d", "--format", "parquet", "--output", out, "--home", spy)
    assert pq_result.exit_code == 0
    assert "wrote 502 bars" in pq_result.stderr
    stored = pq.read_table(out)
    assert stored.num_rows == 502
    assert str(stored.schema.field("ts").type) == "timestamp[us, tz=UTC]"

    out_csv = tmp_path / "spy.csv"
    assert cli("bars", "SPY", "-t", "1d", "-f", "csv", "-o", out_csv, "--home", spy).exit_code == 0
    assert out_csv.read_text() == csv.stdout


def test_bars_missing_range_is_a_data_error_unless_fetch_never(cli: RunCli, spy: Path) -> None:
    missing = cli("bars", "SPY", "-t", "1d", "--start", "2019-01-01", "--end", "2019-01-31", "--home", spy)
    assert missing.exit_code == ExitCode.DATA
    assert_one_line_error(missing.stderr, "SPY 1d", "missing", "2019-01-02", "--fetch never")
    empty = cli("bars", "SPY", "-t", "1d", "--start", "2019-01-01", "--end", "2019-01-31", "--fetch", "never",
                "--format", "csv", "--home", spy)
    assert empty.exit_code == 0
    assert empty.stdout.strip() == "ts,open,high,low,close,volume,vwap,trade_count,provider"
    assert "no SPY 1d bars in that range" in empty.stderr


def test_bars_of_a_series_never_stored_is_a_data_error(cli: RunCli, spy: Path) -> None:
    result = cli("bars", "QQQ", "-t", "1d", "--home", spy)
    assert result.exit_code == ExitCode.DATA
    assert_one_line_error(result.stderr, "no QQQ 1d bars stored")


def test_status_table_json_and_one_symbol(cli: RunCli, spy: Path) -> None:
    table = cli("status", "--home", spy)
    assert table.exit_code == 0, table.output
    for fragment in ("SPY", "1d", "2017-01-03", "2018-12-31", "502", "1.000"):
        assert fragment in table.stdout
    js = cli("status", "--json", "--home", spy)
    data = json.loads(js.stdout)
    assert data["home"] == str(spy)
    assert data["size_bytes"] > 0
    [series] = data["series"]
    assert series["symbol"] == "SPY"
    assert series["rows"] == 502
    assert series["holes"] == 0
    assert series["first"] == "2017-01-03T00:00:00Z"
    assert series["last"] == "2018-12-31T00:00:00Z"
    assert series["quarantined"] == 0
    assert series["quality_score"] == 1.0
    assert cli("status", "SPY", "--home", spy).exit_code == 0
    unknown = cli("status", "QQQ", "--home", spy)
    assert unknown.exit_code == ExitCode.DATA
    assert_one_line_error(unknown.stderr, "nothing stored for QQQ")


def test_status_lists_holes_of_one_symbol(cli: RunCli, home: Path) -> None:
    days = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-05", "2024-01-08"], tz="UTC", name="ts")
    frame = pd.DataFrame({"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0}, index=days)
    with tickvault.open(home) as vault:
        vault.write("XYZ", "1d", frame)
    result = cli("status", "XYZ", "--home", home)
    assert result.exit_code == 0, result.output
    assert "1 hole(s)" in result.stdout
    assert "[2024-01-04 00:00Z, 2024-01-05 00:00Z)" in result.stdout


def test_empty_vault_status(cli: RunCli, home: Path) -> None:
    home.mkdir()
    result = cli("status", "--home", home)
    assert result.exit_code == 0
    assert "is empty" in result.stdout


def test_validate_quarantine_verify_on_imported_file(cli: RunCli, spy: Path) -> None:
    validate = cli("validate", "SPY", "-t", "1d", "--home", spy)
    assert validate.exit_code == 0, validate.output
    assert "SPY 1d: 502 rows" in validate.stdout
    assert "flagged nothing" in validate.stdout
    assert cli("validate", "SPY", "-t", "1d", "--fail-under", "0.99", "--home", spy).exit_code == 0

    held = cli("quarantine", "SPY", "-t", "1d", "--home", spy)
    assert held.exit_code == 0
    assert "no quarantined rows for SPY 1d" in held.stderr
    assert cli("quarantine", "SPY", "-t", "1d", "-f", "json", "--home", spy).stdout.strip() == "[]"

    verify = cli("verify", "--home", spy)
    assert verify.exit_code == 0
    assert "all intact" in verify.stdout


def test_validate_of_nothing_stored_is_a_data_error(cli: RunCli, spy: Path) -> None:
    result = cli("validate", "QQQ", "-t", "1d", "--home", spy)
    assert result.exit_code == ExitCode.DATA
    assert_one_line_error(result.stderr, "nothing to validate")


def test_real_entry_point_import_then_read(run_bin: RunProc, home: Path, shared_data: Path) -> None:
    src = shared_data / "ohlcv" / Path(*DEFAULT_CSV)
    imported = run_bin("--home", home, "import", src, "--symbol", "SPY", "--timeframe", "1d")
    assert imported.exit_code == 0, imported.stderr
    assert "502" in imported.stdout
    csv = run_bin("--home", home, "bars", "SPY", "--timeframe", "1d", "--format", "csv")
    assert csv.exit_code == 0, csv.stderr
    assert len(csv.stdout.splitlines()) == 503
    status = run_bin("status", "--json", "--home", home)  # --home after the command works too
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["series"][0]["rows"] == 502


def test_real_entry_point_malformed_file(run_bin: RunProc, home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,1,2,x,1,1\n")
    proc = run_bin("import", bad, "-s", "AAA", "-t", "1d", "--home", home)
    assert proc.exit_code == ExitCode.USAGE
    assert_one_line_error(proc.stderr, "broken.csv:3")
