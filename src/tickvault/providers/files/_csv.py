"""Streaming CSV reading with exact line numbers.

The file is cut into blocks of whole lines (:mod:`._sources`) and each block is parsed by
``pyarrow.csv`` with the file's column count and types fixed, so memory stays bounded by
the block size whatever the file size. The fast path parses numbers directly; when it
fails, the block is parsed again as text (single-threaded, so Arrow reports which row
broke) and the converter names the offending value and line. The header is read here once.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pcsv

from tickvault.errors import FileFormatError
from tickvault.providers.files._layouts import ColumnMap, looks_like_data, match_header, match_headerless
from tickvault.providers.files._sources import Block, iter_blocks, open_text, read_exact

__all__ = ["CsvHead", "iter_csv", "read_head"]

_SNIFF_BYTES = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvHead:
    """What the first lines of a text file say about it.

    Attributes
    ----------
    cmap
        Recognised layout and column positions.
    delimiter
        Field separator.
    ncols
        Number of fields per row.
    skip_bytes
        Bytes before the first data line (BOM, blank lines, header).
    data_line
        Line number of the first data line.
    sample
        The first block of data lines (up to ~1 MiB) for format and timeframe detection.
    """

    cmap: ColumnMap
    delimiter: str
    ncols: int
    skip_bytes: int
    data_line: int
    sample: Block


def read_head(path: Path, compression: str | None, forced: str | None) -> CsvHead:
    """Read the header (or first row) and a sample of data lines.

    Raises
    ------
    FileFormatError
        Empty or binary file, unsupported encoding, or unrecognised columns.
    """
    where = str(path)
    with open_text(path, compression) as stream:
        blocks = iter_blocks(stream, path, compression, _SNIFF_BYTES)
        first = next(blocks, None)
        second = next(blocks, None)
    if first is None:
        raise FileFormatError("file is empty", path=where)
    raw = bytes(first.data)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileFormatError("UTF-16 text is not supported; save the file as UTF-8", path=where, line=1)
    if b"\x00" in raw[:65536]:
        raise FileFormatError("binary data, not a CSV text file", path=where, line=1)
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    line = 1
    # Leading blank lines are allowed; the first non-blank line is the header (or the first row).
    while True:
        end = raw.find(b"\n", skip)
        end = len(raw) if end < 0 else end + 1
        text = raw[skip:end].strip(b"\r\n")
        if text.strip() or end >= len(raw):
            break
        skip, line = end, line + 1
    if not text.strip():
        raise FileFormatError("file is empty", path=where)
    try:
        header_text = text.decode("utf-8")
    except UnicodeDecodeError:
        raise FileFormatError("first line is not UTF-8 text", path=where, line=line) from None
    if "\r" in header_text:
        raise FileFormatError("lines end with a bare carriage return (classic Mac); convert the line ends to \\n",
                              path=where, line=line)
    delimiter = max(_DELIMITERS, key=header_text.count) if any(d in header_text for d in _DELIMITERS) else ","
    try:
        fields = next(csv.reader([header_text], delimiter=delimiter), [])
    except csv.Error as exc:
        raise FileFormatError(f"unreadable first line: {exc}", path=where, line=line) from None
    if looks_like_data(fields):
        cmap = match_headerless(fields, path=where, forced=forced)
        data_start, data_line = skip, line
    else:
        cmap = match_header(fields, path=where, forced=forced)
        data_start, data_line = end, line + 1
    sample_data = raw[data_start:]
    if second is None and not sample_data.strip():
        raise FileFormatError("file has a header but no data rows", path=where, line=line)
    return CsvHead(cmap, delimiter, len(fields), data_start, data_line, Block(sample_data, data_line))


def _names(ncols: int) -> list[str]:
    return [f"c{i}" for i in range(ncols)]


def parse_block(block: Block, head: CsvHead, path: Path) -> pa.Table:
    """Parse one block into a table of the used columns (``c<position>``).

    Numbers come back as float64 when every value parses; otherwise the block is parsed
    as text and the converter reports the bad value.

    Raises
    ------
    FileFormatError
        A row with the wrong number of fields, invalid UTF-8 or unbalanced quotes.
    """
    include = [f"c{i}" for i in head.cmap.used() if i < head.ncols]
    time_cols = {f"c{i}" for i in head.cmap.time}
    fast: dict[str, pa.DataType] = {c: (pa.string() if c in time_cols else pa.float64()) for c in include}
    try:
        return _read(block, head, include, fast, threads=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad_rows: list[pcsv.InvalidRow] = []

    def on_invalid(row: pcsv.InvalidRow) -> Literal["skip", "error"]:
        bad_rows.append(row)
        return "error"

    # Arrow decodes a bad row's text as UTF-8 before handing it over, so undecodable bytes
    # must be found first (this is the error path; the fast path never pays for it).
    bad_text = _first_undecodable(block)
    if bad_text is not None:
        raise FileFormatError("line is not valid UTF-8 text", path=str(path), line=bad_text)
    text_types: dict[str, pa.DataType] = dict.fromkeys(include, pa.string())
    try:
        return _read(block, head, include, text_types, threads=False, on_invalid=on_invalid)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _locate(block, head, path, bad_rows, exc) from None


def _read(block: Block, head: CsvHead, include: list[str], types: dict[str, pa.DataType], *, threads: bool,
          on_invalid: Callable[[pcsv.InvalidRow], Literal["skip", "error"]] | None = None) -> pa.Table:
    return pcsv.read_csv(
        pa.BufferReader(pa.py_buffer(block.data)),  # type: ignore[arg-type]  # stubs miss NativeFile
        read_options=pcsv.ReadOptions(column_names=_names(head.ncols), use_threads=threads),
        parse_options=pcsv.ParseOptions(delimiter=head.delimiter, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(column_types=types, include_columns=include,
                                            strings_can_be_null=True, quoted_strings_can_be_null=True),
    )


def _first_undecodable(block: Block) -> int | None:
    data = bytes(block.data)
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        return block.first_line + data.count(b"\n", 0, exc.start)


def _locate(block: Block, head: CsvHead, path: Path, bad_rows: list[pcsv.InvalidRow],
            exc: Exception) -> FileFormatError:
    where = str(path)
    if bad_rows:
        row = bad_rows[0]
        lines = block.nonblank_lines()
        line = int(lines[row.number - 1]) if row.number is not None and 0 < row.number <= lines.size else None
        shown = (row.text or "")[:60]
        return FileFormatError(f"expected {row.expected_columns} fields, found {row.actual_columns}: {shown!r}",
                               path=where, line=line)
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return FileFormatError(f"unreadable CSV: {message[:200]}", path=where, line=block.first_line)


def iter_csv(path: Path, compression: str | None, head: CsvHead, block_bytes: int) -> Iterator[tuple[pa.Table, Block]]:
    """Yield ``(table, block)`` for the whole file, in order, from the first data line.

    Raises
    ------
    FileFormatError
        At the first malformed line (decompression errors included).
    """
    with open_text(path, compression) as stream:
        read_exact(stream, head.skip_bytes, path, compression, 1)
        for block in iter_blocks(stream, path, compression, block_bytes, first_line=head.data_line):
            yield parse_block(block, head, path), block
