"""The pandas frame of a read: the direct conversion equals pyarrow's, value for value.

``indexed_frame`` builds ``table.to_pandas().set_index("ts")`` itself (one block per
dtype, no thread pool); these tests compare it with pyarrow's conversion on random
tables (nulls, NaN, -0.0, chunked and sliced columns, dictionaries) and on a store read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.engine._frames import indexed_frame, to_format
from tickvault.model import BAR_SCHEMA
from tickvault.store.local import LocalStore

_SPECIAL = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e300, 5e-324]


def _reference(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    return df.set_index("ts") if "ts" in df.columns else df


def _same(got: pd.DataFrame, table: pa.Table) -> None:
    want = _reference(table)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.columns.equals(want.columns)
    assert got.columns.dtype == want.columns.dtype
    assert got.index.dtype == want.index.dtype
    assert got.index.name == want.index.name
    for name in got.columns:
        a, b = got[name].to_numpy(), want[name].to_numpy()
        assert a.dtype == b.dtype, name
        if a.dtype.kind in "fi":  # bit for bit: -0.0 and NaN payloads included
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), name


@st.composite
def _tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 60))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_SPECIAL))
    cols: dict[str, Any] = {}
    ts = sorted(draw(st.lists(st.integers(0, 2**50), min_size=n, max_size=n, unique=True)))
    ts_nulls = draw(st.booleans()) and n > 0 and draw(st.integers(0, 9)) == 0
    cols["ts"] = pa.array([None if ts_nulls and i == 0 else v for i, v in enumerate(ts)], pa.timestamp("us", tz="UTC"))
    for name in ("open", "close", "vwap"):
        nulls = draw(st.booleans())
        vals = draw(st.lists(floats, min_size=n, max_size=n))
        cols[name] = pa.array([None if nulls and i % 3 == 0 else v for i, v in enumerate(vals)], pa.float64())
    ints = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
    int_nulls = draw(st.booleans())
    cols["trade_count"] = pa.array([None if int_nulls and i % 4 == 1 else v for i, v in enumerate(ints)], pa.int64())
    prov = draw(st.lists(st.sampled_from(["sim", "alpha", None]), min_size=n, max_size=n))
    cols["provider"] = pa.array(prov, pa.string()).dictionary_encode()
    if draw(st.booleans()):
        cols["note"] = pa.array([str(i) for i in range(n)])  # a type the direct path leaves to pyarrow
    names = list(cols)
    order = draw(st.permutations(names))
    table = pa.table({k: cols[k] for k in order})
    if n > 2 and draw(st.booleans()):  # several chunks, one of them sliced
        cut = draw(st.integers(1, n - 1))
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    if n > 2 and draw(st.booleans()):
        table = table.slice(1)
    return table


@settings(max_examples=200, deadline=None)
@given(_tables())
def test_direct_frame_equals_pyarrow(table: pa.Table) -> None:
    _same(indexed_frame(table), table)


def test_store_read_frame_is_pyarrow_frame_and_writable(tmp_path: Path) -> None:
    n = 5000
    ts = np.arange(n, dtype=np.int64) * 60_000_000 + 1_700_000_000_000_000
    rng = np.random.default_rng(7)
    px = np.round(100 + rng.normal(0, 1, n).cumsum(), 2)
    table = pa.table({
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "open": px, "high": px + 0.5, "low": px - 0.5, "close": px,
        "volume": rng.integers(0, 10_000, n).astype(np.float64),
        "vwap": pa.array([None if i % 7 == 0 else float(v) for i, v in enumerate(px)], pa.float64()),
        "trade_count": pa.array(rng.integers(0, 500, n), pa.int64()),
        "provider": pa.array(["sim"] * n).dictionary_encode(),
    }).cast(BAR_SCHEMA)
    with LocalStore(tmp_path / "s", durable=False) as store:
        store.write("AAA", "1m", table)
        got = store.read("AAA", "1m")
        frame = to_format(got, "pandas")
        _same(frame, got)
        frame.iloc[0, 0] = -1.0  # a writable frame, like pyarrow's ...
        frame.iloc[1, frame.columns.get_loc("trade_count")] = -1
        again = store.read("AAA", "1m")  # ... whose writes never reach the store's cache
        assert again.equals(table)
        _same(to_format(again, "pandas"), table)


def test_ts_index_wraps_the_arrow_buffer() -> None:
    """The UTC index of a one-chunk ``ts`` is the table's buffer itself (no copy), read-only."""
    ts = np.arange(1000, dtype=np.int64) * 60_000_000 + 1_700_000_000_000_000
    table = pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC")), "close": np.linspace(1.0, 2.0, 1000)})
    frame = indexed_frame(table)
    _same(frame, table)
    stored = np.frombuffer(table.column("ts").chunk(0).buffers()[1], dtype=np.int64)
    assert np.shares_memory(frame.index.asi8, stored)
    assert not frame.index.asi8.flags.writeable
    frame.iloc[0, 0] = -1.0  # the value block is the frame's own
    assert table.column("close")[0].as_py() == 1.0


@pytest.mark.parametrize("index", [True, False])
def test_to_format_without_ts_or_index(index: bool) -> None:
    table = pa.table({"symbol": ["A", "B"], "close": [1.0, 2.0]})
    pd.testing.assert_frame_equal(to_format(table, "pandas", index=index), table.to_pandas())
    with_ts = pa.table({"ts": pa.array([1, 2], pa.timestamp("us", tz="UTC")), "close": [1.0, 2.0]})
    want = with_ts.to_pandas()
    pd.testing.assert_frame_equal(to_format(with_ts, "pandas", index=index), want.set_index("ts") if index else want)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "+02:00"])
def test_direct_frame_other_units_and_zones(unit: str, tz: str) -> None:
    table = pa.table({
        "close": [1.5, -0.0, float("nan")],
        "ts": pa.array([0, 1_000, 2_000], pa.timestamp(unit, tz=tz)),
        "provider": pa.array(["b", "a", "b"]).dictionary_encode(),
        "trade_count": pa.array([1, None, 3], pa.int64()),
    })
    _same(indexed_frame(table), table)


def _bars(n: int, *, seed: int = 3, vwap_nulls: bool = False, counts: bool = True) -> pa.Table:
    ts = np.arange(n, dtype=np.int64) * 60_000_000 + 1_700_000_000_000_000
    rng = np.random.default_rng(seed)
    px = np.round(100 + rng.normal(0, 1, n).cumsum(), 2)
    vwap = np.round(px + 0.001, 4)
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "open": px, "high": px + 0.5, "low": px - 0.5, "close": px,
        "volume": rng.integers(0, 10_000, n).astype(np.float64),
        "vwap": pa.array(vwap, mask=(np.arange(n) % 5 == 0) if vwap_nulls else None),
        "trade_count": pa.array(rng.integers(0, 500, n), pa.int64()) if counts else pa.nulls(n, pa.int64()),
        "provider": pa.array(["sim"] * n).dictionary_encode(),
    }).cast(BAR_SCHEMA)


def _buffer(table: pa.Table, name: str) -> np.ndarray:
    chunk = table.column(name).chunk(0)
    return np.frombuffer(chunk.buffers()[1], dtype=chunk.type.to_pandas_dtype())


def test_decoded_read_frame_wraps_the_store_block_and_copies_on_write(tmp_path: Path) -> None:
    """A decoded file's frame wraps the decoder's block; a write copies it first (the cache shares it)."""
    table = _bars(20_000)  # bigger than a file kept as written: this read decodes
    with LocalStore(tmp_path / "s", durable=False) as store:
        store.write("AAA", "1m", table)
        store = LocalStore(tmp_path / "s", durable=False)  # a fresh handle: nothing cached yet
        got = store.read("AAA", "1m")
        frame = to_format(got, "pandas")
        _same(frame, got)
        assert np.shares_memory(frame["open"].to_numpy(), _buffer(got, "open"))  # no copy ...
        assert np.shares_memory(frame["trade_count"].to_numpy(), _buffer(got, "trade_count"))
        warm = to_format(store.read("AAA", "1m"), "pandas")  # the cached table: no copy either
        assert np.shares_memory(warm["close"].to_numpy(), _buffer(got, "close"))
        frame.iloc[0, 0] = -1.0  # ... but a write copies first
        frame.iloc[1, frame.columns.get_loc("trade_count")] = -7
        frame.loc[frame.index[2], "vwap"] = 1e9
        assert frame.iloc[0, 0] == -1.0
        assert frame["trade_count"].iloc[1] == -7
        assert frame["vwap"].iloc[2] == 1e9
        assert got.equals(table)
        assert store.read("AAA", "1m").equals(table)
        _same(warm, table)
        warm.iloc[:, :5] = 0.0
        _same(to_format(store.read("AAA", "1m"), "pandas"), table)
        assert frame.iloc[0, 0] == -1.0
        assert frame.iloc[3, 0] == table.column("open")[3].as_py()
        store.close()


def test_frame_writes_in_place_once_nothing_else_holds_the_block(tmp_path: Path) -> None:
    table = _bars(20_000)
    with LocalStore(tmp_path / "s", durable=False, cache_bytes=0) as store:
        store.write("AAA", "1m", table)
        frame = to_format(store.read("AAA", "1m"), "pandas")  # the table is gone at once
        before = frame["open"].to_numpy()
        frame.iloc[0, 0] = -1.0
        assert frame.iloc[0, 0] == -1.0
        assert np.shares_memory(frame["open"].to_numpy(), before)  # no copy was needed
        _same(frame.iloc[1:], table.slice(1))


@pytest.mark.parametrize(("vwap_nulls", "counts"), [(True, True), (False, False), (True, False)])
def test_decoded_frames_with_nulls_equal_pyarrow(tmp_path: Path, vwap_nulls: bool, counts: bool) -> None:
    """NaN where pyarrow has nulls: partly null vwap, all-null trade_count (a float column then)."""
    table = _bars(12_000, vwap_nulls=vwap_nulls, counts=counts)
    with LocalStore(tmp_path / "s", durable=False, cache_bytes=0) as store:
        store.write("AAA", "1m", table)
        got = store.read("AAA", "1m")
        assert got.equals(table)
        frame = to_format(got, "pandas")
        _same(frame, table)
        _same(to_format(store.read("AAA", "1m", start_us=1_700_000_600_000_000), "pandas"),
              table.slice(10))  # a slice of the block
        frame.iloc[0, :6] = 0.0
        assert got.equals(table)


def test_a_small_slice_is_copied_not_pinning_the_block(tmp_path: Path) -> None:
    table = _bars(20_000)
    with LocalStore(tmp_path / "s", durable=False) as store:
        store.write("AAA", "1m", table)
        store = LocalStore(tmp_path / "s", durable=False)
        whole = store.read("AAA", "1m")
        latest = store.latest("AAA", "1m", 500)
        frame = to_format(latest, "pandas")
        _same(frame, table.slice(19_500))
        assert not np.shares_memory(frame["open"].to_numpy(), _buffer(whole, "open"))
        most = to_format(whole.slice(5_000), "pandas")
        assert np.shares_memory(most["open"].to_numpy(), _buffer(whole, "open"))
        _same(most, table.slice(5_000))
        store.close()


_WRITES = {
    "series *=": lambda df: df.__setitem__("open", df["open"] * 2),
    "loc column": lambda df: df.loc.__setitem__((slice(None), "close"), 0.0),
    "at": lambda df: df.at.__setitem__((df.index[5], "low"), 3.0),
    "fillna inplace": lambda df: df.fillna(0.0, inplace=True),
    "replace inplace": lambda df: df.replace(df["high"].iloc[0], -5.0, inplace=True),
    "update": lambda df: df.update(df[["volume"]] + 1),
    "column inplace op": lambda df: df["vwap"].__imul__(2),
}


@pytest.mark.parametrize("write", sorted(_WRITES))
def test_no_frame_write_reaches_the_shared_block(tmp_path: Path, write: str) -> None:
    table = _bars(12_000)
    with LocalStore(tmp_path / "s", durable=False) as store:
        store.write("AAA", "1m", table)
        store = LocalStore(tmp_path / "s", durable=False)
        got = store.read("AAA", "1m")
        frame = to_format(got, "pandas")
        assert np.shares_memory(frame["open"].to_numpy(), _buffer(got, "open"))
        _WRITES[write](frame)
        assert got.equals(table)
        assert store.read("AAA", "1m").equals(table)
        store.close()
