"""Cached values as Arrow IPC streams: compact, typed, and cheap to decode.

Tables round-trip exactly (schema, dictionary types, nulls, NaN), small string metadata
rides along in the schema, and the L2 copy is compressed as a whole: one zstd frame
around the plain stream, behind a small header (``TVZ1`` + the plain length). One frame
is several times cheaper to make and to read than Arrow's per-buffer compression (a
500-bar window: ~35 µs to decompress instead of ~200 µs; ~70 µs to compress instead of
~400 µs) and a little smaller. Decoding reads the plain buffers in place; it also reads
plain streams and streams with Arrow's own buffer compression (what earlier versions
put in Redis), so one decoder reads every value.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import pyarrow as pa

from tickvault.errors import CacheError

__all__ = ["decode_table", "encode_table"]

_META_PREFIX = b"tickvault.cache."
_MAGIC = b"TVZ1"  # an Arrow IPC stream starts with 0xFFFFFFFF: never confused with this
_HEADER = struct.Struct("<4sQ")
_ZSTD = pa.Codec("zstd", compression_level=1)
_MAX_PLAIN = 1 << 31  # a cached value is a window of bars, never this large: a damaged header


def encode_table(table: pa.Table, meta: Mapping[str, str] | None = None, *, compress: bool = False) -> bytes:
    """``table`` (plus ``meta``) as one Arrow IPC stream.

    Parameters
    ----------
    table
        Any Arrow table.
    meta
        Small string values kept with it (e.g. ``{"complete": "1"}``).
    compress
        zstd-compress the stream (for values that travel over the network).
    """
    schema = table.schema
    if meta:
        extra = {_META_PREFIX + k.encode(): v.encode() for k, v in meta.items()}
        schema = schema.with_metadata({**(schema.metadata or {}), **extra})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table.cast(schema))
    plain = sink.getvalue()
    if not compress:
        return bytes(plain)
    packed = _ZSTD.compress(plain, asbytes=True)
    return _HEADER.pack(_MAGIC, plain.size) + packed


def decode_table(data: bytes) -> tuple[pa.Table, dict[str, str]]:
    """Inverse of :func:`encode_table`: the table (with its original metadata) and ``meta``.

    Raises
    ------
    CacheError
        If ``data`` is not a readable value (a foreign or damaged one).
    """
    try:
        buf = pa.py_buffer(data)
        if data[:4] == _MAGIC:
            if len(data) < _HEADER.size:
                raise CacheError("cached value is truncated", reason="short header")
            _magic, size = _HEADER.unpack_from(data)
            if size > _MAX_PLAIN:
                raise CacheError("cached value is damaged", reason=f"plain length {size}")
            buf = _ZSTD.decompress(buf.slice(_HEADER.size), decompressed_size=size)
        table = pa.ipc.open_stream(buf).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise CacheError("cached value is not an Arrow IPC stream", reason=str(exc)) from None
    raw = table.schema.metadata or {}
    meta = {k[len(_META_PREFIX):].decode(): v.decode() for k, v in raw.items() if k.startswith(_META_PREFIX)}
    rest = {k: v for k, v in raw.items() if not k.startswith(_META_PREFIX)}
    return table.replace_schema_metadata(rest or None), meta
