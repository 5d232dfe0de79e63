"""Session tables as plain int64 arrays, built once per calendar and then only sliced.

exchange_calendars is the source of truth for exchange sessions, but its objects are slow
to build, warn under pandas 3 and answer one question at a time. We therefore read its
schedule once, over wide bounds, into a :class:`Schedule` of epoch-microsecond arrays that
the vectorised bar arithmetic in :mod:`tickvault.calendars._grid` can use directly. The
24/7 (crypto) and 24/5 (FX) calendars are synthesised here rather than taken from
exchange_calendars, whose ``24/5`` runs Monday-Friday 00:00-00:00 UTC instead of the FX
convention (Sunday 17:00 New York to Friday 17:00 New York).
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
from dataclasses import dataclass

import exchange_calendars as xcals
import numpy as np
import pandas as pd
from pandas.tseries.holiday import Holiday, nearest_workday

from tickvault.errors import InvalidInput, InvalidRange

__all__ = [
    "DAY_US",
    "DEFAULT_END",
    "DEFAULT_START",
    "US_EQUITY_BASES",
    "Schedule",
    "build_24_5",
    "build_24_7",
    "build_exchange",
]

DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000

# Wide enough for every intraday vendor history and the DST tests through 2030; clipped to
# the bounds an exchange_calendars class declares (XTKS starts 1997, XSHG ends 2026).
DEFAULT_START = pd.Timestamp("1970-01-01")
DEFAULT_END = pd.Timestamp("2040-12-31")

# exchange_calendars names whose sessions are the US equity (XNYS) ones; these get the
# 04:00-20:00 New York extended session.
US_EQUITY_BASES = frozenset({"XNYS"})
_EXT_OPEN_LOCAL = dt.time(4, 0)
_EXT_AFTER_CLOSE_US = 4 * _HOUR_US  # after-hours run 4 h past the close (20:00, 17:00 on half days)

_FX_TZ = "America/New_York"
_FX_ROLL_LOCAL = dt.time(17, 0)

# Corrections applied on top of the installed exchange_calendars release when it lags the
# exchange (and its own upstream answer keys). Applied as "close no later than", so they stay
# correct once exchange_calendars ships the same fix.
_EXTRA_EARLY_CLOSES: dict[str, tuple[tuple[Holiday, dt.time], ...]] = {
    # CME Globex halts at 12:00 CT on Juneteenth since 2022 (answer key cmes.csv, upstream
    # exchange_calendars after 4.13.2).
    "CMES": (
        (Holiday("Juneteenth", month=6, day=19, start_date=pd.Timestamp("2022-01-01"),
                 observance=nearest_workday), dt.time(12, 0)),
    ),
}

# exchange_calendars objects warn (pandas 3 deprecations) while being built; building is also
# not something two threads should do at once through warnings.catch_warnings.
_BUILD_LOCK = threading.Lock()
_PANDAS4_WARNING: type[Warning] = getattr(pd.errors, "Pandas4Warning", DeprecationWarning)


@dataclass(frozen=True, eq=False)
class Schedule:
    """All sessions of one calendar as aligned, sorted int64 arrays.

    Attributes
    ----------
    tz
        IANA zone of the exchange.
    days
        Session dates as epoch days.
    open_us, close_us
        Regular open and close (epoch µs, UTC).
    break_start_us, break_end_us
        Lunch break; both equal ``close_us`` when the session has no break, so the
        afternoon segment ``[break_end, close)`` is empty.
    has_break
        Which sessions have a break.
    ext_open_us, ext_close_us
        Extended-hours bounds; equal to the regular ones when ``has_extended`` is false.
    has_extended
        Whether extended hours are defined for this calendar.
    utc_grid
        Whether intraday bars follow the epoch UTC grid (24/7) instead of the session open.
    """

    tz: str
    days: np.ndarray
    open_us: np.ndarray
    close_us: np.ndarray
    break_start_us: np.ndarray
    break_end_us: np.ndarray
    has_break: np.ndarray
    ext_open_us: np.ndarray
    ext_close_us: np.ndarray
    has_extended: bool = False
    utc_grid: bool = False

    def __post_init__(self) -> None:
        for name in ("days", "open_us", "close_us", "break_start_us", "break_end_us", "has_break",
                     "ext_open_us", "ext_close_us"):
            getattr(self, name).setflags(write=False)

    def __len__(self) -> int:
        return int(self.days.size)

    def without_days(self, closed_days: np.ndarray) -> Schedule:
        """A copy without the sessions whose epoch day is in ``closed_days``."""
        if closed_days.size == 0:
            return self
        keep = ~np.isin(self.days, closed_days)
        return Schedule(
            self.tz, self.days[keep], self.open_us[keep], self.close_us[keep], self.break_start_us[keep],
            self.break_end_us[keep], self.has_break[keep], self.ext_open_us[keep], self.ext_close_us[keep],
            self.has_extended, self.utc_grid,
        )


def _local_to_utc_us(days: np.ndarray, local: dt.time, tz: str) -> np.ndarray:
    """Epoch µs of wall-clock ``local`` on each epoch day in ``tz`` (vectorised, DST-aware)."""
    wall = days.astype(np.int64) * DAY_US + (local.hour * 3600 + local.minute * 60) * 1_000_000
    idx = pd.DatetimeIndex(wall.astype("datetime64[us]")).tz_localize(tz, ambiguous="raise",
                                                                      nonexistent="raise")
    return np.asarray(idx.tz_convert("UTC").as_unit("us").asi8, dtype=np.int64)


def _utc_column_us(col: pd.Series) -> np.ndarray:
    # np.array copies: the result is patched in place and must not alias pandas' buffer.
    return np.array(pd.DatetimeIndex(col).as_unit("us").asi8, dtype=np.int64)


def _xcals_class_bounds(xname: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    factories = getattr(xcals.calendar_utils, "_default_calendar_factories", None)
    cls = factories.get(xname) if isinstance(factories, dict) else None
    if cls is None:  # a registered custom calendar: no declared bounds we can read cheaply
        return None, None
    return cls.bound_min(), cls.bound_max()


def build_exchange(xname: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Schedule:
    """Read an exchange_calendars calendar into a :class:`Schedule`.

    Parameters
    ----------
    xname
        A name exchange_calendars knows (aliases allowed).
    start, end
        Session-date bounds; ``None`` means :data:`DEFAULT_START` / :data:`DEFAULT_END`
        clipped to the bounds the calendar declares. Explicit bounds are not clipped.

    Raises
    ------
    InvalidInput
        If exchange_calendars does not know ``xname``.
    InvalidRange
        If explicit bounds lie outside what the calendar can evaluate.
    """
    try:
        base = xcals.resolve_alias(xname)
    except xcals.errors.InvalidCalendarName:
        raise InvalidInput(f"unknown calendar {xname!r}", calendar=xname) from None
    lo, hi = _xcals_class_bounds(base)
    s = start if start is not None else max(DEFAULT_START, lo) if lo is not None else DEFAULT_START
    e = end if end is not None else min(DEFAULT_END, hi) if hi is not None else DEFAULT_END
    with _BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", _PANDAS4_WARNING)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            cal = xcals.get_calendar(base, start=s, end=e)
        except xcals.errors.CalendarError as exc:
            raise InvalidInput(f"cannot build calendar {xname!r}: {exc}", calendar=xname) from None
        except ValueError as exc:
            raise InvalidRange(f"calendar {xname!r} cannot cover {s.date()}..{e.date()}: {exc}",
                               calendar=xname) from None
        sched = cal.schedule
        tz = str(cal.tz)
    days = np.asarray(pd.DatetimeIndex(sched.index).as_unit("s").asi8 // 86_400, dtype=np.int64)
    open_us = _utc_column_us(sched["open"])
    close_us = _utc_column_us(sched["close"])
    has_break = np.asarray(sched["break_start"].notna().to_numpy(), dtype=bool)
    bstart = np.where(has_break, _utc_column_us(sched["break_start"]), close_us)
    bend = np.where(has_break, _utc_column_us(sched["break_end"]), close_us)
    for holiday, local_close in _EXTRA_EARLY_CLOSES.get(base, ()):
        hdays = np.asarray(pd.DatetimeIndex(holiday.dates(s, e)).as_unit("s").asi8 // 86_400, dtype=np.int64)
        hit = np.isin(days, hdays)
        if hit.any():
            early = _local_to_utc_us(days[hit], local_close, tz)
            close_us[hit] = np.minimum(close_us[hit], early)
            bstart[hit & ~has_break] = close_us[hit & ~has_break]
            bend[hit & ~has_break] = close_us[hit & ~has_break]
    if base in US_EQUITY_BASES:
        ext_open = np.minimum(_local_to_utc_us(days, _EXT_OPEN_LOCAL, tz), open_us)
        ext_close = close_us + _EXT_AFTER_CLOSE_US
        return Schedule(tz, days, open_us, close_us, bstart, bend, has_break, ext_open, ext_close,
                        has_extended=True)
    return Schedule(tz, days, open_us, close_us, bstart, bend, has_break, open_us.copy(), close_us.copy())


def _day_span(start: pd.Timestamp | None, end: pd.Timestamp | None) -> np.ndarray:
    s = (start if start is not None else DEFAULT_START).normalize()
    e = (end if end is not None else DEFAULT_END).normalize()
    if s > e:
        raise InvalidRange(f"calendar start {s.date()} is after end {e.date()}")
    first = int(s.value // (DAY_US * 1000))
    last = int(e.value // (DAY_US * 1000))
    return np.arange(first, last + 1, dtype=np.int64)


def build_24_7(start: pd.Timestamp | None, end: pd.Timestamp | None) -> Schedule:
    """Every calendar day is a session, 00:00-24:00 UTC; intraday bars on the UTC grid."""
    days = _day_span(start, end)
    open_us = days * DAY_US
    close_us = open_us + DAY_US
    return Schedule("UTC", days, open_us, close_us, close_us, close_us, np.zeros(days.size, dtype=bool),
                    open_us, close_us, utc_grid=True)


def build_24_5(start: pd.Timestamp | None, end: pd.Timestamp | None) -> Schedule:
    """FX: Monday-Friday sessions, each from 17:00 New York the day before to 17:00 on the day.

    The Monday session therefore opens Sunday 17:00 New York and the week ends Friday 17:00.
    No holidays are built in (the interbank market has none that all venues share); pass
    them as ``extra_closures``.
    """
    days = _day_span(start, end)
    days = days[(days + 3) % 7 < 5]  # epoch day 0 was a Thursday; Monday=0 .. Friday=4
    close_us = _local_to_utc_us(days, _FX_ROLL_LOCAL, _FX_TZ)
    open_us = _local_to_utc_us(days - 1, _FX_ROLL_LOCAL, _FX_TZ)
    return Schedule(_FX_TZ, days, open_us, close_us, close_us, close_us, np.zeros(days.size, dtype=bool),
                    open_us, close_us)
