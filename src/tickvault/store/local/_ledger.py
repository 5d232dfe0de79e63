"""Catalog records beside the bars: coverage, corporate actions, instruments, reports, quarantine.

Each operation is one SQLite transaction, so it is atomic and durable, and concurrent
writers in other processes serialise on the catalog's write lock instead of losing
updates (a coverage mark is read-modify-write under ``BEGIN IMMEDIATE``). Semantics
mirror :class:`~tickvault.store.memory.MemoryStore` exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence

import pyarrow as pa

from tickvault.errors import SchemaError, StorageError
from tickvault.model import (
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    QualityReport,
    apply_marks,
    validate_symbol,
)
from tickvault.store.base import QUARANTINE_SCHEMA
from tickvault.store.local._catalog import Catalog, now_us
from tickvault.store.local._layout import SeriesKey

__all__ = [
    "actions",
    "add_actions",
    "clear_coverage",
    "clear_coverage_in",
    "coverage",
    "instrument",
    "instruments",
    "latest_report",
    "mark_covered",
    "put_instrument",
    "quarantine",
    "quarantined",
    "save_report",
]

_FAR = 2**62


# -- coverage ----------------------------------------------------------------------------
def _load_coverage(conn: sqlite3.Connection, key: SeriesKey) -> list[CoverageInterval]:
    rows = conn.execute(
        "SELECT start_us, end_us, state, provider, updated_us FROM coverage "
        "WHERE symbol = ? AND timeframe = ? ORDER BY start_us, end_us",
        (key.symbol, key.timeframe),
    ).fetchall()
    return [CoverageInterval(a, b, CoverageState(s), p, u) for a, b, s, p, u in rows]


def _save_coverage(conn: sqlite3.Connection, key: SeriesKey, intervals: Sequence[CoverageInterval]) -> None:
    conn.execute("DELETE FROM coverage WHERE symbol = ? AND timeframe = ?", (key.symbol, key.timeframe))
    conn.executemany(
        "INSERT INTO coverage (symbol, timeframe, start_us, end_us, state, provider, updated_us) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        # int(): numpy integers are not valid SQLite parameters.
        [(key.symbol, key.timeframe, int(iv.start_us), int(iv.end_us), str(iv.state), iv.provider,
          int(iv.updated_us)) for iv in intervals],
    )


def coverage(cat: Catalog, key: SeriesKey) -> list[CoverageInterval]:
    """The coverage intervals of a series, sorted."""
    with cat.read() as conn:
        return _load_coverage(conn, key)


def mark_covered(cat: Catalog, key: SeriesKey, intervals: Sequence[CoverageInterval]) -> None:
    """Apply marks with :func:`~tickvault.model.apply_marks` semantics, atomically."""
    marks = list(intervals)
    with cat.write() as conn:
        _save_coverage(conn, key, apply_marks(_load_coverage(conn, key), marks))


def clear_coverage_in(conn: sqlite3.Connection, key: SeriesKey, start_us: int | None, end_us: int | None) -> None:
    """Forget coverage inside ``[start_us, end_us)`` within an open write transaction."""
    lo = start_us if start_us is not None else -_FAR
    hi = end_us if end_us is not None else _FAR
    out: list[CoverageInterval] = []
    for iv in _load_coverage(conn, key):
        if iv.end_us <= lo or iv.start_us >= hi:
            out.append(iv)
            continue
        if iv.start_us < lo:
            out.append(iv.with_bounds(iv.start_us, lo))
        if iv.end_us > hi:
            out.append(iv.with_bounds(hi, iv.end_us))
    _save_coverage(conn, key, out)


def clear_coverage(cat: Catalog, key: SeriesKey, start_us: int | None, end_us: int | None) -> None:
    """Forget coverage inside the range (it becomes missing)."""
    with cat.write() as conn:
        clear_coverage_in(conn, key, start_us, end_us)


# -- corporate actions ---------------------------------------------------------------------
def _action(symbol: str, row: tuple[str, str, float, str | None, str | None]) -> CorporateAction:
    ex_date, kind, value, currency, provider = row
    return CorporateAction(dt.date.fromisoformat(ex_date), kind, value, symbol, currency, provider)  # type: ignore[arg-type]


def add_actions(cat: Catalog, symbol: str, items: Sequence[CorporateAction]) -> int:
    """Upsert actions keyed by (ex_date, kind); return how many were new or changed."""
    sym = validate_symbol(symbol)
    normalised = [CorporateAction(a.ex_date, a.kind, a.value, sym, a.currency, a.provider) for a in items]
    changed = 0
    with cat.write() as conn:
        for a in normalised:
            row = conn.execute(
                "SELECT ex_date, kind, value, currency, provider FROM actions "
                "WHERE symbol = ? AND ex_date = ? AND kind = ?",
                (sym, a.ex_date.isoformat(), str(a.kind)),
            ).fetchone()
            if row is not None and _action(sym, row) == a:
                continue
            conn.execute(
                "INSERT OR REPLACE INTO actions (symbol, ex_date, kind, value, currency, provider) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (sym, a.ex_date.isoformat(), str(a.kind), float(a.value), a.currency, a.provider),
            )
            changed += 1
    return changed


def actions(cat: Catalog, symbol: str) -> list[CorporateAction]:
    """All actions of ``symbol`` sorted by ex_date."""
    sym = validate_symbol(symbol)
    with cat.read() as conn:
        rows = conn.execute("SELECT ex_date, kind, value, currency, provider FROM actions WHERE symbol = ?",
                            (sym,)).fetchall()
    return sorted(_action(sym, r) for r in rows)


# -- instruments and reports -----------------------------------------------------------------
def delete_instrument(cat: Catalog, symbol: str) -> bool:
    """Remove an instrument record; whether one existed."""
    with cat.write() as conn:
        return conn.execute("DELETE FROM instruments WHERE symbol = ?", (symbol,)).rowcount > 0


def put_instrument(cat: Catalog, item: Instrument) -> None:
    """Insert or replace an instrument record."""
    if not isinstance(item, Instrument):
        raise SchemaError(f"expected an Instrument, got {type(item).__name__}")
    with cat.write() as conn:
        conn.execute("INSERT OR REPLACE INTO instruments (symbol, record) VALUES (?, ?)",
                     (item.symbol, json.dumps(item.to_dict(), sort_keys=True)))


def instrument(cat: Catalog, symbol: str) -> Instrument | None:
    """The instrument record of ``symbol``, if any."""
    sym = validate_symbol(symbol)
    with cat.read() as conn:
        row = conn.execute("SELECT record FROM instruments WHERE symbol = ?", (sym,)).fetchone()
    return Instrument.from_dict(json.loads(row[0])) if row else None


def instruments(cat: Catalog) -> list[Instrument]:
    """Every instrument record sorted by symbol."""
    with cat.read() as conn:
        rows = conn.execute("SELECT record FROM instruments ORDER BY symbol").fetchall()
    return [Instrument.from_dict(json.loads(r[0])) for r in rows]


def get_meta(cat: Catalog, key: str) -> str | None:
    """A user catalog value (stored as ``user:<key>`` beside the store's own keys)."""
    with cat.read() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", ("user:" + key,)).fetchone()
    return str(row[0]) if row else None


def set_meta(cat: Catalog, key: str, value: str | None) -> None:
    """Store or delete a user catalog value."""
    with cat.write() as conn:
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", ("user:" + key,))
        else:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", ("user:" + key, value))


def save_report(cat: Catalog, key: SeriesKey, report: QualityReport) -> None:
    """Keep ``report`` as the latest for its series."""
    with cat.write() as conn:
        conn.execute("INSERT OR REPLACE INTO reports (symbol, timeframe, report) VALUES (?, ?, ?)",
                     (key.symbol, key.timeframe, report.to_json()))


def latest_report(cat: Catalog, key: SeriesKey) -> QualityReport | None:
    """The latest quality report of a series, if any."""
    with cat.read() as conn:
        row = conn.execute("SELECT report FROM reports WHERE symbol = ? AND timeframe = ?",
                           (key.symbol, key.timeframe)).fetchone()
    return QualityReport.from_json(row[0]) if row else None


# -- quarantine --------------------------------------------------------------------------------
def quarantine(cat: Catalog, key: SeriesKey, rows: pa.Table) -> None:
    """Append quarantined rows (stored as one Arrow IPC stream blob per call)."""
    try:
        table = rows.cast(QUARANTINE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
        raise SchemaError(f"quarantined rows do not match QUARANTINE_SCHEMA: {exc}") from None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, QUARANTINE_SCHEMA) as writer:
        writer.write_table(table)
    blob = sink.getvalue().to_pybytes()
    with cat.write() as conn:
        conn.execute("INSERT INTO quarantine (symbol, timeframe, rows, created_us, data) VALUES (?, ?, ?, ?, ?)",
                     (key.symbol, key.timeframe, table.num_rows, now_us(), blob))


def quarantined(cat: Catalog, key: SeriesKey) -> pa.Table:
    """All quarantined rows of a series, in the order they were added."""
    with cat.read() as conn:
        blobs = [r[0] for r in conn.execute(
            "SELECT data FROM quarantine WHERE symbol = ? AND timeframe = ? ORDER BY id", (key.symbol, key.timeframe))]
    if not blobs:
        return QUARANTINE_SCHEMA.empty_table()
    try:
        parts = [pa.ipc.open_stream(pa.py_buffer(b)).read_all() for b in blobs]
    except (pa.ArrowInvalid, OSError) as exc:
        raise StorageError(f"quarantined rows are unreadable: {exc}", symbol=key.symbol,
                           timeframe=key.timeframe) from exc
    return pa.concat_tables(parts)
