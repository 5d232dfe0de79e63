"""One chunk of raw file columns -> canonical bars (``BAR_SCHEMA``) and corporate actions.

Shared by the CSV and the Parquet/Feather readers: they hand over a table whose columns are
named ``c<position>`` (strings, numbers or native times) plus a function that turns a row
index into a location (``line=`` for text, ``row=`` for columnar files). Everything here is
vectorised; Python-level loops only run to describe an error that has already happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import FileFormatError
from tickvault.model import BAR_SCHEMA, ActionKind, CorporateAction, Timeframe
from tickvault.providers.files._layouts import ColumnMap
from tickvault.providers.files._splits import SplitCheck
from tickvault.providers.files._times import (
    DAY_US,
    RowProblem,
    TimeFormat,
    detect_format,
    first_failure,
    infer_timeframe,
    localize,
    parse_times,
    session_days,
)

__all__ = ["Converter", "Locator", "SkippedRows"]

#: Row index in the chunk -> location context for FileFormatError (``{"line": 12}``).
Locator = Callable[[int], dict[str, int]]

_EPOCH_DAY = dt.date(1970, 1, 1)
_UNIT_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}
_MAX_LINES_KEPT = 10


@dataclass(frozen=True)
class SkippedRows:
    """Rows an import dropped on purpose, and why.

    Attributes
    ----------
    reason
        Why (``no timestamp``, ``action-only row (no prices)``).
    count
        How many rows.
    locations
        The first few of them (line numbers for text, row numbers for columnar files).
    """

    reason: str
    count: int
    locations: tuple[int, ...]


class Converter:
    """Turns chunks of one file into canonical bars, remembering actions and skips.

    Parameters
    ----------
    cmap
        The file's column map.
    path
        For error messages.
    tz
        Zone of naive wall-clock times (and of session dates), already validated.
    timeframe
        Given timeframe, or ``None`` to infer it from the first chunk.
    label
        ``open`` or ``end``: which instant the file's intraday timestamps mark.
    symbol
        Canonical symbol for the actions (``None``: unknown).
    """

    def __init__(self, cmap: ColumnMap, path: str, *, tz: str | None, timeframe: str | None, label: str,
                 symbol: str | None) -> None:
        self.cmap = cmap
        self.path = path
        self.tz = tz
        self.label = label
        self.symbol = symbol
        self.fmt: TimeFormat | None = None
        self.timeframe: Timeframe | None = Timeframe.parse(timeframe) if timeframe is not None else None
        self._warnings: list[str] = []
        self._pass_warnings: list[str] = []
        self._splits = SplitCheck()
        self.rows = 0
        self._actions: dict[tuple[dt.date, str, float], CorporateAction] = {}
        self._skipped: dict[str, tuple[int, list[int]]] = {}

    # ----------------------------------------------------------------------------- results
    @property
    def actions(self) -> list[CorporateAction]:
        """Corporate actions seen so far, sorted by ex-date and kind."""
        return sorted(self._actions.values(), key=lambda a: (a.ex_date, str(a.kind), a.value))

    @property
    def skipped(self) -> list[SkippedRows]:
        """Rows dropped so far, by reason."""
        return [SkippedRows(r, n, tuple(lines)) for r, (n, lines) in self._skipped.items()]

    @property
    def warnings(self) -> list[str]:
        """Advice about how the file was read (split checks complete after a full pass)."""
        return self._warnings + self._pass_warnings

    def reset(self) -> None:
        """Forget per-pass state (a new pass over the file starts)."""
        self.rows = 0
        self._actions.clear()
        self._skipped.clear()
        self._splits = SplitCheck()
        self._pass_warnings = []

    def finish(self) -> None:
        """End of a full pass: turn the split checks into warnings."""
        self._pass_warnings = self._splits.warnings()

    # ----------------------------------------------------------------------------- helpers
    def _fail(self, problem: RowProblem | str, where: Locator, index: int | None = None) -> FileFormatError:
        """The FileFormatError for ``problem`` at chunk row ``index`` (no location when ``None``)."""
        if isinstance(problem, RowProblem):
            index, message = problem.index, problem.message
        else:
            message = problem
        loc = where(index) if index is not None else {}
        return FileFormatError(message, path=self.path, **loc)  # type: ignore[arg-type]

    def _skip(self, reason: str, indices: np.ndarray, where: Locator) -> None:
        count, lines = self._skipped.get(reason, (0, []))
        for i in indices[: max(0, _MAX_LINES_KEPT - len(lines))]:
            lines.append(next(iter(where(int(i)).values())))
        self._skipped[reason] = (count + int(indices.size), lines)

    def _time_column(self, table: pa.Table) -> pa.Array[Any]:
        cols = [table.column(f"c{i}").combine_chunks() for i in self.cmap.time]
        if len(cols) == 1:
            return cols[0]
        date, time = (pc.utf8_trim_whitespace(c.cast(pa.string())) for c in cols)
        return pc.binary_join_element_wise(date, time, " ")  # type: ignore[no-any-return,call-overload]

    @staticmethod
    def _present(time: pa.Array[Any]) -> np.ndarray:
        valid = pc.is_valid(time)
        if pa.types.is_string(time.type) or pa.types.is_large_string(time.type):
            valid = pc.and_(valid, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(time)), 0))  # type: ignore[call-overload]
        return np.asarray(valid.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)

    # ----------------------------------------------------------------------------- first chunk
    def prepare(self, table: pa.Table, where: Locator) -> None:
        """Decide the time format (and the timeframe if not given) from the first chunk.

        Raises
        ------
        FileFormatError
            If the timestamps are unrecognised or the timeframe cannot be inferred.
        """
        time = self._time_column(table)
        present = self._present(time)
        kept = np.flatnonzero(present)
        valid = time.filter(pa.array(present))
        if len(valid) == 0:
            raise self._fail("no row has a timestamp (in the first block)", where, 0 if table.num_rows else None)
        try:
            fmt = detect_format(valid)
            if fmt is None:
                raise self._fail("no row has a timestamp", where, None)
            values = parse_times(valid, fmt)
        except RowProblem as problem:
            raise self._fail(_remap(problem, kept), where) from None
        self.fmt = fmt
        if self.timeframe is None:
            durations = None
            if self.cmap.close_time is not None:
                close = table.column(f"c{self.cmap.close_time}").combine_chunks().filter(pa.array(present))
                if close.null_count == 0:  # otherwise fall back to the spacing of open times
                    try:
                        durations = parse_times(close, fmt) - values + _UNIT_US[fmt.unit]
                    except RowProblem as problem:
                        problem.message = "bad close time: " + problem.message
                        raise self._fail(_remap(problem, kept), where) from None
            tf = infer_timeframe(values, fmt.date_only, durations_us=durations)
            if tf is None:
                raise self._fail("cannot infer the timeframe from the timestamps; pass timeframe=", where,
                                 None)
            self.timeframe = Timeframe.parse(tf)
        self._initial_warnings(fmt)

    def _initial_warnings(self, fmt: TimeFormat) -> None:
        assert self.timeframe is not None
        if self.timeframe.is_intraday and not fmt.aware and self.tz is None and not self.cmap.utc:
            hint = f" ({self.cmap.tz_hint})" if self.cmap.tz_hint else ""
            self._warnings.append("timestamps have no time zone and were read as UTC; pass tz= if they are "
                                 f"exchange-local{hint}")
        if fmt.ambiguous_order:
            self._warnings.append(f"dates like {fmt.example!r} could be month/day or day/month; read as "
                                 "month/day (US)")
        if self.cmap.unknown:
            self._warnings.append(f"ignored unrecognised column(s): {', '.join(self.cmap.unknown)}")
        if self.label == "end" and self.timeframe.is_intraday:
            self._warnings.append(f"timestamps mark bar ends; shifted back by {self.timeframe} to label bars by "
                                 "their open")

    # ----------------------------------------------------------------------------- every chunk
    def convert(self, table: pa.Table, where: Locator) -> pa.Table:
        """Canonical bars of one chunk, in file order.

        Raises
        ------
        FileFormatError
            At the first malformed row, naming its line (or row).
        """
        assert self.fmt is not None, "prepare() first"
        assert self.timeframe is not None, "prepare() first"
        time = self._time_column(table)
        present = self._present(time)
        kept = np.flatnonzero(present)
        if kept.size < table.num_rows:
            self._skip("no timestamp", np.flatnonzero(~present), where)
            mask = pa.array(present)
            table = table.filter(mask)
            time = time.filter(mask)
        try:
            return self._convert(table, time, kept, where)
        except RowProblem as problem:
            raise self._fail(_remap(problem, kept), where) from None

    def _convert(self, table: pa.Table, time: pa.Array[Any], kept: np.ndarray, where: Locator) -> pa.Table:
        fmt, tf = self.fmt, self.timeframe
        assert fmt is not None
        assert tf is not None
        values = parse_times(time, fmt)
        days: np.ndarray | None = None
        if tf.is_intraday:
            ts = values if fmt.aware or self.tz is None else localize(values, self.tz)
            if self.label == "end":
                ts = ts - tf.micros
        else:
            days = session_days(values, fmt, self.tz, time)
            ts = days * DAY_US
        cols: dict[str, pa.Array[Any]] = {}
        for name, pos in self.cmap.fields.items():
            if name != "trade_count":
                cols[name] = self._floats(table, pos)
        if "trade_count" in self.cmap.fields:
            cols["trade_count"] = self._counts(table, self.cmap.fields["trade_count"])
        if self.cmap.quote_volume is not None and "volume" in cols:
            quote = self._floats(table, self.cmap.quote_volume)
            vol, q = _np(cols["volume"]), _np(quote)
            with np.errstate(divide="ignore", invalid="ignore"):
                vwap = np.where(vol > 0, q / vol, np.nan)
            cols["vwap"] = pa.array(vwap, pa.float64(), from_pandas=True)
        action_rows, split_rows, ratios = self._actions_of(table, values, days, time)
        if days is not None and self.cmap.split is not None:
            self._splits.observe(ts, _np(cols["open"]), _np(cols["close"]), split_rows, ratios)
        out = self._build(ts, cols)
        if action_rows is not None and action_rows.size:
            prices = [pc.is_null(cols[c]) for c in ("open", "high", "low", "close")]
            all_null = np.asarray(pc.and_(pc.and_(prices[0], prices[1]), pc.and_(prices[2], prices[3]))
                                  .to_numpy(zero_copy_only=False), dtype=bool)
            drop = np.zeros(out.num_rows, dtype=bool)
            drop[action_rows] = all_null[action_rows]
            if drop.any():
                self._skip("action-only row (no prices)", kept[np.flatnonzero(drop)], where)
                out = out.filter(pa.array(~drop))
        self.rows += out.num_rows
        return out

    def _build(self, ts: np.ndarray, cols: dict[str, pa.Array[Any]]) -> pa.Table:
        n = ts.size
        arrays: list[pa.Array[Any]] = [pa.array(ts.astype(np.int64), pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
        for name in ("open", "high", "low", "close", "volume", "vwap"):
            arrays.append(cols[name] if name in cols else pa.nulls(n, pa.float64()))
        arrays.append(cols["trade_count"] if "trade_count" in cols else pa.nulls(n, pa.int64()))
        provider = pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array(["files"]))
        arrays.append(provider)
        return pa.Table.from_arrays(arrays, schema=BAR_SCHEMA)

    def _floats(self, table: pa.Table, pos: int) -> pa.Array[Any]:
        col = table.column(f"c{pos}").combine_chunks()
        name = self.cmap.names[pos] if pos < len(self.cmap.names) else f"column {pos + 1}"
        return to_float(col, name)

    def _counts(self, table: pa.Table, pos: int) -> pa.Array[Any]:
        arr = _np(self._floats(table, pos))  # nulls (and 'nan') become NaN: missing counts
        bad = ~np.isnan(arr) & ((arr != np.floor(arr)) | (arr < 0) | (arr >= 2.0**63) | ~np.isfinite(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise RowProblem(i, f"trade count {float(arr[i])!r} is not a whole non-negative number")
        return pa.array(arr, pa.float64(), from_pandas=True).cast(pa.int64())

    def _actions_of(self, table: pa.Table, values: np.ndarray, days: np.ndarray | None,
                    time: pa.Array[Any]) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Record this chunk's actions; return (rows with any action, split rows, split ratios)."""
        found: list[np.ndarray] = []
        split_rows = np.zeros(0, dtype=np.int64)
        ratios = np.zeros(0, dtype=np.float64)
        for kind, pos in ((ActionKind.DIVIDEND, self.cmap.dividend), (ActionKind.SPLIT, self.cmap.split)):
            if pos is None:
                continue
            arr = _np(self._floats(table, pos))
            bad = (arr < 0) | np.isinf(arr)
            if bad.any():
                i = int(np.argmax(bad))
                raise RowProblem(i, f"{kind} value {float(arr[i])!r} is negative or infinite")
            # yfinance writes 0 for "no action"; zipline writes split 1.0 for "no split".
            hit = (arr > 0) if kind is ActionKind.DIVIDEND else ((arr > 0) & (arr != 1.0))
            rows = np.flatnonzero(hit)
            if not rows.size:
                continue
            assert self.fmt is not None
            d = days[rows] if days is not None else session_days(values[rows], self.fmt, self.tz,
                                                                 time.take(rows))
            for row, day in zip(rows.tolist(), d.tolist(), strict=True):
                ex = _EPOCH_DAY + dt.timedelta(days=int(day))
                value = float(arr[row])
                self._actions.setdefault((ex, str(kind), value),
                                         CorporateAction(ex, kind, value, self.symbol or "", provider="files"))
            found.append(rows)
            if kind is ActionKind.SPLIT:
                split_rows, ratios = rows, arr[rows]
        return (np.unique(np.concatenate(found)) if found else None), split_rows, ratios


def _remap(problem: RowProblem, kept: np.ndarray) -> RowProblem:
    """The same problem with its index mapped from the kept rows back to the chunk's rows."""
    index = problem.index
    if index is None or not 0 <= index < kept.size:
        return RowProblem(None, problem.message)
    return RowProblem(int(kept[index]), problem.message)


def _np(values: pa.Array[Any] | np.ndarray) -> np.ndarray:
    """float64 numpy view of an Arrow column (nulls as NaN)."""
    if isinstance(values, np.ndarray):
        return values
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def to_float(col: pa.Array[Any], name: str) -> pa.Array[Any]:
    """``col`` as float64; empty strings are missing values.

    Raises
    ------
    RowProblem
        At the first value that is not a number.
    """
    t = col.type
    if t == pa.float64():
        return col
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return pc.cast(col, pa.float64(), safe=False)
    if pa.types.is_dictionary(t):
        col = col.cast(pa.string())
        t = col.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise RowProblem(None, f"column {name!r} holds {t} values, not numbers")
    try:
        return col.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = pc.utf8_trim_whitespace(col)
    text = pc.if_else(pc.equal(pc.utf8_length(text), 0), pa.scalar(None, text.type), text)  # type: ignore[call-overload]
    try:
        return text.cast(pa.float64())  # type: ignore[no-any-return]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = max(first_failure(text, pa.float64()), 0)
        raise RowProblem(bad, f"non-numeric {name} value {str(text[bad].as_py())[:40]!r}") from None
