"""The lossless Parquet encoding of LocalStore: bit-exact, compact, readable elsewhere."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA, conform_bars
from tickvault.store.base import conform_table as conform
from tickvault.store.local import LocalStore, _codec
from tickvault.store.local._codec import decode, encode, find_scale
from tickvault.store.local._layout import period_bounds, period_labels
from tickvault.testing.conformance import assert_bars_equal, make_bars

MINUTE_US = 60_000_000


def _round_trip(table: pa.Table) -> pa.Table:
    data = encode(table)
    return decode(pa.BufferReader(data), pq.read_metadata(pa.BufferReader(data)))


def _table(columns: dict[str, list[float | None]]) -> pa.Table:
    n = len(next(iter(columns.values())))
    base = make_bars([1_704_067_200_000_000 + i * MINUTE_US for i in range(n)], vwap=True, trade_count=True)
    for name, values in columns.items():
        base = base.set_column(BAR_SCHEMA.get_field_index(name), name, pa.array(values, pa.float64()))
    return base


def _stored_types(table: pa.Table) -> dict[str, str]:
    schema = pq.read_schema(pa.BufferReader(encode(table)))
    return {f.name: str(f.type) for f in schema}


any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.decimals(min_value=-1e6, max_value=1e6, places=2, allow_nan=False, allow_infinity=False).map(float),
    st.integers(-(2**60), 2**60).map(float),
    st.none(),
)


@given(st.lists(any_float, min_size=1, max_size=60), st.lists(any_float, min_size=1, max_size=60))
def test_any_float_column_round_trips_bit_for_bit(close: list[float | None], vwap: list[float | None]) -> None:
    n = min(len(close), len(vwap))
    table = _table({"close": close[:n], "vwap": vwap[:n]})
    assert_bars_equal(_round_trip(table), table)


@given(st.lists(st.integers(-(10**11), 10**11), min_size=1, max_size=200), st.integers(0, 9))
def test_decimals_are_stored_with_their_smallest_exact_scale(ints: list[int], places: int) -> None:
    x = np.array([float(f"{i}e-{places}") for i in ints])  # the nearest double to each decimal
    found = find_scale(x)
    assert found is not None
    scale, scaled = found
    assert scale <= places
    assert np.array_equal((scaled / 10.0**scale if scale else scaled.astype(np.float64)).view(np.int64),
                          x.view(np.int64))


@settings(max_examples=50)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=20, max_size=50, unique=True))
def test_values_without_short_decimals_stay_float(values: list[float]) -> None:
    # Random doubles have no exact short decimal form (a few might; the column falls back if any does not).
    x = np.array(values)
    if find_scale(x) is None:
        assert _stored_types(_table({"close": values}))["close"] == "double"


def test_prices_are_scaled_decimals_and_empty_columns_stay_plain() -> None:
    table = _table({"close": [101.25, 101.5, 99.99], "volume": [100.0, 250.0, 7.0], "vwap": [101.1234, 1.5, None]})
    types = _stored_types(table)
    assert types["close"] == "decimal32(9, 2)"  # at most 9 digits: stored as INT32
    assert types["volume"] == "decimal32(9, 0)"
    assert types["vwap"] == "decimal32(9, 4)"
    assert types["ts"] == "timestamp[us, tz=UTC]"
    # Columns without nulls are REQUIRED (no definition levels to decode), the others OPTIONAL.
    schema = pq.read_metadata(pa.BufferReader(encode(table))).schema
    levels = {schema.column(i).name: schema.column(i).max_definition_level for i in range(len(schema))}
    assert levels == {**dict.fromkeys(BAR_SCHEMA.names, 0), "vwap": 1}
    nothing = _stored_types(make_bars([0, MINUTE_US]))
    assert nothing["vwap"] == "double"  # all null: nothing to scale


@pytest.mark.parametrize("special", [math.nan, math.inf, -0.0, 2.0**80, 1e-12])
def test_values_no_decimal_can_hold_make_the_column_float(special: float) -> None:
    table = _table({"close": [1.5, special, 2.25]})
    assert _stored_types(table)["close"] == "double"
    assert_bars_equal(_round_trip(table), table)


def test_minute_bars_cost_at_most_8_bytes(tmp_path: Path) -> None:
    """98K one-minute bars with cent prices and share volumes (a symbol-year)."""
    rng = np.random.default_rng(5)
    n = 98_000
    close = np.round(150 * np.exp(np.cumsum(rng.normal(0, 0.0004, n))), 2)
    open_ = np.round(np.concatenate(([150.0], close[:-1])), 2)
    spread = np.abs(rng.normal(0, 0.04, n))
    table = make_bars([1_704_205_800_000_000 + i * MINUTE_US for i in range(n)])
    for name, values in (("open", open_), ("high", np.round(np.maximum(open_, close) + spread, 2)),
                         ("low", np.round(np.minimum(open_, close) - spread, 2)), ("close", close),
                         ("volume", np.round(rng.lognormal(8, 1, n)))):
        table = table.set_column(BAR_SCHEMA.get_field_index(name), name, pa.array(values))
    with LocalStore(tmp_path / "s") as store:
        receipt = store.write("AAPL", "1m", table)
        assert receipt.bytes_written / n <= 8.0
        assert_bars_equal(store.read("AAPL", "1m"), table)


def test_real_cme_minute_bars_round_trip(shared_data: Path, tmp_path: Path) -> None:
    df = pd.read_csv(shared_data / "ohlcv/nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv.gz")
    df["ts"] = pd.to_datetime(df.pop("timestamp_utc"), utc=True)
    table = conform_bars(df, provider="cme")
    with LocalStore(tmp_path / "s") as store:
        receipt = store.write("6EH4", "1m", table)
        assert receipt.rows_new == 29_996
        assert receipt.bytes_written / 29_996 < 8.0  # five-decimal FX prices, sparse minutes
        assert_bars_equal(store.read("6EH4", "1m"), table)


def test_real_tiny_crypto_prices_round_trip(shared_data: Path, tmp_path: Path) -> None:
    table = conform_bars(feather.read_table(shared_data / "ohlcv/freqtrade/UNITTEST_BTC-5m.feather"),
                         provider="binance")
    with LocalStore(tmp_path / "s") as store:
        store.write("UNITTEST/BTC", "5m", table)
        assert_bars_equal(store.read("UNITTEST/BTC", "5m"), table)
        stored = pq.read_schema(store.files("UNITTEST/BTC", "5m")[0])
    # These prices went through float arithmetic upstream (0.09946999000000001 is not the
    # double nearest to any 8-decimal number), so no exact scale exists: they stay float64.
    assert stored.field("close").type == pa.float64()


def test_conform_rejects_what_is_not_bars() -> None:
    good = make_bars([0, MINUTE_US])
    with pytest.raises(SchemaError):
        conform(good.drop_columns(["close"]))
    with pytest.raises(SchemaError):
        conform(good.set_column(1, "open", pa.array(["a", "b"])))
    with pytest.raises(SchemaError):
        conform(good.set_column(0, "ts", pa.array([None, 1], pa.timestamp("us", tz="UTC"))))
    with pytest.raises(SchemaError):
        conform(good.to_pandas())  # type: ignore[arg-type]
    reordered = good.select(list(reversed(good.column_names)))
    assert conform(reordered).schema.equals(BAR_SCHEMA)


@given(st.lists(st.integers(-(10**15), 4 * 10**15), min_size=1, max_size=300, unique=True),
       st.sampled_from(["1s", "1m", "4h", "1d", "1mo"]))
def test_period_partitions_match_the_calendar(ts: list[int], timeframe: str) -> None:
    values = np.array(sorted(ts), dtype=np.int64)
    labels, starts = period_labels(timeframe, values)
    assert starts[0] == 0
    assert starts[-1] == values.size
    assert np.all(starts[1:] > starts[:-1])
    unit = {"1s": "M", "1m": "Y", "4h": "Y"}.get(timeframe)
    if unit is None:
        assert labels == ["all"]
        return
    periods = values.astype("datetime64[us]").astype(f"datetime64[{unit}]")
    assert labels == [str(p) for p in np.unique(periods)]
    for label, a, b in zip(labels, starts[:-1], starts[1:], strict=True):
        assert (periods[a:b] == np.datetime64(label)).all()
        lo, hi = period_bounds(timeframe, label)
        assert lo is not None
        assert hi is not None
        assert lo <= values[a]
        assert values[b - 1] < hi


@pytest.mark.parametrize("idle", [True, False])
def test_big_decodes_use_threads_only_while_a_cpu_is_idle(monkeypatch: pytest.MonkeyPatch, idle: bool) -> None:
    """Arrow's threads (a free CPU) or not (a busy machine): the same table, bit for bit."""
    n = _codec._THREADS_MIN_ROWS
    rng = np.random.default_rng(3)
    close = np.round(100 + rng.normal(0, 0.1, n).cumsum(), 2)
    table = make_bars([1_704_067_200_000_000 + i * MINUTE_US for i in range(n)], vwap=True, trade_count=True)
    table = table.set_column(BAR_SCHEMA.get_field_index("close"), "close", pa.array(close, pa.float64()))
    data = encode(table)
    md = pq.read_metadata(pa.BufferReader(data))
    seen: list[bool] = []
    monkeypatch.setattr(_codec, "_idle_cpu", lambda: seen.append(idle) or idle)
    monkeypatch.setattr(_codec, "_CPUS", 2)
    read = pq.ParquetFile.read
    threads: list[bool] = []

    def spy(self: pq.ParquetFile, *args: object, use_threads: bool = True, **kwargs: object) -> pa.Table:
        threads.append(use_threads)
        return read(self, *args, use_threads=use_threads, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    assert_bars_equal(decode(pa.BufferReader(data), md), table)
    assert seen == [idle]
    assert threads == [idle]
    threads.clear()
    small = encode(table.slice(0, n - 1))  # below the threshold: one thread, no look at the CPUs
    assert_bars_equal(decode(pa.BufferReader(small), pq.read_metadata(pa.BufferReader(small))), table.slice(0, n - 1))
    assert seen == [idle]
    assert threads == [False]


@pytest.mark.parametrize("columns", [None, ["close"], ["open", "volume", "trade_count", "provider"]])
def test_big_decodes_from_a_buffer_split_the_columns_over_two_threads(monkeypatch: pytest.MonkeyPatch,
                                                                     columns: list[str] | None) -> None:
    """With the file's bytes, a free CPU and the helper free: two readers, two halves, one table."""
    n = _codec._THREADS_MIN_ROWS + 7
    rng = np.random.default_rng(5)
    close = np.round(100 + rng.normal(0, 0.1, n).cumsum(), 2)
    high = (close + 0.05).astype(object)
    high[::97] = None  # a price column with nulls: NaN in the block, the bitmap kept
    table = make_bars([1_704_067_200_000_000 + i * MINUTE_US for i in range(n)], vwap=True, trade_count=True)
    table = table.set_column(BAR_SCHEMA.get_field_index("close"), "close", pa.array(close, pa.float64()))
    table = table.set_column(BAR_SCHEMA.get_field_index("high"), "high", pa.array(high, pa.float64()))
    data = encode(table)
    md = pq.read_metadata(pa.BufferReader(data))
    monkeypatch.setattr(_codec, "_idle_cpu", lambda: True)
    monkeypatch.setattr(_codec, "_CPUS", 2)
    read = pq.ParquetFile.read
    calls: list[tuple[tuple[str, ...], bool, str]] = []

    def spy(self: pq.ParquetFile, *args: object, columns: list[str], use_threads: bool = True,
            **kwargs: object) -> pa.Table:
        import threading

        calls.append((tuple(columns), use_threads, threading.current_thread().name))
        return read(self, *args, columns=columns, use_threads=use_threads, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    expected = table if columns is None else table.select(["ts", *[c for c in columns if c != "ts"]])
    got = decode(pa.BufferReader(data), md, columns, buffer=data)
    assert_bars_equal(got, expected)
    assert got.schema == expected.schema
    stored = [c for c in expected.column_names if c != "provider"]  # the constant provider is in the footer
    assert sorted(c for cols, _, _ in calls for c in cols) == sorted(stored)
    assert all(not threads for _, threads, _ in calls)
    assert len(calls) == 2
    assert {name.startswith("tickvault-decode") for _, _, name in calls} == {True, False}
    # The frame still wraps the decoded prices as one block (no copy): the split keeps them together.
    frame_cols = [c for c in _codec.FLOAT_COLUMNS if c in expected.column_names]
    from tickvault.model import shared_rows

    assert shared_rows([got.column(c).chunk(0) for c in frame_cols]) is not None
    # While another decode holds the helper thread: Arrow's own threads on this one.
    calls.clear()
    with _codec._helper_idle:
        assert_bars_equal(decode(pa.BufferReader(data), md, columns, buffer=data), expected)
    assert [threads for _, threads, _ in calls] == [True]


def test_a_damaged_half_fails_the_decode_and_frees_the_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    n = _codec._THREADS_MIN_ROWS
    table = make_bars([1_704_067_200_000_000 + i * MINUTE_US for i in range(n)], vwap=True, trade_count=True)
    data = encode(table)
    md = pq.read_metadata(pa.BufferReader(data))
    monkeypatch.setattr(_codec, "_idle_cpu", lambda: True)
    monkeypatch.setattr(_codec, "_CPUS", 2)
    read = pq.ParquetFile.read

    def broken(self: pq.ParquetFile, *args: object, columns: list[str], **kwargs: object) -> pa.Table:
        if "volume" in columns:
            raise pa.ArrowInvalid("damaged page")
        return read(self, *args, columns=columns, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read", broken)
    with pytest.raises(pa.ArrowInvalid, match="damaged page"):
        decode(pa.BufferReader(data), md, buffer=data)
    assert _codec._helper_idle.acquire(blocking=False)  # released by the failed half
    _codec._helper_idle.release()


def test_idle_cpu_reads_the_run_queue(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(_codec, "_LOADAVG", str(loadavg))
    monkeypatch.setattr(_codec, "_CPUS", 2)
    monkeypatch.setattr(_codec, "_USABLE_CPUS", 2)
    for line, idle in (("0.50 0.40 0.30 1/180 4242\n", True), ("6.90 5.94 4.76 2/203 30412\n", False),
                       ("7.0 7.0 7.0 9/203 1\n", False)):
        loadavg.write_text(line)
        assert _codec._idle_cpu() is idle
    loadavg.write_text("garbage\n")
    assert _codec._idle_cpu() is False
    loadavg.unlink()
    monkeypatch.setattr(_codec, "_loadavg_fd", None)  # a process that never could open it
    assert _codec._idle_cpu() is False  # no /proc (not Linux): one thread
    loadavg.write_text("0.50 0.40 0.30 1/180 4242\n")
    monkeypatch.setattr(_codec, "_USABLE_CPUS", 1)
    assert _codec._idle_cpu() is False  # pinned to one CPU: threads cannot help


@pytest.mark.parametrize("size", [0, 1, 255, 4096, 720_001])
def test_file_checksum_is_zlibs_crc32(size: int) -> None:
    """zlib-ng's CRC32 when installed, zlib's otherwise: the same values either way."""
    from tickvault.store.local._crc import crc32

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32(data) == zlib.crc32(data)
    assert crc32(memoryview(data)[size // 3:]) == zlib.crc32(data[size // 3:])
    assert crc32(pa.py_buffer(data)) == zlib.crc32(data)
