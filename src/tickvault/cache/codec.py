"""Cached values as Arrow IPC streams: compact, typed, and cheap to decode.

Tables round-trip exactly (schema, dictionary types, nulls, NaN), small string metadata
rides along in the schema, and the L2 copy is zstd-compressed (the IPC reader detects
compression by itself, so one decoder reads both). Decoding reads the buffers in place.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from tickvault.errors import CacheError

__all__ = ["decode_table", "encode_table"]

_META_PREFIX = b"tickvault.cache."


def encode_table(table: pa.Table, meta: Mapping[str, str] | None = None, *, compress: bool = False) -> bytes:
    """``table`` (plus ``meta``) as one Arrow IPC stream.

    Parameters
    ----------
    table
        Any Arrow table.
    meta
        Small string values kept with it (e.g. ``{"complete": "1"}``).
    compress
        zstd-compress the buffers (for values that travel over the network).
    """
    schema = table.schema
    if meta:
        extra = {_META_PREFIX + k.encode(): v.encode() for k, v in meta.items()}
        schema = schema.with_metadata({**(schema.metadata or {}), **extra})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd" if compress else None)
    with pa.ipc.new_stream(sink, schema, options=options) as writer:
        writer.write_table(table.cast(schema))
    return bytes(sink.getvalue())


def decode_table(data: bytes) -> tuple[pa.Table, dict[str, str]]:
    """Inverse of :func:`encode_table`: the table (with its original metadata) and ``meta``.

    Raises
    ------
    CacheError
        If ``data`` is not a readable Arrow IPC stream (a foreign or damaged value).
    """
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise CacheError("cached value is not an Arrow IPC stream", reason=str(exc)) from None
    raw = table.schema.metadata or {}
    meta = {k[len(_META_PREFIX):].decode(): v.decode() for k, v in raw.items() if k.startswith(_META_PREFIX)}
    rest = {k: v for k, v in raw.items() if not k.startswith(_META_PREFIX)}
    return table.replace_schema_metadata(rest or None), meta
