"""Response formats: JSON (default), CSV, Arrow IPC stream and Parquet, chosen per request.

``format=`` wins over the ``Accept`` header; no preference means JSON. Tables are turned into
bytes column by column with Arrow compute (no Python loop per row): JSON records are built by
joining per-column string arrays, so 500 bars serialise in about a millisecond. Responses with
more than ``stream_threshold_rows`` rows are streamed in chunks (JSON, CSV and Arrow; Parquet
needs its footer, so it is sent whole — its size is bounded by the row limit).
"""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from starlette.responses import Response, StreamingResponse

from tickvault.service._errors import ApiError

__all__ = ["MEDIA_TYPES", "OutFormat", "json_records", "negotiate", "table_bytes", "table_response"]

# pyarrow-stubs type compute functions per overload and do not model a mix of string scalars
# and arrays (``binary_join_element_wise('"', arr, '"', "")``), which Arrow accepts.
_pc: Any = pc


class OutFormat(enum.StrEnum):
    """Formats a tabular endpoint can answer in."""

    JSON = "json"
    CSV = "csv"
    ARROW = "arrow"
    PARQUET = "parquet"


MEDIA_TYPES: dict[OutFormat, str] = {
    OutFormat.JSON: "application/json",
    OutFormat.CSV: "text/csv; charset=utf-8",
    OutFormat.ARROW: "application/vnd.apache.arrow.stream",
    OutFormat.PARQUET: "application/vnd.apache.parquet",
}
_BY_MEDIA = {
    "application/json": OutFormat.JSON,
    "text/csv": OutFormat.CSV,
    "application/vnd.apache.arrow.stream": OutFormat.ARROW,
    "application/vnd.apache.arrow.file": OutFormat.ARROW,
    "application/x-arrow": OutFormat.ARROW,
    "application/vnd.apache.parquet": OutFormat.PARQUET,
    "application/x-parquet": OutFormat.PARQUET,
    "application/parquet": OutFormat.PARQUET,
}


def negotiate(format_param: str | None, accept: str | None) -> OutFormat:
    """The response format: ``format=`` if given, else the best ``Accept`` match, else JSON.

    Raises
    ------
    ApiError
        406 when ``Accept`` names only formats we do not produce.
    """
    if format_param is not None:
        return OutFormat(format_param)
    if not accept or not accept.strip():
        return OutFormat.JSON
    ranked: list[tuple[float, int, str]] = []
    for i, item in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and media:
            ranked.append((-q, i, media.lower()))
    for _, _, media in sorted(ranked):
        if media in _BY_MEDIA:
            return _BY_MEDIA[media]
        if media in ("*/*", "application/*"):
            return OutFormat.JSON
        if media == "text/*":
            return OutFormat.CSV
    raise ApiError(406, "not_acceptable", "no acceptable format; this endpoint serves JSON, CSV, Arrow or Parquet",
                   details={"available": sorted(m.split(";")[0] for m in MEDIA_TYPES.values())})


# -- JSON ------------------------------------------------------------------------------------

def _json_strings(col: Any) -> Any:
    """Each value of ``col`` as a JSON literal (``null`` for missing and non-finite values)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_timestamp(t):
        text = _pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ" if t.tz is not None else "%Y-%m-%dT%H:%M:%S")
        out = _pc.binary_join_element_wise('"', text, '"', "")
    elif pa.types.is_date(t):
        out = _pc.binary_join_element_wise('"', _pc.cast(col, pa.string()), '"', "")
    elif pa.types.is_floating(t):
        out = _pc.if_else(_pc.is_finite(col), _pc.cast(col, pa.string()), pa.scalar(None, pa.string()))
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        out = _pc.cast(col, pa.string())
    else:
        # Strings: escape each distinct value once with the json module, then gather.
        encoded = _pc.dictionary_encode(_pc.cast(col, pa.string()))
        chunks: list[Any] = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
        parts = []
        for chunk in chunks:
            words = pa.array([json.dumps(v) for v in chunk.dictionary.to_pylist()], pa.string())
            parts.append(_pc.take(words, chunk.indices))
        out = pa.chunked_array(parts, pa.string())
    return _pc.fill_null(out, "null")


def json_records(table: pa.Table) -> bytes:
    """``[{...}, ...]`` for ``table``, built without a Python loop over rows."""
    if table.num_rows == 0:
        return b"[]"
    pieces: list[Any] = []
    for i, name in enumerate(table.column_names):
        pieces.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
        pieces.append(_json_strings(table.column(i)))
    pieces.append("}")
    records = _pc.binary_join_element_wise(*pieces, "")
    flat = records.combine_chunks() if isinstance(records, pa.ChunkedArray) else records
    lists = pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), flat)
    joined: str = _pc.binary_join(lists, ",")[0].as_py()
    return b"[" + joined.encode() + b"]"


def _json_prefix(meta: Mapping[str, Any], rows_key: str) -> bytes:
    head = json.dumps(dict(meta), separators=(",", ":"))
    sep = "," if len(meta) else ""
    return (head[:-1] + sep + json.dumps(rows_key) + ":").encode()


def _iter_json(table: pa.Table, meta: Mapping[str, Any], rows_key: str, chunk: int) -> Iterator[bytes]:
    yield _json_prefix(meta, rows_key) + b"["
    for i, batch in enumerate(table.to_batches(max_chunksize=chunk)):
        body = json_records(pa.Table.from_batches([batch]))[1:-1]
        if body:
            yield (b"," if i else b"") + body
    yield b"]}"


# -- CSV / Arrow / Parquet --------------------------------------------------------------------

def _for_text(table: pa.Table) -> pa.Table:
    """Decode dictionaries and write timestamps as ISO 8601 (what our CSV ingest reads back)."""
    for i, field in enumerate(table.schema):
        col = table.column(i)
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, col.cast(field.type.value_type))
        elif pa.types.is_timestamp(field.type):
            fmt = "%Y-%m-%dT%H:%M:%SZ" if field.type.tz is not None else "%Y-%m-%dT%H:%M:%S"
            table = table.set_column(i, field.name, _pc.strftime(col, format=fmt))
    return table


def _iter_csv(table: pa.Table, chunk: int) -> Iterator[bytes]:
    text = _for_text(table)
    sink = io.BytesIO()
    with pacsv.CSVWriter(sink, text.schema) as writer:
        yield from _drain(sink)
        for batch in text.to_batches(max_chunksize=chunk):
            writer.write_batch(batch)
            yield from _drain(sink)
    yield from _drain(sink)


def _iter_arrow(table: pa.Table, chunk: int) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        yield from _drain(sink)
        for batch in table.to_batches(max_chunksize=chunk):
            writer.write_batch(batch)
            yield from _drain(sink)
    yield from _drain(sink)


def _drain(sink: io.BytesIO) -> Iterator[bytes]:
    data = sink.getvalue()
    if data:
        sink.seek(0)
        sink.truncate()
        yield data


def table_bytes(table: pa.Table, fmt: OutFormat, meta: Mapping[str, Any], rows_key: str) -> bytes:
    """The whole response body of ``table`` in ``fmt``."""
    if fmt is OutFormat.JSON:
        return b"".join(_iter_json(table, meta, rows_key, max(table.num_rows, 1)))
    if fmt is OutFormat.CSV:
        return b"".join(_iter_csv(table, max(table.num_rows, 1)))
    if fmt is OutFormat.ARROW:
        return b"".join(_iter_arrow(table, max(table.num_rows, 1)))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def table_response(table: pa.Table, fmt: OutFormat, *, meta: Mapping[str, Any], rows_key: str = "bars",
                   stream_threshold: int, chunk_rows: int = 10_000,
                   headers: Mapping[str, str] | None = None) -> Response:
    """A response for ``table``: whole below ``stream_threshold`` rows, streamed above.

    Parameters
    ----------
    table
        The rows.
    fmt
        Output format.
    meta
        Top-level JSON fields written before the rows (JSON only; the other formats carry
        the columns only).
    rows_key
        JSON field holding the records.
    stream_threshold
        Row count above which the body is streamed in ``chunk_rows`` pieces.
    headers
        Extra headers.
    """
    media = MEDIA_TYPES[fmt]
    extra = {"X-Row-Count": str(table.num_rows), **(headers or {})}
    if table.num_rows <= stream_threshold or fmt is OutFormat.PARQUET:
        return Response(table_bytes(table, fmt, meta, rows_key), media_type=media, headers=extra)
    if fmt is OutFormat.JSON:
        body = _iter_json(table, meta, rows_key, chunk_rows)
    elif fmt is OutFormat.CSV:
        body = _iter_csv(table, chunk_rows)
    else:
        body = _iter_arrow(table, chunk_rows)
    return StreamingResponse(body, media_type=media, headers=extra)
