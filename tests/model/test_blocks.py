"""ColumnBlock / shared_rows: which Arrow columns are rows of a decoder's block, and when not."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
import pytest

from tickvault.model import ColumnBlock, _blocks, shared_rows


def _block(rows: int = 3, n: int = 10) -> tuple[ColumnBlock, list[pa.Array]]:
    block = ColumnBlock(np.float64, rows, n)
    block.values[:] = np.arange(rows * n, dtype=np.float64).reshape(rows, n)
    return block, [block.array(i) for i in range(rows)]


def test_rows_are_zero_copy_arrow_columns() -> None:
    block, arrays = _block()
    for i, arr in enumerate(arrays):
        assert arr.type == pa.float64()
        assert np.array_equal(arr.to_numpy(), block.values[i])
        assert np.shares_memory(np.frombuffer(arr.buffers()[1], dtype=np.float64), block.values)
    found = shared_rows(arrays)
    assert found is not None
    assert found[0] is block
    assert found[1].shape == (3, 10)
    assert np.shares_memory(found[1], block.values)
    sub = shared_rows(arrays[1:])
    assert sub is not None
    assert np.array_equal(sub[1], block.values[1:])


def test_slices_share_only_when_aligned() -> None:
    block, arrays = _block()
    sliced = [a.slice(2, 5) for a in arrays]
    found = shared_rows(sliced)
    assert found is not None
    assert np.array_equal(found[1], block.values[:, 2:7])
    assert shared_rows([arrays[0].slice(2, 5), arrays[1].slice(3, 5)]) is None  # different offsets
    assert shared_rows([arrays[0].slice(2, 5), arrays[1].slice(2, 4)]) is None  # different lengths


def test_not_consecutive_or_foreign_columns_are_not_shared() -> None:
    _, arrays = _block()
    assert shared_rows([arrays[1], arrays[0]]) is None  # out of order
    assert shared_rows([arrays[0], arrays[2]]) is None  # a gap
    _, others = _block()
    assert shared_rows([arrays[0], others[1]]) is None  # two blocks
    assert shared_rows([pa.array([1.0, 2.0])]) is None  # not a block at all
    assert shared_rows([arrays[0].view(pa.int64())]) is None  # same memory, another type
    assert shared_rows([]) is None


def test_nulls_share_only_as_decoded() -> None:
    block = ColumnBlock(np.float64, 1, 8)
    block.values[0] = [1.0, np.nan, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    validity = pa.array([True, False] + [True] * 6).buffers()[1]
    arr = block.array(0, validity, 1)
    assert arr.null_count == 1
    assert shared_rows([arr]) is not None
    assert shared_rows([arr.slice(1)]) is None  # a slice of a column with nulls: copied
    other = pa.Array.from_buffers(pa.float64(), 8, [pa.array([False] * 8).buffers()[1], arr.buffers()[1]], 8)
    assert shared_rows([other]) is None  # the same values under other nulls


def test_registry_forgets_dead_blocks() -> None:
    block, arrays = _block(4, 16)
    addresses = [block.values.ctypes.data + i * block.values.strides[0] for i in range(4)]
    assert all(_blocks._ROWS[a][0]() is block for a in addresses)
    table = pa.table({"a": arrays[0]})
    del block, arrays
    gc.collect()
    assert all(a in _blocks._ROWS for a in addresses)  # the table's column keeps the block alive
    assert shared_rows([table.column("a").chunk(0)]) is not None
    del table
    gc.collect()
    assert not any(a in _blocks._ROWS for a in addresses)


def test_rejects_bad_shapes_and_types() -> None:
    with pytest.raises(TypeError, match="float64 or int64"):
        ColumnBlock(np.int32, 1, 4)
    with pytest.raises(ValueError, match="at least one row"):
        ColumnBlock(np.float64, 0, 4)
    with pytest.raises(ValueError, match="at least one row"):
        ColumnBlock(np.float64, 1, 0)
    block = ColumnBlock(np.int64, 1, 3)
    block.values[0] = [1, 2, 3]
    assert block.array(0).type == pa.int64()
    assert shared_rows([block.array(0)]) is not None
