"""Trading calendars: which sessions exist and which bars they imply.

Built on exchange_calendars (every exchange it knows, with its holidays, early closes and
lunch breaks), plus 24/7 (crypto) and 24/5 (FX) calendars and user-supplied closures. The
engine uses :func:`missing_intervals` to ask providers only for what is really missing,
and providers use :meth:`TradingCalendar.session_labels` to key daily bars by session date.
See ``docs/calendars.md``.
"""

from tickvault.calendars._calendar import TradingCalendar
from tickvault.calendars._missing import missing_intervals
from tickvault.calendars._registry import ALIASES, calendar_names, get_calendar

__all__ = ["ALIASES", "TradingCalendar", "calendar_names", "get_calendar", "missing_intervals"]
