"""The :class:`TradingCalendar`: sessions, expected bars and session labels for one market.

This is what turns "requested range" into "bars that should exist" (DESIGN §1): a weekend,
a holiday, a lunch break or the afternoon of an early close holds no expected bar, so it
can never be reported missing. Everything is answered from the int64 arrays of a
:class:`~tickvault.calendars._schedule.Schedule`, vectorised.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from tickvault.calendars._grid import calendar_bars
from tickvault.calendars._schedule import DAY_US, Schedule
from tickvault.errors import InvalidRange, InvalidTimeframe
from tickvault.model import Timeframe

__all__ = ["DateLike", "TradingCalendar", "to_epoch_day"]

DateLike = str | dt.date | dt.datetime | pd.Timestamp | np.datetime64
_WEEK_DAYS = 7


def to_epoch_day(value: DateLike) -> int:
    """Epoch day of the calendar date written in ``value`` (its own wall clock, no tz shift).

    Raises
    ------
    InvalidRange
        If ``value`` is not a date.
    """
    if isinstance(value, bool | int | float):
        raise InvalidRange(f"ambiguous number as a date: {value!r}; pass a date or 'YYYY-MM-DD'")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidRange(f"cannot parse date {value!r}: {exc}") from None
    if pd.isna(ts):
        raise InvalidRange(f"cannot parse date {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return int(ts.normalize().value // (DAY_US * 1000))  # .value is always nanoseconds


def _days_index(days: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex((days * DAY_US * 1000).astype("datetime64[ns]"))


def _utc_index(us: np.ndarray, valid: np.ndarray | None = None) -> pd.DatetimeIndex:
    values = (us * 1000).astype("datetime64[ns]")
    if valid is not None:
        values[~valid] = np.datetime64("NaT")
    return pd.DatetimeIndex(values).tz_localize("UTC")


class TradingCalendar:
    """Trading sessions of one market, and the bars they imply.

    Build with :func:`tickvault.calendars.get_calendar`, which caches instances.

    Parameters
    ----------
    name
        Canonical calendar name (``XNYS``, ``XNAS``, ``24/7``, ``24/5``, ...).
    schedule
        The session arrays (extra closures already removed).
    extra_closures
        Epoch days removed from the underlying calendar, for display.
    """

    def __init__(self, name: str, schedule: Schedule, extra_closures: tuple[dt.date, ...] = ()) -> None:
        if len(schedule) == 0:
            raise InvalidRange(f"calendar {name!r} has no session in its bounds", calendar=name)
        self._name = name
        self._s = schedule
        self._extra = extra_closures

    # -- identity -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``"XNYS"``, ``"24/7"``, ``"24/5"``."""
        return self._name

    @property
    def tz(self) -> str:
        """IANA time zone of the exchange (``"UTC"`` for 24/7)."""
        return self._s.tz

    @property
    def is_24_7(self) -> bool:
        """Whether the market never closes (crypto)."""
        return self._s.utc_grid

    @property
    def has_extended_hours(self) -> bool:
        """Whether ``extended=True`` means something other than the regular session."""
        return self._s.has_extended

    @property
    def extra_closures(self) -> tuple[dt.date, ...]:
        """User-supplied closures applied on top of the exchange's own holidays."""
        return self._extra

    @property
    def first_session(self) -> pd.Timestamp:
        """First session date this calendar knows (naive midnight)."""
        return pd.Timestamp(int(self._s.days[0]) * DAY_US * 1000)

    @property
    def last_session(self) -> pd.Timestamp:
        """Last session date this calendar knows (naive midnight)."""
        return pd.Timestamp(int(self._s.days[-1]) * DAY_US * 1000)

    def __repr__(self) -> str:
        extra = f", extra_closures={len(self._extra)}" if self._extra else ""
        return (f"TradingCalendar({self._name!r}, tz={self.tz!r}, "
                f"{self.first_session.date()}..{self.last_session.date()}{extra})")

    # -- sessions -----------------------------------------------------------------------

    def _slice(self, start: DateLike, end: DateLike) -> slice:
        d0, d1 = to_epoch_day(start), to_epoch_day(end)
        if d0 > d1:
            raise InvalidRange(f"start {start!r} is after end {end!r}", calendar=self._name)
        i0 = int(np.searchsorted(self._s.days, d0, side="left"))
        i1 = int(np.searchsorted(self._s.days, d1, side="right"))
        return slice(i0, i1)

    def sessions(self, start: DateLike, end: DateLike) -> pd.DatetimeIndex:
        """Session dates from ``start`` to ``end`` inclusive, as naive midnights.

        Dates outside the calendar's bounds (:attr:`first_session`..:attr:`last_session`)
        simply have no sessions.

        Raises
        ------
        InvalidRange
            If a bound is not a date or ``start > end``.
        """
        return _days_index(self._s.days[self._slice(start, end)])

    def schedule(self, start: DateLike, end: DateLike) -> pd.DataFrame:
        """Open, close and lunch break of each session from ``start`` to ``end`` inclusive.

        Returns
        -------
        pandas.DataFrame
            Indexed by session date (naive midnight); columns ``open``, ``close``,
            ``break_start``, ``break_end`` as tz-aware UTC timestamps, the break columns
            ``NaT`` when the session has no break.
        """
        sl = self._slice(start, end)
        s = self._s
        hb = s.has_break[sl]
        return pd.DataFrame(
            {
                "open": _utc_index(s.open_us[sl]),
                "close": _utc_index(s.close_us[sl]),
                "break_start": _utc_index(s.break_start_us[sl], hb),
                "break_end": _utc_index(s.break_end_us[sl], hb),
            },
            index=_days_index(s.days[sl]),
        )

    def is_session(self, d: DateLike) -> bool:
        """Whether the calendar date ``d`` is a trading session."""
        day = to_epoch_day(d)
        i = int(np.searchsorted(self._s.days, day))
        return i < self._s.days.size and int(self._s.days[i]) == day

    # -- bars ---------------------------------------------------------------------------

    def bar_bounds(self, timeframe: str | Timeframe, start_us: int, end_us: int, *,
                   extended: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Start and end of every expected bar whose start lies in ``[start_us, end_us)``.

        Intraday bars are laid from each session's open (and again from the end of a
        lunch break), the last one clipped to the close or the break start; on a 24/7
        calendar they follow the epoch UTC grid. Daily bars are labelled by the session
        date at 00:00 UTC and last one day; weekly bars by the Monday (00:00 UTC) of each
        ISO week holding a session and last seven days; monthly bars by the 1st of each
        month holding a session and end on the 1st of the next month.

        Parameters
        ----------
        timeframe
            ``1m``, ``5m``, ``1h``, ``1d``, ``1w``, ``1mo`` or any intraday ``N<unit>``.
        start_us, end_us
            Window on bar starts, epoch microseconds (UTC), half-open.
        extended
            Use extended hours where the calendar defines them (US equities:
            04:00-20:00 New York, 17:00 on early-close days); elsewhere the regular
            session is used.

        Returns
        -------
        tuple of numpy.ndarray
            ``(starts_us, ends_us)``, int64, sorted ascending.

        Raises
        ------
        InvalidTimeframe
            For multi-session timeframes such as ``2d`` or ``3mo``, which no calendar defines.
        InvalidRange
            If ``start_us > end_us``.
        """
        tf = Timeframe.parse(timeframe)
        lo, hi = int(start_us), int(end_us)
        if lo > hi:
            raise InvalidRange(f"bar window start {lo} is after end {hi}", calendar=self._name)
        s = self._s
        if tf.is_intraday:
            if extended and s.has_extended:
                return calendar_bars(s.ext_open_us, s.ext_close_us, None, None, tf.micros, lo, hi)
            if s.utc_grid:
                return calendar_bars(s.open_us, s.close_us, None, None, tf.micros, lo, hi, utc_grid=True)
            return calendar_bars(s.open_us, s.close_us, s.break_start_us, s.break_end_us, tf.micros, lo, hi)
        if tf.n != 1:
            raise InvalidTimeframe(f"{tf} is not defined by a trading calendar; resample from 1{tf.unit}",
                                   timeframe=str(tf))
        if tf.unit == "d":
            labels = s.days * DAY_US
            ends = labels + DAY_US
        elif tf.unit == "w":
            mondays = np.unique(s.days - (s.days + 3) % _WEEK_DAYS)  # epoch day 0 was a Thursday
            labels = mondays * DAY_US
            ends = labels + _WEEK_DAYS * DAY_US
        else:
            months = np.unique(s.days.astype("datetime64[D]").astype("datetime64[M]"))
            labels = months.astype("datetime64[D]").astype(np.int64) * DAY_US
            ends = (months + 1).astype("datetime64[D]").astype(np.int64) * DAY_US
        i0 = int(np.searchsorted(labels, lo, side="left"))
        i1 = int(np.searchsorted(labels, hi, side="left"))
        return labels[i0:i1].copy(), ends[i0:i1].copy()

    def session_labels(self, ts_us: Any) -> np.ndarray:
        """Map the instants vendors stamp on daily bars to session-date keys.

        Rules, first match wins:

        1. an instant exactly at 00:00 UTC is already a label (Tiingo, ccxt, 24/7 feeds);
        2. an instant at local midnight in the exchange's zone is that local date
           (Polygon and Alpaca stamp 04:00Z/05:00Z for New York);
        3. otherwise the session containing the instant (open <= t <= close, the close
           included so an end-of-session stamp stays on its day), or the next session
           when it falls between sessions (Yahoo stamps the open, 13:30Z/14:30Z; Yahoo's
           GC=F stamps 05:00Z, inside the CME session that opened the evening before).

        Parameters
        ----------
        ts_us
            Epoch microseconds (array-like of int64).

        Returns
        -------
        numpy.ndarray
            int64 epoch µs of the session date at 00:00 UTC, same shape as ``ts_us``.

        Raises
        ------
        InvalidRange
            If an instant needing rule 3 lies outside the calendar's bounds.
        """
        ts = np.asarray(ts_us, dtype=np.int64)
        flat = ts.ravel()
        out = flat - np.mod(flat, DAY_US)
        todo = np.mod(flat, DAY_US) != 0  # rule 1 done
        if todo.any():
            pending = flat[todo]
            local = np.asarray(
                pd.DatetimeIndex(pending.astype("datetime64[us]")).tz_localize("UTC").tz_convert(self.tz)
                .tz_localize(None).as_unit("us").asi8,
                dtype=np.int64,
            )
            at_midnight = np.mod(local, DAY_US) == 0
            labels = np.empty_like(pending)
            labels[at_midnight] = local[at_midnight]  # rule 2: local wall clock == that date's label
            rest = ~at_midnight
            if rest.any():
                labels[rest] = self._containing_or_next(pending[rest])
            out[todo] = labels
        return out.reshape(ts.shape)

    def _containing_or_next(self, ts: np.ndarray) -> np.ndarray:
        s = self._s
        idx = np.searchsorted(s.close_us, ts, side="left")  # first session with close >= t
        bad = (idx >= s.days.size) | (ts < s.days[0] * DAY_US)
        if bad.any():
            first = int(ts[bad][0])
            raise InvalidRange(
                f"instant {pd.Timestamp(first * 1000, tz='UTC')} is outside the calendar's sessions "
                f"{self.first_session.date()}..{self.last_session.date()}",
                calendar=self._name,
            )
        return np.asarray(s.days[idx] * DAY_US, dtype=np.int64)
