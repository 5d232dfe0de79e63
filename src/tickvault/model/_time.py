"""Time handling: UTC instants and half-open time ranges.

Everything stored or returned is UTC and tz-aware (DESIGN §3). Inputs may be strings,
dates, datetimes or pandas timestamps; naive values are taken as UTC (documented, and
the only sensible default for a library that never guesses an exchange).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tickvault.errors import InvalidRange

__all__ = ["TimeLike", "TimeRange", "to_utc"]

TimeLike = str | dt.date | dt.datetime | pd.Timestamp | int


def to_utc(value: TimeLike) -> pd.Timestamp:
    """Convert ``value`` to a tz-aware UTC :class:`pandas.Timestamp`.

    Naive datetimes and strings without an offset are taken as UTC. Integers are
    rejected: an epoch without a unit is a guess (the files provider handles epochs).

    Raises
    ------
    InvalidRange
        If the value cannot be parsed.
    """
    if isinstance(value, bool | int):
        raise InvalidRange(f"ambiguous integer time {value!r}: pass a string, date or datetime")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidRange(f"cannot parse time {value!r}: {exc}") from None
    if pd.isna(ts):
        raise InvalidRange(f"cannot parse time {value!r}")
    if ts.tzinfo is None:
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC interval ``[start, end)``.

    Parameters
    ----------
    start, end
        Tz-aware UTC timestamps, ``start <= end``.
    """

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", to_utc(self.start))
        object.__setattr__(self, "end", to_utc(self.end))
        if self.start > self.end:
            raise InvalidRange(f"range start {self.start} is after end {self.end}")

    @classmethod
    def of(cls, start: Any = None, end: Any = None, *,
           default_start: pd.Timestamp | None = None,
           default_end: pd.Timestamp | None = None) -> TimeRange:
        """Build a range from optional bounds.

        A bare date as ``end`` is inclusive of that day (``end="2024-01-31"`` covers the
        31st), which is what people mean when they type a date.
        """
        s = to_utc(start) if start is not None else (default_start or pd.Timestamp("1970-01-01", tz="UTC"))
        if end is None:
            e = default_end or pd.Timestamp("2262-01-01", tz="UTC")
        else:
            e = to_utc(end)
            if _is_plain_date(end):
                e = e + pd.Timedelta(days=1)
        return cls(s, e)

    @property
    def duration(self) -> pd.Timedelta:
        """``end - start``."""
        return self.end - self.start

    def contains(self, ts: pd.Timestamp) -> bool:
        """Whether ``start <= ts < end``."""
        return bool(self.start <= ts < self.end)

    def overlaps(self, other: TimeRange) -> bool:
        """Whether the two half-open ranges share any instant."""
        return bool(self.start < other.end and other.start < self.end)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def _is_plain_date(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return False
    if isinstance(value, dt.date):
        return True
    if isinstance(value, str):
        v = value.strip()
        return len(v) == 10 and v[4] == "-" and v[7] == "-"
    return False
