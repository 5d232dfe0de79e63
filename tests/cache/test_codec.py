"""Arrow IPC values: bar tables round-trip exactly, compressed or not, with their metadata."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.cache.codec import decode_table, encode_table
from tickvault.errors import CacheError
from tickvault.model import BAR_SCHEMA

prices = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def bar_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 40))
    ts = sorted(draw(st.lists(st.integers(0, 2**52), min_size=n, max_size=n, unique=True)))
    cols: list[pa.Array] = [pa.array(ts, pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
    for _name in ("open", "high", "low", "close", "volume", "vwap"):
        cols.append(pa.array(draw(st.lists(st.none() | prices, min_size=n, max_size=n)), pa.float64()))
    cols.append(pa.array(draw(st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)),
                         pa.int64()))
    providers = draw(st.lists(st.sampled_from(["yahoo", "user", "sim", "é/ü"]), min_size=n, max_size=n))
    cols.append(pa.array(providers, pa.string()).dictionary_encode().cast(BAR_SCHEMA.field("provider").type))
    return pa.Table.from_arrays(cols, schema=BAR_SCHEMA)


def _same(a: pa.Table, b: pa.Table) -> bool:
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        for u, v in zip(x, y, strict=True):
            both_nan = isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v)
            if u != v and not both_nan:
                return False
    return True


@given(bar_tables(), st.booleans(), st.dictionaries(st.text("abc_", min_size=1, max_size=5), st.text(max_size=5)))
def test_bar_tables_roundtrip(table: pa.Table, compress: bool, meta: dict[str, str]) -> None:
    back, got = decode_table(encode_table(table, meta, compress=compress))
    assert _same(back, table)
    assert got == meta


def test_compression_makes_large_values_smaller() -> None:
    n = 5_000
    ts = np.arange(n, dtype=np.int64) * 60_000_000
    close = np.round(100 + np.cumsum(np.sin(np.arange(n))), 2)
    table = pa.table({"ts": ts, "close": close, "volume": np.full(n, 1000.0)})
    assert len(encode_table(table, compress=True)) < len(encode_table(table)) / 2


def test_garbage_is_a_cache_error() -> None:
    with pytest.raises(CacheError):
        decode_table(b"not arrow at all")


def _arrow_compressed(table: pa.Table) -> bytes:
    """What earlier versions put in Redis: Arrow's per-buffer zstd compression."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


@given(bar_tables())
def test_values_of_earlier_versions_still_decode(table: pa.Table) -> None:
    back, meta = decode_table(_arrow_compressed(table))
    assert _same(back, table)
    assert meta == {}


def test_one_frame_is_smaller_than_per_buffer_compression() -> None:
    n = 500
    ts = (np.arange(n, dtype=np.int64) + 28_000_000) * 60_000_000
    close = np.round(100 + np.cumsum(np.sin(np.arange(n))), 2)
    table = pa.table({"ts": pa.array(ts).cast(BAR_SCHEMA.field("ts").type), "close": close,
                      "volume": np.full(n, 1000.0)})
    packed = encode_table(table, compress=True)
    assert packed[:4] == b"TVZ1"
    assert len(packed) < len(_arrow_compressed(table))


@pytest.mark.parametrize("cut", [2, 4, 11, 12, 20, -3])
def test_truncated_compressed_values_are_cache_errors(cut: int) -> None:
    packed = encode_table(pa.table({"x": np.arange(1_000)}), {"complete": "1"}, compress=True)
    with pytest.raises(CacheError):
        decode_table(packed[:cut])


def test_a_compressed_value_with_a_damaged_header_is_a_cache_error() -> None:
    packed = encode_table(pa.table({"x": np.arange(1_000)}), compress=True)
    for size in (0, 10, 1 << 40):
        with pytest.raises(CacheError):
            decode_table(b"TVZ1" + size.to_bytes(8, "little") + packed[12:])
