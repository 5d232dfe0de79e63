"""Malformed files raise FileFormatError naming the file, the line and the problem, wherever it is."""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickvault.errors import FileFormatError, InvalidInput, InvalidSymbol, InvalidTimeframe
from tickvault.providers.files import read_file

Write = Callable[[str, bytes | str], Path]
HEADER = "date,open,high,low,close,volume\n"
ROW = "2024-01-{d:02d},1,2,0.5,1.5,10\n"


def _rows(n: int) -> str:
    return "".join(ROW.format(d=1 + i % 28) for i in range(n))


def _consume(path: Path, **kw: str) -> None:
    for _ in read_file(path, **kw).batches():
        pass


def _fail(path: Path, **kw: str) -> FileFormatError:
    with pytest.raises(FileFormatError) as info:
        _consume(path, **kw)
    err = info.value
    text = str(err)
    assert "\n" not in text  # one line
    assert text.startswith(str(path))  # names the file
    return err


@pytest.mark.parametrize(("content", "line", "words"), [
    (HEADER + ROW.format(d=1) + "hello world\n" + ROW.format(d=3), 3, "expected 6 fields, found 1"),
    (HEADER + ROW.format(d=1) + "2024-01-02,1,2,0.5\n", 3, "expected 6 fields, found 4"),
    (HEADER + ROW.format(d=1) + "2024-01-02,1,abc,0.5,1.5,10\n", 3, "non-numeric high value 'abc'"),
    (HEADER + ROW.format(d=1) + "2024-13-45,1,2,0.5,1.5,10\n", 3, "cannot parse timestamp '2024-13-45'"),
    (HEADER + ROW.format(d=1) + "yesterday,1,2,0.5,1.5,10\n", 3, "cannot parse timestamp 'yesterday'"),
    (HEADER + "soon,1,2,0.5,1.5,10\n", 2, "unrecognised timestamp 'soon'"),
    ("Datetime,Open,High,Low,Close,Volume\n2024-01-01 10:00:00+00:00,1,2,0.5,1.5,10\n"
     "2024-01-01 11:00:00,1,2,0.5,1.5,10\n", 3, "mixed time zones"),
    ("Datetime,Open,High,Low,Close,Volume\n2024-01-01 10:00:00,1,2,0.5,1.5,10\n"
     "2024-01-01 11:00:00-05:00,1,2,0.5,1.5,10\n", 3, "mixed time zones"),
    ("time,open,high,low,close\n1700000000,1,2,0.5,1.5\n1700000060000,1,2,0.5,1.5\n", 3, "mixed epoch units"),
    ("time,open,high,low,close\n1700000000,1,2,0.5,1.5\n2023-11-14,1,2,0.5,1.5\n", 3, "cannot parse timestamp"),
    (HEADER + ROW.format(d=1) + "\n\n" + ROW.format(d=2) + "2024-01-03,1,2,x,1.5,10\n", 6, "non-numeric low"),
    ("date,open,high,low,close,volume,dividend,split\n2024-01-01,1,2,0.5,1.5,10,0,1\n"
     "2024-01-02,1,2,0.5,1.5,10,-0.5,1\n", 3, "dividend value -0.5 is negative"),
    ("time,open,high,low,close,volume,trades\n2024-01-01 00:00,1,2,0.5,1.5,10,3.5\n"
     "2024-01-01 00:01,1,2,0.5,1.5,10,3\n", 2, "trade count 3.5"),
    (HEADER + ROW.format(d=1) + "\"2024-01-02,1,2,0.5,1.5,10\n", 3, "expected 6 fields"),
    (HEADER + "01/02/1717,1,2,0.5,1.5,10\n", 2, "outside 1800..2200"),
])
def test_bad_line_is_named(write: Write, content: str, line: int, words: str) -> None:
    err = _fail(write("bad.csv", content))
    assert err.context["line"] == line
    assert words in err.message


@pytest.mark.parametrize(("content", "words"), [
    (b"", "file is empty"),
    (b"\xef\xbb\xbf\r\n\n", "file is empty"),
    (HEADER.encode(), "header but no data rows"),
    (b"date,open,close\n2024-01-01,1,2\n", "missing column(s) high, low"),
    (b"price,open,high,low,close\n1,2,3,4,5\n", "no time column"),
    (b"date,timestamp,open,high,low,close\n2024-01-01,2024-01-01,1,2,3,4\n", "several candidate time columns"),
    (b"date,open,high,low,close,close\n2024-01-01,1,2,3,4,4\n", "duplicates the close column"),
    (b"symbol,date,open,high,low,close\nAAPL,2024-01-01,1,2,3,4\n", "one file per symbol"),
    (b"hello\nworld\n", "no time column"),
    (b"\x00\x01\x02binary\x00", "binary data"),
    ("date,open,high,low,close\n2024-01-01,1,2,3,4\n".encode("utf-16"), "UTF-16"),
    (b"1,2,3\n4,5,6\n", "no header and 3 columns"),
])
def test_bad_file_is_refused(write: Write, content: bytes, words: str) -> None:
    err = _fail(write("bad.csv", content))
    assert words in err.message


def test_all_rows_without_timestamp(write: Write) -> None:
    err = _fail(write("nodates.csv", HEADER + ",1,2,0.5,1.5,10\n,1,2,0.5,1.5,10\n"))
    assert "no row has a timestamp" in err.message


def test_invalid_utf8_in_the_middle(write: Write) -> None:
    path = write("latin.csv", (HEADER + _rows(5)).encode() + b"2024-01-09,1,2,0.5,1.5,\xff\xfe\n")
    err = _fail(path)
    assert err.context["line"] == 7
    assert "UTF-8" in err.message


def _big(n: int, last: str) -> str:
    minutes = pd.date_range("2024-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S")
    body = "".join(f"{m},1.5,2.5,0.5,1.25,10\n" for m in minutes)
    return "time,open,high,low,close,volume\n" + body + last


@pytest.mark.parametrize("compress", [False, True])
def test_error_in_the_last_block_is_raised_while_iterating(write: Write, compress: bool) -> None:
    n = 80_000  # ~3.4 MB: several blocks of at least 1 MiB
    content = _big(n, "2024-03-01 00:00:00,1.5,2.5,0.5,oops,10\n").encode()
    path = write("big.csv.gz" if compress else "big.csv", gzip.compress(content) if compress else content)
    imp = read_file(path, batch_rows=10_000)  # the first block is fine: no error yet
    batches = imp.batches()
    seen = 0
    for table in batches:
        seen += table.num_rows
        if seen >= 50_000:
            break
    with pytest.raises(FileFormatError) as info:
        list(batches)  # the rest of the stream: the bad last line surfaces here, not up front
    assert seen >= 50_000  # earlier blocks were streamed before the error surfaced
    assert info.value.context["line"] == n + 2
    assert "non-numeric close value 'oops'" in info.value.message
    assert not imp.complete


def test_truncated_gzip_names_where_the_data_stops(write: Write) -> None:
    content = _big(80_000, "").encode()
    packed = gzip.compress(content)
    path = write("cut.csv.gz", packed[: len(packed) * 2 // 3])
    err = _fail(path)
    assert "truncated" in err.message
    assert 30_000 < err.context["line"] < 80_000


def test_corrupt_zip_and_multi_member_zip(write: Write) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", HEADER + _rows(3))
        zf.writestr("b.csv", HEADER + _rows(3))
    err = _fail(write("two.zip", buf.getvalue()))
    assert "holds 2 files" in err.message
    err = _fail(write("broken.zip", b"PK\x03\x04" + b"\x00" * 40))
    assert "zip" in err.message


def test_nonexistent_local_time(write: Write) -> None:
    # 02:30 does not exist in New York on 2024-03-10 (clocks jump from 02:00 to 03:00).
    path = write("dst.csv", "time,open,high,low,close\n2024-03-10 01:30,1,2,0.5,1.5\n2024-03-10 02:30,1,2,0.5,1.5\n"
                            "2024-03-10 03:30,1,2,0.5,1.5\n")
    err = _fail(path, tz="America/New_York", timeframe="1h")
    assert err.context["line"] == 3
    assert "does not exist or is ambiguous" in err.message


def test_dst_fall_back_repeat_is_resolved_from_order(write: Write) -> None:
    rows = ["00:30", "01:00", "01:30", "01:00", "01:30", "02:00"]  # 01:00 and 01:30 happen twice
    path = write("fall.csv", "time,open,high,low,close\n" + "".join(f"2024-11-03 {r},1,2,0.5,1.5\n" for r in rows))
    ts = read_file(path, tz="America/New_York", timeframe="30m").read_all().column("ts").to_pylist()
    assert [t.strftime("%H:%M") for t in ts] == ["04:30", "05:00", "05:30", "06:00", "06:30", "07:00"]


def test_corrupt_parquet(write: Write, tmp_path: Path) -> None:
    table = pa.table({"date": pd.date_range("2024-01-01", periods=50, tz="UTC"), "open": [1.0] * 50,
                      "high": [2.0] * 50, "low": [0.5] * 50, "close": [1.5] * 50, "volume": [1.0] * 50})
    good = tmp_path / "good.parquet"
    pq.write_table(table, good)
    data = bytearray(good.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    err = _fail(write("bad.parquet", bytes(data)))
    assert "parquet" in err.message
    err = _fail(write("short.parquet", bytes(good.read_bytes()[:100])))
    assert "parquet" in err.message


def test_columnar_bad_values_name_the_row(tmp_path: Path) -> None:
    table = pa.table({"date": ["2024-01-01", "2024-01-02", "2024-01-03"], "open": ["1", "2", "x"],
                      "high": [2.0] * 3, "low": [0.5] * 3, "close": [1.5] * 3})
    path = tmp_path / "strings.parquet"
    pq.write_table(table, path)
    err = _fail(path)
    assert err.context["row"] == 3
    assert "non-numeric open value 'x'" in err.message


def test_compressed_columnar_is_refused(write: Write, tmp_path: Path) -> None:
    table = pa.table({"date": pd.date_range("2024-01-01", periods=3), "open": [1.0] * 3, "high": [1.0] * 3,
                      "low": [1.0] * 3, "close": [1.0] * 3})
    pq.write_table(table, tmp_path / "x.parquet")
    err = _fail(write("x.parquet.bz2", bz2.compress((tmp_path / "x.parquet").read_bytes())))
    assert "decompress it first" in err.message


def test_caller_errors_are_invalid_input(write: Write, tmp_path: Path) -> None:
    path = write("ok.csv", HEADER + _rows(3))
    with pytest.raises(InvalidInput, match="file not found"):
        read_file(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="directory"):
        read_file(tmp_path)
    with pytest.raises(InvalidInput, match="unknown time zone"):
        read_file(path, tz="Mars/Olympus")
    with pytest.raises(InvalidInput, match="unknown layout"):
        read_file(path, layout="excel")
    with pytest.raises(InvalidInput, match="label"):
        read_file(path, label="middle")
    with pytest.raises(InvalidInput, match="batch_rows"):
        read_file(path, batch_rows=0)
    with pytest.raises(InvalidSymbol):
        read_file(path, symbol="../etc")
    with pytest.raises(InvalidTimeframe):
        read_file(path, timeframe="fortnight")
    with pytest.raises(FileFormatError, match="does not match layout 'zipline'"):
        read_file(path, layout="zipline")


def test_single_intraday_row_needs_a_timeframe(write: Write) -> None:
    path = write("one.csv", "time,open,high,low,close\n2024-01-01 10:00,1,2,0.5,1.5\n")
    err = _fail(path)
    assert "pass timeframe=" in err.message
    assert read_file(path, timeframe="1h").read_all().num_rows == 1
    # A single plain date is a daily bar.
    assert read_file(write("d.csv", HEADER + ROW.format(d=5))).timeframe == "1d"


def test_feather_v1_is_refused(write: Write) -> None:
    err = _fail(write("old.feather", b"FEA1" + b"\x00" * 64))
    assert "Feather V1" in err.message


def test_bare_carriage_return_line_ends_are_refused(write: Write) -> None:
    err = _fail(write("mac.csv", "date,open,high,low,close\r2024-01-01,1,2,0.5,1.5\r"))
    assert "carriage return" in err.message
    assert err.context["line"] == 1
