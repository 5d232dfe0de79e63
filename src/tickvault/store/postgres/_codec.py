"""Arrow <-> PostgreSQL binary wire formats, vectorised with numpy.

Writes use binary ``COPY``: a 19-byte header, then per row a 16-bit field count and, per
field, a 32-bit length and the value in network byte order, then a 16-bit ``-1``. When
every field of a row is fixed-width and not NULL, all rows have the same size and a
chunk of rows is one numpy structured array with big-endian fields: no per-row Python.
A :class:`CopyRows` names the columns and hands over its rows in parts (one per series
slice) that are built only when the stream reaches them, so the first bytes leave at
once and a large load never holds more than one chunk and one part in memory.
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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA

__all__ = [
    "ARRAY_COLUMNS",
    "NULLABLE",
    "CopyRows",
    "PG_EPOCH_US",
    "STAGE_COLUMNS",
    "concat",
    "copy_rows",
    "decode_arrays",
    "direct_columns",
    "direct_layout",
    "encode_copy",
    "provider_codes",
    "stage_columns",
]

#: Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01 (UTC).
PG_EPOCH_US = 946_684_800_000_000
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_CHUNK_ROWS = 1 << 14  # ~1.3 MB of wire data per write(): cache-sized, encoded while the socket still feeds the server

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


@dataclass(frozen=True)
class CopyRows:
    """The rows of one binary ``COPY``: column names, row count, and the rows in parts.

    Each part is a column list with exactly ``names`` (NULL-free, fixed-width); parts
    are consumed once, in order, and may be produced lazily (a generator).
    """

    names: tuple[str, ...]
    count: int
    parts: Iterable[Sequence[Column]]

    @classmethod
    def of(cls, columns: Sequence[Column]) -> CopyRows:
        """Rows held in one list of columns."""
        return cls(tuple(name for name, _ in columns), int(columns[0][1].size) if columns else 0, [columns])


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


def direct_layout(table: pa.Table, provider_ids: np.ndarray) -> tuple[str, ...] | None:
    """The bars-table columns a direct COPY of ``table`` carries, ``None`` if one is partly NULL.

    Columns that are NULL in every row are left out (the table's default, NULL, fills
    them). Only NULL counts are looked at: no values are touched.
    """
    n = table.num_rows
    names = ["series_id"]
    missing = int(np.count_nonzero(provider_ids < 0))
    if 0 < missing < n:
        return None
    if not missing:
        names.append("provider_id")
    names.append("ts")
    for name in NULLABLE:
        nulls = table.column(name).null_count
        if nulls == n:
            continue
        if nulls:
            return None
        names.append(name)
    return tuple(names)


def direct_columns(table: pa.Table, series_id: int, provider_ids: np.ndarray,
                   layout: Sequence[str] | None = None) -> list[Column] | None:
    """The bars-table layout (see :func:`direct_layout`, or ``layout`` if known), or ``None``."""
    names = direct_layout(table, provider_ids) if layout is None else layout
    if names is None:
        return None
    n = table.num_rows
    cols: list[Column] = []
    for name in names:
        if name == "series_id":
            cols.append((name, np.full(n, series_id, dtype=np.int32)))
        elif name == "provider_id":
            cols.append((name, provider_ids))
        elif name == "ts":
            cols.append((name, _pg_ts(table)))
        else:
            cols.append((name, _values(table, name)[0]))
    return cols


def encode_copy(rows: CopyRows) -> Iterator[memoryview | bytes]:
    """Yield the binary COPY stream (header, rows, trailer) of ``rows``.

    Rows are encoded one chunk at a time, each part as the stream reaches it, so the
    server is already inserting the first chunk while the next one is being built.
    A yielded chunk is a view of a reused buffer: it is valid until the next one is
    requested (write it before asking for more).

    Raises
    ------
    ValueError
        If a part's columns differ from ``rows.names`` (a bug in the caller).
    """
    dtype = np.dtype([("nfields", ">i2")] + [x for name in rows.names
                                              for x in ((f"len_{name}", ">i4"), (name, _WIRE[name]))])
    yield _SIGNATURE
    buf = np.empty(max(1, min(rows.count, _CHUNK_ROWS)), dtype=dtype)
    buf["nfields"] = len(rows.names)
    for name in rows.names:
        buf[f"len_{name}"] = np.dtype(_WIRE[name]).itemsize
    fill = 0
    for part in rows.parts:
        if tuple(name for name, _ in part) != rows.names:
            raise ValueError(f"COPY part with columns {[n for n, _ in part]}, expected {list(rows.names)}")
        n = int(part[0][1].size) if part else 0
        done = 0
        while done < n:
            take = min(n - done, buf.size - fill)
            for name, values in part:
                buf[name][fill:fill + take] = values[done:done + take]
            fill += take
            done += take
            if fill == buf.size:
                yield buf.view(np.uint8).data
                fill = 0
    if fill:
        yield buf[:fill].view(np.uint8).data
    yield _TRAILER


def copy_rows(conn: psycopg.Connection[Any], target: sql.Composable, rows: CopyRows) -> None:
    """Binary-COPY ``rows`` into ``target`` (a table identifier) on ``conn``."""
    names = sql.SQL(", ").join(sql.Identifier(name) for name in rows.names)
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            target, names)) as copy:
        for chunk in encode_copy(rows):
            copy.write(chunk)


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
