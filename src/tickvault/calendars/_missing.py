"""The coverage ledger's one question: which expected bars have we never asked about?

``missing = requested ∩ expected bars − covered`` (DESIGN §1). Expected bars come from the
calendar, so weekends, holidays, lunch breaks and early-close afternoons are never missing;
coverage of any state (final, provisional, empty) counts, because "asked, nothing there"
is an answer too.
"""

from __future__ import annotations

from collections.abc import Sequence

from tickvault.calendars._calendar import TradingCalendar
from tickvault.model import CoverageInterval, Timeframe, covered_mask, intervals_from_mask

__all__ = ["missing_intervals"]


def missing_intervals(coverage: Sequence[CoverageInterval], calendar: TradingCalendar,
                      timeframe: str | Timeframe, start_us: int, end_us: int, *,
                      extended: bool = False) -> list[tuple[int, int]]:
    """The maximal runs of expected bars in a window that no coverage interval holds.

    Parameters
    ----------
    coverage
        Coverage intervals of one (symbol, timeframe), any order, any state.
    calendar
        The instrument's trading calendar.
    timeframe
        Bar length (``1m`` ... ``1mo``).
    start_us, end_us
        Requested window on bar starts, epoch µs, half-open.
    extended
        Expect extended-hours bars where the calendar defines them.

    Returns
    -------
    list of tuple of int
        Sorted, disjoint ``(start_us, end_us)`` runs. A bar counts as covered only when it
        lies wholly inside the union of the coverage intervals. A run ends where the bars
        stop touching (session close, lunch break), and may end after ``end_us`` when the
        last bar starting inside the window does.

    Raises
    ------
    InvalidTimeframe, InvalidRange
        As :meth:`TradingCalendar.bar_bounds`.
    """
    starts, ends = calendar.bar_bounds(timeframe, start_us, end_us, extended=extended)
    if starts.size == 0:
        return []
    missing = ~covered_mask(coverage, starts, ends)
    return intervals_from_mask(starts, ends, missing)
