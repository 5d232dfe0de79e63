"""Name resolution and caching: one :class:`TradingCalendar` per (name, closures, bounds).

Building an exchange_calendars calendar costs ~0.2 s and every layer asks for calendars
often, so both the raw session arrays (per underlying calendar and bounds) and the
finished calendars (per name and extra closures) are cached for the life of the process.
Calendars are immutable, so sharing them is safe.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from tickvault.calendars._calendar import DateLike, TradingCalendar, to_epoch_day
from tickvault.calendars._schedule import Schedule, build_24_5, build_24_7, build_exchange
from tickvault.errors import InvalidInput

__all__ = ["ALIASES", "calendar_names", "get_calendar"]

CRYPTO = "24/7"
FX = "24/5"

ALIASES: dict[str, str] = {
    "NYSE": "XNYS",
    "NASDAQ": "XNAS",
    "LSE": "XLON",
    "CRYPTO": CRYPTO,
    "24/7": CRYPTO,
    "24X7": CRYPTO,
    "FX": FX,
    "FOREX": FX,
    "24/5": FX,
    "24X5": FX,
}
"""Our own short names (case-insensitive) -> canonical calendar name."""


def _canonical(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"calendar name must be a non-empty string, got {name!r}")
    raw = name.strip()
    alias = ALIASES.get(raw.upper())
    if alias is not None:
        return alias
    known = set(xcals.get_calendar_names(include_aliases=True))
    for candidate in (raw, raw.upper()):
        if candidate in known:
            return candidate
    raise InvalidInput(
        f"unknown calendar {name!r}; use an exchange_calendars name (XNYS, XLON, XTKS, CMES, ...) "
        f"or one of {sorted(ALIASES)}",
        calendar=name,
    )


def calendar_names() -> list[str]:
    """Every name :func:`get_calendar` accepts (exchange_calendars names and aliases, and ours)."""
    return sorted(set(xcals.get_calendar_names(include_aliases=True)) | set(ALIASES))


def _bound(value: DateLike | None) -> pd.Timestamp | None:
    if value is None:
        return None
    return pd.Timestamp(to_epoch_day(value) * 86_400, unit="s")


@functools.lru_cache(maxsize=64)
def _schedule(name: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Schedule:
    if name == CRYPTO:
        return build_24_7(start, end)
    if name == FX:
        return build_24_5(start, end)
    return build_exchange(name, start, end)


@functools.lru_cache(maxsize=256)
def _calendar(name: str, closures: tuple[int, ...], start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> TradingCalendar:
    base = name if name in (CRYPTO, FX) else xcals.resolve_alias(name)  # XNAS shares XNYS's arrays
    sched = _schedule(base, start, end).without_days(np.asarray(closures, dtype=np.int64))
    dates = tuple(dt.date(1970, 1, 1) + dt.timedelta(days=d) for d in closures)
    return TradingCalendar(name, sched, dates)


def get_calendar(name: str, *, extra_closures: Iterable[DateLike] | DateLike = (), start: DateLike | None = None,
                 end: DateLike | None = None) -> TradingCalendar:
    """Return the (cached) trading calendar called ``name``.

    Parameters
    ----------
    name
        Any exchange_calendars name or alias (``XNYS``, ``XNAS``, ``XLON``, ``XTKS``,
        ``CMES``, ...), or ``NYSE``, ``NASDAQ``, ``LSE``, ``crypto``/``24/7`` (every day,
        UTC) or ``fx``/``24/5`` (Sunday 17:00 to Friday 17:00 New York). Case-insensitive.
    extra_closures
        One date or several on which the market is closed although the exchange calendar
        says otherwise (unscheduled closures, venue outages). Dates that are not sessions
        are ignored.
    start, end
        Session-date bounds of the calendar. By default 1970-01-01 to 2040-12-31, clipped
        to what the exchange calendar can evaluate (XTKS starts in 1997). Outside its
        bounds a calendar has no sessions, so pass wider bounds for older history.

    Returns
    -------
    TradingCalendar
        Shared, immutable; the same arguments return the same object.

    Raises
    ------
    InvalidInput
        If the name is unknown.
    InvalidRange
        If a bound or closure is not a date, or the bounds lie outside what the exchange
        calendar can evaluate.
    """
    canonical = _canonical(name)
    # one date (a string is iterable too) or many
    days = ([extra_closures] if isinstance(extra_closures, str | dt.date | np.datetime64)
            else list(extra_closures))
    closures = tuple(sorted({to_epoch_day(d) for d in days}))
    return _calendar(canonical, closures, _bound(start), _bound(end))
