"""The store codec's storage choices and compatibility (see ``tickvault.store.local._codec``).

Decimal width (INT32 up to 9 digits, INT64 beyond), the integer encoding per column
(DELTA_BINARY_PACKED for steps, BYTE_STREAM_SPLIT for independent draws), the sampled scale
detection against its plain definition, reading files the first encoder wrote, reading by
DuckDB and Polars, and a size guard on deterministic data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.model import BAR_SCHEMA, conform_bars
from tickvault.providers.sim import simulate_bars
from tickvault.store.local._codec import (
    FLOAT_COLUMNS,
    decode,
    encode,
    find_scale,
    from_scaled,
    int_encoding,
    int_layout,
)
from tickvault.testing.conformance import assert_bars_equal, make_bars

MINUTE_US = 60_000_000
JAN_2024_US = 1_704_067_200_000_000
_LIMIT = float(2**53)


def _round_trip(data: pa.Buffer) -> pa.Table:
    return decode(pa.BufferReader(data), pq.read_metadata(pa.BufferReader(data)))


def _columns(data: pa.Buffer) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Per column: (Parquet physical type, encodings) of the file's single row group."""
    rg = pq.read_metadata(pa.BufferReader(data)).row_group(0)
    return {rg.column(i).path_in_schema: (rg.column(i).physical_type, rg.column(i).encodings)
            for i in range(rg.num_columns)}


def _with(table: pa.Table, **columns: Any) -> pa.Table:
    for name, values in columns.items():
        field = BAR_SCHEMA.field(name)
        arr = values if isinstance(values, pa.Array) else pa.array(values, field.type)
        table = table.set_column(BAR_SCHEMA.get_field_index(name), field, arr)
    return table


def _reference_scale(x: np.ndarray) -> tuple[int, np.ndarray] | None:
    """The definition find_scale implements, checked on every value at every exponent."""
    if x.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    if not np.isfinite(x).all():
        return None
    for k in range(10):
        if float(np.abs(x).max()) * 10.0**k >= _LIMIT:
            return None
        ints = np.rint(x * 10.0**k).astype(np.int64)
        back = ints.astype(np.float64) / 10.0**k if k else ints.astype(np.float64)
        if np.array_equal(back.view(np.int64), x.view(np.int64)):
            return k, ints
    return None


SPECIALS = [None, -0.0, np.nan, -np.inf, np.inf, 5e-324, 2.0**60, 0.1 + 0.2, 1e-10, 123.456789012,
            float(2**53 - 1), float(2**53)]
nan_payload = np.array([0x7FF8_0000_DEAD_BEEF], dtype=np.int64).view(np.float64)[0]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5000), st.integers(0, 9), st.integers(0, 12),
       st.sampled_from([*SPECIALS, nan_payload]), st.floats(0.0, 1.0), st.booleans())
def test_find_scale_matches_its_definition(seed: int, n: int, places: int, digits: int, special: float | None,
                                           where: float, walk: bool) -> None:
    """Sampled rejection and the in-place check agree with the plain definition, bit for bit."""
    rng = np.random.default_rng(seed)
    bound = 10**digits
    ints = np.cumsum(rng.integers(-50, 51, n)) + bound if walk else rng.integers(-bound, bound + 1, n)
    x = ints / 10.0**places if places else ints.astype(np.float64)  # the nearest doubles to the decimals
    if special is not None:
        x[min(int(where * n), n - 1)] = special
    got, want = find_scale(x), _reference_scale(x)
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert got[0] == want[0]
        assert np.array_equal(got[1], want[1])


def test_find_scale_rejects_what_no_decimal_holds() -> None:
    assert find_scale(np.array([1.5, -0.0, 2.0])) is None  # -0.0 would come back as 0.0
    assert find_scale(np.array([-1.0, -0.0])) is None
    assert find_scale(np.array([1.5, np.nan])) is None
    assert find_scale(np.array([nan_payload])) is None
    assert find_scale(np.array([1.0, 2.0**53])) is None
    assert find_scale(np.array([5e-324])) is None
    x = np.round(np.linspace(1.0, 2.0, 5000), 2)
    x[4321] = 1.005  # one value with three decimals, away from the start: the sample may miss it
    found = find_scale(x)
    assert found is not None
    scale, ints = found
    assert scale == 3
    assert np.array_equal((ints / 1000.0).view(np.int64), x.view(np.int64))


def _walk_and_draws(n: int, seed: int, price_digits: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    base = 10**price_digits
    close = (base + np.cumsum(rng.integers(-20, 21, n))) / 100.0
    volume = np.floor(rng.lognormal(8.0, 1.0, n))
    trades = np.maximum(1, volume // 40).astype(np.int64)
    ts = [JAN_2024_US + i * MINUTE_US for i in range(n)]
    return _with(make_bars(ts), open=close, high=close + 0.05, low=close - 0.05, close=close, volume=volume,
                 vwap=np.round(close + rng.integers(-400, 401, n) / 1e4, 4), trade_count=trades)


@pytest.mark.parametrize(("price_digits", "physical"), [(6, "INT32"), (11, "INT64")])
def test_steps_are_delta_packed_and_draws_byte_split(price_digits: int, physical: str) -> None:
    table = _walk_and_draws(5000, 1, price_digits)
    data = encode(table)
    cols = _columns(data)
    assert cols["close"] == (physical, ("RLE", "DELTA_BINARY_PACKED"))
    assert cols["vwap"][1] == ("RLE", "DELTA_BINARY_PACKED")
    assert cols["volume"] == ("INT32", ("RLE", "BYTE_STREAM_SPLIT"))
    assert cols["trade_count"] == ("INT32", ("RLE", "BYTE_STREAM_SPLIT"))  # read back as int64
    assert cols["ts"] == ("INT64", ("RLE", "DELTA_BINARY_PACKED"))
    rg = pq.read_metadata(pa.BufferReader(data)).row_group(0)
    codecs = {rg.column(i).path_in_schema: rg.column(i).compression for i in range(rg.num_columns)}
    # Steps of -20..20 cents are rarely zero, and vwap's 4 decimals around a walk are random
    # bits: zstd would find little in those delta-packed columns, so they stay uncompressed.
    # (high and low, close +- 0.05 in float arithmetic, are no exact decimals: float64.)
    # ts is LZ4 (LZ4_RAW in the file; Arrow calls it LZ4): its deltas are runs, which LZ4
    # finds too, and it decodes faster than zstd.
    assert codecs == {**dict.fromkeys(BAR_SCHEMA.names, "ZSTD"),
                      **dict.fromkeys(("open", "close", "vwap"), "UNCOMPRESSED"), "ts": "LZ4"}
    assert_bars_equal(_round_trip(data), table)
    big = _with(table, trade_count=table.column("trade_count").to_numpy() + 2**31 - 100)
    assert _columns(encode(big))["trade_count"][0] == "INT64"
    assert_bars_equal(_round_trip(encode(big)), big)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3000), st.integers(0, 13), st.integers(0, 6),
       st.one_of(st.just(0.0), st.floats(0.0, 0.9)), st.booleans())
def test_every_storage_path_round_trips_bit_for_bit(seed: int, n: int, digits: int, places: int,
                                                    null_share: float, iid: bool) -> None:
    """INT32 or INT64 decimals, deltas or byte planes, compressed or not, REQUIRED or with
    nulls anywhere: exact round trips, with or without page checksums, of any column subset."""
    rng = np.random.default_rng(seed)
    bound = 10**digits
    ints = rng.integers(-bound, bound + 1, n) if iid else np.cumsum(rng.integers(-99, 100, n)) + bound
    x = ints / 10.0**places if places else ints.astype(np.float64)
    valid = rng.random(n) >= null_share
    values = pa.array(x, pa.float64(), mask=~valid)
    counts = pa.array(ints, pa.int64(), mask=rng.random(n) < null_share)
    ts = [JAN_2024_US + i * MINUTE_US for i in range(n)]
    table = _with(make_bars(ts), close=values, volume=pa.array(np.abs(x)), vwap=values, trade_count=counts)
    data = encode(table)
    assert_bars_equal(_round_trip(data), table)
    md = pq.read_metadata(pa.BufferReader(data))
    assert_bars_equal(decode(pa.BufferReader(data), md, verify_pages=False), table)
    some = ["vwap", "trade_count", "close"]
    assert_bars_equal(decode(pa.BufferReader(data), md, some, verify_pages=False), table.select(["ts", *some]))
    assert_bars_equal(_round_trip(_as_earlier_format_2(data)), table)


def test_int_layout_compresses_only_what_zstd_can_shrink() -> None:
    rng = np.random.default_rng(4)
    quiet = np.cumsum(rng.choice([-1, 0, 0, 1], 50_000))  # half the steps are zero: zstd finds runs
    assert int_layout(quiet) == ("DELTA_BINARY_PACKED", True)
    assert int_layout(np.cumsum(rng.integers(-3, 4, 50_000))) == ("DELTA_BINARY_PACKED", False)  # 1/7 zero
    assert int_layout(np.cumsum(rng.integers(-900, 901, 50_000))) == ("DELTA_BINARY_PACKED", False)
    assert int_layout(np.full(50_000, 7)) == ("DELTA_BINARY_PACKED", True)
    assert int_layout(rng.integers(0, 10**6, 50_000)) == ("BYTE_STREAM_SPLIT", True)


def test_int_encoding_tells_steps_from_draws() -> None:
    rng = np.random.default_rng(3)
    walk = 15_000 + np.cumsum(rng.integers(-30, 31, 100_000))
    assert int_encoding(walk) == "DELTA_BINARY_PACKED"
    assert int_encoding(np.floor(rng.lognormal(8.0, 1.0, 100_000)).astype(np.int64)) == "BYTE_STREAM_SPLIT"
    assert int_encoding(np.full(10_000, 7, dtype=np.int64)) == "DELTA_BINARY_PACKED"
    assert int_encoding(np.arange(10, dtype=np.int64)) == "DELTA_BINARY_PACKED"
    extremes = rng.integers(-(2**62), 2**62, 5000)  # diffs would overflow int64: no warning, a choice
    assert int_encoding(extremes) == "BYTE_STREAM_SPLIT"


# --- files of earlier encoders -------------------------------------------------------------------

def _as_earlier_format_2(data: pa.Buffer) -> pa.Buffer:
    """The same file as the first format-2 encoder wrote it.

    That encoder declared INT32 decimals as Arrow decimal64 (the reader then widened them),
    every column OPTIONAL, and zstd on every delta-packed column whose steps are not wide
    random bits; encodings and widths were the same.
    """
    md = pq.read_metadata(pa.BufferReader(data))
    rg = md.row_group(0)
    layout = {rg.column(i).path_in_schema: rg.column(i).encodings[-1] for i in range(rg.num_columns)}
    raw = pq.read_table(pa.BufferReader(data), read_dictionary=["provider"])
    fields = [pa.field(f.name, pa.decimal64(9, f.type.scale) if f.type.id == pa.decimal32(9, 0).id else f.type)
              for f in raw.schema]
    old = raw.cast(pa.schema(fields, metadata=raw.schema.metadata))
    assert all(f.nullable for f in old.schema)
    vwap_random = rg.column(BAR_SCHEMA.get_field_index("vwap")).compression == "UNCOMPRESSED"
    zstd = [f.name for f in fields if not (f.name == "vwap" and vwap_random)]
    sink = pa.BufferOutputStream()
    pq.write_table(old, sink, compression={f.name: "zstd" if f.name in zstd else "none"
                                           for f in fields},  # type: ignore[arg-type]
                   compression_level=dict.fromkeys(zstd, 1),  # type: ignore[arg-type]
                   use_dictionary=["provider"],  # type: ignore[arg-type]
                   column_encoding={k: v for k, v in layout.items() if k != "provider"},
                   store_decimal_as_integer=True, write_statistics=True, write_page_checksum=True)
    out = sink.getvalue()
    assert {f.name: f.type for f in pq.read_schema(pa.BufferReader(out))} == {f.name: f.type for f in fields}
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_files_of_the_earlier_format_2_encoder_still_decode(seed: int) -> None:
    table = _walk_and_draws(3000, seed, 5)
    data = _as_earlier_format_2(encode(table))
    kinds = pq.read_schema(pa.BufferReader(data))
    assert kinds.field("close").type == pa.decimal64(9, 2)
    assert pq.read_metadata(pa.BufferReader(data)).schema.column(0).max_definition_level == 1  # OPTIONAL ts
    assert_bars_equal(_round_trip(data), table)
    md = pq.read_metadata(pa.BufferReader(data))
    assert_bars_equal(decode(pa.BufferReader(data), md, ["close", "trade_count"], verify_pages=False),
                      table.select(["ts", "close", "trade_count"]))


def _encode_v1(table: pa.Table, *, decimal128: bool = False) -> pa.Buffer:
    """What the first codec wrote: DECIMAL(18, k) on INT64, PLAIN/DELTA, all statistics.

    ``decimal128`` stores the Arrow type other writers use instead of the codec's decimal64;
    either way the file column is DECIMAL(18, k) on INT64.
    """
    arrays: list[Any] = []
    encodings = {"ts": "DELTA_BINARY_PACKED", "trade_count": "PLAIN"}
    for field in BAR_SCHEMA:
        col = table.column(field.name).combine_chunks()
        if field.name in FLOAT_COLUMNS and col.null_count < len(col):
            x = np.asarray(col.fill_null(0.0).to_numpy(zero_copy_only=False))
            found = find_scale(x)
            if found is not None:
                k, ints = found
                dec = pa.array(ints, pa.int64(), mask=np.asarray(col.is_null().to_numpy(zero_copy_only=False)))
                dec = pa.Array.from_buffers(pa.decimal64(18, k), len(col), dec.buffers(), dec.null_count)
                col = dec.cast(pa.decimal128(18, k)) if decimal128 else dec
                encodings[field.name] = "PLAIN" if field.name == "volume" else "DELTA_BINARY_PACKED"
        encodings.setdefault(field.name, "BYTE_STREAM_SPLIT")
        arrays.append(col)
    out = pa.Table.from_arrays(arrays, names=BAR_SCHEMA.names).replace_schema_metadata({"tickvault.format": "1"})
    encodings.pop("provider", None)
    sink = pa.BufferOutputStream()
    pq.write_table(out, sink, compression="zstd", compression_level=1, use_dictionary=["provider"],
                   column_encoding=encodings, store_decimal_as_integer=True, write_statistics=True,
                   write_page_checksum=True)
    return sink.getvalue()


@pytest.mark.parametrize("decimal128", [False, True])
def test_files_of_the_first_encoder_still_decode(decimal128: bool) -> None:
    table = _walk_and_draws(3000, 7, 5)
    table = _with(table, vwap=pa.array([None if i % 7 == 0 else v for i, v in
                                        enumerate(table.column("vwap").to_pylist())], pa.float64()))
    data = _encode_v1(table, decimal128=decimal128)
    assert {name: kind for name, (kind, _) in _columns(data).items()}["close"] == "INT64"
    assert_bars_equal(_round_trip(data), table)
    assert_bars_equal(decode(pa.BufferReader(data), pq.read_metadata(pa.BufferReader(data)), ["close", "vwap"]),
                      table.select(["ts", "close", "vwap"]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.decimals(min_value=-10**6, max_value=10**6, places=4, allow_nan=False,
                            allow_infinity=False).map(float), min_size=1, max_size=80))
def test_first_encoder_files_decode_for_any_decimals(values: list[float]) -> None:
    ts = [JAN_2024_US + i * MINUTE_US for i in range(len(values))]
    table = _with(make_bars(ts, vwap=True, trade_count=True), close=values, vwap=values)
    assert_bars_equal(_round_trip(_encode_v1(table)), table)


def test_decimal32_columns_of_other_writers_decode() -> None:
    ts = [JAN_2024_US + i * MINUTE_US for i in range(4)]
    ints = np.array([10125, -3, 99999, 0], dtype=np.int32)
    dec32 = pa.Array.from_buffers(pa.decimal32(9, 2), 4, [None, pa.py_buffer(ints.tobytes())])
    table = make_bars(ts)
    arrays = [dec32 if name == "close" else table.column(name) for name in BAR_SCHEMA.names]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, names=BAR_SCHEMA.names), sink, store_decimal_as_integer=True)
    got = _round_trip(sink.getvalue())
    assert got.column("close").to_pylist() == [101.25, -0.03, 999.99, 0.0]


# --- other readers, and the size guard ------------------------------------------------------------

def test_duckdb_and_polars_read_every_encoding_exactly(tmp_path: Path) -> None:
    table = _walk_and_draws(4000, 11, 6)
    table = _with(table, high=np.linspace(1.0, 2.0, 4000),  # not decimals: stays float64
                  low=(10**12 + np.arange(4000)) / 100.0)  # 14 digits: DECIMAL(18, 2) on INT64
    path = tmp_path / "bars.parquet"
    path.write_bytes(encode(table).to_pybytes())
    kinds = {name: kind for name, (kind, _) in _columns(pa.py_buffer(path.read_bytes())).items()}
    assert (kinds["high"], kinds["low"], kinds["close"], kinds["volume"]) == ("DOUBLE", "INT64", "INT32", "INT32")
    cols = ("open", "high", "low", "close", "volume", "vwap")
    got = duckdb.sql("SELECT " + ", ".join(f"{c}::DOUBLE AS {c}" for c in cols)
                     + f", trade_count FROM read_parquet('{path}')").fetchnumpy()
    frame = pl.read_parquet(path).with_columns(pl.col(c).cast(pl.Float64) for c in cols)
    for name in (*cols, "trade_count"):
        want = np.asarray(table.column(name).to_numpy())
        for reader, values in (("duckdb", np.asarray(got[name])), ("polars", frame[name].to_numpy())):
            assert np.array_equal(values.astype(want.dtype).view(np.int64), want.view(np.int64)), (reader, name)


def test_a_simulated_symbol_year_stays_small() -> None:
    """Deterministic data, so a fair guard: a year of the sim's minutes for a mid-cost symbol.

    SIM012 (the median of the quick bench's 20 symbols): prices near $100 with cent ticks,
    4-decimal vwap, share volumes, trade counts. 7.26 B/bar with this codec, 7.74 with the
    first one (every decimal on INT64, deltas for volumes).
    """
    table, _ = simulate_bars("SIM012", "1m", 1_672_531_200_000_000, 1_704_067_200_000_000, seed=0, calendar="XNYS")
    table = table.cast(BAR_SCHEMA)
    data = encode(table)
    assert table.num_rows == 96_942
    assert data.size / table.num_rows <= 7.4
    assert_bars_equal(_round_trip(data), table)


def test_real_cme_minute_bars_stay_small(shared_data: Path) -> None:
    df = pd.read_csv(shared_data / "ohlcv/nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv.gz")
    df["ts"] = pd.to_datetime(df.pop("timestamp_utc"), utc=True)
    table = conform_bars(df, provider="cme")
    data = encode(table)
    # 4.52 with this codec (its prices have 25% zero steps: stored uncompressed, cheaper to
    # read), 4.32 with zstd on them, 4.64 with the first codec
    assert data.size / table.num_rows <= 4.6
    assert_bars_equal(_round_trip(data), table)


def test_a_constant_provider_is_kept_in_the_footer_not_in_statistics() -> None:
    ts = [JAN_2024_US + i * MINUTE_US for i in range(6)]
    one = make_bars(ts, provider="alpaca")
    data = encode(one)
    md = pq.read_metadata(pa.BufferReader(data))
    assert md.metadata[b"tickvault.provider"] == b"alpaca"
    assert md.row_group(0).column(BAR_SCHEMA.get_field_index("provider")).statistics is None
    assert_bars_equal(_round_trip(data), one)
    # A dictionary with unused entries but one value used, over two chunks: still constant.
    kind = BAR_SCHEMA.field("provider").type
    wide = pa.DictionaryArray.from_arrays(pa.array([1, 1, 1], pa.int32()), pa.array(["x", "alpaca"]))
    chunked = pa.chunked_array([wide.cast(kind), pa.array(["alpaca"] * 3).dictionary_encode().cast(kind)])
    same = one.set_column(BAR_SCHEMA.get_field_index("provider"), BAR_SCHEMA.field("provider"), chunked)
    assert pq.read_metadata(pa.BufferReader(encode(same))).metadata[b"tickvault.provider"] == b"alpaca"
    assert_bars_equal(_round_trip(encode(same)), one)
    # The decoded indices of constant providers share one zero buffer, grown on demand.
    first = _round_trip(data)
    n = 140_000  # more rows than the buffer first holds
    big = make_bars([JAN_2024_US + i * MINUTE_US for i in range(n)], provider="other")
    got = _round_trip(encode(big))
    assert got.column("provider").to_pylist() == ["other"] * n
    assert first.column("provider").to_pylist() == ["alpaca"] * 6
    assert first.column("provider").chunk(0).get_total_buffer_size() < 100  # 6 indices, not the buffer
    assert_bars_equal(_round_trip(data).select(["provider"]), one.select(["provider"]))
    for providers in (["a", "b", "a", "a", "a", "a"], ["a", None, "a", "a", "a", "a"], [None] * 6):
        mixed = one.set_column(BAR_SCHEMA.get_field_index("provider"), BAR_SCHEMA.field("provider"),
                               pa.array(providers, pa.string()).dictionary_encode().cast(kind))
        data = encode(mixed)
        assert b"tickvault.provider" not in (pq.read_metadata(pa.BufferReader(data)).metadata or {})
        assert_bars_equal(_round_trip(data), mixed)
        assert_bars_equal(decode(pa.BufferReader(data), pq.read_metadata(pa.BufferReader(data)), ["provider"]),
                          mixed.select(["ts", "provider"]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**53) + 1, 2**53 - 1), min_size=1, max_size=300), st.integers(0, 9))
def test_from_scaled_is_the_two_step_expression(ints: list[int], scale: int) -> None:
    """from_scaled equals float(int) then / 10**k, the expression the encoder checks."""
    arr = np.array(ints, dtype=np.int64)
    _, got = from_scaled(arr, scale)
    want = arr.astype(np.float64) / 10.0**scale if scale else arr.astype(np.float64)
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
    _, got32 = from_scaled(np.clip(arr, -(2**31), 2**31 - 1).astype(np.int32), scale)
    want32 = np.clip(arr, -(2**31), 2**31 - 1).astype(np.float64)
    want32 = want32 / 10.0**scale if scale else want32
    assert np.array_equal(got32.view(np.int64), want32.view(np.int64))


def test_nan_payloads_signs_and_subnormals_survive_bit_for_bit() -> None:
    bits = np.array([0x7FF8_0000_0000_0001, 0xFFF8_0000_DEAD_BEEF, 0x7FF0_0000_0000_0001,  # quiet, -quiet, signalling
                     0x8000_0000_0000_0000, 0x0000_0000_0000_0001, 0x7FF0_0000_0000_0000], dtype=np.uint64)
    odd = bits.view(np.float64)
    ts = [JAN_2024_US + i * MINUTE_US for i in range(odd.size)]
    table = _with(make_bars(ts), close=pa.array(odd), vwap=pa.array(odd))
    got = _round_trip(encode(table))
    for name in ("close", "vwap"):
        assert np.array_equal(np.asarray(got.column(name).to_numpy()).view(np.uint64), bits), name
