"""Turn a batch (and its stored context) into the arrays every rule reads.

The rules are pure functions of one :class:`Batch`: numpy views of the columns, computed once,
plus the *sequential view* — the batch (and context) sorted by time, one row per timestamp
(the last occurrence, as the store will keep it), with valid positive prices only. Rules that
look at neighbours (jumps, spikes, stale runs, gaps) read the sequential view, so input that
arrives newest-first or with duplicates is judged as it will be stored, and a zero or missing
price (already a hard failure of its own rule) cannot fake a jump.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.calendars import TradingCalendar
from tickvault.errors import SchemaError
from tickvault.model import BAR_SCHEMA, PRICE_COLUMNS, CorporateAction, Timeframe

__all__ = ["LOOSE_SCHEMA", "Batch", "SeqView", "coerce", "prepare"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

REQUIRED = ("ts", "open", "high", "low", "close", "volume")

#: BAR_SCHEMA with a nullable ``ts``: the shape of a batch as the rules see it (a row without a
#: timestamp is a finding, not a crash) and of the quarantine table.
LOOSE_SCHEMA = pa.schema([f.with_nullable(True) if f.name == "ts" else f for f in BAR_SCHEMA])


def _cast_column(name: str, col: pa.ChunkedArray[Any], target: pa.DataType) -> tuple[pa.ChunkedArray[Any] | None,
                                                                                    str | None]:
    """Cast one column to its BAR_SCHEMA type, or explain why it cannot be."""
    t = col.type
    if t == target:
        return col, None
    try:
        if name == "ts":
            if not pa.types.is_timestamp(t):
                return None, f"column ts has type {t}, expected timestamp[us, tz=UTC]"
            if t.tz is None:
                return None, "column ts is a naive timestamp; expected timezone-aware UTC"
            return col.cast(target, safe=True), None
        if name == "provider":
            if pa.types.is_dictionary(t):
                col = col.cast(pa.string())
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                return None, f"column provider has type {t}, expected string"
            return col.cast(pa.string()).dictionary_encode().cast(target), None
        if name == "trade_count":
            if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
                return None, f"column trade_count has type {t}, expected int64"
            return col.cast(target, safe=True), None
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
            return None, f"column {name} has type {t}, expected float64"
        return col.cast(target, safe=False), None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        return None, f"column {name} cannot be read as {target}: {exc}"


def coerce(table: pa.Table | pa.RecordBatch) -> tuple[pa.Table, list[str]]:
    """Bring ``table`` to :data:`LOOSE_SCHEMA` without changing any value.

    Columns already in the right type are passed through untouched; lossless casts (integer
    volume, a non-UTC timezone, a plain-string provider) are applied; absent optional columns
    become nulls. Whatever cannot be read is returned as a list of problems (and that column is
    all-null in the result), so :func:`tickvault.quality.check` can report it instead of raising.

    Returns
    -------
    (table, problems)
        The coerced table and the structural problems found (empty when the batch is usable).
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise SchemaError(f"quality rules take an Arrow table, got {type(table).__name__}")
    n = table.num_rows
    problems: list[str] = []
    columns: list[pa.ChunkedArray[Any]] = []
    for f in LOOSE_SCHEMA:
        if f.name not in table.column_names:
            if f.name in REQUIRED:
                problems.append(f"missing required column {f.name}")
            columns.append(pa.chunked_array([pa.nulls(n, f.type)], f.type))
            continue
        cast, problem = _cast_column(f.name, table.column(f.name), f.type)
        if cast is None:
            problems.append(problem or f"column {f.name} is unreadable")
            columns.append(pa.chunked_array([pa.nulls(n, f.type)], f.type))
        else:
            columns.append(cast)
    return pa.Table.from_arrays(columns, schema=LOOSE_SCHEMA), problems


def _ts_us(col: pa.ChunkedArray[Any]) -> I64:
    """Epoch microseconds with nulls as 0 (callers keep the validity mask separately)."""
    filled: Any = pc.fill_null(col.cast(pa.int64()), 0)  # type: ignore[type-var]
    return np.asarray(filled.to_numpy(), dtype=np.int64)


def _floats(table: pa.Table, name: str) -> F64:
    """A float column as numpy with nulls as NaN (a fresh array: input is never touched)."""
    col = table.column(name)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64).copy()


@dataclass(frozen=True)
class SeqView:
    """Context + batch in time order, one row per timestamp, valid positive prices only.

    Attributes
    ----------
    ts
        Epoch microseconds, strictly increasing.
    o, h, l, c, v
        Prices and volume (volume may be NaN).
    row
        Index of the row in the batch, or -1 for a context row.
    """

    ts: I64
    o: F64
    h: F64
    l: F64  # noqa: E741 - the usual OHLC letter
    c: F64
    v: F64
    row: I64

    @property
    def size(self) -> int:
        """Number of bars in the view."""
        return int(self.ts.size)

    @property
    def in_batch(self) -> BOOL:
        """Which bars of the view come from the batch (not the context)."""
        return np.asarray(self.row >= 0)


@dataclass(frozen=True)
class Batch:
    """Everything a rule may read, computed once per :func:`check` call.

    Attributes
    ----------
    table
        The batch coerced to :data:`LOOSE_SCHEMA` (values unchanged).
    problems
        Structural problems (missing or unreadable columns); when non-empty only
        ``required_columns`` runs.
    n
        Number of rows.
    ts, ts_valid
        Epoch microseconds (0 where null) and the non-null mask, in input order.
    o, h, l, c, v
        Prices and volume in input order, NaN where null.
    timeframe
        The parsed timeframe.
    calendar
        The trading calendar, or ``None``.
    actions
        Known corporate actions.
    currency
        Quote currency when known (decides which side of a ×100 switch is right).
    seq
        The sequential view (see :class:`SeqView`).
    params
        Per-rule parameter overrides.
    cache
        Intermediate results shared by several rules (calendar grid, price levels), filled lazily.
    """

    table: pa.Table
    problems: list[str]
    n: int
    ts: I64
    ts_valid: BOOL
    o: F64
    h: F64
    l: F64  # noqa: E741
    c: F64
    v: F64
    timeframe: Timeframe
    calendar: TradingCalendar | None
    actions: tuple[CorporateAction, ...]
    currency: str | None
    seq: SeqView
    params: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def prices(self) -> tuple[F64, F64, F64, F64]:
        """Open, high, low, close (input order)."""
        return self.o, self.h, self.l, self.c

    def param(self, rule: str, name: str, default: float) -> float:
        """A rule parameter: ``params[rule][name]`` (the rule's defaults merged with overrides).

        ``default`` only applies when a rule is run outside :func:`~tickvault.quality.check`.
        """
        return float(self.params.get(rule, {}).get(name, default))


def _seq_view(table: pa.Table, context: pa.Table | None) -> SeqView:
    """Context then batch, stable-sorted by ts, last occurrence kept, bad prices dropped."""
    parts = [context, table] if context is not None and context.num_rows else [table]
    ts_l, valid_l, row_l, cols_l = [], [], [], []
    for part in parts:
        is_batch = part is table
        ts_col = part.column("ts")
        valid = np.asarray(ts_col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        ts = _ts_us(ts_col)
        ts_l.append(ts)
        valid_l.append(valid)
        row_l.append(np.arange(part.num_rows, dtype=np.int64) if is_batch else np.full(part.num_rows, -1, np.int64))
        cols_l.append([_floats(part, name) for name in (*PRICE_COLUMNS, "volume")])
    ts = np.concatenate(ts_l)
    valid = np.concatenate(valid_l)
    row = np.concatenate(row_l)
    cols = [np.concatenate([c[i] for c in cols_l]) for i in range(5)]
    idx = np.flatnonzero(valid)
    order = idx[np.argsort(ts[idx], kind="stable")]
    sts = ts[order]
    keep = np.ones(order.size, dtype=bool)
    keep[:-1] = sts[1:] != sts[:-1]  # the last occurrence of each timestamp wins, like the store
    order = order[keep]
    prices = np.stack([cols[i][order] for i in range(4)])
    ok = np.all(np.isfinite(prices) & (prices > 0), axis=0)
    order = order[ok]
    return SeqView(ts=ts[order], o=cols[0][order], h=cols[1][order], l=cols[2][order], c=cols[3][order],
                   v=cols[4][order], row=row[order])


def prepare(table: pa.Table | pa.RecordBatch, *, timeframe: Timeframe, calendar: TradingCalendar | None,
            actions: Sequence[CorporateAction], currency: str | None, context: pa.Table | None,
            params: Mapping[str, Mapping[str, float]] | None) -> Batch:
    """Build the :class:`Batch` the rules read.

    Raises
    ------
    SchemaError
        If ``context`` (stored bars, which must already be valid) cannot be read.
    """
    coerced, problems = coerce(table)
    ctx: pa.Table | None = None
    if context is not None and context.num_rows:
        ctx, ctx_problems = coerce(context)
        if ctx_problems:
            raise SchemaError("context bars are not in BAR_SCHEMA: " + "; ".join(ctx_problems))
    ts_col = coerced.column("ts")
    ts_valid = np.asarray(ts_col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    ts = _ts_us(ts_col)
    o, h, lo, c, v = (_floats(coerced, name) for name in (*PRICE_COLUMNS, "volume"))
    seq = _seq_view(coerced, ctx) if not problems else _seq_view(coerced.slice(0, 0), None)
    return Batch(table=coerced, problems=problems, n=coerced.num_rows, ts=ts, ts_valid=ts_valid,
                 o=o, h=h, l=lo, c=c, v=v, timeframe=timeframe, calendar=calendar, actions=tuple(actions),
                 currency=currency, seq=seq, params=params or {})
