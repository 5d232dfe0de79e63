"""missing_intervals = requested ∩ expected bars − covered, checked against an independent
oracle built from exchange_calendars' answer keys (sessions, opens, early closes)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from calendar_helpers import DAY_US, MINUTE_US, key_us, us
from hypothesis import given
from hypothesis import strategies as st

from tickvault.calendars import get_calendar, missing_intervals
from tickvault.model import CoverageInterval, CoverageState, Timeframe

CALENDARS = ["XNYS", "XLON", "24/7"]
TIMEFRAMES = ["1m", "5m", "30m", "1h"]
STATES = list(CoverageState)
Runs = list[tuple[int, int]]


def oracle_bars(key: pd.DataFrame, step: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """Bars laid from each answer-key open, clipped to its close; start in [lo, hi). A plain loop."""
    opens, closes = key_us(key, "open"), key_us(key, "close")
    out = []
    for o, c in zip(opens.tolist(), closes.tolist(), strict=True):
        if c <= lo - DAY_US or o >= hi:
            continue
        t = o
        while t < c:
            if lo <= t < hi:
                out.append((t, min(t + step, c)))
            t += step
    return out


def merge(bars: list[tuple[int, int]]) -> Runs:
    runs: Runs = []
    for s, e in bars:
        if runs and runs[-1][1] == s:
            runs[-1] = (runs[-1][0], e)
        else:
            runs.append((s, e))
    return runs


@st.composite
def windows(draw: st.DrawFn, key: pd.DataFrame) -> tuple[int, int]:
    """A window starting anywhere (weekends and holidays included), from an hour to ~12 days long,
    inside the answer key's span (the oracle knows nothing outside it)."""
    i = draw(st.integers(0, len(key) - 15))
    first, last = int(key.index[0].value // 1000), int(key.index[-1].value // 1000)
    lo = int(key.index[i].value // 1000) - draw(st.integers(0, 3)) * DAY_US + draw(st.integers(0, 1439)) * MINUTE_US
    lo = max(lo, first)
    hi = min(lo + draw(st.integers(60, 12 * 24 * 60)) * MINUTE_US, last)
    return lo, hi


def pieces(data: st.DataObject, start: int, end: int) -> list[CoverageInterval]:
    """[start, end) cut at random points into touching intervals of random states and providers."""
    if end <= start:
        return []
    cuts = sorted(set(data.draw(st.lists(st.integers(start + 1, max(start + 1, end - 1)), max_size=4))) - {end})
    bounds = [start, *cuts, end]
    return [
        CoverageInterval(a, b, data.draw(st.sampled_from(STATES)),
                         data.draw(st.sampled_from([None, "yahoo", "polygon"])))
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]


@given(data=st.data(), name=st.sampled_from(CALENDARS), tf=st.sampled_from(TIMEFRAMES))
def test_nothing_covered_reports_exactly_the_trading_bars(
    data: st.DataObject, name: str, tf: str, answer_key: Callable[[str], pd.DataFrame]
) -> None:
    key = answer_key(name)
    lo, hi = data.draw(windows(key))
    step = Timeframe.parse(tf).micros
    got = missing_intervals([], get_calendar(name), tf, lo, hi)
    assert got == merge(oracle_bars(key, step, lo, hi))
    # and therefore no weekend, holiday or early-close-afternoon instant is ever missing:
    # each run lies inside one stretch of touching sessions
    opens, closes = key_us(key, "open"), key_us(key, "close")
    touching = np.concatenate(([False], opens[1:] == closes[:-1]))
    stretch_open, stretch_close = opens[~touching], closes[np.concatenate((~touching[1:], [True]))]
    for s, e in got:
        k = int(np.searchsorted(stretch_open, s, side="right")) - 1
        assert k >= 0
        assert stretch_open[k] <= s
        assert e <= stretch_close[k]


def wholly_covered(bar: tuple[int, int], coverage: list[CoverageInterval]) -> bool:
    """Plain-Python oracle: is the bar inside one stretch of the union of the intervals?"""
    union: list[list[int]] = []
    for iv in sorted(coverage, key=lambda iv: iv.start_us):
        if union and union[-1][1] >= iv.start_us:
            union[-1][1] = max(union[-1][1], iv.end_us)
        else:
            union.append([iv.start_us, iv.end_us])
    return any(a <= bar[0] and bar[1] <= b for a, b in union)


@given(data=st.data(), name=st.sampled_from(CALENDARS), tf=st.sampled_from(TIMEFRAMES),
       jitter=st.booleans())
def test_every_real_hole_is_reported_exactly(
    data: st.DataObject, name: str, tf: str, jitter: bool, answer_key: Callable[[str], pd.DataFrame]
) -> None:
    key = answer_key(name)
    lo, hi = data.draw(windows(key))
    step = Timeframe.parse(tf).micros
    bars = oracle_bars(key, step, lo, hi)
    if not bars:
        return
    holes = sorted(set(data.draw(st.lists(st.integers(0, len(bars) - 1), min_size=1, max_size=6))))
    # group the drawn indices into sub-runs of consecutive bars: each is one uncovered hole
    hole_runs: list[tuple[int, int]] = []
    for idx in holes:
        if hole_runs and hole_runs[-1][1] == idx:
            hole_runs[-1] = (hole_runs[-1][0], idx + 1)
        else:
            hole_runs.append((idx, idx + 1))
    # with jitter, the coverage around a hole stops short of it, leaving a neighbour partly covered
    shrink = st.integers(0, step - 1) if jitter else st.just(0)
    coverage: list[CoverageInterval] = []
    edge = lo - DAY_US
    for i, j in hole_runs:
        coverage += pieces(data, edge, bars[i][0] - data.draw(shrink))
        edge = bars[j - 1][1] + data.draw(shrink)
    coverage += pieces(data, edge, hi + DAY_US)
    data.draw(st.randoms()).shuffle(coverage)
    got = missing_intervals(coverage, get_calendar(name), tf, lo, hi)
    if not jitter:
        assert got == merge([bars[k] for k in holes])
    assert got == merge([bar for bar in bars if not wholly_covered(bar, coverage)])


@given(data=st.data(), name=st.sampled_from(CALENDARS), tf=st.sampled_from(TIMEFRAMES))
def test_covered_everything_or_every_session_leaves_nothing_missing(
    data: st.DataObject, name: str, tf: str, answer_key: Callable[[str], pd.DataFrame]
) -> None:
    key = answer_key(name)
    lo, hi = data.draw(windows(key))
    cal = get_calendar(name)
    assert missing_intervals(pieces(data, lo - DAY_US, hi + DAY_US), cal, tf, lo, hi) == []
    # covering only the sessions themselves (weekends, holidays, nights uncovered) is complete too
    opens, closes = key_us(key, "open"), key_us(key, "close")
    near = (closes > lo - DAY_US) & (opens < hi + DAY_US)
    sessions_only = [iv for o, c in zip(opens[near].tolist(), closes[near].tolist(), strict=True)
                     for iv in pieces(data, o, c)]
    assert missing_intervals(sessions_only, cal, tf, lo, hi) == []


def test_a_partly_covered_bar_is_missing() -> None:
    cal = get_calendar("XNYS")
    lo, hi = us("2024-03-12 13:30"), us("2024-03-12 20:00")  # 09:30-16:00 New York
    cov = [CoverageInterval(lo, us("2024-03-12 15:10"), CoverageState.FINAL)]  # ends inside the 10:30 bar
    assert missing_intervals(cov, cal, "1h", lo, hi) == [(us("2024-03-12 14:30"), hi)]


def test_states_all_count_and_touching_marks_join() -> None:
    cal = get_calendar("XNYS")
    lo, hi = us("2024-03-12 13:30"), us("2024-03-12 20:00")
    mid = us("2024-03-12 15:00")  # inside the 10:30 bar: it straddles two marks
    cov = [CoverageInterval(mid, hi, CoverageState.EMPTY, "polygon"),
           CoverageInterval(lo, mid, CoverageState.PROVISIONAL, None)]
    assert missing_intervals(cov, cal, "1h", lo, hi) == []


def test_runs_break_at_sessions_and_may_end_after_the_window() -> None:
    cal = get_calendar("XNYS")
    got = missing_intervals([], cal, "1h", us("2024-11-27 20:00"), us("2024-12-02 15:00"))
    # Wed: only the 15:30 ET bar starts after 15:00 ET; Thanksgiving closed; Fri early close at
    # 13:00 ET; Mon: the 09:30 ET bar starts before 10:00 ET and ends at 10:30 ET, after the window
    assert got == [(us("2024-11-27 20:30"), us("2024-11-27 21:00")),
                   (us("2024-11-29 14:30"), us("2024-11-29 18:00")),
                   (us("2024-12-02 14:30"), us("2024-12-02 15:30"))]


@pytest.mark.parametrize(("tf", "expected"), [
    ("1d", [("2024-07-01", "2024-07-04"), ("2024-07-05", "2024-07-06"), ("2024-07-08", "2024-07-09")]),
    ("1w", [("2024-07-01", "2024-07-15")]),
    ("1mo", [("2024-07-01", "2024-08-01")]),
])
def test_daily_and_longer(tf: str, expected: list[tuple[str, str]]) -> None:
    cal = get_calendar("XNYS")
    got = missing_intervals([], cal, tf, us("2024-07-01"), us("2024-07-09"))
    assert got == [(us(a), us(b)) for a, b in expected]
    full = [CoverageInterval(us("2024-06-01"), us("2024-09-01"))]
    assert missing_intervals(full, cal, tf, us("2024-07-01"), us("2024-07-09")) == []


def test_extended_hours_are_only_missing_when_asked_for() -> None:
    cal = get_calendar("XNYS")
    lo, hi = us("2024-03-12"), us("2024-03-13")
    regular = [CoverageInterval(us("2024-03-12 13:30"), us("2024-03-12 20:00"))]
    assert missing_intervals(regular, cal, "1m", lo, hi) == []
    assert missing_intervals(regular, cal, "1m", lo, hi, extended=True) == [
        (us("2024-03-12 08:00"), us("2024-03-12 13:30")), (us("2024-03-12 20:00"), us("2024-03-13 00:00"))]


def test_duplicate_marks_from_different_providers() -> None:
    # same bounds, provider None vs "yahoo": sorting must not compare providers (model fix)
    cal = get_calendar("XNYS")
    lo, hi = us("2024-03-12 13:30"), us("2024-03-12 20:00")
    cov = [CoverageInterval(lo, hi, CoverageState.FINAL, "yahoo"), CoverageInterval(lo, hi, CoverageState.FINAL)]
    assert missing_intervals(cov, cal, "1m", lo, hi) == []
