"""Sessions, opens, closes, early closes and lunch breaks against exchange_calendars' answer keys.

The answer keys are exchange_calendars' own test resources (SOURCES.md); every row of
each key is compared, over its full span.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from calendar_helpers import ANSWER_KEYS

from tickvault.calendars import get_calendar

COLUMNS = ["open", "close", "break_start", "break_end"]


@pytest.mark.parametrize("name", sorted(ANSWER_KEYS))
def test_schedule_matches_answer_key_over_full_span(name: str, answer_key: Callable[[str], pd.DataFrame]) -> None:
    key = answer_key(name)
    cal = get_calendar(name)
    got = cal.schedule(key.index[0], key.index[-1])
    pd.testing.assert_index_equal(got.index, key.index, check_exact=True)
    pd.testing.assert_frame_equal(got[COLUMNS], key[COLUMNS], check_freq=False)
    pd.testing.assert_index_equal(cal.sessions(key.index[0], key.index[-1]), key.index)


@pytest.mark.parametrize("day", ["2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14", "2004-06-11",
                                 "2007-01-02", "2012-10-29", "2012-10-30", "2018-12-05"])
def test_xnys_unscheduled_closures_are_not_sessions(day: str, answer_key: Callable[[str], pd.DataFrame]) -> None:
    assert pd.Timestamp(day) not in answer_key("XNYS").index
    assert not get_calendar("XNYS").is_session(day)


def test_xnys_juneteenth_is_a_holiday_from_2022_only() -> None:
    cal = get_calendar("XNYS")
    assert cal.is_session("2021-06-18")  # Juneteenth 2021 (observed Friday) was a trading day
    assert not cal.is_session("2022-06-20")  # first observed: Monday for Sunday the 19th
    assert not cal.is_session("2023-06-19")
    assert not cal.is_session("2027-06-18")  # Saturday the 19th -> Friday


@pytest.mark.parametrize(
    ("name", "day", "local_close"),
    [
        ("XNYS", "2019-07-03", "13:00"),  # day before Independence Day
        ("XNYS", "2022-11-25", "13:00"),  # day after Thanksgiving
        ("XNYS", "2020-12-24", "13:00"),
        ("XLON", "2022-12-23", "12:30"),  # last business day before Christmas
        ("XLON", "2022-12-30", "12:30"),
        ("CMES", "2022-06-20", "12:00"),  # Juneteenth (patched over exchange_calendars 4.13.2)
        ("CMES", "2026-06-19", "12:00"),
    ],
)
def test_early_closes(name: str, day: str, local_close: str) -> None:
    cal = get_calendar(name)
    close = cal.schedule(day, day)["close"].iloc[0].tz_convert(cal.tz)
    assert close.strftime("%H:%M") == local_close


def test_xtks_lunch_break_and_2024_close_extension() -> None:
    cal = get_calendar("XTKS")
    sched = cal.schedule("2024-11-01", "2024-11-05")
    local = {col: [t.tz_convert(cal.tz).strftime("%H:%M") for t in sched[col]] for col in COLUMNS}
    assert [local[col][0] for col in COLUMNS] == ["09:00", "15:00", "11:30", "12:30"]  # 2024-11-01
    assert [local[col][1] for col in COLUMNS] == ["09:00", "15:30", "11:30", "12:30"]  # 2024-11-05
    assert [str(d.date()) for d in sched.index] == ["2024-11-01", "2024-11-05"]


def test_breaks_are_nat_without_a_lunch_break() -> None:
    sched = get_calendar("XNYS").schedule("2024-01-02", "2024-01-05")
    assert sched["break_start"].isna().all()
    assert sched["break_end"].isna().all()
    assert str(sched["open"].dtype) == "datetime64[ns, UTC]"
