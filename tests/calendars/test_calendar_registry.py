"""Calendar names, aliases, bounds, caching and the pinned public API."""

from __future__ import annotations

import pandas as pd
import pytest

import tickvault.calendars as calendars
from tickvault.calendars import TradingCalendar, calendar_names, get_calendar
from tickvault.errors import InvalidInput, InvalidRange


def test_public_api_is_pinned() -> None:
    assert sorted(calendars.__all__) == ["ALIASES", "TradingCalendar", "calendar_names", "get_calendar",
                                         "missing_intervals"]


@pytest.mark.parametrize(
    ("alias", "name", "tz", "is_24_7"),
    [
        ("NYSE", "XNYS", "America/New_York", False),
        ("nasdaq", "XNAS", "America/New_York", False),
        ("XNAS", "XNAS", "America/New_York", False),
        ("LSE", "XLON", "Europe/London", False),
        ("xtks", "XTKS", "Asia/Tokyo", False),
        ("CMES", "CMES", "America/Chicago", False),
        ("crypto", "24/7", "UTC", True),
        ("24/7", "24/7", "UTC", True),
        ("fx", "24/5", "America/New_York", False),
        ("24/5", "24/5", "America/New_York", False),
    ],
)
def test_aliases(alias: str, name: str, tz: str, is_24_7: bool) -> None:
    cal = get_calendar(alias)
    assert isinstance(cal, TradingCalendar)
    assert (cal.name, cal.tz, cal.is_24_7) == (name, tz, is_24_7)
    assert alias in calendar_names() or alias.upper() in calendar_names()


def test_nasdaq_shares_nyse_sessions() -> None:
    nyse = get_calendar("XNYS").schedule("2024-01-01", "2024-12-31")
    pd.testing.assert_frame_equal(get_calendar("NASDAQ").schedule("2024-01-01", "2024-12-31"), nyse)
    assert get_calendar("XNAS").has_extended_hours


def test_calendars_are_cached_and_immutable() -> None:
    assert get_calendar("XNYS") is get_calendar("NYSE")
    assert get_calendar("XNYS", extra_closures=["2024-01-02"]) is get_calendar("XNYS",
                                                                              extra_closures=["2024-01-02"])
    starts, _ = get_calendar("XNYS").bar_bounds("1d", 0, 10**15)
    starts[0] = 0  # the caller's copy, not the calendar's arrays
    assert get_calendar("XNYS").bar_bounds("1d", 0, 10**15)[0][0] != 0


def test_unknown_names_and_bad_bounds() -> None:
    with pytest.raises(InvalidInput, match="unknown calendar"):
        get_calendar("NOPE")
    with pytest.raises(InvalidInput):
        get_calendar("")
    with pytest.raises(InvalidRange):
        get_calendar("XTKS", start="1990-01-01")  # exchange_calendars evaluates XTKS from 1997 only
    with pytest.raises(InvalidRange):
        get_calendar("XNYS", extra_closures=["not a date"])


def test_default_and_explicit_bounds() -> None:
    cal = get_calendar("XNYS")
    assert cal.first_session <= pd.Timestamp("1970-01-02")
    assert cal.last_session >= pd.Timestamp("2040-12-31")
    assert get_calendar("XTKS").first_session >= pd.Timestamp("1997-01-01")
    narrow = get_calendar("XNYS", start="2020-01-01", end="2020-12-31")
    assert (narrow.first_session, narrow.last_session) == (pd.Timestamp("2020-01-02"), pd.Timestamp("2020-12-31"))
    assert narrow.sessions("2019-01-01", "2019-12-31").empty  # outside the bounds: no sessions
    wide = get_calendar("crypto", start="1960-01-01", end="2100-12-31")
    assert wide.is_session("1965-06-05")
    assert wide.is_session("2099-06-06")
    assert "XNYS" in repr(cal)
