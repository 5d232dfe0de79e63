"""The ``BarStore`` boundary: where validated bars, the coverage ledger and the catalog live.

Contract (every backend, checked by :mod:`tickvault.testing.conformance`):

Ownership
    The store owns its files/tables. Callers hand it canonical Arrow tables
    (:data:`~tickvault.model.BAR_SCHEMA`) that already passed the quality policy; the store
    does not validate prices, only the schema and keys.
Keys and upsert
    A bar is identified by (symbol, timeframe, ts). ``write`` sorts the batch and resolves
    duplicate keys inside it deterministically (last row wins), then upserts: existing keys
    are replaced, new keys inserted. Rows identical to what is stored (every column
    including provider) are *unchanged*: re-writing identical data writes zero bytes and
    the receipt says so.
Atomicity and durability
    ``write`` is all or nothing and returns only once the data is durable (fsync'd /
    committed). A crash at any instant leaves either the old or the new state.
    ``write_many`` does the same for several series at once: one commit for all items.
Concurrency
    Readers (in this or other processes) are never blocked by writers and never see a
    partial write. A second concurrent writer to the same (symbol, timeframe) waits up to a
    timeout and then gets :class:`~tickvault.errors.StoreLocked`; it never corrupts.
Coverage
    ``mark_covered`` applies marks with :func:`~tickvault.model.apply_marks` semantics
    (latest mark wins where they overlap). ``write`` itself does *not* mark coverage: the
    engine decides what a write covers.
Failure
    Storage problems raise :class:`~tickvault.errors.StorageError` subclasses; a damaged
    file found by ``verify`` is set aside and its range's coverage cleared, so the next
    read re-fetches it instead of crashing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa

from tickvault.errors import InvalidInput, SchemaError
from tickvault.model import (
    BAR_SCHEMA,
    CorporateAction,
    CoverageInterval,
    Instrument,
    QualityReport,
    StoreReceipt,
)

__all__ = ["MAX_META_BYTES", "QUARANTINE_SCHEMA", "BarStore", "SeriesInfo", "VerifyReport", "check_meta_key",
           "conform_table"]

MAX_META_BYTES = 1_000_000
_META_KEY = re.compile(r"^[A-Za-z0-9_.:/^=%-]{1,200}\Z")


def check_meta_key(key: str, value: str | None = None) -> str:
    """Validate a catalog key (and value size) before it reaches a query.

    Raises
    ------
    InvalidInput
        For a key outside ``[A-Za-z0-9_.:/^=%-]{1,200}`` or a value over 1 MB.
    """
    if not isinstance(key, str) or not _META_KEY.match(key):
        raise InvalidInput(f"invalid catalog key {key!r}")
    if value is not None and len(value.encode()) > MAX_META_BYTES:
        raise InvalidInput(f"catalog value for {key!r} is larger than {MAX_META_BYTES} bytes")
    return key


def conform_table(table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly :data:`~tickvault.model.BAR_SCHEMA` (same names, cast types).

    What every store does to a batch before writing it.

    Raises
    ------
    SchemaError
        If ``table`` is not an Arrow table, a column is missing or cannot be cast, or ``ts``
        has nulls.
    """
    if not isinstance(table, pa.Table):
        raise SchemaError(f"bars must be a pyarrow Table with BAR_SCHEMA, got {type(table).__name__}")
    if table.schema.equals(BAR_SCHEMA):
        out = table
    else:
        missing = [n for n in BAR_SCHEMA.names if n not in table.column_names]
        if missing:
            raise SchemaError(f"bars are missing column(s) {', '.join(missing)}")
        try:
            out = table.select(BAR_SCHEMA.names).cast(BAR_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
            raise SchemaError(f"bars do not match BAR_SCHEMA: {exc}") from None
    if out.column("ts").null_count:
        raise SchemaError(f"{out.column('ts').null_count} row(s) have no timestamp")
    return out

QUARANTINE_SCHEMA = pa.schema(
    [
        # ts is nullable here: a row without a timestamp can still be quarantined.
        pa.field("ts", BAR_SCHEMA.field("ts").type, nullable=True),
        *list(BAR_SCHEMA)[1:],
        pa.field("rule", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class SeriesInfo:
    """Summary of one stored (symbol, timeframe) series."""

    symbol: str
    timeframe: str
    rows: int
    first_us: int | None
    last_us: int | None
    last_write_us: int | None


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :meth:`BarStore.verify`.

    ``damaged`` lists (path or key, problem) for every file that failed; those files were
    set aside and the coverage of their range cleared. ``ok`` is true when nothing failed.
    """

    checked: int = 0
    damaged: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file verified."""
        return not self.damaged


@runtime_checkable
class BarStore(Protocol):
    """Persistent storage for bars, coverage, corporate actions, instruments and reports.

    All ``symbol`` arguments are canonical (validated by the caller *and* re-validated by
    the store before touching a path or query); ``timeframe`` is the canonical string.
    ``start_us``/``end_us`` are epoch microseconds, half-open, ``None`` for unbounded.
    """

    # -- bars -------------------------------------------------------------------------
    def write(self, symbol: str, timeframe: str, table: pa.Table) -> StoreReceipt:
        """Upsert ``table`` (BAR_SCHEMA) atomically and durably; see the module contract."""
        ...

    def write_many(self, items: Sequence[tuple[str, str, pa.Table]]) -> list[StoreReceipt]:
        """Upsert several ``(symbol, timeframe, table)`` items atomically and durably.

        Each item has exactly the semantics of ``write`` of it, applied in order (a
        series named twice: the later item upserts over the earlier one, and its receipt
        counts against it); one receipt per item, in order. All items of one call commit
        together: readers see none or all of them, and a failure (invalid item,
        ``StoreLocked`` on any of the series) writes nothing.
        """
        ...

    def read(self, symbol: str, timeframe: str, start_us: int | None = None,
             end_us: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Bars with ``start_us <= ts < end_us``, sorted by ts, unique keys, BAR_SCHEMA."""
        ...

    def latest(self, symbol: str, timeframe: str, n: int) -> pa.Table:
        """The last ``n`` bars (sorted ascending)."""
        ...

    def delete_range(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> int:
        """Remove bars in the range atomically; return how many were removed."""
        ...

    def series(self) -> list[SeriesInfo]:
        """Every stored (symbol, timeframe) with row counts and bounds."""
        ...

    # -- coverage ledger ----------------------------------------------------------------
    def coverage(self, symbol: str, timeframe: str) -> list[CoverageInterval]:
        """The coverage intervals, sorted and non-overlapping."""
        ...

    def mark_covered(self, symbol: str, timeframe: str, intervals: Sequence[CoverageInterval]) -> None:
        """Apply coverage marks atomically (latest mark wins on overlap)."""
        ...

    def clear_coverage(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> None:
        """Forget coverage inside the range (it becomes missing)."""
        ...

    # -- catalog ------------------------------------------------------------------------
    def add_actions(self, symbol: str, actions: Sequence[CorporateAction]) -> int:
        """Store actions keyed by (ex_date, kind); return how many were new or changed."""
        ...

    def actions(self, symbol: str) -> list[CorporateAction]:
        """All actions for ``symbol`` sorted by ex_date."""
        ...

    def put_instrument(self, instrument: Instrument) -> None:
        """Insert or replace an instrument record."""
        ...

    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument record, if any."""
        ...

    def delete_instrument(self, symbol: str) -> bool:
        """Remove an instrument record (its bars stay); return whether one existed."""
        ...

    def instruments(self) -> list[Instrument]:
        """Every instrument record, sorted by symbol."""
        ...

    def save_report(self, report: QualityReport) -> None:
        """Keep ``report`` as the latest for its (symbol, timeframe)."""
        ...

    def latest_report(self, symbol: str, timeframe: str) -> QualityReport | None:
        """The latest quality report, if any."""
        ...

    def quarantine(self, symbol: str, timeframe: str, rows: pa.Table) -> None:
        """Append quarantined rows (QUARANTINE_SCHEMA) durably."""
        ...

    def quarantined(self, symbol: str, timeframe: str) -> pa.Table:
        """All quarantined rows for the series (QUARANTINE_SCHEMA)."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A small catalog value stored under ``key`` (see :func:`check_meta_key`), if any."""
        ...

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with ``None`` delete) a small catalog value durably, e.g. cached fundamentals."""
        ...

    # -- maintenance --------------------------------------------------------------------
    def compact(self, symbol: str | None = None, timeframe: str | None = None) -> int:
        """Merge small files; return how many series were compacted. Crash-safe."""
        ...

    def verify(self) -> VerifyReport:
        """Check every stored file; set aside damaged ones and clear their coverage."""
        ...

    def size_bytes(self) -> int:
        """Bytes used on disk (approximate for servers)."""
        ...

    def close(self) -> None:
        """Release handles and locks. Idempotent."""
        ...
