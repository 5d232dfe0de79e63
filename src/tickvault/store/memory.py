"""``MemoryStore``: the in-memory :class:`~tickvault.store.base.BarStore`, and the oracle.

It implements the contract in the simplest way that is obviously right (a dict per series
keyed by timestamp), so tests of the real backends compare against it. It is also a
fine store for notebooks and tests that need no persistence. Thread-safe through one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import pyarrow as pa

from tickvault.model import (
    BAR_SCHEMA,
    CorporateAction,
    CoverageInterval,
    Instrument,
    QualityReport,
    StoreReceipt,
    apply_marks,
    dedupe_last,
    validate_symbol,
)
from tickvault.store.base import QUARANTINE_SCHEMA, SeriesInfo, VerifyReport, check_meta_key

__all__ = ["MemoryStore"]

_Row = tuple[Any, ...]


def _rows(table: pa.Table) -> list[tuple[int, _Row]]:
    t = table.cast(BAR_SCHEMA)
    ts = t.column("ts").cast(pa.int64()).to_pylist()
    cols = [t.column(name).to_pylist() for name in BAR_SCHEMA.names[1:]]
    return [(int(cast(int, k)), tuple(c[i] for c in cols)) for i, k in enumerate(ts)]


def _same(a: _Row, b: _Row) -> bool:
    # NaN != NaN, but rewriting a NaN is not a change.
    for x, y in zip(a, b, strict=True):
        if x != y and not (isinstance(x, float) and isinstance(y, float) and x != x and y != y):
            return False
    return True


class MemoryStore:
    """In-memory bar store (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._bars: dict[tuple[str, str], dict[int, _Row]] = {}
        self._last_write: dict[tuple[str, str], int] = {}
        self._coverage: dict[tuple[str, str], list[CoverageInterval]] = {}
        self._actions: dict[str, dict[tuple[Any, str], CorporateAction]] = {}
        self._instruments: dict[str, Instrument] = {}
        self._reports: dict[tuple[str, str], QualityReport] = {}
        self._quarantine: dict[tuple[str, str], list[pa.Table]] = {}
        self._meta: dict[str, str] = {}

    @staticmethod
    def _key(symbol: str, timeframe: str) -> tuple[str, str]:
        return validate_symbol(symbol), str(timeframe)

    # -- bars -------------------------------------------------------------------------
    def write(self, symbol: str, timeframe: str, table: pa.Table) -> StoreReceipt:
        """Upsert a batch (last row wins inside the batch)."""
        return self.write_many([(symbol, timeframe, table)])[0]

    def write_many(self, items: Sequence[tuple[str, str, pa.Table]]) -> list[StoreReceipt]:
        """Upsert every item in order, all under one lock (so atomic for readers)."""
        # Validate and convert everything first: a bad item leaves the store untouched.
        prepared = [(self._key(symbol, timeframe), _rows(dedupe_last(table))) for symbol, timeframe, table in items]
        with self._lock:
            return [self._upsert(key, batch) for key, batch in prepared]

    def _upsert(self, key: tuple[str, str], batch: list[tuple[int, _Row]]) -> StoreReceipt:
        with self._lock:
            series = self._bars.setdefault(key, {})
            new = changed = unchanged = 0
            nbytes = 0
            for ts, row in batch:
                old = series.get(ts)
                if old is None:
                    new += 1
                elif _same(old, row):
                    unchanged += 1
                    continue
                else:
                    changed += 1
                series[ts] = row
                nbytes += 64
            if new or changed:
                self._last_write[key] = time.time_ns() // 1000
            return StoreReceipt(new, changed, unchanged, nbytes,
                                batch[0][0] if batch else None, batch[-1][0] if batch else None)

    def read(self, symbol: str, timeframe: str, start_us: int | None = None,
             end_us: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Bars in ``[start_us, end_us)``."""
        key = self._key(symbol, timeframe)
        with self._lock:
            series = self._bars.get(key, {})
            keys = sorted(k for k in series if (start_us is None or k >= start_us) and (end_us is None or k < end_us))
            return self._table(series, keys, columns)

    def latest(self, symbol: str, timeframe: str, n: int) -> pa.Table:
        """Last ``n`` bars."""
        key = self._key(symbol, timeframe)
        with self._lock:
            series = self._bars.get(key, {})
            keys = sorted(series)[-n:] if n > 0 else []
            return self._table(series, keys, None)

    @staticmethod
    def _table(series: dict[int, _Row], keys: list[int], columns: Sequence[str] | None) -> pa.Table:
        data: dict[str, list[Any]] = {"ts": keys}
        for i, name in enumerate(BAR_SCHEMA.names[1:]):
            data[name] = [series[k][i] for k in keys]
        arrays = [pa.array(data["ts"], pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
        for name in BAR_SCHEMA.names[1:]:
            f = BAR_SCHEMA.field(name)
            if name == "provider":
                arrays.append(pa.array(data[name], pa.string()).dictionary_encode().cast(f.type))
            else:
                arrays.append(pa.array(data[name], f.type))
        table = pa.Table.from_arrays(arrays, schema=BAR_SCHEMA)
        return table.select(list(columns)) if columns is not None else table

    def delete_range(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> int:
        """Remove bars in the range."""
        key = self._key(symbol, timeframe)
        with self._lock:
            series = self._bars.get(key, {})
            doomed = [k for k in series if (start_us is None or k >= start_us) and (end_us is None or k < end_us)]
            for k in doomed:
                del series[k]
            if doomed:
                self._last_write[key] = time.time_ns() // 1000
            return len(doomed)

    def series(self) -> list[SeriesInfo]:
        """Every non-empty series."""
        with self._lock:
            out = []
            for (sym, tf), rows in sorted(self._bars.items()):
                if rows:
                    out.append(SeriesInfo(sym, tf, len(rows), min(rows), max(rows), self._last_write.get((sym, tf))))
            return out

    # -- coverage ---------------------------------------------------------------------
    def coverage(self, symbol: str, timeframe: str) -> list[CoverageInterval]:
        """Coverage intervals."""
        with self._lock:
            return list(self._coverage.get(self._key(symbol, timeframe), []))

    def mark_covered(self, symbol: str, timeframe: str, intervals: Sequence[CoverageInterval]) -> None:
        """Apply marks."""
        key = self._key(symbol, timeframe)
        with self._lock:
            self._coverage[key] = apply_marks(self._coverage.get(key, []), intervals)

    def clear_coverage(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> None:
        """Forget coverage inside the range."""
        key = self._key(symbol, timeframe)
        lo = start_us if start_us is not None else -(2**62)
        hi = end_us if end_us is not None else 2**62
        with self._lock:
            out: list[CoverageInterval] = []
            for iv in self._coverage.get(key, []):
                if iv.end_us <= lo or iv.start_us >= hi:
                    out.append(iv)
                    continue
                if iv.start_us < lo:
                    out.append(iv.with_bounds(iv.start_us, lo))
                if iv.end_us > hi:
                    out.append(iv.with_bounds(hi, iv.end_us))
            self._coverage[key] = out

    # -- catalog ----------------------------------------------------------------------
    def add_actions(self, symbol: str, actions: Sequence[CorporateAction]) -> int:
        """Upsert actions by (ex_date, kind)."""
        sym = validate_symbol(symbol)
        with self._lock:
            book = self._actions.setdefault(sym, {})
            changed = 0
            for a in actions:
                a = CorporateAction(a.ex_date, a.kind, a.value, sym, a.currency, a.provider)
                k = (a.ex_date, str(a.kind))
                if book.get(k) != a:
                    book[k] = a
                    changed += 1
            return changed

    def actions(self, symbol: str) -> list[CorporateAction]:
        """Actions sorted by ex_date."""
        with self._lock:
            return sorted(self._actions.get(validate_symbol(symbol), {}).values())

    def put_instrument(self, instrument: Instrument) -> None:
        """Insert or replace."""
        with self._lock:
            self._instruments[instrument.symbol] = instrument

    def instrument(self, symbol: str) -> Instrument | None:
        """Lookup."""
        with self._lock:
            return self._instruments.get(validate_symbol(symbol))

    def delete_instrument(self, symbol: str) -> bool:
        """Remove a record."""
        with self._lock:
            return self._instruments.pop(validate_symbol(symbol), None) is not None

    def instruments(self) -> list[Instrument]:
        """All records by symbol."""
        with self._lock:
            return [self._instruments[k] for k in sorted(self._instruments)]

    def save_report(self, report: QualityReport) -> None:
        """Keep the latest report."""
        with self._lock:
            self._reports[self._key(report.symbol, report.timeframe)] = report

    def latest_report(self, symbol: str, timeframe: str) -> QualityReport | None:
        """Latest report."""
        with self._lock:
            return self._reports.get(self._key(symbol, timeframe))

    def quarantine(self, symbol: str, timeframe: str, rows: pa.Table) -> None:
        """Append quarantined rows."""
        with self._lock:
            self._quarantine.setdefault(self._key(symbol, timeframe), []).append(rows.cast(QUARANTINE_SCHEMA))

    def quarantined(self, symbol: str, timeframe: str) -> pa.Table:
        """All quarantined rows."""
        with self._lock:
            parts = self._quarantine.get(self._key(symbol, timeframe), [])
            return pa.concat_tables(parts) if parts else QUARANTINE_SCHEMA.empty_table()

    def get_meta(self, key: str) -> str | None:
        """A catalog value."""
        with self._lock:
            return self._meta.get(check_meta_key(key))

    def set_meta(self, key: str, value: str | None) -> None:
        """Store or delete a catalog value."""
        check_meta_key(key, value)
        with self._lock:
            if value is None:
                self._meta.pop(key, None)
            else:
                self._meta[key] = value

    # -- maintenance ------------------------------------------------------------------
    def compact(self, symbol: str | None = None, timeframe: str | None = None) -> int:
        """Nothing to compact in memory."""
        return 0

    def verify(self) -> VerifyReport:
        """Nothing can be damaged in memory."""
        with self._lock:
            return VerifyReport(checked=len(self._bars))

    def size_bytes(self) -> int:
        """Rough size: 64 bytes per bar."""
        with self._lock:
            return sum(len(v) for v in self._bars.values()) * 64

    def close(self) -> None:
        """Nothing to release."""
