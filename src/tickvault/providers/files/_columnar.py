"""Streaming Parquet and Arrow IPC / Feather reading.

Parquet is read row group by row group (``iter_batches``), Arrow IPC files through a memory
map one record batch at a time, so memory follows the batch size, not the file size.
Feather V1 (deprecated by Arrow) is refused when sniffed. Columns are renamed to
``c<position>`` so the converter treats every source alike; locations are row numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from tickvault.errors import FileFormatError
from tickvault.providers.files._layouts import ColumnMap
from tickvault.providers.files._sources import FileKind

__all__ = ["columnar_names", "iter_columnar"]

_ARROW_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError)


def _error(path: Path, kind: FileKind, exc: BaseException) -> FileFormatError:
    message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return FileFormatError(f"unreadable {kind.value} file: {message}", path=str(path))


def columnar_names(path: Path, kind: FileKind) -> list[str]:
    """Column names of a Parquet/Arrow file (from its schema only).

    Raises
    ------
    FileFormatError
        If the file is corrupt.
    """
    try:
        if kind is FileKind.PARQUET:
            return list(pq.ParquetFile(path).schema_arrow.names)
        if kind is FileKind.ARROW_FILE:
            with pa.memory_map(str(path)) as source:
                return list(ipc.open_file(source).schema.names)
        with pa.OSFile(str(path), "r") as source:
            return list(ipc.open_stream(source).schema.names)
    except _ARROW_ERRORS as exc:
        raise _error(path, kind, exc) from None


def _batches(path: Path, kind: FileKind, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if kind is FileKind.PARQUET:
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
    elif kind is FileKind.ARROW_FILE:
        with pa.memory_map(str(path)) as source:
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)
    else:
        with pa.OSFile(str(path), "r") as source:
            yield from ipc.open_stream(source)


def iter_columnar(path: Path, kind: FileKind, cmap: ColumnMap, batch_rows: int) -> Iterator[tuple[pa.Table, int]]:
    """Yield ``(table, first_row)`` with the used columns named ``c<position>``.

    ``first_row`` is the 0-based index of the table's first row in the file.

    Raises
    ------
    FileFormatError
        If the file is corrupt or its schema changes between batches.
    """
    used = cmap.used()
    offset = 0
    batches = _batches(path, kind, batch_rows)
    while True:
        try:
            batch = next(batches, None)
        except _ARROW_ERRORS as exc:
            raise _error(path, kind, exc) from None
        if batch is None:
            return
        try:
            batch.validate(full=True)  # corrupt buffers would otherwise surface later as Arrow errors
        except _ARROW_ERRORS as exc:
            raise FileFormatError(f"corrupt {kind.value} data: {str(exc)[:200]}", path=str(path),
                                  row=offset + 1) from None
        if batch.num_columns != len(cmap.names):
            raise FileFormatError(f"batch has {batch.num_columns} columns, schema has {len(cmap.names)}",
                                  path=str(path), row=offset + 1)
        for start in range(0, batch.num_rows, batch_rows):
            part = batch.slice(start, batch_rows)
            table = pa.Table.from_arrays([part.column(i) for i in used], names=[f"c{i}" for i in used])
            yield table, offset
            offset += part.num_rows
