"""``read_file``: one import file -> a streamed, canonical, fully checked sequence of bars.

``read_file`` looks at the file once up front (kind, layout, time format, timeframe, symbol)
so a caller can show what it is about to import; :meth:`FileImport.batches` then streams
the whole file in bounded memory and raises :class:`~tickvault.errors.FileFormatError` at
the first malformed line wherever it is. Nothing is written anywhere: the caller spools the
batches and commits only when the iteration finished without error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from tickvault.errors import FileFormatError, InvalidInput, InvalidSymbol, TickvaultError
from tickvault.model import BAR_SCHEMA, CorporateAction, validate_symbol
from tickvault.providers.files._columnar import columnar_names, iter_columnar
from tickvault.providers.files._convert import Converter, Locator, SkippedRows
from tickvault.providers.files._csv import CsvHead, iter_csv, parse_block, read_head
from tickvault.providers.files._layouts import LAYOUTS, ColumnMap, match_header
from tickvault.providers.files._sources import Block, FileKind, sniff

__all__ = ["FileImport", "detect_layout", "infer_symbol", "read_file", "resolve_tz"]

_MIN_BLOCK = 1 << 20
_MAX_BLOCK = 16 << 20
_SUFFIXES = {".csv", ".txt", ".tsv", ".dat", ".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd", ".zip", ".parquet",
             ".pq", ".feather", ".arrow", ".ipc"}
_FREQTRADE_NAME = re.compile(r"^([A-Z0-9]+)_([A-Z0-9]+)(?:_([A-Z0-9]+))?-\d+[a-zA-Z]+(?:-[a-z_]+)?$")
_PLAIN_SYMBOL = re.compile(r"^\^?[A-Z0-9.]+(?:/[A-Z0-9.]+(?::[A-Z0-9.]+)?)?\Z")


def resolve_tz(tz: str) -> str:
    """An IANA zone name for ``tz``, which may also be a calendar name (``XNYS``, ``XLON``).

    Raises
    ------
    InvalidInput
        If ``tz`` is neither.
    """
    try:
        ZoneInfo(tz)
        return tz
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        pass
    from tickvault.calendars import get_calendar  # deferred: exchange_calendars is slow to import

    try:
        return get_calendar(tz).tz
    except TickvaultError:
        raise InvalidInput(f"unknown time zone or calendar {tz!r}; use e.g. 'America/New_York' or 'XNYS'") from None


def infer_symbol(path: Path, layout: str) -> str | None:
    """The symbol a file name states unambiguously, else ``None``.

    ``AAPL.csv.gz`` -> ``AAPL``; ``BTC%2FUSDT.parquet`` -> ``BTC/USDT``; freqtrade's
    ``XRP_USDT_USDT-5m-futures.feather`` -> ``XRP/USDT:USDT``. Lower-case or decorated names
    (``msft.csv``, ``SPY_D.csv``, ``nvda-1999-2014.txt``) are not guessed at.
    """
    name = path.name
    while Path(name).suffix.lower() in _SUFFIXES:
        name = name[: -len(Path(name).suffix)]
    stem = unquote(name)
    if layout == "freqtrade":
        m = _FREQTRADE_NAME.match(stem)
        if m:
            base, quote, settle = m.groups()
            stem = f"{base}/{quote}" + (f":{settle}" if settle else "")
    if not _PLAIN_SYMBOL.match(stem):
        return None
    try:
        return validate_symbol(stem)
    except InvalidSymbol:
        return None


def _head(path: Path, layout: str | None) -> tuple[FileKind, str | None, ColumnMap, CsvHead | None]:
    if layout is not None and layout not in LAYOUTS:
        raise InvalidInput(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    kind, compression = sniff(path)
    if kind is FileKind.TEXT:
        head = read_head(path, compression, layout)
        return kind, compression, head.cmap, head
    names = columnar_names(path, kind)
    return kind, None, match_header(names, path=str(path), columnar=True, forced=layout), None


def detect_layout(path: str | PathLike[str]) -> str:
    """The layout name of ``path`` (a key of :data:`LAYOUTS`), from its header or schema.

    Raises
    ------
    FileFormatError
        If no layout fits.
    InvalidInput
        If the file does not exist.
    """
    return _head(Path(path), None)[2].layout


class FileImport:
    """One file being imported: what it is, and its bars as a stream.

    Built by :func:`read_file`. Attributes are known up front; ``actions``, ``skipped`` and
    ``rows`` are complete once :meth:`batches` has been exhausted (``complete`` is then
    true). Each call to :meth:`batches` reads the file again from the start.

    Attributes
    ----------
    path
        The file.
    layout
        Recognised layout name (see :data:`LAYOUTS`).
    timeframe
        Canonical timeframe, given or inferred from the median spacing.
    symbol
        Given, or inferred from the file name when unambiguous, else ``None``.
    tz
        Zone used for naive timestamps and session dates (``None``: UTC / the file's offsets).
    label
        ``open`` or ``end``: what the file's intraday timestamps marked.
    columns
        Canonical field -> source column name.
    ignored_columns
        Source columns deliberately not stored (``Adj Close``, ``OpenInterest``, ...).
    warnings
        Things a user should know (naive times read as UTC, ambiguous dates, unknown columns).
    """

    def __init__(self, path: Path, kind: FileKind, compression: str | None, cmap: ColumnMap, head: CsvHead | None,
                 converter: Converter, batch_rows: int, block_bytes: int) -> None:
        self.path = path
        self.layout = cmap.layout
        self._kind = kind
        self._compression = compression
        self._cmap = cmap
        self._head = head
        self._conv = converter
        self._batch_rows = batch_rows
        self._block_bytes = block_bytes
        self._complete = False
        assert converter.timeframe is not None
        self.timeframe = str(converter.timeframe)
        self.symbol = converter.symbol
        self.tz = converter.tz
        self.label = converter.label
        def name(pos: int) -> str:
            return cmap.names[pos] or "(unnamed index)"

        columns = {"ts": " + ".join(name(i) for i in cmap.time)}
        columns.update({field: name(pos) for field, pos in cmap.fields.items()})
        for field, pos in (("dividend", cmap.dividend), ("split", cmap.split)):
            if pos is not None:
                columns[field] = name(pos)
        self.columns: Mapping[str, str] = columns
        self.ignored_columns: tuple[str, ...] = cmap.ignored + cmap.unknown

    def __repr__(self) -> str:
        return (f"FileImport({str(self.path)!r}, layout={self.layout!r}, timeframe={self.timeframe!r}, "
                f"symbol={self.symbol!r})")

    @property
    def warnings(self) -> list[str]:
        """Advice about how the file was read (copy)."""
        return list(self._conv.warnings)

    @property
    def actions(self) -> list[CorporateAction]:
        """Splits and dividends found in the file, sorted (complete after :meth:`batches`)."""
        return self._conv.actions

    @property
    def skipped(self) -> list[SkippedRows]:
        """Rows deliberately dropped, by reason, with their first locations."""
        return self._conv.skipped

    @property
    def skipped_rows(self) -> int:
        """Total rows deliberately dropped (see :attr:`skipped` for reasons)."""
        return sum(s.count for s in self._conv.skipped)

    @property
    def rows(self) -> int:
        """Bars produced by the current (or last) pass."""
        return self._conv.rows

    @property
    def complete(self) -> bool:
        """Whether a pass over the whole file has finished without error."""
        return self._complete

    def batches(self) -> Iterator[pa.Table]:
        """Canonical bars (``BAR_SCHEMA``, provider ``files``) in file order, streamed.

        Rows are neither sorted nor de-duplicated (newest-first files stay newest-first), so
        the quality rules see the file as written.

        Raises
        ------
        FileFormatError
            At the first malformed line or row, whenever it is reached.
        """
        self._complete = False
        self._conv.reset()
        for table, where in self._sources():
            out = self._conv.convert(table, where)
            for start in range(0, out.num_rows, self._batch_rows):
                yield out.slice(start, self._batch_rows)
        if self._conv.rows == 0:
            reasons = ", ".join(f"{s.count} {s.reason}" for s in self._conv.skipped) or "no data rows"
            raise FileFormatError(f"file has no usable bars ({reasons})", path=str(self.path))
        self._conv.finish()
        self._complete = True

    def read_all(self) -> pa.Table:
        """All bars in one table (convenience for small files)."""
        tables = list(self.batches())
        return pa.concat_tables(tables) if tables else BAR_SCHEMA.empty_table()

    def _sources(self) -> Iterator[tuple[pa.Table, Locator]]:
        if self._head is not None:
            for table, block in iter_csv(self.path, self._compression, self._head, self._block_bytes):
                yield table, _line_locator(block)
        else:
            for table, offset in iter_columnar(self.path, self._kind, self._cmap, self._batch_rows):
                yield table, _row_locator(offset)


def _line_locator(block: Block) -> Locator:
    cache: list[np.ndarray] = []

    def where(i: int) -> dict[str, int]:
        if not cache:
            cache.append(block.nonblank_lines())
        lines = cache[0]
        return {"line": int(lines[i]) if 0 <= i < lines.size else block.first_line}

    return where


def _row_locator(offset: int) -> Locator:
    return lambda i: {"row": offset + i + 1}


def read_file(path: str | PathLike[str], *, symbol: str | None = None, timeframe: str | None = None,
              tz: str | None = None, layout: str | None = None, label: str | None = None,
              batch_rows: int = 1_000_000) -> FileImport:
    """Open an OHLCV file for import, recognising its layout automatically.

    Reads the header and a first sample (about 1 MiB) to decide the layout, the time
    format and the timeframe; the rest is read by :meth:`FileImport.batches`.

    Parameters
    ----------
    path
        CSV (plain, gzip, bz2, xz, zstd or a one-file zip), Parquet or Feather/Arrow file.
    symbol
        Canonical symbol; inferred from the file name when omitted and unambiguous.
    timeframe
        Bar length (``1m``, ``1d``, ...); inferred from the median spacing when omitted.
    tz
        IANA zone (or calendar name such as ``XNYS``) of naive timestamps. Also the clock in
        which daily bars' session dates are read. Default: naive times are UTC.
    layout
        Force a layout (see :data:`LAYOUTS`); detection must agree, ``ohlcv`` always fits.
    label
        ``open`` or ``end``: what the file's intraday timestamps mark. Default: the
        layout's convention (``end`` for ``nautilus``, ``open`` otherwise).
    batch_rows
        Maximum rows per yielded table.

    Returns
    -------
    FileImport

    Raises
    ------
    FileFormatError
        If the file is empty, malformed in its first block, or in no known layout.
    InvalidInput
        For a missing file, bad ``tz``/``layout``/``label``/``batch_rows``; ``InvalidSymbol``
        and ``InvalidTimeframe`` for bad ``symbol``/``timeframe``.
    """
    p = Path(path)
    if label not in (None, "open", "end"):
        raise InvalidInput(f"label must be 'open' or 'end', got {label!r}")
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be >= 1, got {batch_rows}")
    zone = resolve_tz(tz) if tz is not None else None
    kind, compression, cmap, head = _head(p, layout)
    sym = validate_symbol(symbol) if symbol is not None else infer_symbol(p, cmap.layout)
    conv = Converter(cmap, str(p), tz=zone, timeframe=timeframe, label=label or cmap.label, symbol=sym)
    if head is not None:
        sample = parse_block(head.sample, head, p)
        conv.prepare(sample, _line_locator(head.sample))
        per_row = len(head.sample.data) / max(sample.num_rows, 1)
        block_bytes = int(min(max(per_row * batch_rows, _MIN_BLOCK), _MAX_BLOCK))
    else:
        first = next(iter_columnar(p, kind, cmap, batch_rows), None)
        if first is None:
            raise FileFormatError("file has no rows", path=str(p))
        conv.prepare(first[0], _row_locator(first[1]))
        block_bytes = 0
    return FileImport(p, kind, compression, cmap, head, conv, batch_rows, block_bytes)
