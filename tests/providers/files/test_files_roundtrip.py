"""Property: bars written in any supported spelling read back as exactly the same keys and values."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.model import Timeframe
from tickvault.providers.files import read_file

DAY_US = 86_400_000_000
INTRADAY_STYLES = ["iso_offset", "iso_z", "iso_naive_utc", "iso_naive_tz", "epoch_s", "epoch_ms", "epoch_us",
                   "epoch_ns"]
DAILY_STYLES = ["date_iso", "date_us", "date_offset", "epoch_midday", "compact"]
HEADERS = [
    ("date", "open", "high", "low", "close", "volume"),
    ("Date", "Open", "High", "Low", "Close", "Volume"),
    ("timestamp", "o", "h", "l", "c", "v"),
    ("Datetime", "OPEN", "HIGH", "LOW", "CLOSE", "VOL"),
]


def _offset_text(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _time_text(us: int, style: str, offset_min: int) -> str:
    ts = pd.Timestamp(us * 1000, tz="UTC")
    if style == "iso_offset":
        local = ts + pd.Timedelta(minutes=offset_min)
        return local.strftime("%Y-%m-%d %H:%M:%S") + _offset_text(offset_min)
    if style == "iso_z":
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "iso_naive_utc":
        return ts.strftime("%Y-%m-%d %H:%M")
    if style == "iso_naive_tz":  # Etc/GMT-3 is UTC+3 all year
        return (ts + pd.Timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S")
    if style.startswith("epoch_") and style != "epoch_midday":
        scale = {"epoch_s": 1 / 1_000_000, "epoch_ms": 1 / 1000, "epoch_us": 1, "epoch_ns": 1000}[style]
        return str(int(us * scale))
    day = ts.date()
    if style == "date_iso":
        return day.isoformat()
    if style == "date_us":
        return f"{day.month}/{day.day}/{day.year}"
    if style == "date_offset":  # yfinance daily: local midnight with the exchange offset
        return f"{day.isoformat()} 00:00:00{_offset_text(offset_min)}"
    if style == "compact":
        return day.strftime("%Y%m%d")
    return str((us + 13 * 3_600_000_000) // 1_000_000)  # epoch_midday: 13:00Z of the session date


@st.composite
def bar_files(draw: st.DrawFn) -> tuple[bytes, str, str | None, list[int], list[list[float]]]:
    tf = draw(st.sampled_from(["1m", "5m", "1h", "4h", "1d"]))
    step = Timeframe.parse(tf).micros
    daily = tf == "1d"
    n = draw(st.integers(1, 30))
    slots = sorted(draw(st.lists(st.integers(0, 3 * n), min_size=n, max_size=n, unique=True)))
    base_days = draw(st.integers(365 * 31, 365 * 60))  # 2001 .. 2030
    start = base_days * DAY_US
    ts = [start + s * step for s in slots]
    price = st.floats(1e-8, 1e7, allow_nan=False, allow_infinity=False)
    rows = [[draw(price) for _ in range(4)] + [draw(st.floats(0, 1e12, allow_nan=False))] for _ in ts]
    style = draw(st.sampled_from(DAILY_STYLES if daily else INTRADAY_STYLES))
    offset = draw(st.sampled_from([-300, -240, 0, 60, 330, 540, 600]))
    header = draw(st.sampled_from(HEADERS))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    if draw(st.booleans()):
        ts, rows = ts[::-1], rows[::-1]  # newest first, like yfinance and Alpha Vantage
    lines = [sep.join(header)]
    lines += [sep.join([_time_text(t, style, offset), *(repr(v) for v in row)]) for t, row in zip(ts, rows,
                                                                                                    strict=True)]
    data = ("\r\n" if draw(st.booleans()) else "\n").join(lines).encode() + b"\n"
    if draw(st.booleans()):
        data = gzip.compress(data)
    tz = "Etc/GMT-3" if style == "iso_naive_tz" else None
    return data, tf, tz, ts, rows


@settings(max_examples=150, deadline=None)
@given(case=bar_files())
def test_written_bars_read_back_exactly(case: tuple[bytes, str, str | None, list[int], list[list[float]]],
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    data, tf, tz, ts, rows = case
    path = tmp_path_factory.mktemp("rt") / "bars.csv"
    path.write_bytes(data)
    imp = read_file(path, timeframe=tf, tz=tz)
    table = imp.read_all()
    got_ts = table.column("ts").cast("int64").to_pylist()
    assert got_ts == ts
    got = np.column_stack([table.column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")])
    assert got.tolist() == rows
    assert imp.skipped_rows == 0


@settings(max_examples=60, deadline=None)
@given(tf=st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d", "1w"]), n=st.integers(8, 60),
       gaps=st.lists(st.integers(2, 400), max_size=3))
def test_timeframe_is_inferred_from_spacing(tf: str, n: int, gaps: list[int],
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    step = Timeframe.parse(tf).micros
    slots = list(range(n))
    for g in gaps:  # a few long gaps (nights, weekends) do not move the median
        slots = [*slots, slots[-1] + g]
    base = 1_600_000_000_000_000 // step * step  # around 2020, on the timeframe's grid
    ts = [pd.Timestamp((base + s * step) * 1000, tz="UTC") for s in slots]
    body = "".join(f"{t.strftime('%Y-%m-%d %H:%M:%S')},1,2,0.5,1.5\n" for t in ts)
    path = tmp_path_factory.mktemp("tf") / "t.csv"
    path.write_text("time,open,high,low,close\n" + body)
    assert read_file(path).timeframe == tf
