"""Numpy blocks whose rows are Arrow columns: a decoded table that a frame can wrap as is.

Why this exists: pandas keeps the float64 columns of a frame in one 2-D block of shape
``(columns, rows)``. A decoder that writes a table's float columns as separate Arrow
buffers makes every pandas conversion copy them all into such a block (for a symbol-year
of minute bars: 4.6 MB, ~1 ms with its page faults, a quarter of a cold read). A decoder
(the store's) can instead allocate one :class:`ColumnBlock` and write column ``i`` into
its row ``i``; the Arrow arrays it returns are views of those rows. A frame builder (the
engine's) then asks :func:`shared_rows` whether a table's columns are consecutive rows of
one block and, if so, wraps that block without copying.

The block is shared with whoever else holds the table (the store's cache of decoded
files), so a frame that wraps it must never write into it in place. The frame builder
keeps one guard object per block in :attr:`ColumnBlock.guard` (for pandas: a block that
references the same values, so its copy-on-write copies before any write while the
guard lives), and the guard lives exactly as long as the block is reachable from Arrow.

Contract of a row: its values are the column's values as numpy gives them
(``to_numpy(zero_copy_only=False)``: NaN where a float64 value is null), and
:attr:`ColumnBlock.nulls` holds the column's null count.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tickvault.model._memory import writable

__all__ = ["ColumnBlock", "shared_rows"]

_ARROW_TYPES = {np.dtype(np.float64): pa.float64(), np.dtype(np.int64): pa.int64()}
# Address of each live row -> (its block, weakly; the row number). A row's address can
# only be reused after its block is freed, and the entry goes when the block dies.
_ROWS: dict[int, tuple[weakref.ref[ColumnBlock], int]] = {}
_LOCK = threading.RLock()  # re-entrant: a weakref callback may run during a locked insert (GC)


class ColumnBlock:
    """A C-contiguous ``(rows, n)`` array whose rows back Arrow columns without a copy.

    Parameters
    ----------
    dtype
        ``numpy.float64`` or ``numpy.int64``.
    rows, n
        Number of columns held, and their length (``n > 0``).

    Attributes
    ----------
    values
        The block itself: row ``i`` is column ``i``. Written only by the code that
        allocated it, before it hands out :meth:`buffer` views; read-only after that.
    nulls
        Null count of each row's column (its values hold NaN there).
    guard
        Set once by a frame builder (under its own lock), see the module docstring.
    """

    __slots__ = ("__weakref__", "guard", "nulls", "values")

    def __init__(self, dtype: type[np.generic], rows: int, n: int) -> None:
        if np.dtype(dtype) not in _ARROW_TYPES:
            raise TypeError(f"ColumnBlock holds float64 or int64, not {np.dtype(dtype)}")
        if rows < 1 or n < 1:
            raise ValueError(f"a ColumnBlock needs at least one row and one value, not ({rows}, {n})")
        # Recycled memory (see tickvault.model._memory), not numpy's malloc: a decoded block
        # lives in the store's cache and is freed long after it was allocated, and memory
        # fresh from the kernel made every cold read pay its page faults and zeroing.
        width = np.dtype(dtype).itemsize
        self.values: np.ndarray = np.frombuffer(writable(rows * n * width), dtype=dtype).reshape(rows, n)
        self.nulls = [0] * rows
        self.guard: Any = None
        base, stride = self.values.ctypes.data, self.values.strides[0]
        addresses = [base + i * stride for i in range(rows)]
        ref = weakref.ref(self, lambda r: _forget(r, addresses))
        with _LOCK:
            for i, address in enumerate(addresses):
                _ROWS[address] = (ref, i)

    def buffer(self, row: int) -> pa.Buffer:
        """Row ``row`` as an Arrow buffer that keeps this block (and its guard) alive."""
        stride = self.values.strides[0]
        return pa.foreign_buffer(self.values.ctypes.data + row * stride, stride, base=self)

    def array(self, row: int, validity: pa.Buffer | None = None, null_count: int = 0) -> pa.Array[Any]:
        """Row ``row`` as an Arrow array of its type (``validity``: the column's bitmap)."""
        self.nulls[row] = null_count
        kind = _ARROW_TYPES[self.values.dtype]
        return pa.Array.from_buffers(kind, self.values.shape[1], [validity if null_count else None, self.buffer(row)],
                                     null_count)


def _forget(ref: weakref.ref[ColumnBlock], addresses: list[int]) -> None:
    with _LOCK:
        for address in addresses:
            entry = _ROWS.get(address)
            if entry is not None and entry[0] is ref:
                del _ROWS[address]


def shared_rows(arrays: Sequence[pa.Array[Any]]) -> tuple[ColumnBlock, np.ndarray] | None:
    """The block whose consecutive rows ``arrays`` are, and the 2-D view they make.

    ``arrays[i]`` must be row ``r + i`` of one live :class:`ColumnBlock` (any ``r``), all
    of the block's type and with the same offset and length; a column with nulls must be
    its whole row as decoded (same null count). Returns ``None`` otherwise (the caller
    copies). The view is writable numpy memory that others share: whoever wraps it
    must copy before writing, as long as :attr:`ColumnBlock.guard` says so.
    """
    if not arrays:
        return None
    found: list[tuple[ColumnBlock, int]] = []
    for arr in arrays:
        buffers = arr.buffers()
        if len(buffers) != 2 or buffers[1] is None:
            return None
        with _LOCK:
            entry = _ROWS.get(buffers[1].address)
        block = entry[0]() if entry is not None else None
        if block is None or entry is None:
            return None
        found.append((block, entry[1]))
    block, first = found[0]
    kind = _ARROW_TYPES[block.values.dtype]
    n = block.values.shape[1]
    offset, length = arrays[0].offset, len(arrays[0])
    if offset + length > n:
        return None
    for i, (arr, (other, row)) in enumerate(zip(arrays, found, strict=True)):
        if other is not block or row != first + i or arr.type != kind or arr.offset != offset or len(arr) != length:
            return None
        if arr.null_count and (arr.null_count != block.nulls[row] or offset or length != n):
            return None
    return block, block.values[first:first + len(arrays), offset:offset + length]
