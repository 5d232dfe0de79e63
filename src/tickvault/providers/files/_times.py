"""Timestamps as files write them, turned into tickvault keys (DESIGN §3).

A file uses one time format, decided from its first timestamp: epoch seconds/ms/µs/ns
(told apart by magnitude), ISO 8601 with or without a UTC offset, plain dates, US or
European slash dates, compact ``YYYYMMDD``, or a native Parquet/Feather time column.
Every later row must parse with that same format, so a row without an offset in a file
whose rows have offsets ("mixed time zones") is an error at its line, not a silent shift.

Keys: intraday bars are UTC instants (naive wall-clock times are localised with ``tz``,
UTC when not given); daily and longer bars are the *session date* at 00:00 UTC, where the
session date is the calendar date of the timestamp in the exchange's own time (``tz`` when
given, else the offset written in the file, else UTC). All of it is vectorised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import InvalidTimeframe
from tickvault.model import Timeframe

__all__ = [
    "DAY_US",
    "RowProblem",
    "TimeFormat",
    "detect_format",
    "first_failure",
    "infer_timeframe",
    "localize",
    "parse_times",
    "session_days",
]

DAY_US = 86_400_000_000
# Plausible market-data instants; also catches '01/03/17' read with a 4-digit-year format (year 17).
_MIN_US = int(pd.Timestamp("1800-01-01").value // 1000)
_MAX_US = int(pd.Timestamp("2200-01-01").value // 1000)

# Epoch unit -> magnitude band. Dates after 1973 fall in exactly one band per unit, which is
# how a file's unit is told apart (and how a row in another unit is caught).
_EPOCH_LIMITS = {"s": (0.0, 1e11), "ms": (1e11, 1e14), "us": (1e14, 1e17), "ns": (1e17, float("inf"))}
_US_PER_UNIT: dict[str, float] = {"s": 1_000_000, "ms": 1_000, "us": 1}

_EPOCH = re.compile(r"^-?\d{9,19}(\.\d+)?$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(?P<tz>Z|[+-]\d{2}(:?\d{2})?)?$")
_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?:([ T])(\d{1,2}:\d{2}(:\d{2})?))?$")
_YMD_SEP = re.compile(r"^\d{4}([/.])\d{2}\1\d{2}(?: (\d{2}:\d{2}(:\d{2})?))?$")
_DMY_DOT = re.compile(r"^\d{2}\.\d{2}\.\d{4}(?: (\d{2}:\d{2}(:\d{2})?))?$")
_COMPACT = re.compile(r"^\d{8}(?: (\d{6}|\d{2}:\d{2}(:\d{2})?))?$")


class RowProblem(Exception):
    """A problem at row ``index`` of the current chunk (turned into a FileFormatError with a line).

    ``index`` is ``None`` for a problem of a whole column (no single row to name).
    """

    def __init__(self, index: int | None, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


@dataclass(frozen=True)
class TimeFormat:
    """How a file writes its timestamps.

    Attributes
    ----------
    kind
        ``epoch``, ``iso``, ``strptime`` or ``native`` (a typed Parquet/Feather column).
    aware
        Whether values are instants (offset, epoch, tz-aware column) rather than wall-clock.
    date_only
        Plain dates (session dates by definition).
    fmt
        The strptime format (``strptime`` kind).
    unit
        Epoch unit (``s ms us ns``).
    example
        The first timestamp as written, for messages.
    column_tz
        Time zone of a tz-aware typed column (its local dates are the session dates).
    ambiguous_order
        Slash dates whose day/month order could not be decided from the sample.
    """

    kind: str
    aware: bool
    date_only: bool
    fmt: str | None = None
    unit: str = "us"
    example: str = ""
    column_tz: str | None = None
    ambiguous_order: bool = False


def _time_fmt(text: str | None) -> str:
    if not text:
        return ""
    return " %H:%M:%S" if text.count(":") == 2 else " %H:%M"


def detect_format(sample: pa.Array[Any]) -> TimeFormat | None:
    """Decide the file's time format from a sample of its time column (``None``: no values).

    Raises
    ------
    RowProblem
        If the first timestamp is in no supported format.
    """
    t = sample.type
    if pa.types.is_timestamp(t):
        return TimeFormat("native", t.tz is not None, False, column_tz=t.tz)
    if pa.types.is_date(t):
        return TimeFormat("native", False, True)
    valid = pc.drop_null(sample)
    if len(valid) == 0:
        return None
    first_index = int(pc.index(pc.is_valid(sample), True).as_py())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        first = float(valid[0].as_py())
        if not math.isfinite(first):
            raise RowProblem(first_index, f"epoch timestamp {first!r} is not a finite number")
        return TimeFormat("epoch", True, False, unit=_epoch_unit(first), example=str(valid[0].as_py()))
    text = str(valid[0].as_py()).strip()
    if _EPOCH.match(text):
        return TimeFormat("epoch", True, False, fmt="float" if "." in text else None,
                          unit=_epoch_unit(float(text)), example=text)
    m = _ISO.match(text)
    if m:
        return TimeFormat("iso", m.group("tz") is not None, len(text) == 10, example=text)
    m = _SLASH.match(text)
    if m:
        year = "%Y" if len(m.group(3)) == 4 else "%y"
        sep = m.group(4) or ""
        time = _time_fmt(m.group(5)).replace(" ", sep) if sep else ""
        day_first, ambiguous = _slash_order(valid)
        order = "%d/%m/" if day_first else "%m/%d/"
        return TimeFormat("strptime", False, not time, fmt=order + year + time, example=text,
                          ambiguous_order=ambiguous)
    m = _YMD_SEP.match(text)
    if m:
        sep = m.group(1)
        return TimeFormat("strptime", False, m.group(2) is None, fmt=f"%Y{sep}%m{sep}%d" + _time_fmt(m.group(2)),
                          example=text)
    m = _DMY_DOT.match(text)
    if m:
        return TimeFormat("strptime", False, m.group(1) is None, fmt="%d.%m.%Y" + _time_fmt(m.group(1)),
                          example=text)
    m = _COMPACT.match(text)
    if m:
        rest = m.group(1)
        time = "" if rest is None else (" %H%M%S" if ":" not in rest else _time_fmt(rest))
        return TimeFormat("strptime", False, rest is None, fmt="%Y%m%d" + time, example=text)
    raise RowProblem(first_index, f"unrecognised timestamp {text[:40]!r}")


def _epoch_unit(value: float) -> str:
    return next(unit for unit, (_, high) in _EPOCH_LIMITS.items() if abs(value) < high)


def _slash_order(values: pa.Array[Any]) -> tuple[bool, bool]:
    """(day_first, ambiguous) for slash dates: decided by a first or second field above 12."""
    parts = pc.extract_regex(pc.utf8_trim_whitespace(values.cast(pa.string())), r"^(?P<a>\d{1,2})/(?P<b>\d{1,2})/")
    first, second = parts.flatten()  # flatten() applies the struct's nulls (rows that did not match)
    a = pc.max(pc.cast(first, pa.int64())).as_py() or 0
    b = pc.max(pc.cast(second, pa.int64())).as_py() or 0
    if a > 12:
        return True, False
    return False, b <= 12


def parse_times(values: pa.Array[Any], fmt: TimeFormat) -> np.ndarray:
    """Parse a null-free time column into int64 µs (instants, or wall-clock when naive).

    Raises
    ------
    RowProblem
        At the first row that does not follow ``fmt`` or is out of range.
    """
    if fmt.kind == "native":
        out = _parse_native(values, fmt)
    elif fmt.kind == "epoch":
        out = _parse_epoch(values, fmt)
    else:
        text = pc.utf8_trim_whitespace(values.cast(pa.string()))
        if fmt.kind == "iso":
            target = pa.timestamp("us", tz="UTC") if fmt.aware else pa.timestamp("us")
            parsed = _cast_or_locate(text, target, fmt)
        else:
            parsed = pc.strptime(text, format=fmt.fmt or "", unit="us", error_is_null=True)  # type: ignore[call-overload]
            if parsed.null_count:
                bad = int(pc.index(pc.is_null(parsed), True).as_py())
                raise RowProblem(bad, _mismatch(str(text[bad].as_py()), fmt))
        out = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    outside = (out < _MIN_US) | (out >= _MAX_US)
    if outside.any():
        bad = int(np.argmax(outside))
        raise RowProblem(bad, f"timestamp {_show(values, bad, out)!r} is outside 1800..2200")
    return out


def _show(values: pa.Array[Any], index: int, parsed_us: np.ndarray) -> str:
    """The offending timestamp as written (strings) or as a date (typed values, whatever their range)."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return str(values[index].as_py())[:40]
    return str(np.datetime64(int(parsed_us[index]), "us"))


def _mismatch(text: str, fmt: TimeFormat) -> str:
    stripped = text.strip()
    iso = _ISO.match(stripped)
    if iso and fmt.kind == "iso" and (iso.group("tz") is not None) != fmt.aware:
        if fmt.aware:
            return f"mixed time zones: {stripped!r} has no UTC offset but earlier rows do (e.g. {fmt.example!r})"
        return f"mixed time zones: {stripped!r} has a UTC offset but earlier rows do not (e.g. {fmt.example!r})"
    if fmt.kind != "epoch" and _EPOCH.match(stripped):
        return f"mixed time formats: epoch number {stripped!r} among date strings like {fmt.example!r}"
    return f"cannot parse timestamp {stripped[:40]!r} (the file's format is like {fmt.example!r})"


def first_failure(values: pa.Array[Any], target: pa.DataType) -> int:
    """Index of the first value of ``values`` that does not cast to ``target`` (-1: none).

    Error path only: block by block, then row by row inside the failing block.
    """
    step = 8192
    for start in range(0, len(values), step):
        block = values.slice(start, step)
        try:
            block.cast(target)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for j in range(len(block)):
                try:
                    block.slice(j, 1).cast(target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    return start + j
    return -1


def _cast_or_locate(text: pa.Array[Any], target: pa.DataType, fmt: TimeFormat) -> pa.Array[Any]:
    try:
        return text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = max(first_failure(text, target), 0)
        raise RowProblem(bad, _mismatch(str(text[bad].as_py()), fmt)) from None


def _parse_epoch(values: pa.Array[Any], fmt: TimeFormat) -> np.ndarray:
    t = values.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(values)
        target = pa.float64() if fmt.fmt == "float" else pa.int64()
        try:
            num = text.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = max(first_failure(text, target), 0)
            raise RowProblem(bad, _mismatch(str(text[bad].as_py()), fmt)) from None
    else:
        num = values
    raw = num.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(num.type):
        finite = np.isfinite(raw)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise RowProblem(bad, f"epoch timestamp {float(raw[bad])!r} is not a finite number")
    low, high = _EPOCH_LIMITS[fmt.unit]
    mag = np.abs(raw.astype(np.float64))
    wrong = (mag < low) | (mag >= high)
    if wrong.any():
        bad = int(np.argmax(wrong))
        raise RowProblem(bad, f"epoch timestamp {raw[bad]} is not in {fmt.unit} like the first row "
                              f"({fmt.example}): mixed epoch units")
    if pa.types.is_floating(num.type):
        us = raw * _US_PER_UNIT.get(fmt.unit, 0.001)
        outside = (us < _MIN_US) | (us >= _MAX_US)  # checked before the int cast, which could overflow
        if outside.any():
            bad = int(np.argmax(outside))
            raise RowProblem(bad, f"timestamp {float(raw[bad])!r} is outside 1800..2200")
        return np.asarray(np.round(us), dtype=np.int64)
    if fmt.unit == "ns":
        return np.asarray(raw, dtype=np.int64) // 1000  # sub-microsecond digits are dropped
    return np.asarray(raw, dtype=np.int64) * _US_PER_UNIT[fmt.unit]


def _parse_native(values: pa.Array[Any], fmt: TimeFormat) -> np.ndarray:
    t = values.type
    if pa.types.is_date(t):
        ts = values.cast(pa.date32()).cast(pa.int32())
        return np.asarray(ts.to_numpy(zero_copy_only=False), dtype=np.int64) * DAY_US
    # Sub-microsecond digits are dropped (bars are microsecond keys).
    ts = pc.cast(values, pa.timestamp("us", tz=t.tz), safe=False)  # type: ignore[arg-type]
    return np.asarray(ts.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def localize(wall_us: np.ndarray, tz: str) -> np.ndarray:
    """UTC instants (µs) of naive wall-clock times in ``tz``.

    DST fall-back repeats are resolved from the row order when possible.

    Raises
    ------
    RowProblem
        At the first time that does not exist or stays ambiguous in ``tz``.
    """
    idx = pd.DatetimeIndex(np.asarray(wall_us, dtype=np.int64).view("datetime64[us]"))
    try:
        local = idx.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except (ValueError, TypeError):  # pytz/pandas AmbiguousTimeError is a ValueError
        local = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    if local.hasnans:
        bad = int(np.argmax(np.asarray(local.isna())))
        raise RowProblem(bad, f"local time {idx[bad]} does not exist or is ambiguous in {tz} (DST change); "
                              "export the file in UTC or with UTC offsets")
    return np.asarray(local.tz_convert("UTC").as_unit("us").asi8, dtype=np.int64)


def _wall_clock(instants_us: np.ndarray, tz: str) -> np.ndarray:
    idx = pd.DatetimeIndex(np.asarray(instants_us, dtype=np.int64).view("datetime64[us]")).tz_localize("UTC")
    return np.asarray(idx.tz_convert(tz).tz_localize(None).as_unit("us").asi8, dtype=np.int64)


def session_days(values_us: np.ndarray, fmt: TimeFormat, tz: str | None, raw: pa.Array[Any] | None) -> np.ndarray:
    """Epoch days of the session date of each timestamp.

    The date is read in the exchange's clock: ``tz`` when given, else the UTC offset
    written in the file (ISO strings) or the column's zone, else UTC.
    """
    if not fmt.aware:
        wall = values_us
    elif tz is not None:
        wall = _wall_clock(values_us, tz)
    elif fmt.kind == "iso" and raw is not None:
        dates = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(raw.cast(pa.string())), 0, 10).cast(pa.date32())
        return np.asarray(dates.cast(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)
    elif fmt.column_tz is not None:
        wall = _wall_clock(values_us, fmt.column_tz)
    else:
        wall = values_us
    return np.asarray(np.floor_divide(wall, DAY_US), dtype=np.int64)


def infer_timeframe(values_us: np.ndarray, date_only: bool, *, durations_us: np.ndarray | None = None) -> str | None:
    """The timeframe implied by the median spacing of the timestamps (``None`` when unclear).

    ``durations_us`` (bar lengths, Binance) takes precedence over spacing when given.
    """
    if durations_us is not None and durations_us.size:
        step = int(np.sort(durations_us)[(durations_us.size - 1) // 2])
    else:
        unique = np.unique(values_us)
        if unique.size < 2:
            return "1d" if date_only else None
        diffs = np.diff(unique)
        step = int(np.sort(diffs)[(diffs.size - 1) // 2])  # lower median: an actual spacing
    if step <= 0:
        return None
    if step < 0.9 * DAY_US and not date_only:
        seconds = round(step / 1_000_000)
        if seconds < 1:
            return None
        try:
            return str(Timeframe.parse(f"{seconds}s"))
        except InvalidTimeframe:
            return None
    days = step / DAY_US
    for low, high, tf in ((0.9, 4.0, "1d"), (4.0, 10.0, "1w"), (26.0, 33.0, "1mo"), (85.0, 95.0, "3mo"),
                          (360.0, 370.0, "12mo")):
        if low <= days < high:
            return tf
    return None
