"""Request bodies of the ingest endpoint: JSON, NDJSON, CSV or Arrow IPC into one Arrow table.

Bodies come from the network, so nothing here trusts them: sizes are bounded before parsing
(the middleware refuses bodies over ``max_body_bytes``), row counts are checked before the
table is built where the format allows, and an Arrow IPC body is walked message by message
*before* pyarrow decodes it — a compressed buffer declares its decoded size in its first
eight bytes, so a small body that would inflate to gigabytes is refused without inflating it.
Every failure is a 4xx :class:`~tickvault.service._errors.ApiError`; nothing is written.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from tickvault.model import TS_MAX_US, TS_MIN_US, conform_bars
from tickvault.service._errors import ApiError

__all__ = ["INGEST_MEDIA_TYPES", "MAX_PRICE", "MAX_VOLUME", "check_arrow_ipc", "check_media_type", "conform_body",
           "parse_bars_body"]

INGEST_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "text/csv",
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.arrow.file",
)
# Bar times the rest of the stack can represent (model.TS_MIN_US/TS_MAX_US); a body with times
# outside is refused here with a 400 naming the range.
_TS_MIN_US = TS_MIN_US
_TS_MAX_US = TS_MAX_US
# Magnitudes no real market produces (BRK.A trades near 1e6, whole-market volumes near 1e11):
# such values are unit or parsing errors, and they overflow downstream arithmetic.
MAX_PRICE = 1e12
MAX_VOLUME = 1e18
_ARROW_MAGIC = b"ARROW1"
_CONTINUATION = 0xFFFFFFFF
_RECORD_BATCH, _DICTIONARY_BATCH = 3, 2


def _malformed(what: str, problem: str) -> ApiError:
    return ApiError(400, "malformed_body", f"malformed {what} body: {problem}")


def _too_many_rows(rows: int, limit: int) -> ApiError:
    return ApiError(413, "too_many_rows", f"the body holds {rows:,} rows; at most {limit:,} per request",
                    details={"rows": rows, "limit": limit})


def check_media_type(content_type: str | None) -> str:
    """The body's media type, if the ingest endpoint reads it.

    Raises
    ------
    ApiError
        415 for anything else (checked before the body is read).
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in INGEST_MEDIA_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"unsupported Content-Type {media or '(none)'!r}; send one of {', '.join(INGEST_MEDIA_TYPES)}",
                       details={"supported": list(INGEST_MEDIA_TYPES)})
    return media


def parse_bars_body(body: bytes, content_type: str | None, *, max_rows: int, max_decoded_bytes: int) -> pa.Table:
    """Parse an ingest body into an Arrow table (columns as sent; conforming happens later).

    Parameters
    ----------
    body
        The request body (already bounded in size).
    content_type
        The ``Content-Type`` header.
    max_rows
        Most rows accepted.
    max_decoded_bytes
        Most bytes an Arrow IPC body may decode to.

    Raises
    ------
    ApiError
        415 for an unsupported media type, 400 for a malformed body, 413 for too many rows.
    """
    media = check_media_type(content_type)
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty")
    if media == "application/json":
        table = _json(body, max_rows)
    elif media == "application/x-ndjson":
        if body.count(b"\n") > max_rows + 1:
            raise _too_many_rows(body.count(b"\n"), max_rows)
        table = _read(lambda: pajson.read_json(io.BytesIO(body)), "NDJSON")
    elif media == "text/csv":
        if body.count(b"\n") > max_rows + 1:
            raise _too_many_rows(body.count(b"\n") - 1, max_rows)
        table = _read(lambda: pacsv.read_csv(io.BytesIO(body)), "CSV")
    else:  # Arrow IPC, stream or file
        rows = check_arrow_ipc(body, max_decoded_bytes=max_decoded_bytes)
        if rows > max_rows:
            raise _too_many_rows(rows, max_rows)
        table = _read(lambda: _read_ipc(body), "Arrow IPC")
    if table.num_rows > max_rows:
        raise _too_many_rows(table.num_rows, max_rows)
    return table


def conform_body(table: pa.Table, provider: str) -> pa.Table:
    """The body's rows in the canonical bar schema, with times the store can hold.

    Raises
    ------
    SchemaError
        Missing or unreadable columns (400 ``invalid_data``).
    ApiError
        400 ``invalid_data`` for times before 1679 or after 2261, prices beyond ±1e12 or
        volumes beyond ±1e18.
    """
    bars = conform_bars(table, provider=provider)
    if bars.num_rows:
        us = bars.column("ts").cast(pa.int64())
        lo, hi = pc.min(us).as_py(), pc.max(us).as_py()
        if lo < _TS_MIN_US or hi >= _TS_MAX_US:
            raise ApiError(400, "invalid_data", "bar times must lie between 1679-01-01 and 2262-01-01 (UTC)")
        for name, limit in (("open", MAX_PRICE), ("high", MAX_PRICE), ("low", MAX_PRICE), ("close", MAX_PRICE),
                            ("vwap", MAX_PRICE), ("volume", MAX_VOLUME), ("trade_count", MAX_VOLUME)):
            biggest = pc.max(pc.abs(bars.column(name).cast(pa.float64()))).as_py()
            if biggest is not None and biggest > limit:  # infinities too; NaN is left to the quality rules
                raise ApiError(400, "invalid_data", f"{name} values must lie within ±{limit:.0e}",
                               details={"column": name, "limit": limit})
    return bars


def _read(fn: Any, what: str) -> pa.Table:
    try:
        table = fn()
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, pa.ArrowIndexError,
            pa.ArrowKeyError, pa.ArrowCapacityError, OSError, ValueError, TypeError, OverflowError) as exc:
        # TypeError / OverflowError: JSON values Arrow cannot hold (mixed kinds, integers past 64 bits).
        raise _malformed(what, str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__) from None
    if not isinstance(table, pa.Table):
        raise _malformed(what, "not a table")
    return table


def _json(body: bytes, max_rows: int) -> pa.Table:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed("JSON", str(exc)[:300]) from None
    except RecursionError:  # "[[[[...]]]]" deeper than the parser's stack
        raise _malformed("JSON", "nested too deeply") from None
    if isinstance(data, dict):
        data = data.get("bars")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise _malformed("JSON", 'expected a list of bar objects or {"bars": [...]}')
    if len(data) > max_rows:
        raise _too_many_rows(len(data), max_rows)
    return _read(lambda: pa.Table.from_pylist(data), "JSON")


def _read_ipc(body: bytes) -> pa.Table:
    buf = pa.py_buffer(body)
    if body.startswith(_ARROW_MAGIC):
        return pa.ipc.open_file(buf).read_all()
    return pa.ipc.open_stream(buf).read_all()


# -- Arrow IPC pre-check ------------------------------------------------------------------------
# Just enough of the flatbuffers wire format to read Message.header_type, Message.bodyLength,
# RecordBatch.length, RecordBatch.buffers and whether RecordBatch.compression is present.

class _Flat:
    """Bounds-checked reads of one flatbuffer."""

    def __init__(self, data: bytes) -> None:
        self.d = data

    def _unpack(self, fmt: str, pos: int) -> Any:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.d):
            raise ValueError("offset out of bounds")
        return struct.unpack_from(fmt, self.d, pos)[0]

    def root(self) -> int:
        return int(self._unpack("<I", 0))

    def field_pos(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
        vtable = table - int(self._unpack("<i", table))
        vsize = int(self._unpack("<H", vtable))
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        off = int(self._unpack("<H", vtable + slot))
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default: int = 0) -> int:
        pos = self.field_pos(table, index)
        return default if pos is None else int(self._unpack(fmt, pos))

    def table(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else pos + int(self._unpack("<I", pos))

    def struct_vector(self, table: int, index: int, size: int) -> list[tuple[int, int]]:
        pos = self.field_pos(table, index)
        if pos is None:
            return []
        vec = pos + int(self._unpack("<I", pos))
        n = int(self._unpack("<I", vec))
        if n > (len(self.d) - vec) // size:
            raise ValueError("vector longer than the message")
        return [(int(self._unpack("<q", vec + 4 + i * size)), int(self._unpack("<q", vec + 12 + i * size)))
                for i in range(n)]


def _batch_sizes(flat: _Flat, batch: int, body: memoryview) -> tuple[int, int]:
    """(rows, decoded bytes) of the RecordBatch table at ``batch`` whose body is ``body``."""
    rows = flat.scalar(batch, 0, "<q")
    buffers = flat.struct_vector(batch, 2, 16)
    compressed = flat.table(batch, 3) is not None
    decoded = 0
    for offset, length in buffers:
        if offset < 0 or length < 0 or offset + length > len(body):
            raise ValueError("buffer outside the message body")
        if compressed and length >= 8:
            declared = struct.unpack_from("<q", body, offset)[0]
            decoded += length - 8 if declared == -1 else max(declared, 0)
        else:
            decoded += length
    if rows < 0:
        raise ValueError("negative row count")
    return rows, decoded


def check_arrow_ipc(body: bytes, *, max_decoded_bytes: int) -> int:
    """Walk an Arrow IPC stream (or file) without decoding it; return its row count.

    Raises
    ------
    ApiError
        400 if the framing is malformed, 413 if it would decode to more than
        ``max_decoded_bytes``.
    """
    view = memoryview(body)
    pos = 0
    end = len(body)
    if body.startswith(_ARROW_MAGIC):
        if len(body) < 18 or not body.endswith(_ARROW_MAGIC):
            raise _malformed("Arrow IPC", "truncated file")
        footer = struct.unpack_from("<i", body, len(body) - 10)[0]
        pos, end = 8, len(body) - 10 - footer
        if footer < 0 or end < pos:
            raise _malformed("Arrow IPC", "bad footer")
    rows = decoded = 0
    messages = 0
    try:
        while pos + 4 <= end:
            size = struct.unpack_from("<I", body, pos)[0]
            pos += 4
            if size == _CONTINUATION:
                if pos + 4 > end:
                    raise ValueError("truncated message header")
                size = struct.unpack_from("<I", body, pos)[0]
                pos += 4
            if size == 0:  # end of stream
                break
            if size > end - pos:
                raise ValueError("message longer than the body")
            flat = _Flat(bytes(view[pos:pos + size]))
            pos += size
            message = flat.root()
            kind = flat.scalar(message, 1, "<B")
            body_len = flat.scalar(message, 3, "<q")
            if body_len < 0 or body_len > end - pos:
                raise ValueError("message body longer than the stream")
            payload = view[pos:pos + body_len]
            pos += body_len
            header = flat.table(message, 2)
            if kind == _RECORD_BATCH and header is not None:
                n, d = _batch_sizes(flat, header, payload)
                rows += n
                decoded += d
            elif kind == _DICTIONARY_BATCH and header is not None:
                data = flat.table(header, 1)
                if data is not None:
                    decoded += _batch_sizes(flat, data, payload)[1]
            messages += 1
            if decoded > max_decoded_bytes:
                raise ApiError(413, "payload_too_large",
                               f"the Arrow body would decode to more than {max_decoded_bytes:,} bytes",
                               details={"limit": max_decoded_bytes})
    except (ValueError, struct.error) as exc:
        raise _malformed("Arrow IPC", str(exc)) from None
    if messages == 0:
        raise _malformed("Arrow IPC", "no schema message")
    return rows
