"""Timeframes: parsing, canonical formatting, alignment and arithmetic.

A timeframe is ``N<unit>`` with unit one of ``s m h d w mo`` (seconds, minutes, hours,
days, weeks, months). ``1m`` is one minute; ``1mo`` is one month. Fixed-length units
(s, m, h) are *intraday*; ``d``, ``w`` and ``mo`` are session-based and labelled by the
session date at 00:00 UTC (DESIGN §3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from tickvault.errors import InvalidTimeframe

__all__ = ["Timeframe"]

_UNIT_ALIASES: dict[str, str] = {
    "s": "s", "sec": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "minute": "m", "minutes": "m", "t": "m",
    "h": "h", "hr": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "week": "w", "weeks": "w",
    "mo": "mo", "mon": "mo", "month": "mo", "months": "mo",
}
_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([a-z]{1,7})\s*$")
_UNIT_NANOS: dict[str, int] = {
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
}
_UNIT_ORDER = ("s", "m", "h", "d", "w", "mo")


@dataclass(frozen=True, order=False)
class Timeframe:
    """A bar length such as ``1m``, ``4h``, ``1d`` or ``1mo``.

    Parameters
    ----------
    n
        Multiplier, >= 1.
    unit
        One of ``s m h d w mo``.

    Examples
    --------
    >>> Timeframe.parse("5m").nanos
    300000000000
    >>> str(Timeframe.parse("60min"))
    '1h'
    """

    n: int
    unit: str

    CANONICAL: ClassVar[tuple[str, ...]] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1mo")

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_ORDER:
            raise InvalidTimeframe(f"unknown timeframe unit {self.unit!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise InvalidTimeframe(f"timeframe multiplier must be a positive integer, got {self.n!r}")

    @classmethod
    def parse(cls, value: str | Timeframe) -> Timeframe:
        """Parse ``value`` into a normalised timeframe.

        Multiples are normalised upward where exact (``60m`` -> ``1h``, ``24h`` stays
        ``24h`` because a day is a session, not 24 hours).

        Raises
        ------
        InvalidTimeframe
            If the string is not ``N<unit>``.
        """
        if isinstance(value, Timeframe):
            return value
        if not isinstance(value, str):
            raise InvalidTimeframe(f"timeframe must be a string like '1m', got {type(value).__name__}")
        raw = value
        value = value.strip()
        # 'M' alone is ambiguous (minute vs month): only accept explicit spellings.
        m = _PATTERN.match(value.lower()) if value[-1:] != "M" else None
        if m is None:
            raise InvalidTimeframe(f"invalid timeframe {raw!r}; use e.g. 1m 5m 1h 1d 1w 1mo")
        unit = _UNIT_ALIASES.get(m.group(2))
        if unit is None:
            raise InvalidTimeframe(f"invalid timeframe unit in {raw!r}; use s, m, h, d, w or mo")
        n = int(m.group(1))
        if n < 1:
            raise InvalidTimeframe(f"timeframe multiplier must be >= 1 in {raw!r}")
        if unit == "s" and n % 60 == 0:
            n, unit = n // 60, "m"
        if unit == "m" and n % 60 == 0:
            n, unit = n // 60, "h"
        return cls(n, unit)

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"

    def __repr__(self) -> str:
        return f"Timeframe('{self}')"

    @property
    def is_intraday(self) -> bool:
        """True for fixed-length bars (seconds, minutes, hours)."""
        return self.unit in ("s", "m", "h")

    @property
    def nanos(self) -> int:
        """Nominal length in nanoseconds (months count as 30 days)."""
        if self.unit == "mo":
            return self.n * 30 * _UNIT_NANOS["d"]
        return self.n * _UNIT_NANOS[self.unit]

    @property
    def micros(self) -> int:
        """Nominal length in microseconds."""
        return self.nanos // 1000

    @property
    def delta(self) -> pd.Timedelta:
        """Nominal length as a :class:`pandas.Timedelta` (months count as 30 days)."""
        return pd.Timedelta(self.nanos, unit="ns")

    def sort_key(self) -> tuple[int, int]:
        """A key ordering timeframes from finest to coarsest."""
        return (_UNIT_ORDER.index(self.unit) if self.unit == "mo" else 0, self.nanos)

    def __lt__(self, other: Timeframe) -> bool:
        return self.sort_key() < other.sort_key()

    def divides(self, other: Timeframe) -> bool:
        """Whether bars of ``other`` can be built exactly from bars of ``self``."""
        if self.is_intraday and other.is_intraday:
            return other.nanos % self.nanos == 0
        if self.is_intraday:
            return True  # intraday -> session-based: aggregate per session
        if self.unit == "d" and self.n == 1:
            return other.unit in ("d", "w", "mo")
        return self == other

    def floor(self, ts_ns: np.ndarray) -> np.ndarray:
        """Floor epoch-nanosecond timestamps to this timeframe's UTC grid.

        Only defined for intraday timeframes and for ``1d`` (UTC midnight). Session-aligned
        flooring (e.g. 1h bars starting 09:30 New York) lives in :mod:`tickvault.calendars`.

        Raises
        ------
        InvalidTimeframe
            For week and month timeframes, which have no fixed UTC grid.
        """
        if not (self.is_intraday or (self.unit == "d")):
            raise InvalidTimeframe(f"{self} has no fixed UTC grid; align it with a calendar")
        step = np.int64(self.nanos)
        arr = np.asarray(ts_ns, dtype=np.int64)
        return arr - np.mod(arr, step)

    def is_aligned(self, ts_ns: np.ndarray) -> np.ndarray:
        """Boolean mask: which epoch-ns timestamps lie on the UTC grid of this timeframe."""
        arr = np.asarray(ts_ns, dtype=np.int64)
        return np.asarray(self.floor(arr) == arr)

    def add(self, ts: pd.Timestamp, k: int = 1) -> pd.Timestamp:
        """Return ``ts`` moved by ``k`` bars (calendar months for ``mo``)."""
        if self.unit == "mo":
            return ts + pd.DateOffset(months=self.n * k)
        return ts + pd.Timedelta(self.nanos * k, unit="ns")
