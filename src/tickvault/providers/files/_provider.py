"""``FilesProvider``: a folder of per-symbol files served through the Provider protocol.

Layout of the folder: ``<root>/<SYMBOL>.<ext>`` (timeframe inferred from the file) or
``<root>/<timeframe>/<SYMBOL>.<ext>`` (timeframe declared by the folder), where ``SYMBOL``
is :func:`~tickvault.model.symbol_path_component` of the canonical symbol (``AAPL``,
``BTC%2FUSDT``) and ``ext`` anything :func:`read_file` reads. A file is the vendor's final
word on the span it covers, so coverage is ``final`` from its first bar to the end of its
last bar, clipped to the query; outside that span the provider vouches for nothing.
"""

from __future__ import annotations

import asyncio
import os
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import (
    FileFormatError,
    InvalidInput,
    ProviderResponseError,
    SymbolNotFound,
    TickvaultError,
    UnsupportedRequest,
)
from tickvault.model import (
    AssetClass,
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    Timeframe,
    empty_bars,
    symbol_path_component,
    ts_to_us,
    us_to_ts,
    validate_symbol,
)
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.providers.files._import import _SUFFIXES, read_file

__all__ = ["FilesProvider"]


def _stem(name: str) -> str:
    while Path(name).suffix.lower() in _SUFFIXES:
        name = name[: -len(Path(name).suffix)]
    return name


class FilesProvider:
    """Serve bars from a folder of files named by symbol.

    Parameters
    ----------
    root
        The folder.
    tz
        Zone of naive timestamps in the files (IANA name or calendar name); default UTC.
    layout, label
        Passed to :func:`read_file` for every file (default: automatic).
    name
        Provider name (provenance of coverage marks).

    Notes
    -----
    Every query reads the matching file from the start (streamed, bounded memory) and
    keeps only the rows in range; nothing is cached between calls.
    """

    def __init__(self, root: str | PathLike[str], *, tz: str | None = None, layout: str | None = None,
                 label: str | None = None, name: str = "files") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidInput(f"files provider root is not a folder: {self.root}")
        self._tz = tz
        self._layout = layout
        self._label = label
        self._name = name
        self._capabilities: Capabilities | None = None

    @property
    def name(self) -> str:
        """Provider name (``files`` by default)."""
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        """Timeframes present in the folder (scanned once; :meth:`refresh` rescans).

        Files that cannot be read are left out here and reported when queried.
        """
        if self._capabilities is None:
            timeframes: set[str] = set()
            for path, declared in self._files():
                if declared is not None:
                    timeframes.add(declared)
                    continue
                try:
                    timeframes.add(read_file(path, tz=self._tz, layout=self._layout, label=self._label).timeframe)
                except TickvaultError:
                    continue
            ordered = sorted(timeframes, key=lambda t: Timeframe.parse(t).sort_key())
            self._capabilities = Capabilities(
                name=self._name, asset_classes=frozenset(AssetClass),
                timeframes=tuple(TimeframeSupport(tf) for tf in ordered),
                kinds=frozenset({DataKind.BARS, DataKind.ACTIONS}))
        return self._capabilities

    def refresh(self) -> None:
        """Forget the scanned capabilities (files were added or removed)."""
        self._capabilities = None

    def _files(self) -> list[tuple[Path, str | None]]:
        out: list[tuple[Path, str | None]] = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_file():
                out.append((Path(entry.path), None))
            elif entry.is_dir():
                if not _is_timeframe(entry.name):
                    continue
                tf = str(Timeframe.parse(entry.name))
                out.extend((Path(sub.path), tf) for sub in sorted(os.scandir(entry.path), key=lambda e: e.name)
                           if sub.is_file())
        return out

    def find(self, symbol: str, timeframe: str) -> tuple[Path, str | None]:
        """The file holding ``symbol`` at ``timeframe`` and the timeframe its folder declares.

        Raises
        ------
        SymbolNotFound
            No file for the symbol.
        UnsupportedRequest
            Several candidate files (ambiguous).
        """
        component = symbol_path_component(validate_symbol(symbol))
        tf = str(Timeframe.parse(timeframe))
        for folder, declared in ((self.root / tf, tf), (self.root, None)):
            hit = self._lookup(folder, component, symbol)
            if hit is not None:
                return hit, declared
        raise SymbolNotFound(f"no file for {symbol} in {self.root}", provider=self._name, symbol=symbol)

    def _lookup(self, folder: Path, component: str, symbol: str) -> Path | None:
        if not folder.is_dir():
            return None
        hits = sorted(Path(e.path) for e in os.scandir(folder) if e.is_file() and _stem(e.name) == component)
        if len(hits) > 1:
            raise UnsupportedRequest(f"several files for {symbol}: {', '.join(h.name for h in hits)}",
                                     provider=self._name, symbol=symbol)
        return hits[0] if hits else None

    async def bars(self, query: BarsQuery) -> BarsResult:
        """Rows of the symbol's file within ``[start_us, end_us)``, final over the file's span.

        Raises
        ------
        SymbolNotFound
            No file for the symbol.
        UnsupportedRequest
            The file's timeframe differs from the query's (resample instead).
        ProviderResponseError
            The file is malformed (the message names the file and line).
        """
        return await asyncio.to_thread(self._bars, query)

    def _bars(self, query: BarsQuery) -> BarsResult:
        path, declared = self.find(query.symbol, query.timeframe)
        tf = Timeframe.parse(query.timeframe)
        try:
            imp = read_file(path, symbol=query.symbol, timeframe=declared, tz=self._tz, layout=self._layout,
                            label=self._label)
            if Timeframe.parse(imp.timeframe) != tf:
                raise UnsupportedRequest(f"{path.name} holds {imp.timeframe} bars, not {tf}", provider=self._name,
                                         symbol=query.symbol, timeframe=str(tf))
            parts: list[pa.Table] = []
            first: int | None = None
            last: int | None = None
            for table in imp.batches():
                ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
                first = int(ts.min()) if first is None else min(first, int(ts.min()))
                last = int(ts.max()) if last is None else max(last, int(ts.max()))
                mask = (ts >= query.start_us) & (ts < query.end_us)
                if mask.any():
                    parts.append(table.filter(pa.array(mask)))
            actions = imp.actions
        except FileFormatError as exc:
            raise ProviderResponseError(str(exc), provider=self._name, symbol=query.symbol) from None
        table = pa.concat_tables(parts) if parts else empty_bars()
        if table.num_rows > 1:
            table = table.take(pc.sort_indices(table, [("ts", "ascending")]))
        coverage: list[CoverageInterval] = []
        if first is not None and last is not None:
            span_end = ts_to_us(tf.add(us_to_ts(last)))
            lo, hi = max(query.start_us, first), min(query.end_us, span_end)
            if lo < hi:
                coverage.append(CoverageInterval(lo, hi, CoverageState.FINAL, self._name))
        return BarsResult(table=table, coverage=coverage, actions=_in_range(actions, query))

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and dividends in the symbol's file with ex-dates in ``[start_us, end_us)``.

        The file at the root is used, else the first timeframe folder (finest first) holding one.

        Raises
        ------
        SymbolNotFound
            No file for the symbol.
        ProviderResponseError
            The file is malformed.
        """
        return await asyncio.to_thread(self._actions, symbol, start_us, end_us)

    def _actions(self, symbol: str, start_us: int, end_us: int) -> list[CorporateAction]:
        component = symbol_path_component(validate_symbol(symbol))
        subfolders = sorted((p for p in self.root.iterdir() if p.is_dir() and _is_timeframe(p.name)),
                            key=lambda p: Timeframe.parse(p.name).sort_key())
        for folder in (self.root, *subfolders):
            hit = self._lookup(folder, component, symbol)
            if hit is None:
                continue
            declared = None if folder == self.root else str(Timeframe.parse(folder.name))
            try:
                imp = read_file(hit, symbol=symbol, timeframe=declared, tz=self._tz, layout=self._layout,
                                label=self._label)
                for _ in imp.batches():
                    pass
            except FileFormatError as exc:
                raise ProviderResponseError(str(exc), provider=self._name, symbol=symbol) from None
            query = BarsQuery(symbol, imp.timeframe, start_us, end_us)
            return _in_range(imp.actions, query)
        raise SymbolNotFound(f"no file for {symbol} in {self.root}", provider=self._name, symbol=symbol)

    async def aclose(self) -> None:
        """Nothing to release (idempotent)."""


def _is_timeframe(name: str) -> bool:
    try:
        Timeframe.parse(name)
    except TickvaultError:
        return False
    return True


def _in_range(actions: list[CorporateAction], query: BarsQuery) -> list[CorporateAction]:
    # An action belongs to the query when its ex-date's session key (00:00 UTC) is in range.
    keys = [ts_to_us(pd.Timestamp(a.ex_date, tz="UTC")) for a in actions]
    return [a for a, key in zip(actions, keys, strict=True) if query.start_us <= key < query.end_us]
