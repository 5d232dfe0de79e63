"""Conversions at the edge of the engine: Arrow in, pandas / polars / Arrow out.

Arrow is the currency between layers; users get pandas by default (DESIGN §3: a UTC
``DatetimeIndex`` named ``ts`` for one symbol, a ``symbol`` column for several).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.errors import InvalidInput
from tickvault.model import ColumnBlock, shared_rows

__all__ = ["Format", "indexed_frame", "to_format"]

Format = Literal["pandas", "polars", "arrow"]

_NUMERIC = {pa.float64(): np.float64, pa.int64(): np.int64}
_ARROW_OF = {np.float64: pa.float64(), np.int64: pa.int64()}


def _blocks_constructor() -> Any:
    """pandas' ``create_dataframe_from_blocks`` (pandas >= 3.0), else ``None``."""
    try:
        module = importlib.import_module("pandas.api.internals")
    except ImportError:  # pragma: no cover - depends on the installed pandas
        return None
    return getattr(module, "create_dataframe_from_blocks", None)


_FROM_BLOCKS = _blocks_constructor()
_GUARD_LOCK = threading.Lock()


def _sharing_constructor() -> Callable[[list[tuple[Any, np.ndarray, ColumnBlock | None]], pd.Index, pd.Index],
                                        pd.DataFrame] | None:
    """A frame builder whose blocks may wrap a :class:`ColumnBlock` without a copy, or ``None``.

    A wrapped block is registered with pandas' copy-on-write references next to a guard
    block held by the :class:`ColumnBlock` (alive as long as any Arrow column of it is):
    while others can see the values, pandas copies the frame's block before its first
    write, as it does for any view; once they are gone the frame writes in place. This
    uses pandas internals (``new_block(..., refs=...)``, ``BlockManager``), so the
    builder checks on import that a write copies and leaves the shared values alone,
    and is ``None`` (every frame copies) if anything differs.
    """
    try:
        block_placement = importlib.import_module("pandas._libs.internals").BlockPlacement
        make_block = importlib.import_module("pandas.core.internals.api")._make_block
        new_block = importlib.import_module("pandas.core.internals.blocks").new_block
        block_manager = importlib.import_module("pandas.core.internals.managers").BlockManager
    except (ImportError, AttributeError):  # pragma: no cover - depends on the installed pandas
        return None

    def guard(owner: ColumnBlock) -> Any:
        with _GUARD_LOCK:
            if owner.guard is None:
                owner.guard = new_block(owner.values, block_placement(slice(0, owner.values.shape[0])), ndim=2)
            return owner.guard

    def build(blocks: list[tuple[Any, np.ndarray, ColumnBlock | None]], index: pd.Index,
              columns: pd.Index) -> pd.DataFrame:
        made = [make_block(values, places) if owner is None
                else new_block(values, block_placement(places), ndim=2, refs=guard(owner).refs)
                for values, places, owner in blocks]
        mgr = block_manager(made, [columns, index])
        return cast(pd.DataFrame, pd.DataFrame._from_mgr(mgr, mgr.axes))  # type: ignore[attr-defined]

    try:  # the contract, on a tiny block: a write copies first while the values are shared
        owner = ColumnBlock(np.float64, 2, 3)
        owner.values[:] = 1.0
        frame = build([(owner.values, np.arange(2, dtype=np.intp), owner)], pd.RangeIndex(3), pd.Index(["a", "b"]))
        frame.iloc[0, 0] = 2.0
        frame.loc[1, "b"] = 3.0
        sound = bool((owner.values == 1.0).all()) and frame.iloc[0, 0] == 2.0 and frame.iloc[1, 1] == 3.0
    except Exception:  # any failure of pandas internals means: do not share  # pragma: no cover
        return None
    return build if sound else None


_SHARE = _sharing_constructor()


def _tz_array_constructor() -> Callable[[np.ndarray, pd.DatetimeTZDtype], Any] | None:
    """Epoch integers as a tz-aware ``DatetimeArray`` without pandas' validation, or ``None``.

    ``pd.array(ints, dtype=...)`` infers and checks its input (0.15-0.4 ms of a cold
    read, mostly Python); ``DatetimeArray._simple_new`` wraps the integers as they are,
    which is what they are already (a null-free Arrow timestamp column). Private API, so
    it is used only if it gives the same array as ``pd.array`` on import.
    """
    try:
        simple_new = pd.arrays.DatetimeArray._simple_new  # type: ignore[attr-defined]

        def make(ints: np.ndarray, dtype: pd.DatetimeTZDtype) -> Any:
            return simple_new(ints.view(f"M8[{dtype.unit}]"), dtype=dtype)

        probe = np.array([0, 60_000_000, 1_700_000_000_000_000], dtype=np.int64)
        dtype = pd.DatetimeTZDtype("us", "UTC")
        got, want = make(probe, dtype), pd.array(probe, dtype=dtype, copy=False)
        sound = got.dtype == want.dtype and bool(got.equals(want)) and np.shares_memory(got.asi8, probe)
    except Exception:  # any difference in pandas internals: use pd.array  # pragma: no cover
        return None
    return make if sound else None


_TZ_ARRAY = _tz_array_constructor()
_CATEGORIES: dict[tuple[Any, ...], pd.CategoricalDtype] = {}  # small dictionaries seen (provider names)
_CATEGORIES_MAX = 256
_COLUMNS: dict[tuple[str, ...], pd.Index] = {}  # column labels seen (immutable, so shared by frames)
_COLUMNS_MAX = 64
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
    symbol-year of bars that was most of a warm read (2-8 ms on a busy machine). Here the
    float64 and int64 columns become one block per dtype, the ``ts`` index wraps the
    Arrow buffer without a copy (read-only, like any index), and dictionary columns reuse
    a pandas dtype built once per dictionary.

    Columns that the store decoded into the rows of one :class:`~tickvault.model.ColumnBlock`
    are not copied at all: the frame's block *is* the decoder's (4.6 MB and ~1 ms less
    for a symbol-year), registered with pandas' copy-on-write next to a guard that lives
    as long as any Arrow column of the block, so the frame's first write copies while the
    store's cache (or any table) can still see the values, and writes in place after.
    Integer columns with nulls (floats in pandas) then get a float64 block of their own.
    Other columns are copied once into one writable numpy block per dtype (numpy memory,
    not Arrow's pool: the pool hands freed pages back to the OS after a few ms, so a read
    after a pause paid ~150-200 page faults to touch them again).

    Parameters
    ----------
    table
        Any table with a ``ts`` column. The direct path takes a null-free UTC ``ts`` and
        float64, int64 and dictionary columns (bars); anything else (other types, pandas
        metadata, pandas < 3) goes through pyarrow.

    Returns
    -------
    pandas.DataFrame
        Identical to pyarrow's frame: values (bit for bit), dtypes, index, column labels;
        writable, and no write to it ever reaches ``table``.
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
    blocks: list[tuple[Any, np.ndarray, ColumnBlock | None]] = []
    for dtype, places in groups.items():
        if _SHARE is not None and places:
            # The group's columns of its own type (not ints with nulls, which become
            # floats) may be rows of the decoder's block: wrap them, copy the rest.
            kind = _ARROW_OF[dtype]
            typed = [i for i in places if schema.field(cols[i]).type == kind]
            shared = _shared(table, [cols[i] for i in typed]) if typed else None
            if shared is not None:
                blocks.append((shared[1], np.array(typed, dtype=np.intp), shared[0]))
                places = [i for i in places if i not in typed]
        if not places:
            continue
        block = np.empty((len(places), n), dtype=dtype)
        for row, i in enumerate(places):
            col = table.column(cols[i])
            if col.null_count:  # pyarrow's own conversion: NaN where null (ints become floats)
                block[row] = col.to_numpy()
            else:
                _column_values(col, block[row])
        blocks.append((block, np.array(places, dtype=np.intp), None))
    for i, name in enumerate(cols):
        if pa.types.is_dictionary(schema.field(name).type):
            blocks.append((_categorical(table.column(name)), np.array([i], dtype=np.intp), None))
    parts = [chunk.view(pa.int64()).to_numpy() for chunk in ts.chunks]
    # Epoch integers as a tz-aware array (pyarrow's own route): no copy, no localisation
    # pass; DatetimeIndex(M8 values, dtype=...) read them as wall times and copied them.
    tz_dtype = _TZ_DTYPES.get(ts_type)
    if tz_dtype is None:
        tz_dtype = _TZ_DTYPES.setdefault(ts_type, cast(pd.DatetimeTZDtype, ts_type.to_pandas_dtype()))
    epochs = parts[0] if len(parts) == 1 else np.concatenate(parts)
    values = _TZ_ARRAY(epochs, tz_dtype) if _TZ_ARRAY is not None else pd.array(epochs, dtype=tz_dtype, copy=False)
    index = pd.DatetimeIndex(values, name="ts", copy=False)
    columns = _columns_index(cols)
    if _SHARE is not None and any(owner is not None for _, _, owner in blocks):
        return _SHARE(blocks, index, columns)
    frame: pd.DataFrame = _FROM_BLOCKS([(values, places) for values, places, _ in blocks], index=index,
                                       columns=columns)
    return frame


def _columns_index(cols: list[str]) -> pd.Index:
    """``pd.Index(cols)``, built once per list of names (string indexes cost ~50 µs)."""
    key = tuple(cols)
    index = _COLUMNS.get(key)
    if index is None:
        if len(_COLUMNS) >= _COLUMNS_MAX:
            _COLUMNS.clear()
        index = _COLUMNS.setdefault(key, pd.Index(cols))
    return index


def _shared(table: pa.Table, names: list[str]) -> tuple[ColumnBlock, np.ndarray] | None:
    """The :class:`ColumnBlock` whose consecutive rows are these columns, and their view.

    Only for a frame of at least half the block's rows: a small slice (the latest 500
    bars of a year) is cheap to copy and should not keep the whole block alive.
    """
    arrays: list[pa.Array[Any]] = []
    for name in names:
        col = table.column(name)
        if col.num_chunks != 1:
            return None
        arrays.append(cast("pa.Array[Any]", col.chunk(0)))
    found = shared_rows(arrays)
    if found is None or 2 * found[1].shape[1] < found[0].values.shape[1]:
        return None
    return found


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
