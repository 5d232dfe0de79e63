"""Expected bar timestamps: session-aligned intraday grids, early closes, lunch breaks,
24/7 and 24/5, extended hours, daily/weekly/monthly labels and extra closures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from calendar_helpers import DAY_US, MINUTE_US, local_times, us, utc

from tickvault.calendars import get_calendar
from tickvault.errors import InvalidRange, InvalidTimeframe
from tickvault.model import Timeframe


def day_bars(name: str, tf: str, day: str, *, extended: bool = False) -> tuple[np.ndarray, np.ndarray]:
    # New York sessions, extended hours included, lie inside the UTC day of their date
    return get_calendar(name).bar_bounds(tf, us(day), us(day) + DAY_US, extended=extended)


@pytest.mark.parametrize(
    ("tf", "count", "first_starts", "last_start", "last_end"),
    [
        ("1m", 390, ["09:30", "09:31"], "15:59", "16:00"),
        ("5m", 78, ["09:30", "09:35"], "15:55", "16:00"),
        ("30m", 13, ["09:30", "10:00"], "15:30", "16:00"),
        ("1h", 7, ["09:30", "10:30"], "15:30", "16:00"),
        ("4h", 2, ["09:30", "13:30"], "13:30", "16:00"),
    ],
)
def test_xnys_intraday_normal_day(tf: str, count: int, first_starts: list[str], last_start: str,
                                  last_end: str) -> None:
    starts, ends = day_bars("XNYS", tf, "2024-03-12")
    assert starts.size == count
    assert local_times(starts[:2], "America/New_York") == first_starts
    assert local_times(starts[-1:], "America/New_York") == [last_start]
    assert local_times(ends[-1:], "America/New_York") == [last_end]
    step = Timeframe.parse(tf).micros
    np.testing.assert_array_equal(ends[:-1], starts[:-1] + step)
    assert np.all(np.diff(starts) == step)


def test_xnys_1h_is_stated_in_utc_across_dst() -> None:
    winter, _ = day_bars("XNYS", "1h", "2024-03-08")
    summer, _ = day_bars("XNYS", "1h", "2024-03-11")
    assert utc(winter[:1])[0].strftime("%H:%M") == "14:30"
    assert utc(summer[:1])[0].strftime("%H:%M") == "13:30"


@pytest.mark.parametrize(
    ("tf", "count", "last_start", "last_end"),
    [("1m", 210, "12:59", "13:00"), ("5m", 42, "12:55", "13:00"), ("30m", 7, "12:30", "13:00"),
     ("1h", 4, "12:30", "13:00")],
)
def test_xnys_early_close(tf: str, count: int, last_start: str, last_end: str) -> None:
    starts, ends = day_bars("XNYS", tf, "2024-11-29")  # day after Thanksgiving, closes 13:00
    assert starts.size == count
    assert local_times(starts[-1:], "America/New_York") == [last_start]
    assert local_times(ends[-1:], "America/New_York") == [last_end]


def test_xnys_1h_bars_clip_at_an_early_close_mid_bar() -> None:
    starts, ends = day_bars("XNYS", "1h", "2024-07-03")
    assert local_times(starts, "America/New_York") == ["09:30", "10:30", "11:30", "12:30"]
    assert local_times(ends, "America/New_York") == ["10:30", "11:30", "12:30", "13:00"]


def test_holidays_and_weekends_hold_no_intraday_bar() -> None:
    cal = get_calendar("XNYS")
    for day in ("2024-07-04", "2024-07-06", "2024-07-07", "2024-12-25"):
        starts, _ = cal.bar_bounds("1m", us(day), us(day) + DAY_US)
        assert starts.size == 0, day


@pytest.mark.parametrize(
    ("day", "starts_local", "ends_local", "minutes"),
    [
        ("2024-11-01", ["09:00", "10:00", "11:00", "12:30", "13:30", "14:30"],
         ["10:00", "11:00", "11:30", "13:30", "14:30", "15:00"], 300),
        ("2024-11-05", ["09:00", "10:00", "11:00", "12:30", "13:30", "14:30"],
         ["10:00", "11:00", "11:30", "13:30", "14:30", "15:30"], 330),
    ],
)
def test_xtks_lunch_break_restarts_the_grid(day: str, starts_local: list[str], ends_local: list[str],
                                            minutes: int) -> None:
    cal = get_calendar("XTKS")
    lo = us(day) - 9 * 3600 * 10**6  # local midnight in Tokyo
    starts, ends = cal.bar_bounds("1h", lo, lo + DAY_US)
    assert local_times(starts, "Asia/Tokyo") == starts_local
    assert local_times(ends, "Asia/Tokyo") == ends_local
    m_starts, _m_ends = cal.bar_bounds("1m", lo, lo + DAY_US)
    assert m_starts.size == minutes
    lunch = (m_starts >= us(f"{day} 02:30")) & (m_starts < us(f"{day} 03:30"))
    assert not lunch.any()
    half_hours, _ = cal.bar_bounds("30m", lo, lo + DAY_US)
    assert "11:30" not in local_times(half_hours, "Asia/Tokyo")
    assert "12:30" in local_times(half_hours, "Asia/Tokyo")


def test_window_selects_bars_by_start() -> None:
    cal = get_calendar("XNYS")
    starts, ends = cal.bar_bounds("1h", us("2024-03-12 15:00"), us("2024-03-12 17:31"))
    # 11:30 and 12:30 New York start inside the window; 13:30 (17:30Z) does too
    assert local_times(starts, "America/New_York") == ["11:30", "12:30", "13:30"]
    assert ends[-1] == starts[-1] + 3600 * 10**6
    none, _ = cal.bar_bounds("1h", us("2024-03-12 15:00"), us("2024-03-12 15:00"))
    assert none.size == 0


def test_24_7_is_a_utc_grid() -> None:
    cal = get_calendar("crypto")
    assert cal.is_24_7
    assert cal.tz == "UTC"
    starts, ends = cal.bar_bounds("1h", us("2024-03-09"), us("2024-03-11"))  # a weekend
    assert starts.size == 48
    np.testing.assert_array_equal(starts, us("2024-03-09") + np.arange(48) * 3600 * 10**6)
    np.testing.assert_array_equal(ends, starts + 3600 * 10**6)
    odd, odd_ends = cal.bar_bounds("7m", us("2024-03-09 23:00"), us("2024-03-10 01:00"))
    assert np.all(odd % (7 * MINUTE_US) == 0)  # the epoch grid, not restarted at midnight
    np.testing.assert_array_equal(odd_ends, odd + 7 * MINUTE_US)  # bars cross midnight unclipped
    days, day_ends = cal.bar_bounds("1d", us("2024-03-09"), us("2024-03-12"))
    np.testing.assert_array_equal(days, [us("2024-03-09"), us("2024-03-10"), us("2024-03-11")])
    np.testing.assert_array_equal(day_ends, days + DAY_US)


def test_24_7_extra_closure_removes_the_day_and_clips_the_grid() -> None:
    cal = get_calendar("24/7", extra_closures=[dt.date(2024, 3, 10)])
    starts, ends = cal.bar_bounds("7m", us("2024-03-09 23:00"), us("2024-03-11 00:10"))
    assert not ((starts >= us("2024-03-10")) & (starts < us("2024-03-11"))).any()
    assert ends[starts < us("2024-03-10")].max() == us("2024-03-10")
    step = 7 * MINUTE_US
    first_after = -(-us("2024-03-11") // step) * step  # back on the epoch grid, not restarted at 00:00
    assert starts[starts >= us("2024-03-11")].min() == first_after != us("2024-03-11")


def test_24_5_fx_week_runs_sunday_17_to_friday_17_new_york() -> None:
    cal = get_calendar("fx")
    assert not cal.is_24_7
    assert cal.tz == "America/New_York"
    # the week of the 2024 US DST switch (Sunday 2024-03-10)
    starts, ends = cal.bar_bounds("1h", us("2024-03-08"), us("2024-03-18"))
    week = starts[(starts >= us("2024-03-10")) & (starts < us("2024-03-16 12:00"))]
    assert week.size == 5 * 24
    assert utc(week[:1])[0] == utc(np.array([us("2024-03-10 21:00")]))[0]  # Sunday 17:00 EDT
    assert local_times(week[:1], "America/New_York") == ["17:00"]
    assert local_times(week[-1:], "America/New_York") == ["16:00"]
    assert np.all(np.diff(week) == 3600 * 10**6)  # continuous through the week
    weekend = (starts >= us("2024-03-08 22:00")) & (starts < us("2024-03-10 21:00"))  # Fri 17:00 EST..Sun 17:00 EDT
    assert not weekend.any()
    before = starts < us("2024-03-08 22:00")
    assert starts[before][-1] == us("2024-03-08 21:00")
    assert ends[before][-1] == us("2024-03-08 22:00")
    labels, _ = cal.bar_bounds("1d", us("2024-03-09"), us("2024-03-18"))
    assert [str(d.date()) for d in utc(labels)] == ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14",
                                                    "2024-03-15"]


def test_extended_hours_us_equities() -> None:
    starts, ends = day_bars("XNYS", "1h", "2024-03-12", extended=True)
    assert local_times(starts, "America/New_York") == [f"{h:02d}:00" for h in range(4, 20)]
    assert local_times(ends[-1:], "America/New_York") == ["20:00"]
    minutes, _ = day_bars("XNYS", "1m", "2024-03-12", extended=True)
    assert minutes.size == 16 * 60
    early, early_ends = day_bars("XNYS", "1h", "2024-11-29", extended=True)
    assert local_times(early[-1:], "America/New_York") == ["16:00"]
    assert local_times(early_ends[-1:], "America/New_York") == ["17:00"]  # after-hours end 4 h after a 13:00 close
    nasdaq, _ = get_calendar("NASDAQ").bar_bounds("1h", us("2024-03-12"), us("2024-03-13"), extended=True)
    np.testing.assert_array_equal(nasdaq, starts)


def test_extended_falls_back_to_regular_hours_where_undefined() -> None:
    cal = get_calendar("XLON")
    assert not cal.has_extended_hours
    regular = cal.bar_bounds("30m", us("2024-03-12"), us("2024-03-13"))
    extended = cal.bar_bounds("30m", us("2024-03-12"), us("2024-03-13"), extended=True)
    np.testing.assert_array_equal(regular[0], extended[0])
    np.testing.assert_array_equal(regular[1], extended[1])
    tokyo = get_calendar("XTKS").bar_bounds("1h", us("2024-03-12"), us("2024-03-13"), extended=True)
    assert tokyo[0].size == 6  # the lunch break is still respected


def test_daily_weekly_monthly_labels() -> None:
    cal = get_calendar("XNYS")
    days, day_ends = cal.bar_bounds("1d", us("2024-07-01"), us("2024-07-09"))
    assert [str(d.date()) for d in utc(days)] == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05",
                                                  "2024-07-08"]
    np.testing.assert_array_equal(day_ends, days + DAY_US)
    weeks, week_ends = cal.bar_bounds("1w", us("2024-12-20"), us("2025-01-14"))
    assert [str(d.date()) for d in utc(weeks)] == ["2024-12-23", "2024-12-30", "2025-01-06", "2025-01-13"]
    np.testing.assert_array_equal(week_ends, weeks + 7 * DAY_US)
    months, month_ends = cal.bar_bounds("1mo", us("2024-01-01"), us("2024-04-01"))
    assert [str(d.date()) for d in utc(months)] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert [str(d.date()) for d in utc(month_ends)] == ["2024-02-01", "2024-03-01", "2024-04-01"]


def test_week_without_sessions_has_no_weekly_bar() -> None:
    closed_week = [dt.date(2024, 7, 8) + dt.timedelta(days=i) for i in range(5)]
    cal = get_calendar("XNYS", extra_closures=closed_week)
    weeks, _ = cal.bar_bounds("1w", us("2024-07-01"), us("2024-07-22"))
    assert [str(d.date()) for d in utc(weeks)] == ["2024-07-01", "2024-07-15"]


def test_extra_closures() -> None:
    base = get_calendar("XNYS")
    cal = get_calendar("XNYS", extra_closures=[dt.date(2024, 1, 2), "2024-01-03"])
    assert cal is not base
    assert cal.name == "XNYS"
    assert cal.extra_closures == (dt.date(2024, 1, 2), dt.date(2024, 1, 3))
    assert [str(d.date()) for d in cal.sessions("2024-01-01", "2024-01-05")] == ["2024-01-04", "2024-01-05"]
    assert not cal.is_session("2024-01-02")
    assert base.is_session("2024-01-02")  # the cached base calendar is untouched
    starts, _ = cal.bar_bounds("1m", us("2024-01-02"), us("2024-01-04"))
    assert starts.size == 0
    assert get_calendar("XNYS", extra_closures=dt.date(2024, 1, 2)).sessions("2024-01-02", "2024-01-02").empty


def test_invalid_requests() -> None:
    cal = get_calendar("XNYS")
    with pytest.raises(InvalidRange):
        cal.bar_bounds("1m", us("2024-01-03"), us("2024-01-02"))
    with pytest.raises(InvalidTimeframe):
        cal.bar_bounds("2d", us("2024-01-02"), us("2024-01-03"))
    with pytest.raises(InvalidTimeframe):
        cal.bar_bounds("1x", us("2024-01-02"), us("2024-01-03"))
    with pytest.raises(InvalidRange):
        cal.sessions("2024-01-05", "2024-01-01")
    with pytest.raises(InvalidRange):
        cal.is_session("not a date")


def test_year_of_minutes_is_complete_and_sorted() -> None:
    cal = get_calendar("XNYS")
    starts, ends = cal.bar_bounds("1m", us("2023-01-01"), us("2024-01-01"))
    sched = cal.schedule("2023-01-01", "2023-12-31")
    minutes = ((sched["close"] - sched["open"]).dt.total_seconds() // 60).sum()
    assert starts.size == minutes == 97_140  # 250 sessions, 3 early closes
    assert np.all(np.diff(starts) > 0)
    assert starts.dtype == np.int64
    assert ends.dtype == np.int64
