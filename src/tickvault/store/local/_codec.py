"""Lossless, compact Parquet encoding of bar tables (and its inverse).

Why not plain float64 columns: a minute bar stored as doubles costs ~22 bytes even with
zstd, because the low mantissa bits of ``150.13`` look random. Prices and volumes are
almost always decimals with few digits, so each float column of each file is stored as a
Parquet ``DECIMAL(p, k)`` on integers (``store_decimal_as_integer``) with the smallest
``k`` in ``0..9`` for which ``float(round(x * 10**k)) / 10**k`` reproduces every value *bit
for bit*; ``p`` is 9 (INT32, half the width to pack) when every scaled value has at most 9
digits, else 18 (INT64). When no such ``k`` exists (NaN, inf, ``-0.0``, a computed VWAP
with 16 digits, huge values) the column stays float64 with BYTE_STREAM_SPLIT + zstd.
Decoding divides the integers by ``10**k`` with the very same expression the encoder
checked, so it is exact by construction. DuckDB, Polars and Spark read DECIMAL natively.

Integer columns (scaled prices, volumes, ``trade_count``) are DELTA_BINARY_PACKED when
consecutive values move in small steps (prices) and BYTE_STREAM_SPLIT when they are
closer to independent draws (volumes, trade counts), where zstd then entropy-codes each
byte plane: 5-35% smaller than PLAIN or deltas on such columns. ``ts`` is TIMESTAMP(us,
UTC), DELTA_BINARY_PACKED and LZ4; ``trade_count`` is INT32 when the counts fit (read back as
int64); ``provider`` is dictionary-encoded. Delta-packed columns are zstd-compressed only
when zstd finds runs in them (see :func:`int_layout`); columns without nulls are REQUIRED
(no definition levels to decode); INT32 decimals are ``decimal32`` in the footer's Arrow
schema (read as stored, not widened). Every page carries a CRC32, checked on read unless
the caller has verified the whole file, so a flipped bit surfaces as an error instead of a
wrong price. Decoding skips
reading columns that the footer shows to be all-null (statistics) or a constant provider
(the ``tickvault.provider`` key, written instead of that column's statistics): a third of
the read time of a typical file.

Files of format 1 (every decimal DECIMAL(18, k) on INT64, ``trade_count`` INT64, PLAIN or
DELTA, statistics on every column) and of the first format-2 encoder (``decimal64`` Arrow
types, every column OPTIONAL, more columns zstd-compressed) decode with the same code: the
Parquet encodings are self-describing and the widths are read from each file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA, ColumnBlock
from tickvault.store.local._pools import ProcessPool

__all__ = ["FLOAT_COLUMNS", "FORMAT_VERSION", "decode", "encode", "find_scale", "from_scaled", "open_file",
           "scaled_into"]

FORMAT_VERSION = "2"  # 1: every decimal INT64, trade_count INT64 (decoded alike)
FLOAT_COLUMNS = ("open", "high", "low", "close", "volume", "vwap")
_MAX_SCALE = 9
_SAMPLE = 512  # values checked before a whole column is tried at a scale
_WINDOW, _WINDOWS = 256, 8  # int_layout's sample: 8 runs of 256 consecutive values
_STEP_RATIO = 0.25  # mean step / mean deviation above which deltas lose (see int_layout)
_ZERO_STEPS_FOR_ZSTD = 0.5  # share of zero steps from which zstd pays on a delta-packed column
# ts is LZ4 (LZ4_RAW in the file), not zstd: its delta-packed bytes are mostly runs, which
# LZ4 finds too (+0.02-0.03 B/bar), and it decodes ~0.1 ms faster per symbol-year: zstd
# pays a fixed cost per column chunk (its context, and cpuid traps in a VM).
_LZ4_COLUMNS = frozenset({"ts"})
_FLOAT_LAYOUT = ("BYTE_STREAM_SPLIT", True)  # float64 columns (no exact decimal, or all null)
_INT32_DIGITS = 999_999_999  # largest |scaled value| of DECIMAL(9, k), stored as INT32
_EXACT_LIMIT = float(2**53)
_PROVIDER_TYPE = BAR_SCHEMA.field("provider").type
_PROVIDER_KEY = "tickvault.provider"  # footer metadata: the provider of every row, when it is one
_ROW_GROUP = 1 << 21  # one row group per file in practice: fewer, bigger reads
_THREADS_MIN_ROWS = 1 << 16  # decodes this big may use Arrow's threads (see _idle_cpu)
_CPUS = os.cpu_count() or 1  # the run queue counts the whole machine's CPUs


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return _CPUS


_USABLE_CPUS = _usable_cpus()  # a process pinned to one CPU gains nothing from threads
_LOADAVG = "/proc/loadavg"
_loadavg_fd: tuple[str, int] | None = None  # (path, descriptor): opened once, kept (read-only, not inherited)


def _idle_cpu() -> bool:
    """Whether a CPU is idle right now: fewer runnable tasks (this one included) than CPUs.

    Linux's instantaneous run-queue count (``/proc/loadavg``, a ``pread`` of a descriptor
    kept open: ~2 µs, against ~15 µs to open the file each time); elsewhere ``False``.
    Arrow's per-column threads cut a symbol-year's Parquet decoding from ~2.0
    to ~1.2 ms when a second CPU is free, but on a loaded machine each hand-over to the
    pool waits for a time slice: the median decode went from 2.0 to 4.5 ms at load 7 on
    2 CPUs. So the threads are used only while a CPU is idle, and never by a process
    allowed on a single CPU.
    """
    global _loadavg_fd
    if _USABLE_CPUS < 2:
        return False
    try:
        if _loadavg_fd is None or _loadavg_fd[0] != _LOADAVG:
            _loadavg_fd = (_LOADAVG, os.open(_LOADAVG, os.O_RDONLY))
        running = int(os.pread(_loadavg_fd[1], 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return False
    return running < _CPUS


def _pool_array(n: int, dtype: type[np.generic]) -> tuple[pa.Buffer, np.ndarray]:
    # Output memory comes from Arrow's pool (which recycles pages) rather than a fresh
    # numpy allocation: a fresh 800 KB array costs ~200 page faults, 4x the arithmetic.
    buf = pa.allocate_buffer(n * np.dtype(dtype).itemsize)
    return buf, np.frombuffer(memoryview(buf), dtype=dtype)


def from_scaled(ints: np.ndarray, scale: int) -> tuple[pa.Buffer, np.ndarray]:
    """Decode scaled integers to float64: the single expression encoder and decoder share.

    ``float(int) / 10**scale``, each step correctly rounded (see :func:`scaled_into`).
    Returns the Arrow buffer and a numpy view of it.
    """
    buf, floats = _pool_array(ints.size, np.float64)
    scaled_into(ints, scale, floats)
    return buf, floats


def scaled_into(ints: np.ndarray, scale: int, out: np.ndarray) -> None:
    """Write ``float(int) / 10**scale`` of ``ints`` into the float64 array ``out``.

    The integers are converted to the nearest doubles (exact: they are below 2**53), then
    divided in place. Two simple passes cost 3-7% less of a decode than one mixed-type
    ``np.divide(ints, ...)``, which numpy runs through a casting buffer.
    """
    out[:] = ints
    if scale:
        np.divide(out, 10.0**scale, out=out)


def _scaled(x: np.ndarray, scale: int, narrow: bool = False) -> np.ndarray | None:
    """``rint(x * 10**scale)`` as int64 (``narrow``: int32) if :func:`from_scaled` gives ``x``
    back bit for bit.

    The caller guarantees ``|x| * 10**scale < 2**53`` (``narrow``: ``rint(|x| * 10**scale)``
    at most :data:`_INT32_DIGITS`) and no ``-0.0`` in ``x``. Then the rounded doubles ``y``
    are integers that the integer type holds exactly, ``float(int(y)) == y``, and dividing
    ``y`` in place is the decoder's expression, so no second conversion is needed to check
    it. Both arrays come from Arrow's pool (see :func:`_pool_array`): in a write, fresh numpy
    arrays made this function page-fault bound.
    """
    _, y = _pool_array(x.size, np.float64)
    if scale:
        np.multiply(x, 10.0**scale, out=y)
        np.rint(y, out=y)
    else:
        np.rint(x, out=y)
    _, ints = _pool_array(x.size, np.int32 if narrow else np.int64)
    ints[:] = y
    if scale:
        np.divide(y, 10.0**scale, out=y)
    if np.array_equal(y.view(np.int64), x.view(np.int64)):
        return ints
    return None


def _has_negative_zero(x: np.ndarray) -> bool:
    return bool(np.any(x.view(np.int64) == np.iinfo(np.int64).min))


def _sample(x: np.ndarray) -> np.ndarray | None:
    """About :data:`_SAMPLE` values spread over ``x`` (first and last included), or ``None``."""
    if x.size <= 2 * _SAMPLE:
        return None
    return np.concatenate((x[:: x.size // _SAMPLE], x[-1:]))


def find_scale(x: np.ndarray) -> tuple[int, np.ndarray] | None:
    """The smallest decimal exponent that stores ``x`` exactly, with the scaled integers.

    Returns ``None`` when no exponent in ``0..9`` reproduces every value bit for bit.
    Costs two reductions and one checked pass over ``x`` for the usual decimal column: each
    smaller exponent is rejected on a spread-out sample first (microseconds). The integers
    are int32 when every one fits DECIMAL(9, k) (``|int| <= 999,999,999``), else int64:
    ``rint(amax * 10**scale)`` is the largest of them (multiplying by a positive constant
    and rounding are monotonic), so that is known before the pass that makes them.
    """
    if x.size == 0:
        return 0, np.zeros(0, dtype=np.int32)
    hi, lo = float(x.max()), float(x.min())  # NaN propagates into both
    if not (hi < _EXACT_LIMIT and -lo < _EXACT_LIMIT):  # NaN, inf or beyond any exact scale
        return None
    amax = max(hi, -lo)
    if lo <= 0.0 and _has_negative_zero(x):  # a positive column cannot hold -0.0
        return None
    sample = _sample(x)
    for scale in range(_MAX_SCALE + 1):
        if amax * 10.0**scale >= _EXACT_LIMIT:
            return None
        if sample is not None and _scaled(sample, scale) is None:
            continue
        ints = _scaled(x, scale, narrow=float(np.rint(amax * 10.0**scale)) <= _INT32_DIGITS)
        if ints is not None:
            return scale, ints
    return None


def int_layout(ints: np.ndarray) -> tuple[str, bool]:
    """(Parquet encoding, whether to zstd it) for a column of integers.

    DELTA_BINARY_PACKED for series that move in steps (prices, times), else
    BYTE_STREAM_SPLIT. Deltas of independent draws (volumes, trade counts) are *wider* than
    the values themselves, and BYTE_STREAM_SPLIT + zstd (which entropy-codes each byte
    plane) packs them 5-35% smaller than deltas or PLAIN; a random walk is the opposite.
    The mean step against the mean absolute deviation decides, measured on a few windows
    spread over the column: scaled prices score 0.003-0.05 and volumes 0.7-1.1 on simulated
    and real minute bars (independent draws score ~1.4).

    zstd on delta-packed values mostly finds runs of zero steps: with half or more of the
    steps zero (a quiet or coarsely ticked price) it saves 10-35% of the column, with fewer
    0-9% (0% on a 4-decimal vwap), while on each read a compressed price column costs a
    zstd context and a pass: zstd on the four prices of a symbol-year is 12-25% of its
    decoding. Delta-packed columns with fewer zero steps are stored uncompressed.
    """
    n = ints.size
    if n < 64:
        return "DELTA_BINARY_PACKED", True
    if n <= _WINDOWS * _WINDOW:
        windows = ints.astype(np.float64)[None, :]  # floats: no integer overflow in the diffs
    else:
        starts = np.linspace(0, n - _WINDOW, _WINDOWS).astype(np.int64)
        windows = ints[starts[:, None] + np.arange(_WINDOW)].astype(np.float64)
    steps = np.abs(np.diff(windows, axis=1))
    step = float(steps.mean())
    spread = float(np.abs(windows - windows.mean()).mean())
    if step > _STEP_RATIO * spread:
        return "BYTE_STREAM_SPLIT", True
    return "DELTA_BINARY_PACKED", float((steps == 0).mean()) >= _ZERO_STEPS_FOR_ZSTD


def int_encoding(ints: np.ndarray) -> str:
    """The Parquet encoding :func:`int_layout` picks for ``ints``."""
    return int_layout(ints)[0]


def _encode_float(col: pa.ChunkedArray[Any]) -> tuple[pa.Array[Any], tuple[str, bool]]:
    """(array to write, its :func:`int_layout`) for one float64 column."""
    arr: pa.Array[Any] = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)  # type: ignore[assignment]
    n = len(arr)
    if arr.null_count == n:
        return arr, _FLOAT_LAYOUT
    if arr.null_count:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        x = np.asarray(arr.fill_null(pa.scalar(0.0, pa.float64())).to_numpy(zero_copy_only=False))
    else:
        valid = None
        x = np.asarray(arr.to_numpy(zero_copy_only=False))
    found = find_scale(x)
    if found is None:
        return arr, _FLOAT_LAYOUT
    scale, ints = found
    # DECIMAL(9, k) is stored as INT32: half the bits for DELTA to pack, and zstd's work.
    # Its Arrow type (in the footer's schema) is decimal32, so readers get the 32-bit
    # integers as stored instead of widening each value to decimal64 and back.
    narrow = ints.dtype == np.int32  # every value fits: find_scale made them int32
    mask = None if valid is None else ~valid
    int_arr: pa.Array[Any]
    if narrow:
        int_arr = pa.array(ints, pa.int32(), mask=mask)
        kind: pa.DataType = pa.decimal32(9, scale)
    else:
        int_arr = pa.array(ints, pa.int64(), mask=mask)
        kind = pa.decimal64(18, scale)
    dec = pa.Array.from_buffers(kind, n, int_arr.buffers(), int_arr.null_count)
    return dec, int_layout(ints if valid is None else ints[valid])


def _encode_counts(col: pa.ChunkedArray[Any]) -> tuple[pa.ChunkedArray[Any], tuple[str, bool]]:
    """(column to write, its :func:`int_layout`) for ``trade_count``.

    Counts that fit are written as INT32: the same bytes after BYTE_STREAM_SPLIT + zstd
    (the high byte planes compress to nothing) but a third less to decode.
    """
    if col.null_count == len(col):
        return col, ("DELTA_BINARY_PACKED", True)
    valid = col.drop_null() if col.null_count else col
    chunks = valid.chunks
    ints = np.asarray(chunks[0]) if len(chunks) == 1 else np.concatenate([np.asarray(c) for c in chunks])
    if int(ints.min()) >= -(2**31) and int(ints.max()) < 2**31:
        col = col.cast(pa.int32())
    return col, int_layout(ints)


def _constant_provider(col: pa.ChunkedArray[Any]) -> str | None:
    """The provider of every row when it is one non-null value (the usual file), else ``None``."""
    if len(col) == 0 or col.null_count:
        return None
    value: str | None = None
    for chunk in cast("list[pa.DictionaryArray[Any, Any]]", col.chunks):
        if not len(chunk):
            continue
        dictionary = chunk.dictionary
        if len(dictionary) == 1:
            first = 0
        else:
            indices = np.asarray(chunk.indices)
            first = int(indices[0])
            if not (indices == first).all():
                return None
        this = dictionary[first].as_py()
        if value is None:
            value = this
        elif this != value:
            return None
    return value


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
    layouts: dict[str, tuple[str, bool]] = {"ts": ("DELTA_BINARY_PACKED", True)}
    for field in BAR_SCHEMA:
        col = table.column(field.name)
        if field.name in FLOAT_COLUMNS:
            arr, layouts[field.name] = _encode_float(col)
            arrays.append(arr)
            fields.append(pa.field(field.name, arr.type, nullable=arr.null_count > 0))
        elif field.name == "trade_count":
            counts, layouts[field.name] = _encode_counts(col)
            arrays.append(counts)
            fields.append(pa.field(field.name, counts.type, nullable=counts.null_count > 0))
        else:
            arrays.append(col)
            fields.append(pa.field(field.name, field.type, nullable=col.null_count > 0))
    meta: dict[bytes | str, bytes | str] = {"tickvault.format": FORMAT_VERSION}
    meta.update(metadata or {})
    # A constant provider goes in the footer's key/value metadata rather than column
    # statistics: Arrow's min/max of a dictionary column costs 5% of the encoding.
    provider = _constant_provider(table.column("provider"))
    if provider is not None:
        meta[_PROVIDER_KEY] = provider
    stats = [f.name for f in fields if not pa.types.is_decimal(f.type) and not (provider and f.name == "provider")]
    zstd = [f.name for f in fields if layouts.get(f.name, ("", True))[1] and f.name not in _LZ4_COLUMNS]
    out_table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))
    sink = pa.BufferOutputStream()
    pq.write_table(
        out_table,
        sink,
        compression={f.name: "zstd" if f.name in zstd else "lz4" if f.name in _LZ4_COLUMNS else "none"
                     for f in fields},  # type: ignore[arg-type]
        compression_level={name: 1 for name in zstd},  # type: ignore[arg-type]
        use_dictionary=["provider"],  # type: ignore[arg-type]
        column_encoding={name: encoding for name, (encoding, _) in layouts.items()},
        store_decimal_as_integer=True,
        # Statistics feed _synthesised (null counts) and time filters of external readers;
        # decimal columns (never all-null: those stay float64) skip them, as Arrow's
        # decimal min/max is a third of the Parquet encoding time.
        write_statistics=stats,  # type: ignore[arg-type]
        write_page_checksum=True,
        row_group_size=_ROW_GROUP,
    )
    return sink.getvalue()


def _synthesised(md: pq.FileMetaData) -> dict[str, Any]:
    """Columns the footer proves all-null (``None``) or constant provider (its value)."""
    out: dict[str, Any] = {}
    kv = md.metadata
    if kv and _PROVIDER_KEY.encode() in kv:
        out["provider"] = kv[_PROVIDER_KEY.encode()].decode()
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
        elif name == "provider" and stats.null_count == 0 and name not in out and stats.has_min_max \
                and stats.min == stats.max:
            # Files of earlier versions. Exact for short strings (truncated past 4 KiB).
            out[name] = stats.min
    return out


def _validity(arr: pa.Array[Any]) -> pa.Buffer | None:
    """``arr``'s validity bitmap starting at its first value (``None`` without nulls)."""
    if not arr.null_count:
        return None
    if arr.offset:
        return arr.is_valid().buffers()[1]
    return arr.buffers()[0]


def _stored_ints(arr: pa.Array[Any]) -> tuple[np.ndarray, int]:
    """The integers of a decimal array as stored (a view) and its scale."""
    t = arr.type
    n = len(arr)
    data = arr.buffers()[1]
    assert data is not None
    if t.byte_width == 4:  # decimal32: format 2 (and other writers) for INT32 columns
        return np.frombuffer(memoryview(data), dtype=np.int32, count=arr.offset + n)[arr.offset:], t.scale
    words = t.byte_width // 8
    raw = np.frombuffer(memoryview(data), dtype=np.int64, count=(arr.offset + n) * words)
    # decimal128 is two little-endian words per value; the low word holds the value
    # (it is < 2**53 by construction) and the high word only its sign extension.
    return (raw[arr.offset * words::words] if words > 1 else raw[arr.offset:]), t.scale


def _float_into(arr: pa.Array[Any], out: np.ndarray) -> None:
    """Write a stored price column's float64 values into ``out`` (NaN where null)."""
    t = arr.type
    if pa.types.is_decimal(t):
        ints, scale = _stored_ints(arr)
        scaled_into(ints, scale, out)
    elif pa.types.is_floating(t):
        data = arr.buffers()[1]
        assert data is not None
        out[:] = np.frombuffer(memoryview(data), dtype=np.float64, count=arr.offset + len(arr))[arr.offset:]
    else:
        raise SchemaError(f"unexpected stored type {t} for a price column")
    if arr.null_count:
        np.copyto(out, np.nan, where=~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool))


def _one_chunk(col: pa.ChunkedArray[Any]) -> pa.Array[Any]:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()  # type: ignore[return-value]


_zero_indices = pa.py_buffer(b"")  # grown on demand, never written after: shared by tables


def _constant_dictionary(n: int, value: str) -> pa.Array[Any]:
    """A dictionary column of ``n`` times ``value`` (indices: one shared zero buffer)."""
    global _zero_indices
    zeros = _zero_indices
    if zeros.size < 4 * n:
        zeros = pa.py_buffer(bytes(4 * max(n, 1 << 17)))
        _zero_indices = zeros
    # A slice of exactly n indices: buffer-size accounting (get_total_buffer_size) stays exact.
    indices = pa.Array.from_buffers(pa.int32(), n, [None, zeros.slice(0, 4 * n)])
    # safe=False: zeros index a one-entry dictionary (checking them was 1.5% of a decode)
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()), safe=False)


_FIELDS = {f.name: f for f in BAR_SCHEMA}


def open_file(source: Any, md: pq.FileMetaData | None = None, *, verify_pages: bool = True) -> pq.ParquetFile:
    """A Parquet file ready for :func:`decode`; its footer is parsed here unless ``md`` is given.

    Parameters
    ----------
    source
        A path or file object of the Parquet file.
    md
        Its footer, if the caller has it cached (``None``: parse it, then see ``.metadata``).
    verify_pages
        See :func:`decode`.
    """
    return pq.ParquetFile(source, metadata=md, read_dictionary=["provider"], page_checksum_verification=verify_pages)


def decode(source: Any, md: pq.FileMetaData | None = None, columns: Sequence[str] | None = None, *,
           verify_pages: bool = True, buffer: pa.Buffer | None = None) -> pa.Table:
    """Decode one stored file into a :data:`BAR_SCHEMA` table (or its ``columns``).

    Parameters
    ----------
    source
        A path or file object of the Parquet file, or a file from :func:`open_file`
        (then ``md`` and ``verify_pages`` are the ones it was opened with).
    md
        Its footer, if the caller has it cached (``None``: parsed from ``source``).
    columns
        Subset of bar columns to materialise; ``ts`` is always read.
    verify_pages
        Check each page's CRC32 while decoding (a damaged page raises instead of decoding
        to wrong values). A caller that has just verified a checksum of the whole file's
        bytes may pass ``False``: it is the same protection twice.
    buffer
        The file's bytes, when the caller holds them in memory: a big file may then be
        decoded on two threads (see below).

    Files of :data:`_THREADS_MIN_ROWS` rows or more are decoded on two threads while a CPU
    is idle (:func:`_idle_cpu`), else on the calling thread: with ``buffer``, the columns
    are split in two halves of about equal cost, and a second reader of the same bytes
    on a helper thread decodes its half *and* turns its prices into floats while the
    calling thread does the other half (measured on a symbol-year: 1.4-1.6 ms against
    1.9-2.9 ms with Arrow's own per-column threads, whose float conversion then waits for
    the slowest column); without it, Arrow's per-column threads.
    """
    pf = source if isinstance(source, pq.ParquetFile) else open_file(source, md, verify_pages=verify_pages)
    md = pf.metadata
    wanted = list(BAR_SCHEMA.names) if columns is None else ["ts", *[c for c in columns if c != "ts"]]
    synth = _synthesised(md)
    to_read = [c for c in wanted if c not in synth]
    n = md.num_rows
    schema = BAR_SCHEMA if columns is None else pa.schema([_FIELDS[c] for c in wanted])
    if n == 0:
        return schema.empty_table()
    # Big reads of several files are parallel across files instead (and then no CPU idles).
    threads = n >= _THREADS_MIN_ROWS and len(to_read) > 1 and _CPUS > 1 and _idle_cpu()
    # The float columns are decoded into the rows of one block, laid out as pandas keeps
    # its float64 block: a frame can then wrap the block instead of copying every column
    # (see tickvault.model.ColumnBlock). trade_count likewise gets a one-row int64 block.
    floats = [c for c in wanted if c in FLOAT_COLUMNS]
    block = ColumnBlock(np.float64, len(floats), n) if floats else None
    done: dict[str, pa.Array[Any] | pa.ChunkedArray[Any]] = {}

    def read(reader: pq.ParquetFile, names: list[str], use_threads: bool) -> None:
        raw = reader.read(columns=names, use_threads=use_threads)
        if raw.num_rows != n:
            raise pa.ArrowInvalid(f"decoded {raw.num_rows} rows, the footer says {n}")
        for name in names:
            done[name] = _column(raw, name, block, floats)

    if threads and buffer is not None and _helper_idle.acquire(blocking=False):
        # The helper thread is free (another decode may hold it: then Arrow's threads).
        mine, theirs = _halves(to_read)

        def help_out() -> None:
            try:
                read(open_file(pa.BufferReader(buffer), md, verify_pages=verify_pages), theirs, False)
            finally:
                _helper_idle.release()

        try:
            helper = _HELPER.get().submit(help_out)
        except BaseException:
            _helper_idle.release()
            raise
        try:
            read(pf, mine, False)
        finally:
            helper.result()
    else:
        read(pf, to_read, threads)
    out: list[pa.Array[Any] | pa.ChunkedArray[Any]] = []
    for name in wanted:
        if name in done:
            out.append(done[name])
        elif block is not None and name in FLOAT_COLUMNS:  # all null: NaN, as numpy shows nulls
            row = floats.index(name)
            block.values[row].fill(np.nan)
            out.append(block.array(row, pa.py_buffer(bytes((n + 7) // 8)), n))
        else:
            value = synth[name]
            out.append(pa.nulls(n, _FIELDS[name].type) if value is None else _constant_dictionary(n, value))
    return pa.Table.from_arrays(out, schema=schema)


def _column(raw: pa.Table, name: str, block: ColumnBlock | None,
            floats: list[str]) -> pa.Array[Any] | pa.ChunkedArray[Any]:
    """One decoded column of ``raw`` as the table returns it (prices into ``block``'s row)."""
    if block is not None and name in FLOAT_COLUMNS:
        row = floats.index(name)
        arr = _one_chunk(raw.column(name))
        _float_into(arr, block.values[row])
        return block.array(row, _validity(arr), arr.null_count)
    if name == "trade_count":
        return _counts(_one_chunk(raw.column(name)))
    col = raw.column(name)
    if name == "provider" and col.type != _PROVIDER_TYPE:
        return col.cast(pa.string()).dictionary_encode().cast(_PROVIDER_TYPE)
    if name == "ts" and col.type != _FIELDS[name].type:
        return col.cast(_FIELDS[name].type)
    return col


# Rough decoding cost of a column of a symbol-year, relative to a delta-packed price
# (measured: ts ~100 µs, a price ~240 µs + ~70 µs to floats, volume and trade_count ~250 µs).
_COST = {"ts": 0.4, "trade_count": 1.0, "provider": 0.5}


def _halves(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``names`` in two groups of about equal decoding cost (greedy, costliest first)."""
    loads = [0.0, 0.0]
    groups: tuple[list[str], list[str]] = ([], [])
    for name in sorted(names, key=lambda c: -_COST.get(c, 1.3)):
        k = 0 if loads[0] <= loads[1] else 1
        groups[k].append(name)
        loads[k] += _COST.get(name, 1.3)
    return groups


_HELPER = ProcessPool(1, "tickvault-decode")  # the decoder's one helper thread
_helper_idle = threading.Lock()  # held while a decode uses the helper thread


def _counts(arr: pa.Array[Any]) -> pa.Array[Any]:
    """``trade_count`` as int64 (INT32 in the file when the counts fit).

    Without nulls the values go to a one-row :class:`ColumnBlock` (a frame wraps it as
    its int64 block); with nulls pandas makes the column float64 anyway.
    """
    if arr.type not in (pa.int32(), pa.int64()):
        return arr.cast(pa.int64())
    data = arr.buffers()[1]
    assert data is not None
    width = np.int32 if arr.type == pa.int32() else np.int64
    values = np.frombuffer(memoryview(data), dtype=width, count=arr.offset + len(arr))[arr.offset:]
    if arr.null_count:
        if arr.type == pa.int64():
            return arr
        buf, wide = _pool_array(len(arr), np.int64)
        wide[:] = values
        return pa.Array.from_buffers(pa.int64(), len(arr), [_validity(arr), buf], arr.null_count)
    block = ColumnBlock(np.int64, 1, len(arr))
    block.values[0] = values
    return block.array(0)
