"""Arrow <-> PostgreSQL binary wire formats, vectorised with numpy.

Writes use binary ``COPY``: a 19-byte header, then per row a 16-bit field count and, per
field, a 32-bit length and the value in network byte order, then a 16-bit ``-1``. When
every field of a row is fixed-width and not NULL, all rows have the same size and a
whole batch is one numpy structured array with big-endian fields: no per-row Python.
Two layouts use this:

- *direct*: the bars table's own columns, for batches whose nullable columns are each
  either all NULL (left out of the column list) or all present;
- *staging*: every value column plus a ``nulls`` bit mask (bit ``i`` set: column
  ``NULLABLE[i]`` is NULL) and the provider id (``-1`` for none), for everything else.

Reads use one ``array_agg`` per column in binary (fixed-width elements, NULLs again as a
bit mask), which arrive as a handful of large buffers instead of one libpq message per
row. Timestamps travel as microseconds since 2000-01-01 UTC, float8 as its IEEE-754
bits, so every value (NaN, -0.0, infinities, subnormals) round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA

__all__ = [
    "ARRAY_COLUMNS",
    "NULLABLE",
    "PG_EPOCH_US",
    "STAGE_COLUMNS",
    "decode_arrays",
    "direct_columns",
    "encode_copy",
    "provider_codes",
    "stage_columns",
]

#: Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01 (UTC).
PG_EPOCH_US = 946_684_800_000_000
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_CHUNK_ROWS = 1 << 17  # ~13 MB of wire data per write() call: bounded memory, few calls

#: Columns whose NULLs travel in the ``nulls`` bit mask, in bit order.
NULLABLE = ("open", "high", "low", "close", "volume", "vwap", "trade_count")
_FLOATS = ("open", "high", "low", "close", "volume", "vwap")
_WIRE: dict[str, str] = {"series_id": ">i4", "provider_id": ">i2", "ts": ">i8", **{c: ">f8" for c in _FLOATS},
                         "trade_count": ">i8", "nulls": ">i2"}
#: Staging table column order.
STAGE_COLUMNS = ("ts", *_FLOATS, "trade_count", "provider_id", "nulls")
#: Column order of the read query's arrays.
ARRAY_COLUMNS = STAGE_COLUMNS

Column = tuple[str, np.ndarray]


def provider_codes(table: pa.Table) -> tuple[list[str | None], np.ndarray]:
    """Split the ``provider`` column into its distinct names and per-row indices.

    Returns
    -------
    names, indices
        ``names[indices[i]]`` is row ``i``'s provider; ``indices`` is ``-1`` where the
        provider is NULL. ``names`` may contain ``None`` (a NULL dictionary entry).
    """
    col = table.column("provider")
    if not pa.types.is_dictionary(col.type):
        col = col.cast(pa.string()).dictionary_encode()
    arr = col.unify_dictionaries().combine_chunks() if col.num_chunks > 1 else col.combine_chunks()
    if not isinstance(arr, pa.DictionaryArray):
        raise SchemaError(f"provider column must be dictionary-encoded strings, got {arr.type}")
    names: list[str | None] = arr.dictionary.cast(pa.string()).to_pylist()
    idx = np.asarray(arr.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return names, idx


def _values(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Column values (NULLs as 0) and the NULL mask (``None`` when there are no NULLs)."""
    col = table.column(name)
    dtype = np.int64 if name == "trade_count" else np.float64
    if not col.null_count:
        return np.asarray(col.to_numpy(), dtype=dtype), None
    mask = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    filled = col.fill_null(pa.scalar(0, col.type))
    return np.asarray(filled.to_numpy(), dtype=dtype), mask


def _pg_ts(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64) - PG_EPOCH_US


def stage_columns(table: pa.Table, provider_ids: np.ndarray) -> list[Column]:
    """The staging layout of a BAR_SCHEMA table (see the module docstring)."""
    cols: list[Column] = [("ts", _pg_ts(table))]
    nulls = np.zeros(table.num_rows, dtype=np.int16)
    for bit, name in enumerate(NULLABLE):
        values, mask = _values(table, name)
        cols.append((name, values))
        if mask is not None:
            nulls |= mask.astype(np.int16) << bit
    return [*cols, ("provider_id", provider_ids), ("nulls", nulls)]


def direct_columns(table: pa.Table, series_id: int, provider_ids: np.ndarray) -> list[Column] | None:
    """The bars-table layout, or ``None`` when some column is only partly NULL."""
    n = table.num_rows
    cols: list[Column] = [("series_id", np.full(n, series_id, dtype=np.int32))]
    missing = provider_ids < 0
    if missing.all():
        pass
    elif missing.any():
        return None
    else:
        cols.append(("provider_id", provider_ids))
    cols.append(("ts", _pg_ts(table)))
    for name in NULLABLE:
        col = table.column(name)
        if col.null_count == n:
            continue
        if col.null_count:
            return None
        cols.append((name, _values(table, name)[0]))
    return cols


def encode_copy(columns: Sequence[Column]) -> Iterator[bytes]:
    """Yield the binary COPY stream (header, rows, trailer) of NULL-free fixed-width columns.

    Rows are encoded one chunk at a time, so the server is already inserting the first
    chunk while the next one is being built.
    """
    n = columns[0][1].size if columns else 0
    dtype = np.dtype([("nfields", ">i2")] + [x for name, _ in columns
                                              for x in ((f"len_{name}", ">i4"), (name, _WIRE[name]))])
    yield _SIGNATURE
    rows = np.empty(min(n, _CHUNK_ROWS), dtype=dtype)
    rows["nfields"] = len(columns)
    for name, _ in columns:
        rows[f"len_{name}"] = np.dtype(_WIRE[name]).itemsize
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(n, start + _CHUNK_ROWS)
        chunk = rows[: stop - start]
        for name, values in columns:
            chunk[name] = values[start:stop]
        yield chunk.tobytes()
    yield _TRAILER


def read_columns_sql(alias: str) -> list[str]:
    """SELECT expressions producing :data:`ARRAY_COLUMNS` (NULL-free) from a bars table.

    ``alias`` is a fixed identifier from this package, never user input.
    """
    p = f"{alias}."
    parts = [f"{p}ts"]
    parts += [f"coalesce({p}{c}, 0)" for c in _FLOATS]
    parts += [f"coalesce({p}trade_count, 0)", f"coalesce({p}provider_id, -1)::int2"]
    bits = " | ".join(f"(({p}{c} IS NULL)::int << {i})" for i, c in enumerate(NULLABLE))
    parts.append(f"({bits})::int2")
    return parts


def _array(buf: bytes | None, wire: str) -> np.ndarray:
    """Values of a one-dimensional binary PostgreSQL array without NULL elements."""
    if buf is None:
        return np.zeros(0, dtype=wire)
    header = np.frombuffer(buf, dtype=">i4", count=3)
    ndim = int(header[0])
    if ndim == 0:
        return np.zeros(0, dtype=wire)
    if ndim != 1 or int(header[1]) != 0:
        raise SchemaError("unexpected array in PostgreSQL result (dimensions or NULLs)")
    count = int(np.frombuffer(buf, dtype=">i4", count=1, offset=12)[0])
    elems = np.frombuffer(buf, dtype=np.dtype([("len", ">i4"), ("v", wire)]), count=count, offset=20)
    return elems["v"]


def decode_arrays(arrays: Sequence[bytes | None], providers: Callable[[int], Sequence[str | None]]) -> pa.Table:
    """Build a BAR_SCHEMA table from the binary arrays of :func:`read_columns_sql`.

    Parameters
    ----------
    arrays
        One raw binary array per :data:`ARRAY_COLUMNS` entry (``None`` for no rows).
    providers
        Given the largest provider id present, returns provider names indexed by id.

    Raises
    ------
    SchemaError
        If the arrays do not have the expected shape (a bug or a foreign schema).
    """
    cols = {name: _array(buf, _WIRE[name]) for name, buf in zip(ARRAY_COLUMNS, arrays, strict=True)}
    if len({v.size for v in cols.values()}) > 1:
        raise SchemaError("PostgreSQL returned arrays of different lengths")
    nulls = cols["nulls"].astype(np.int16)
    out: list[Any] = [pa.array(cols["ts"].astype(np.int64) + PG_EPOCH_US, pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
    for bit, name in enumerate(NULLABLE):
        values = cols[name].astype(np.int64 if name == "trade_count" else np.float64)
        mask = (nulls & (1 << bit)) != 0
        out.append(pa.array(values, mask=mask) if mask.any() else pa.array(values))
    ids = cols["provider_id"].astype(np.int64)
    out.append(_provider_array(ids, providers(int(ids.max()) if ids.size else 0)))
    return pa.Table.from_arrays(out, schema=BAR_SCHEMA)


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate decoded chunks into one single-chunk table."""
    if not tables:
        return BAR_SCHEMA.empty_table()
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


def _provider_array(ids: np.ndarray, providers: Sequence[str | None]) -> pa.Array[Any]:
    # The dictionary holds the providers present, in order of first appearance: what
    # Arrow's dictionary_encode (and so MemoryStore) builds, so even Table.equals agrees.
    ptype = BAR_SCHEMA.field("provider").type
    if ids.size == 0:
        return pa.array([], pa.string()).dictionary_encode().cast(ptype)
    uniq, first = np.unique(ids, return_index=True)
    present = uniq[np.argsort(first, kind="stable")].tolist()
    valid = [i for i in present if 0 <= i < len(providers) and providers[i] is not None]
    lookup = np.full(max(int(uniq.max()), 0) + 2, -1, dtype=np.int32)
    for pos, pid in enumerate(valid):
        lookup[pid + 1] = pos
    indices = lookup[ids + 1]
    index_arr = pa.array(indices, pa.int32(), mask=indices < 0)
    return pa.DictionaryArray.from_arrays(index_arr, pa.array([providers[i] for i in valid], pa.string()))
