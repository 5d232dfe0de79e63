"""DST round-trips 2015-2030: expected bars never gain, lose or shift an hour at a DST switch.

For XNYS, XLON and crypto, every expected 1m and 1h bar start converted to exchange-local
wall-clock time and back (refusing ambiguous or non-existent local times) is the same
instant; every session opens at its local open; and within each session the local clock
advances exactly as UTC does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from calendar_helpers import DAY_US, MINUTE_US, us

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.model import Timeframe

HOUR_US = 60 * MINUTE_US
LO, HI = us("2015-01-01"), us("2031-01-01")


def wall_clock_us(instants: np.ndarray, tz: str) -> np.ndarray:
    """Local wall-clock time of each instant, as epoch µs of that naive local time."""
    idx = pd.DatetimeIndex(instants.astype("datetime64[us]")).tz_localize("UTC").tz_convert(tz)
    return np.asarray(idx.tz_localize(None).as_unit("us").asi8, dtype=np.int64)


def from_wall_clock_us(wall: np.ndarray, tz: str) -> np.ndarray:
    idx = pd.DatetimeIndex(wall.astype("datetime64[us]")).tz_localize(tz, ambiguous="raise", nonexistent="raise")
    return np.asarray(idx.tz_convert("UTC").as_unit("us").asi8, dtype=np.int64)


@pytest.fixture(scope="module", params=["default", "explicit"])
def bounds(request: pytest.FixtureRequest) -> dict[str, str]:
    return {} if request.param == "default" else {"start": "2014-12-01", "end": "2031-01-31"}


@pytest.mark.parametrize(("name", "local_open", "local_close"), [("XNYS", "09:30", "16:00"),
                                                                  ("XLON", "08:00", "16:30")])
@pytest.mark.parametrize("tf", ["1m", "1h"])
def test_exchange_bars_round_trip_and_follow_the_local_clock(
    name: str, local_open: str, local_close: str, tf: str, bounds: dict[str, str]
) -> None:
    cal = get_calendar(name, **bounds)
    assert cal.last_session >= pd.Timestamp("2030-12-31")
    starts, ends = cal.bar_bounds(tf, LO, HI)
    sched = cal.schedule("2015-01-01", "2030-12-31")
    assert len(sched) > 3900

    wall = wall_clock_us(starts, cal.tz)
    np.testing.assert_array_equal(from_wall_clock_us(wall, cal.tz), starts)
    np.testing.assert_array_equal(from_wall_clock_us(wall_clock_us(ends, cal.tz), cal.tz), ends)

    opens = np.asarray(pd.DatetimeIndex(sched["open"]).as_unit("us").asi8, dtype=np.int64)
    closes = np.asarray(pd.DatetimeIndex(sched["close"]).as_unit("us").asi8, dtype=np.int64)
    open_wall = wall_clock_us(opens, cal.tz)
    close_wall = wall_clock_us(closes, cal.tz)
    assert set(sched["open"].dt.tz_convert(cal.tz).dt.strftime("%H:%M")) == {local_open}
    regular = (close_wall - open_wall) == (pd.Timedelta(local_close + ":00") - pd.Timedelta(local_open + ":00")) \
        .value // 1000
    assert regular.mean() > 0.98  # early closes are the exception

    # every session's first bar starts at its open, and the local clock moves with UTC inside it
    session = np.searchsorted(opens, starts, side="right") - 1
    np.testing.assert_array_equal(starts[np.minimum(np.searchsorted(starts, opens), starts.size - 1)], opens)
    np.testing.assert_array_equal(wall - open_wall[session], starts - opens[session])
    assert np.all(np.diff(starts) > 0)  # sorted, no duplicate
    # bars per session = local session length / bar length, so no hour is doubled or skipped
    step = Timeframe.parse(tf).micros
    per_session = np.bincount(session, minlength=len(sched))
    np.testing.assert_array_equal(per_session, -(-(close_wall - open_wall) // step))
    np.testing.assert_array_equal(np.minimum(starts + step, closes[session]), ends)


def crypto_checks(cal: TradingCalendar, step: int, lo: int, hi: int) -> None:
    starts, ends = cal.bar_bounds(Timeframe(step // MINUTE_US, "m"), lo, hi)
    assert starts.size == (hi - lo) // step
    assert starts[0] == lo
    assert np.all(np.diff(starts) == step)
    np.testing.assert_array_equal(ends, starts + step)
    np.testing.assert_array_equal(from_wall_clock_us(wall_clock_us(starts, cal.tz), cal.tz), starts)
    per_day = np.bincount((starts - lo) // DAY_US)
    assert set(per_day.tolist()) == {DAY_US // step}


def test_crypto_bars_round_trip_2015_2030(bounds: dict[str, str]) -> None:
    cal = get_calendar("crypto", **bounds)
    assert cal.tz == "UTC"
    assert cal.last_session >= pd.Timestamp("2030-12-31")
    crypto_checks(cal, HOUR_US, LO, HI)
    for year in range(2015, 2031):  # minutes one year at a time to keep memory small
        crypto_checks(cal, MINUTE_US, us(f"{year}-01-01"), us(f"{year + 1}-01-01"))
    # the US and UK switch days hold 24 hours like any other day in UTC
    for day in ("2024-03-10", "2024-03-31", "2024-10-27", "2024-11-03"):
        starts, _ = cal.bar_bounds("1h", us(day), us(day) + DAY_US)
        assert starts.size == 24
