"""Conversion of user frames to the canonical bar schema, and the in-batch duplicate rule."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA, conform_bars, dedupe_last


def _frame(n: int = 3) -> pd.DataFrame:
    idx = pd.date_range("2024-01-02 14:30", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame({"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Volume": 10.0}, index=idx)


def test_pandas_index_and_case_insensitive_columns() -> None:
    t = conform_bars(_frame(), provider="user")
    assert t.schema == BAR_SCHEMA
    assert t.column("provider").to_pylist() == ["user"] * 3
    assert t.column("vwap").null_count == 3


def test_polars_and_arrow_inputs() -> None:
    df = _frame().reset_index()
    assert conform_bars(pl.from_pandas(df)).num_rows == 3
    assert conform_bars(pa.Table.from_pandas(df, preserve_index=False)).num_rows == 3


def test_naive_timestamps_are_utc_and_other_zones_converted() -> None:
    df = _frame().reset_index()
    df["ts"] = df["ts"].dt.tz_convert("America/New_York")
    t = conform_bars(df)
    assert t.column("ts")[0].as_py() == pd.Timestamp("2024-01-02 14:30", tz="UTC")
    df["ts"] = df["ts"].dt.tz_localize(None)
    assert conform_bars(df).column("ts")[0].as_py().hour == 9


def test_missing_columns_are_named() -> None:
    with pytest.raises(SchemaError, match="volume"):
        conform_bars(_frame().drop(columns=["Volume"]))


def test_bad_types_raise_schema_error() -> None:
    df = _frame()
    df["Open"] = ["x", "y", "z"]
    with pytest.raises(SchemaError, match="Open"):
        conform_bars(df)
    with pytest.raises(SchemaError):
        conform_bars([1, 2, 3])


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(1, 100)), max_size=40))
def test_dedupe_last_keeps_last_occurrence_sorted(rows: list[tuple[int, float]]) -> None:
    ts = pd.to_datetime([r[0] for r in rows], unit="s", utc=True)
    df = pd.DataFrame({"ts": ts, "open": [r[1] for r in rows], "high": 1e3, "low": 0.1, "close": 1.0,
                       "volume": 1.0})
    out = dedupe_last(conform_bars(df))
    oracle: dict[int, float] = {}
    for k, v in rows:
        oracle[k] = v
    got = dict(zip([int(t.timestamp()) for t in out.column("ts").to_pylist()], out.column("open").to_pylist(),
                   strict=True))
    assert got == oracle
    keys = list(got)
    assert keys == sorted(keys)


@pytest.mark.parametrize("when", ["1600-01-01", "1678-06-01", "2262-01-01", "2500-01-01"])
def test_times_outside_the_representable_range_are_a_schema_error(when: str) -> None:
    times = pa.array([_epoch_us("2024-01-02"), _epoch_us(when)], pa.int64()).cast(pa.timestamp("us", "UTC"))
    table = pa.table({"ts": times, "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0],
                      "volume": [1.0, 1.0]})
    with pytest.raises(SchemaError, match="between 1679-01-01 and 2262-01-01"):
        conform_bars(table)


def test_times_at_the_edges_of_the_range_are_accepted() -> None:
    first, last = _epoch_us("1679-01-01"), _epoch_us("2261-12-31T23:59")
    table = pa.table({"ts": pa.array([first, last], pa.int64()).cast(pa.timestamp("us", "UTC")),
                      "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0],
                      "volume": [1.0, 1.0]})
    assert conform_bars(table).num_rows == 2


def _epoch_us(when: str) -> int:
    """Epoch microseconds of an ISO time, computed without pandas (which stops at 2262)."""
    import datetime as dt

    t = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
