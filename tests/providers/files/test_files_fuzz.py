"""Fuzzing the reader: whatever the bytes, the only failure is FileFormatError, and it returns.

Random bytes, and truncated / bit-flipped / spliced versions of the real files (CSV, gzip,
Feather and a Parquet copy), are read to the end. Success is fine (corruption can leave a
valid file); any other exception type, or a hang (pytest-timeout), fails the test.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickvault.errors import FileFormatError
from tickvault.providers.files import read_file

SAMPLES = [
    "ohlcv/Stock.Indicators/bad.csv",
    "ohlcv/Stock.Indicators/intraday.csv",
    "ohlcv/Stock.Indicators/zeros.csv",
    "ohlcv/backtesting.py/GOOG.csv",
    "ohlcv/backtrader/2006-min-005.txt",
    "ohlcv/backtrader/2006-week-001.txt",
    "ohlcv/freqtrade/XRP_USDT_USDT-1h-futures.feather",
    "ohlcv/nautilus_trader/ADABTC-1m-2021-11-27.csv",
    "ohlcv/pandas-ta/SPY_D.csv",
    "ohlcv/yfinance/4063-T-1d-bad-stock-split.csv",
    "ohlcv/yfinance/EA-15m-no-bad-divs.csv",
    "ohlcv/zipline-reloaded/MSFT.csv.gz",
]
JUNK_LINES = [b"junk\n", b",,,,,\n", b"1,2,3\n", b"\n\n\n", b"2024-01-01,a,b,c,d,e\n", b'"open quote\n',
              b"\xff\xfe\x00\n", b"9999999999999999999999,1,2,3,4,5\n", b"-1e309,nan,inf,-inf,1,2\n",
              b"2024-01-01 10:00:00+00:00,1,2,0.5,1.5,10\n", b"1/1/1,1,1,1,1,1\n"]


def _read_everything(path: Path) -> None:
    message = None
    try:
        imp = read_file(path, batch_rows=997)
        for _ in imp.batches():
            pass
        _ = (imp.actions, imp.skipped, imp.warnings)
    except FileFormatError as exc:
        message = str(exc)
    if message is not None:  # a one-line message that names the file
        assert message.startswith(str(path))
        assert "\n" not in message


@pytest.fixture(scope="module")
def samples(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = {rel: (shared_data / rel).read_bytes() for rel in SAMPLES}
    parquet = tmp_path_factory.mktemp("fz") / "default.parquet"
    table = read_file(shared_data / "ohlcv/Stock.Indicators/default.csv").read_all()
    pq.write_table(table, parquet, row_group_size=100)
    out["default.parquet"] = parquet.read_bytes()
    return out


@pytest.mark.timeout(300)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), compressed=st.booleans())
def test_random_bytes(data: bytes, compressed: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fz") / "random.csv"
    path.write_bytes(gzip.compress(data, mtime=0) if compressed else data)
    _read_everything(path)


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(SAMPLES)), how=st.sampled_from(["truncate", "flip", "splice", "junk_line", "drop"]),
       where=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1,
                                              max_size=12),
       blob=st.binary(min_size=1, max_size=40), junk=st.sampled_from(JUNK_LINES), span=st.integers(1, 500))
def test_damaged_real_files(index: int, how: str, where: float, flips: list[tuple[float, int]], blob: bytes,
                            junk: bytes, span: int, samples: dict[str, bytes],
                            tmp_path_factory: pytest.TempPathFactory) -> None:
    name = sorted(samples)[index]
    raw = bytearray(samples[name])
    pos = int(where * len(raw))
    if how == "truncate":
        raw = raw[:pos]
    elif how == "flip":
        for at, value in flips:
            raw[min(int(at * len(raw)), len(raw) - 1)] = value
    elif how == "splice":
        raw[pos:pos] = blob
    elif how == "drop":
        del raw[pos: pos + span]
    else:
        text = gzip.decompress(raw) if name.endswith(".gz") else bytes(raw)
        if name.endswith((".feather", ".parquet")):
            text = text + junk
        else:
            cut = text.find(b"\n", int(where * len(text))) + 1
            text = text[:cut] + junk + text[cut:]
        raw = bytearray(gzip.compress(text, mtime=0) if name.endswith(".gz") else text)
    path = tmp_path_factory.mktemp("fz") / Path(name).name
    path.write_bytes(bytes(raw))
    _read_everything(path)


TIMES = ["2024-01-01", "2024-01-01 10:00", "2024-01-01 10:00:00+09:00", "2024-01-01T10:00:00Z", "1/2/2024",
         "13/2/2024", "1704103200", "1704103200000", "1704103200000000", "20240101", "2024.01.01",
         "01.02.2024 10:00", "", "x", "1e20", "99999999999999999999", "-1704103200", "0", "2024-02-30",
         "2024-03-10 02:30", "2024-11-03 01:30", "nan", "1704103200.5", "12/31/99"]
VALUES = ["1", "2.5", "", "nan", "inf", "-1", "0", "1e308", "1e400", "abc", " 3 ", "0x1", "1,5", "-0", "1E-300"]
HEADERS = ["date,open,high,low,close,volume,dividend,split",
           "Datetime,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits",
           "time,open,high,low,close,volume,trades,vwap", "timestamp_utc,open,high,low,close,volume"]


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(HEADERS),
       rows=st.lists(st.tuples(st.sampled_from(TIMES), st.lists(st.sampled_from(VALUES), min_size=8, max_size=8)),
                     min_size=1, max_size=30),
       tz=st.sampled_from([None, "America/New_York", "Asia/Tokyo"]), timeframe=st.sampled_from([None, "1d", "1m"]))
def test_plausible_but_wrong_cells(header: str, rows: list[tuple[str, list[str]]], tz: str | None,
                                   timeframe: str | None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Rows made of realistic and nasty cells (overflows, DST gaps, mixed formats, NaN counts)."""
    n = header.count(",")
    text = header + "\n" + "".join(",".join([t, *cells[:n]]) + "\n" for t, cells in rows)
    path = tmp_path_factory.mktemp("fz") / "cells.csv"
    path.write_text(text)
    message = None
    try:
        imp = read_file(path, tz=tz, timeframe=timeframe, batch_rows=5)
        for _ in imp.batches():
            pass
    except FileFormatError as exc:
        message = str(exc)
    if message is not None:
        assert message.startswith(str(path))


def _column(kind: str, n: int) -> st.SearchStrategy[pa.Array]:
    """A column of ``n`` values of a given Arrow kind, with nulls, NaN/inf and extreme values."""
    def of(values: st.SearchStrategy[object], typ: pa.DataType) -> st.SearchStrategy[pa.Array]:
        return st.lists(st.one_of(st.none(), values), min_size=n, max_size=n).map(lambda v: pa.array(v, typ))

    return {
        "int": of(st.integers(-(2**63), 2**63 - 1), pa.int64()),
        "float": of(st.floats(), pa.float64()),
        "timestamp": of(st.integers(-(2**62), 2**62), pa.timestamp("ns", tz="UTC")),
        "naive": of(st.integers(-(2**62), 2**62), pa.timestamp("us")),
        "date": of(st.integers(-(10**6), 10**6), pa.date32()),
        "string": of(st.text(max_size=12), pa.string()),
        "bool": of(st.booleans(), pa.bool_()),
    }[kind]


@st.composite
def _tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 12))
    names = draw(st.sampled_from([["date", "open", "high", "low", "close", "volume"],
                                  ["Date", "Open", "High", "Low", "Close", "Volume", "Dividends", "Stock Splits"],
                                  ["time", "open", "high", "low", "close", "volume", "trades", "vwap"]]))
    kinds = st.sampled_from(["int", "float", "timestamp", "naive", "date", "string", "bool"])
    numeric = st.sampled_from(["int", "float", "float", "string", "bool"])
    cols = [draw(_column(draw(kinds), n))] + [draw(_column(draw(numeric), n)) for _ in names[1:]]
    return pa.table(cols, names=names)


@pytest.mark.timeout(300)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_tables(), parquet=st.booleans(), tz=st.sampled_from([None, "Asia/Tokyo"]),
       timeframe=st.sampled_from([None, "1d", "1m"]))
def test_columnar_files_with_odd_types(table: pa.Table, parquet: bool, tz: str | None, timeframe: str | None,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """Typed columns hold what text cannot: overflowing epochs, year-0 dates, booleans, NaN."""
    path = tmp_path_factory.mktemp("fz") / ("x.parquet" if parquet else "x.feather")
    if parquet:
        pq.write_table(table, path)
    else:
        feather.write_feather(table, path)
    message = None
    try:
        imp = read_file(path, tz=tz, timeframe=timeframe, batch_rows=3)
        for _ in imp.batches():
            pass
    except FileFormatError as exc:
        message = str(exc)
    if message is not None:
        assert message.startswith(str(path))
