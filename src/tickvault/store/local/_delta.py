"""Small deltas: Arrow IPC instead of Parquet, for the rows of one small upsert.

Why this module exists: writing a Parquet file costs ~0.9 ms of CPU whatever its size
(pyarrow's fixed cost of setting up writers, statistics and the footer), so a daily
upsert of 500 series spent half a second encoding 390-row files that the next compaction
rewrites anyway. An Arrow IPC file of the same rows costs ~10 µs to write and about as
much to read: the columns are stored as they are in memory (``BAR_SCHEMA``, float64
prices), uncompressed, so a round trip is bit-exact by construction. It is ~5-7x larger
than the Parquet file (~70 bytes per bar), which is why only small writes to series
that already hold data use it (at most :data:`DELTA_MAX_ROWS` rows), and why compaction
turns them back into Parquet: every file that compaction writes is Parquet, and after
``compact()`` every partition is one Parquet file again.

A delta is the Arrow IPC *file* format (``ARROW1`` magic and footer, what Polars'
``read_ipc`` and ``pyarrow.feather`` read). It is written as an **inline delta**: rows in
the catalog, inserted in the same SQLite transaction as its manifest row, so it is
durable and visible exactly when the commit is, and no file is created (creating 500
small files was most of a daily upsert's time). Its manifest path ends in
:data:`INLINE_SUFFIX` and names no file. The inline deltas of one write are **packed**:
their rows, concatenated, in groups of about :data:`PACK_ROWS` rows, one IPC file per
group stored as one BLOB (``packs`` table); a delta's manifest row names its pack and its
first row (encoding 500 deltas one by one was most of a daily upsert once the files were
gone). A big pack's BLOB is the IPC file with each buffer LZ4-compressed by Arrow (~2-3x
smaller: the bytes go through the catalog's WAL, so fewer is faster; ~1.6-1.8x cheaper to
encode than zstd and ~2.5x to decode); a small pack's (under :data:`LZ4_MIN_ROWS` rows) is
the IPC file compressed as one zstd frame, which earlier stores used for every pack. A BLOB
may also be the IPC file as is (``ARROW1`` magic): :func:`decode_inline` accepts all three.
Stores of catalog version 2 hold one BLOB per delta (``deltas`` table, keyed by manifest
path); they are still read.
Stores written before inline deltas hold delta *files* with the suffix
:data:`DELTA_SUFFIX` (the same IPC bytes, uncompressed); they are still read. Like a
Parquet file a delta is immutable, named once, checked against the size and CRC32
recorded in its manifest row before it is decoded, and its schema must be exactly
``BAR_SCHEMA``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pyarrow as pa
import zstandard

from tickvault.model import BAR_SCHEMA

__all__ = ["DELTA_MAX_ROWS", "DELTA_SUFFIX", "INLINE_SUFFIX", "LZ4_MIN_ROWS", "PACK_ROWS", "compress_delta",
           "decode_delta", "decode_inline", "encode_delta", "is_delta", "is_inline", "pack_blob"]

#: Suffix of a delta *file* (written by stores before inline deltas; still read).
DELTA_SUFFIX = ".arrow"
#: Suffix of the manifest path of an inline delta (a catalog BLOB, no file).
INLINE_SUFFIX = ".inline"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ARROW_MAGIC = b"ARROW1"
_local = threading.local()
#: Files of at most this many rows (to a series that already has rows) are deltas.
#: Parquet's fixed cost dominates its encoding up to a few thousand rows (0.9 ms for
#: 100 rows, 1.2 ms for 2,000), while a 2,048-row delta stays ~140 KB.
DELTA_MAX_ROWS = 2048
#: The inline deltas of one write are packed in groups of about this many rows (one
#: compressed IPC file, one BLOB each): reading one delta decodes ~2.3 MB at most.
PACK_ROWS = 32768
#: Packs of at least this many rows are IPC files with LZ4 buffers (a 32 K-row pack: 8.2 vs
#: 14.5 ms of CPU to encode, 2.0 vs 5.1 ms to decode on the VM of 2026-11-22); smaller ones
#: are one zstd frame of the plain IPC file, ~2-4x smaller where LZ4 saves tens of
#: microseconds (the 1-row delta of a live update: 584 vs 2,530 bytes, 60 vs 43 µs).
LZ4_MIN_ROWS = 4096
_FORMAT_KEY = b"tickvault.format"
_FORMAT = b"delta-1"
# A pack's IPC file compresses each buffer as one LZ4 frame, on the calling thread (packs are
# encoded in parallel already).
_PACK_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
# One schema object for every delta: building a schema with per-file metadata was half the
# cost of writing a 390-row delta. The series is in the file's folder names.
_SCHEMA = BAR_SCHEMA.with_metadata({_FORMAT_KEY: _FORMAT})


def is_delta(path: str) -> bool:
    """Whether a manifest path names an Arrow IPC delta, inline or a file (else it is Parquet)."""
    return path.endswith((INLINE_SUFFIX, DELTA_SUFFIX))


def is_inline(path: str) -> bool:
    """Whether a manifest path names an inline delta (a catalog BLOB, not a file)."""
    return path.endswith(INLINE_SUFFIX)


def encode_delta(table: pa.Table, *, compressed: bool = False) -> pa.Buffer:
    """Encode a sorted, unique-key :data:`BAR_SCHEMA` table as an Arrow IPC file.

    One record batch per chunk of ``table``; the schema's metadata holds only the format
    marker (``tickvault.format = delta-1``). ``compressed``: each buffer LZ4-framed by
    Arrow's own IPC buffer compression (what a pack's BLOB is; any IPC reader decodes it).
    """
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, _SCHEMA, options=_PACK_OPTIONS if compressed else None) as writer:
        writer.write_table(table)
    return sink.getvalue()


def decode_delta(buf: pa.Buffer, columns: Sequence[str] | None = None) -> pa.Table:
    """Decode a delta file into a :data:`BAR_SCHEMA` table (or ``ts`` plus ``columns``).

    Raises
    ------
    ValueError
        If the file is not a delta of ``BAR_SCHEMA`` (wrong format marker or schema).
    pyarrow.ArrowException
        If the IPC structure is damaged.
    """
    reader = pa.ipc.open_file(buf)
    schema = reader.schema
    if (schema.metadata or {}).get(_FORMAT_KEY) != _FORMAT or not schema.remove_metadata().equals(BAR_SCHEMA):
        raise ValueError("not a tickvault delta file of the bar schema")
    table = reader.read_all()
    table = pa.Table.from_arrays(table.columns, schema=BAR_SCHEMA)
    if columns is None:
        return table
    return table.select(["ts", *[c for c in columns if c != "ts"]])


def _codecs() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    # One context per thread (they are not thread-safe), made once: creating a zstd
    # context costs ~35 us in a VM (cpuid traps), more than compressing a delta.
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(_local, "pair", None)
    if pair is None:
        pair = _local.pair = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
    return pair


def compress_delta(ipc_file: pa.Buffer) -> bytes:
    """:func:`encode_delta`'s file as one zstd frame (a small pack's BLOB)."""
    return _codecs()[0].compress(memoryview(ipc_file))  # type: ignore[no-any-return]


def pack_blob(rows: pa.Table) -> bytes:
    """The BLOB of a pack of ``rows``.

    At least :data:`LZ4_MIN_ROWS` rows: their IPC file with LZ4 buffers; fewer: their plain
    IPC file as one zstd frame.
    """
    if rows.num_rows < LZ4_MIN_ROWS:
        return compress_delta(encode_delta(rows))
    return encode_delta(rows, compressed=True).to_pybytes()


def decode_inline(blob: pa.Buffer | bytes, columns: Sequence[str] | None = None) -> pa.Table:
    """Decode an inline delta's BLOB (zstd-framed or plain IPC file) like :func:`decode_delta`.

    Raises
    ------
    ValueError
        If the BLOB is neither, or not a delta of ``BAR_SCHEMA``.
    zstandard.ZstdError, pyarrow.ArrowException
        If it is damaged.
    """
    view = memoryview(blob)
    head = bytes(view[:6])
    if head.startswith(_ZSTD_MAGIC):
        return decode_delta(pa.py_buffer(_codecs()[1].decompress(view)), columns)
    if head == _ARROW_MAGIC:
        return decode_delta(pa.py_buffer(view), columns)
    raise ValueError("not an inline tickvault delta")
