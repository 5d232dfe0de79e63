"""Lossless, compact Parquet encoding of bar tables (and its inverse).

Why not plain float64 columns: a minute bar stored as doubles costs ~22 bytes even with
zstd, because the low mantissa bits of ``150.13`` look random. Prices and volumes are
almost always decimals with few digits, so each float column of each file is stored as a
Parquet ``DECIMAL(18, k)`` backed by INT64 (``store_decimal_as_integer``) with the
smallest ``k`` in ``0..9`` for which ``float(round(x * 10**k)) / 10**k`` reproduces every
value *bit for bit*; DELTA_BINARY_PACKED then packs consecutive prices into a few bits.
When no such ``k`` exists (NaN, inf, ``-0.0``, a computed VWAP with 16 digits, huge
values) the column stays float64 with BYTE_STREAM_SPLIT + zstd. Decoding divides the
integers by ``10**k`` with the very same expression the encoder checked, so it is exact
by construction. DuckDB, Polars and Spark read DECIMAL natively.

``ts`` is TIMESTAMP(us, UTC) and ``trade_count`` INT64, both DELTA_BINARY_PACKED;
``provider`` is dictionary-encoded. Every page carries a CRC32 that is checked on read,
so a flipped bit surfaces as an error instead of a wrong price. Decoding skips reading columns that the footer
statistics show to be all-null or constant (the usual single-provider file), which is
a third of the read time of a typical file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA

__all__ = ["FLOAT_COLUMNS", "FORMAT_VERSION", "conform", "decode", "encode", "find_scale", "from_scaled"]

FORMAT_VERSION = "1"
FLOAT_COLUMNS = ("open", "high", "low", "close", "volume", "vwap")
_MAX_SCALE = 9
_SAMPLE = 512
_EXACT_LIMIT = float(2**53)
_PROVIDER_TYPE = BAR_SCHEMA.field("provider").type
_ROW_GROUP = 1 << 21  # one row group per file in practice: fewer, bigger reads


def conform(table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly :data:`BAR_SCHEMA` (same names, cast types).

    Raises
    ------
    SchemaError
        If a column is missing, cannot be cast, or ``ts`` has nulls.
    """
    if not isinstance(table, pa.Table):
        raise SchemaError(f"bars must be a pyarrow Table with BAR_SCHEMA, got {type(table).__name__}")
    if table.schema.equals(BAR_SCHEMA):
        out = table
    else:
        missing = [n for n in BAR_SCHEMA.names if n not in table.column_names]
        if missing:
            raise SchemaError(f"bars are missing column(s) {', '.join(missing)}")
        try:
            out = table.select(BAR_SCHEMA.names).cast(BAR_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
            raise SchemaError(f"bars do not match BAR_SCHEMA: {exc}") from None
    if out.column("ts").null_count:
        raise SchemaError(f"{out.column('ts').null_count} row(s) have no timestamp")
    return out


def _pool_array(n: int, dtype: type[np.generic]) -> tuple[pa.Buffer, np.ndarray]:
    # Output memory comes from Arrow's pool (which recycles pages) rather than a fresh
    # numpy allocation: a fresh 800 KB array costs ~200 page faults, 4x the arithmetic.
    buf = pa.allocate_buffer(n * np.dtype(dtype).itemsize)
    return buf, np.frombuffer(memoryview(buf), dtype=dtype)


def from_scaled(ints: np.ndarray, scale: int) -> tuple[pa.Buffer, np.ndarray]:
    """Decode scaled integers to float64: the single expression encoder and decoder share.

    Returns the Arrow buffer and a numpy view of it.
    """
    buf, floats = _pool_array(ints.size, np.float64)
    floats[:] = ints
    if scale:
        np.divide(floats, 10.0**scale, out=floats)
    return buf, floats


def _exact(x: np.ndarray, scale: int) -> np.ndarray | None:
    ints = np.rint(x * 10.0**scale).astype(np.int64) if scale else np.rint(x).astype(np.int64)
    _, back = from_scaled(ints, scale)
    if np.array_equal(back.view(np.int64), x.view(np.int64)):
        return ints
    return None


def find_scale(x: np.ndarray) -> tuple[int, np.ndarray] | None:
    """The smallest decimal exponent that stores ``x`` exactly, with the scaled integers.

    Returns ``None`` when no exponent in ``0..9`` reproduces every value bit for bit.
    """
    if x.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    if not np.isfinite(x).all():
        return None
    amax = float(np.abs(x).max())
    # Try each exponent on a small sample first: rejecting a wrong k costs microseconds.
    sample = x[:_SAMPLE] if x.size > _SAMPLE else None
    for scale in range(_MAX_SCALE + 1):
        if amax * 10.0**scale >= _EXACT_LIMIT:
            return None
        if sample is not None and _exact(sample, scale) is None:
            continue
        ints = _exact(x, scale)
        if ints is not None:
            return scale, ints
    return None


def int_encoding(ints: np.ndarray) -> str:
    """DELTA_BINARY_PACKED for series that move in steps (prices, times), PLAIN otherwise.

    Deltas of independent draws (volumes, trade counts) are *wider* than the values
    themselves, and PLAIN + zstd then packs them ~10-25% smaller; a random walk is the
    opposite. The mean step against the mean deviation decides (for independent normal
    draws their ratio is about 1.41; below 1.25 the values are correlated enough for
    deltas to win).
    """
    if ints.size < 256:
        return "DELTA_BINARY_PACKED"
    step = float(np.abs(np.diff(ints)).mean())
    spread = float(np.abs(ints - np.median(ints)).mean())
    return "PLAIN" if step > 1.25 * spread else "DELTA_BINARY_PACKED"


def _encode_float(col: pa.ChunkedArray[Any]) -> tuple[pa.Array[Any], str]:
    """(array to write, its Parquet encoding) for one float64 column."""
    arr: pa.Array[Any] = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)  # type: ignore[assignment]
    n = len(arr)
    if arr.null_count == n:
        return arr, "BYTE_STREAM_SPLIT"
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        filled = arr.fill_null(pa.scalar(0.0, pa.float64()))
        x = np.where(valid, np.asarray(filled.to_numpy(zero_copy_only=False)), 0.0)
    else:
        valid = None
        x = np.asarray(arr.to_numpy(zero_copy_only=False))
    found = find_scale(x)
    if found is None:
        return arr, "BYTE_STREAM_SPLIT"
    scale, ints = found
    int_arr = pa.array(ints, pa.int64(), mask=None if valid is None else ~valid)
    dec = pa.Array.from_buffers(pa.decimal64(18, scale), n, int_arr.buffers(), int_arr.null_count)
    return dec, int_encoding(ints if valid is None else ints[valid])


def _count_encoding(table: pa.Table) -> str:
    col = table.column("trade_count")
    if col.null_count == len(col):
        return "DELTA_BINARY_PACKED"
    valid = col.drop_null()
    return int_encoding(np.asarray(valid.to_numpy()))


def encode(table: pa.Table, *, metadata: dict[str, str] | None = None) -> pa.Buffer:
    """Encode a sorted, unique-key BAR_SCHEMA table into Parquet bytes.

    Parameters
    ----------
    table
        Bars with :data:`BAR_SCHEMA`.
    metadata
        Extra key/value pairs for the file footer (symbol, timeframe ...).
    """
    arrays: list[pa.Array[Any] | pa.ChunkedArray[Any]] = []
    fields: list[pa.Field[Any]] = []
    encodings: dict[str, str] = {"ts": "DELTA_BINARY_PACKED", "trade_count": _count_encoding(table)}
    for field in BAR_SCHEMA:
        col = table.column(field.name)
        if field.name in FLOAT_COLUMNS:
            arr, encodings[field.name] = _encode_float(col)
            arrays.append(arr)
            fields.append(pa.field(field.name, arr.type))
        else:
            arrays.append(col)
            fields.append(field)
    meta: dict[bytes | str, bytes | str] = {"tickvault.format": FORMAT_VERSION}
    meta.update(metadata or {})
    out_table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))
    sink = pa.BufferOutputStream()
    pq.write_table(
        out_table,
        sink,
        compression="zstd",
        compression_level=1,
        use_dictionary=["provider"],  # type: ignore[arg-type]
        column_encoding=encodings,
        store_decimal_as_integer=True,
        write_statistics=True,
        write_page_checksum=True,
        row_group_size=_ROW_GROUP,
    )
    return sink.getvalue()


def _synthesised(md: pq.FileMetaData) -> dict[str, Any]:
    """Columns the footer proves all-null (``None``) or constant provider (its value)."""
    out: dict[str, Any] = {}
    n = md.num_rows
    if md.num_row_groups != 1 or n == 0:
        return out
    rg = md.row_group(0)
    for i in range(rg.num_columns):
        chunk = rg.column(i)
        name = chunk.path_in_schema
        stats = chunk.statistics
        if stats is None or not getattr(stats, "has_null_count", False):
            continue
        if stats.null_count == n and name != "ts":
            out[name] = None
        elif name == "provider" and stats.null_count == 0 and stats.has_min_max and stats.min == stats.max:
            # Exact for short strings (statistics are only truncated past 4 KiB).
            out[name] = stats.min
    return out


def _float_column(arr: pa.Array[Any]) -> pa.Array[Any]:
    t = arr.type
    if pa.types.is_floating(t):
        return arr
    if pa.types.is_decimal(t):
        n = len(arr)
        data = arr.buffers()[1]
        assert data is not None
        words = 1 if t.byte_width == 8 else 2
        raw = np.frombuffer(memoryview(data), dtype=np.int64, count=(arr.offset + n) * words)
        # decimal128 is two little-endian words per value; the low word holds the value
        # (it is < 2**53 by construction) and the high word only its sign extension.
        ints = raw[arr.offset * words::words] if words > 1 else raw[arr.offset:]
        data_buf, _ = from_scaled(ints, t.scale)
        validity = arr.buffers()[0] if arr.null_count else None
        if validity is not None and arr.offset:
            validity = arr.is_valid().buffers()[1]
        return pa.Array.from_buffers(pa.float64(), n, [validity, data_buf], arr.null_count)
    raise SchemaError(f"unexpected stored type {t} for a price column")


def decode(source: Any, md: pq.FileMetaData, columns: Sequence[str] | None = None) -> pa.Table:
    """Decode one stored file into a :data:`BAR_SCHEMA` table (or its ``columns``).

    Parameters
    ----------
    source
        A path or file object of the Parquet file.
    md
        Its footer (cached by the caller so it is parsed once per file).
    columns
        Subset of bar columns to materialise; ``ts`` is always read.
    """
    wanted = list(BAR_SCHEMA.names) if columns is None else ["ts", *[c for c in columns if c != "ts"]]
    synth = _synthesised(md)
    to_read = [c for c in wanted if c not in synth]
    pf = pq.ParquetFile(source, metadata=md, read_dictionary=["provider"], page_checksum_verification=True)
    # One thread: Arrow's per-column threads save ~1 ms on an idle machine but cost several
    # on a busy one (waiting for the pool); big reads are parallel across files instead.
    raw = pf.read(columns=to_read, use_threads=False)
    n = raw.num_rows
    arrays: dict[str, pa.Array[Any] | pa.ChunkedArray[Any]] = {}
    for name in wanted:
        field = BAR_SCHEMA.field(name)
        if name in synth:
            value = synth[name]
            if value is None:
                arrays[name] = pa.nulls(n, field.type)
            else:
                buf, idx = _pool_array(n, np.int32)
                idx.fill(0)
                indices = pa.Array.from_buffers(pa.int32(), n, [None, buf])
                arrays[name] = pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))
            continue
        col = raw.column(name)
        if name in FLOAT_COLUMNS:
            arrays[name] = pa.chunked_array([_float_column(c) for c in col.chunks], pa.float64())
        elif name == "provider" and col.type != _PROVIDER_TYPE:
            arrays[name] = col.cast(pa.string()).dictionary_encode().cast(_PROVIDER_TYPE)
        elif name == "ts":
            arrays[name] = col.cast(field.type)
        else:
            arrays[name] = col
    schema = pa.schema([BAR_SCHEMA.field(n) for n in wanted])
    return pa.Table.from_arrays([arrays[n] for n in wanted], schema=schema)
