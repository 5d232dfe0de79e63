"""Layouts, containers and time formats beyond the shared samples (generated in tmp dirs)."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import lzma
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import zstandard

from tickvault.model import ActionKind
from tickvault.providers.files import LAYOUTS, detect_layout, read_file
from tickvault.providers.files._import import infer_symbol

Write = Callable[[str, bytes | str], Path]


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _ts(path: Path, **kw: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(t) for t in read_file(path, **kw).read_all().column("ts").to_pylist()]


def test_public_names_are_pinned() -> None:
    import tickvault.providers.files as files

    assert sorted(files.__all__) == ["FileImport", "FilesProvider", "LAYOUTS", "SkippedRows", "detect_layout",
                                     "read_file"]
    assert set(LAYOUTS) == {"yfinance", "yahoo", "backtrader", "zipline", "freqtrade", "binance", "nautilus",
                            "alpha_vantage", "pandas_index", "pandas_range_index", "ohlcv", "ohlcv_noheader"}


BINANCE_ROW = "{t},0.1,0.2,0.05,0.15,100.0,{c},15.0,7,50.0,7.5,0\n"


@pytest.mark.parametrize(("unit", "step"), [("ms", 60_000), ("us", 60_000_000)])
def test_binance_ms_and_newer_us_files(write: Write, unit: str, step: int) -> None:
    start = 1_704_067_200 * (1000 if unit == "ms" else 1_000_000)  # 2024-01-01T00:00Z
    rows = "".join(BINANCE_ROW.format(t=start + i * step, c=start + (i + 1) * step - 1) for i in range(3))
    path = write(f"BTCUSDT-1m-2024-01-01-{unit}.csv", rows)
    imp = read_file(path)
    table = imp.read_all()
    assert (imp.layout, imp.timeframe) == ("binance", "1m")
    assert table.column("ts").to_pylist() == [_utc("2024-01-01 00:00"), _utc("2024-01-01 00:01"),
                                              _utc("2024-01-01 00:02")]
    assert table.column("vwap")[0].as_py() == 0.15
    assert table.column("trade_count").to_pylist() == [7, 7, 7]


def test_binance_header_variant_and_monthly_bar_from_close_time(write: Write) -> None:
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
              "taker_buy_quote_volume,ignore\n")
    start = int(_utc("2024-01-01").value // 1_000_000)
    end = int(_utc("2024-02-01").value // 1_000_000) - 1
    path = write("BTCUSDT-1mo-2024-01.csv", header + BINANCE_ROW.format(t=start, c=end))
    imp = read_file(path)
    assert (imp.layout, imp.timeframe) == ("binance", "1mo")  # one row: the bar length comes from close_time
    assert imp.read_all().column("ts").to_pylist() == [_utc("2024-01-01")]


@pytest.mark.parametrize("pack", ["plain", "gzip", "bz2", "xz", "zstd", "zip"])
def test_compressed_containers(write: Write, pack: str) -> None:
    raw = ("date,open,high,low,close,volume\n" +
           "".join(f"2024-01-{d:02d},1,2,0.5,1.5,10\n" for d in range(1, 11))).encode()
    if pack == "gzip":
        raw = gzip.compress(raw)
    elif pack == "bz2":
        raw = bz2.compress(raw)
    elif pack == "xz":
        raw = lzma.compress(raw)
    elif pack == "zstd":
        raw = zstandard.ZstdCompressor().compress(raw)
    elif pack == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("AAPL.csv", raw)
        raw = buf.getvalue()
    path = write("AAPL.data", raw)  # the name says nothing: the bytes decide
    imp = read_file(path)
    assert (imp.layout, imp.timeframe, imp.read_all().num_rows) == ("ohlcv", "1d", 10)


@pytest.mark.parametrize(("lines", "expected"), [
    # ISO with offsets (DST change inside), naive with seconds, 'T' separator, 'Z'
    (["2024-10-27 00:30:00+01:00", "2024-10-27 01:30:00+01:00", "2024-10-27 01:30:00+00:00"],
     ["2024-10-26 23:30", "2024-10-27 00:30", "2024-10-27 01:30"]),
    (["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"], ["2024-01-01 10:00", "2024-01-01 11:00"]),
    (["2024-01-01 10:00:00.500", "2024-01-01 10:00:01.500"], ["2024-01-01 10:00:00.5", "2024-01-01 10:00:01.5"]),
    # epochs in s, ms, µs, ns
    (["1704103200", "1704106800"], ["2024-01-01 10:00", "2024-01-01 11:00"]),
    (["1704103200000", "1704106800000"], ["2024-01-01 10:00", "2024-01-01 11:00"]),
    (["1704103200000000", "1704106800000000"], ["2024-01-01 10:00", "2024-01-01 11:00"]),
    (["1704103200000000000", "1704106800000000000"], ["2024-01-01 10:00", "2024-01-01 11:00"]),
    (["1704103200.5", "1704106800.5"], ["2024-01-01 10:00:00.5", "2024-01-01 11:00:00.5"]),
    # other date spellings (plain dates are session dates at 00:00 UTC)
    (["12/31/2023", "1/2/2024"], ["2023-12-31", "2024-01-02"]),
    (["31/12/2023", "02/01/2024"], ["2023-12-31", "2024-01-02"]),  # day first: 31 > 12
    (["12/31/23", "01/02/24"], ["2023-12-31", "2024-01-02"]),
    (["2023.12.31", "2024.01.02"], ["2023-12-31", "2024-01-02"]),
    (["2023/12/31", "2024/01/02"], ["2023-12-31", "2024-01-02"]),
    (["31.12.2023 10:00", "31.12.2023 11:00"], ["2023-12-31 10:00", "2023-12-31 11:00"]),
    (["20231231", "20240102"], ["2023-12-31", "2024-01-02"]),
    (["20231231 100000", "20231231 110000"], ["2023-12-31 10:00", "2023-12-31 11:00"]),
    (["1/2/2024 9:30", "1/2/2024 10:30"], ["2024-01-02 09:30", "2024-01-02 10:30"]),
])
def test_time_formats(write: Write, lines: list[str], expected: list[str]) -> None:
    path = write("t.csv", "time,open,high,low,close\n" + "".join(f"{t},1,2,0.5,1.5\n" for t in lines))
    assert _ts(path) == [_utc(e) for e in expected]


def test_ambiguous_slash_dates_are_read_month_first_with_a_warning(write: Write) -> None:
    path = write("amb.csv", "date,open,high,low,close\n01/02/2024,1,2,0.5,1.5\n01/03/2024,1,2,0.5,1.5\n")
    imp = read_file(path)
    assert imp.read_all().column("ts")[0].as_py() == _utc("2024-01-02")
    assert any("month/day" in w for w in imp.warnings)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiters_quotes_whitespace_and_crlf(write: Write, sep: str) -> None:
    header = sep.join(['"Date"', '"Open"', '"High"', '"Low"', '"Close"', '"Volume"'])
    rows = [sep.join(["2024-01-02", " 1.5", "2 ", "0.5", "1.25", "100"]),
            sep.join(["2024-01-03", "1.5", "2", "0.5", "1.25", ""])]
    path = write("q.csv", "\r\n".join([header, *rows]) + "\r\n")
    table = read_file(path).read_all()
    assert table.column("open").to_pylist() == [1.5, 1.5]
    assert table.column("high").to_pylist() == [2.0, 2.0]
    assert table.column("volume").to_pylist() == [100.0, None]  # missing stays missing


def test_headerless_generic_and_metatrader(write: Write) -> None:
    path = write("nohdr.csv", "2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.5,10\n")
    imp = read_file(path)
    assert (imp.layout, imp.timeframe) == ("ohlcv_noheader", "1d")
    path = write("mt4.csv", "2024.01.02,00:00,1.1,1.2,1.0,1.15,100\n2024.01.02,00:05,1.1,1.2,1.0,1.15,100\n")
    imp = read_file(path)
    assert (imp.layout, imp.timeframe) == ("ohlcv_noheader", "5m")
    assert imp.read_all().column("ts").to_pylist() == [_utc("2024-01-02 00:00"), _utc("2024-01-02 00:05")]


def test_generic_extras_are_mapped_or_reported(write: Write) -> None:
    path = write("x.csv", "Timestamp,O,H,L,C,V,VWAP,Trades,Notes\n"
                          "2024-01-01 10:00,1,2,0.5,1.5,10,1.2,5,hi\n2024-01-01 10:01,1,2,0.5,1.5,10,1.2,6,ho\n")
    imp = read_file(path)
    table = imp.read_all()
    assert table.column("vwap").to_pylist() == [1.2, 1.2]
    assert table.column("trade_count").to_pylist() == [5, 6]
    assert imp.ignored_columns == ("Notes",)
    assert any("Notes" in w for w in imp.warnings)


def test_action_only_rows_become_actions_not_bars(write: Write) -> None:
    path = write("yf.csv", "Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits\n"
                           "2024-01-02 00:00:00-05:00,1,2,0.5,1.5,1.5,10,0,0\n"
                           "2024-01-03 00:00:00-05:00,,,,,,,0.25,0\n"
                           "2024-01-04 00:00:00-05:00,1,2,0.5,1.5,1.5,10,0,2\n")
    imp = read_file(path, symbol="XYZ")
    table = imp.read_all()
    assert table.num_rows == 2
    assert [(a.ex_date, a.kind, a.value) for a in imp.actions] == [
        (dt.date(2024, 1, 3), ActionKind.DIVIDEND, 0.25), (dt.date(2024, 1, 4), ActionKind.SPLIT, 2.0)]
    assert [(s.reason, s.count, s.locations) for s in imp.skipped] == [("action-only row (no prices)", 1, (3,))]


def test_daily_epoch_session_date_uses_tz(write: Write) -> None:
    # Tokyo midnight is 15:00Z the day before: without tz the UTC date is used.
    path = write("tky.csv", "time,open,high,low,close\n1704034800,1,2,0.5,1.5\n1704121200,1,2,0.5,1.5\n")
    assert _ts(path, timeframe="1d") == [_utc("2023-12-31"), _utc("2024-01-01")]
    assert _ts(path, timeframe="1d", tz="Asia/Tokyo") == [_utc("2024-01-01"), _utc("2024-01-02")]


def test_timeframe_inference(write: Write) -> None:
    def tf_of(times: list[str]) -> str:
        path = write("tf.csv", "time,open,high,low,close\n" + "".join(f"{t},1,2,0.5,1.5\n" for t in times))
        return read_file(path).timeframe

    base = pd.Timestamp("2024-01-01 09:30")
    assert tf_of([str(base + pd.Timedelta(minutes=m)) for m in (0, 1, 2, 3, 10, 11)]) == "1m"  # gaps ignored
    assert tf_of([str(base + pd.Timedelta(hours=4 * k)) for k in range(5)]) == "4h"
    assert tf_of([str(base + pd.Timedelta(seconds=30 * k)) for k in range(5)]) == "30s"
    assert tf_of(["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]) == "1mo"
    assert tf_of(["2024-01-05", "2024-01-12", "2024-01-18", "2024-01-26"]) == "1w"  # a Thursday holiday week


def _frame(n: int) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": [1.0 + i for i in range(n)],
                         "volume": 3.0}, index=idx)


def test_parquet_streams_in_batches(tmp_path: Path) -> None:
    frame = _frame(5000)
    path = tmp_path / "ETH%2FBTC.parquet"
    frame.to_parquet(path, row_group_size=1000)  # pandas index -> __index_level_0__
    imp = read_file(path, batch_rows=700)
    sizes = [t.num_rows for t in imp.batches()]
    assert (imp.layout, imp.timeframe, imp.symbol) == ("pandas_index", "5m", "ETH/BTC")
    assert max(sizes) <= 700
    assert sum(sizes) == 5000
    table = read_file(path).read_all()
    assert table.column("close").to_pylist() == frame["close"].tolist()


def test_named_index_parquet_and_arrow_stream(tmp_path: Path) -> None:
    frame = _frame(10).rename_axis("Datetime").reset_index()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "a.parquet")
    with ipc.new_stream(tmp_path / "a.arrows", table.schema) as writer:
        writer.write_table(table, max_chunksize=3)
    for name in ("a.parquet", "a.arrows"):
        imp = read_file(tmp_path / name)
        assert (imp.layout, imp.timeframe) == ("ohlcv", "5m"), name
        assert pc.min(imp.read_all().column("ts")).as_py() == _utc("2024-01-01"), name


def test_native_date_and_naive_timestamp_columns(tmp_path: Path) -> None:
    dates = pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 3)], pa.date32())
    naive = pa.array([dt.datetime(2024, 1, 2, 9, 30), dt.datetime(2024, 1, 2, 9, 31)], pa.timestamp("ns"))
    prices = {"open": [1.0, 1.0], "high": [2.0, 2.0], "low": [0.5, 0.5], "close": [1.5, 1.5]}
    pq.write_table(pa.table({"date": dates, **prices}), tmp_path / "d.parquet")
    pq.write_table(pa.table({"time": naive, **prices}), tmp_path / "n.parquet")
    assert _ts(tmp_path / "d.parquet") == [_utc("2024-01-02"), _utc("2024-01-03")]
    assert _ts(tmp_path / "n.parquet", tz="America/New_York") == [_utc("2024-01-02 14:30"),
                                                                  _utc("2024-01-02 14:31")]
    # A tz-aware column's own zone decides daily session dates.
    tokyo = pa.array([pd.Timestamp("2024-01-02", tz="Asia/Tokyo"), pd.Timestamp("2024-01-03", tz="Asia/Tokyo")],
                     pa.timestamp("us", tz="Asia/Tokyo"))
    pq.write_table(pa.table({"date": tokyo, **prices}), tmp_path / "t.parquet")
    assert _ts(tmp_path / "t.parquet") == [_utc("2024-01-02"), _utc("2024-01-03")]


@pytest.mark.parametrize(("name", "layout", "expected"), [
    ("AAPL.csv.gz", "zipline", "AAPL"),
    ("BRK.B.csv", "ohlcv", "BRK.B"),
    ("BTC%2FUSDT.parquet", "ohlcv", "BTC/USDT"),
    ("%5EGSPC.csv", "ohlcv", "^GSPC"),
    ("XRP_USDT_USDT-5m-futures.feather", "freqtrade", "XRP/USDT:USDT"),
    ("XRP_USDT_USDT-5m-futures.csv", "ohlcv", None),  # freqtrade naming only for freqtrade files
    ("msft.csv", "ohlcv", None),  # lower case: not obviously a symbol
    ("SPY_D.csv", "pandas_range_index", None),
    ("nvda-1999-2014.txt", "yahoo", None),
    ("6EH4.XCME_1min_bars_20240101_20240131.csv.gz", "nautilus", None),
    ("ADABTC-1m-2021-11-27.csv", "binance", None),
])
def test_symbol_from_file_name(name: str, layout: str, expected: str | None) -> None:
    assert infer_symbol(Path(name), layout) == expected


def test_given_symbol_wins(shared_data: Path) -> None:
    imp = read_file(shared_data / "ohlcv/zipline-reloaded/AAPL.csv.gz", symbol="aapl")
    assert imp.symbol == "AAPL"
    assert detect_layout(shared_data / "ohlcv/freqtrade/UNITTEST_BTC-5m.feather") == "freqtrade"
