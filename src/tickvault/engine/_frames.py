"""Conversions at the edge of the engine: Arrow in, pandas / polars / Arrow out.

Arrow is the currency between layers; users get pandas by default (DESIGN §3: a UTC
``DatetimeIndex`` named ``ts`` for one symbol, a ``symbol`` column for several).
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.errors import InvalidInput

__all__ = ["Format", "indexed_frame", "to_format"]

Format = Literal["pandas", "polars", "arrow"]

_NUMERIC = {pa.float64(): np.float64, pa.int64(): np.int64}


def _blocks_constructor() -> Any:
    """pandas' ``create_dataframe_from_blocks`` (pandas >= 3.0), else ``None``."""
    try:
        module = importlib.import_module("pandas.api.internals")
    except ImportError:  # pragma: no cover - depends on the installed pandas
        return None
    return getattr(module, "create_dataframe_from_blocks", None)


_FROM_BLOCKS = _blocks_constructor()
_CATEGORIES: dict[tuple[Any, ...], pd.CategoricalDtype] = {}  # small dictionaries seen (provider names)
_CATEGORIES_MAX = 256
_TZ_DTYPES: dict[Any, pd.DatetimeTZDtype] = {}  # per Arrow timestamp type (pyarrow builds a new one each time)


def _categorical(col: pa.ChunkedArray[Any]) -> Any:
    """A dictionary column as pandas ``Categorical`` (what pyarrow's conversion returns).

    One chunk with a small dictionary of strings reuses the dtype built for the same dictionary
    before (dtypes are immutable; building one costs more than the codes); anything else
    is converted by pyarrow.
    """
    chunk = cast("pa.DictionaryArray[Any, Any]", col.chunk(0))
    # (An empty dictionary is left to pyarrow too: its categories are then of object dtype.)
    if col.num_chunks != 1 or not 0 < len(chunk.dictionary) <= 16 or not pa.types.is_string(chunk.type.value_type):
        return col.to_pandas().array
    key = (str(chunk.type), *chunk.dictionary.to_pylist())
    dtype = _CATEGORIES.get(key)
    if dtype is None:
        dtype = pd.CategoricalDtype(chunk.dictionary.to_pandas(), ordered=chunk.type.ordered)
        if len(_CATEGORIES) >= _CATEGORIES_MAX:
            _CATEGORIES.clear()
        _CATEGORIES[key] = dtype
    indices = chunk.indices
    codes = (indices.fill_null(-1) if indices.null_count else indices).to_numpy()
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _column_values(col: pa.ChunkedArray[Any], out: np.ndarray) -> None:
    """Copy a null-free float64/int64 column into ``out`` (one row of a block)."""
    dtype = out.dtype
    pos = 0
    for chunk in col.chunks:
        m = len(chunk)
        data = chunk.buffers()[1]
        assert data is not None
        out[pos:pos + m] = np.frombuffer(memoryview(data), dtype=dtype, count=chunk.offset + m)[chunk.offset:]
        pos += m


def indexed_frame(table: pa.Table) -> pd.DataFrame:
    """``table.to_pandas().set_index("ts")``, built directly when the columns allow it.

    pyarrow's conversion wakes its thread pool and then consolidates the columns: for a
    symbol-year of bars that was most of a warm read (2-8 ms on a busy machine; this
    takes ~0.3-0.5 ms). Here the float64 and int64 columns are copied once into one
    writable numpy block per dtype, the ``ts`` index wraps the Arrow buffer without a
    copy (read-only, like any index), and dictionary columns reuse a pandas dtype built
    once per dictionary. The blocks are numpy memory, not Arrow's pool: the pool hands
    freed pages back to the OS after a few ms, so a read after a pause paid ~150-200 page
    faults to touch them again, while the C heap keeps them.

    Parameters
    ----------
    table
        Any table with a ``ts`` column. The direct path takes a null-free UTC ``ts`` and
        float64, int64 and dictionary columns (bars); anything else (other types, pandas
        metadata, pandas < 3) goes through pyarrow.

    Returns
    -------
    pandas.DataFrame
        Identical to pyarrow's frame: values (bit for bit), dtypes, index, column labels,
        block layout; writable, and sharing no writable memory with ``table``.
    """
    fast = _fast_frame(table) if _FROM_BLOCKS is not None else None
    if fast is not None:
        return fast
    df = table.to_pandas()
    return df.set_index("ts") if "ts" in df.columns else df


def _fast_frame(table: pa.Table) -> pd.DataFrame | None:
    schema = table.schema
    n = table.num_rows
    names = schema.names
    if (n == 0 or "ts" not in names or len(set(names)) != len(names)
            or (schema.metadata and b"pandas" in schema.metadata)):
        return None
    ts_type = schema.field("ts").type
    ts = table.column("ts")
    # UTC only (bars are always UTC): other zones go through pyarrow.
    if not (pa.types.is_timestamp(ts_type) and ts_type.tz == "UTC") or ts.null_count:
        return None
    cols = [c for c in names if c != "ts"]
    groups: dict[Any, list[int]] = {np.float64: [], np.int64: []}
    for i, name in enumerate(cols):
        t = schema.field(name).type
        if t in _NUMERIC:
            nulls = table.column(name).null_count
            groups[np.float64 if nulls else _NUMERIC[t]].append(i)
        elif not pa.types.is_dictionary(t):
            return None
    blocks: list[tuple[Any, np.ndarray]] = []
    for dtype, places in groups.items():
        if not places:
            continue
        block = np.empty((len(places), n), dtype=dtype)
        for row, i in enumerate(places):
            col = table.column(cols[i])
            if col.null_count:  # pyarrow's own conversion: NaN where null (ints become floats)
                block[row] = col.to_numpy()
            else:
                _column_values(col, block[row])
        blocks.append((block, np.array(places, dtype=np.intp)))
    for i, name in enumerate(cols):
        if pa.types.is_dictionary(schema.field(name).type):
            blocks.append((_categorical(table.column(name)), np.array([i], dtype=np.intp)))
    parts = [chunk.view(pa.int64()).to_numpy() for chunk in ts.chunks]
    # Epoch integers as a tz-aware array (pyarrow's own route): no copy, no localisation
    # pass; DatetimeIndex(M8 values, dtype=...) read them as wall times and copied them.
    tz_dtype = _TZ_DTYPES.get(ts_type)
    if tz_dtype is None:
        tz_dtype = _TZ_DTYPES.setdefault(ts_type, cast(pd.DatetimeTZDtype, ts_type.to_pandas_dtype()))
    values = pd.array(parts[0] if len(parts) == 1 else np.concatenate(parts), dtype=tz_dtype, copy=False)
    index = pd.DatetimeIndex(values, name="ts", copy=False)
    frame: pd.DataFrame = _FROM_BLOCKS(blocks, index=index, columns=pd.Index(cols))
    return frame


def to_format(table: pa.Table, fmt: str, *, index: bool = True) -> Any:
    """Return ``table`` as pandas (default), polars or Arrow.

    Parameters
    ----------
    table
        Bars (or any table with a ``ts`` column).
    fmt
        ``"pandas"``, ``"polars"`` or ``"arrow"``.
    index
        For pandas, make ``ts`` the index (one-symbol frames).

    Raises
    ------
    InvalidInput
        For an unknown format, or polars requested but not installed.
    """
    if fmt == "arrow":
        return table
    if fmt == "pandas":
        if index and "ts" in table.column_names:
            return indexed_frame(table)
        return table.to_pandas()
    if fmt == "polars":
        try:
            import polars as pl
        except ImportError:  # pragma: no cover - depends on the environment
            raise InvalidInput("format='polars' needs polars: pip install 'tickvault[polars]'") from None
        return pl.from_arrow(table)
    raise InvalidInput(f"unknown format {fmt!r}; use 'pandas', 'polars' or 'arrow'")


def empty_like_index() -> pd.DatetimeIndex:
    """An empty UTC index named ``ts``."""
    return pd.DatetimeIndex([], tz="UTC", name="ts")
