"""The session-aligned fast path of ``resample`` buckets exactly like the per-row labelling.

``_segments`` (bucket bounds binary-searched in the sorted timestamps) replaced
``_labels`` (a label per source bar) on the hot path for exchange calendars; ``_labels``
stays for the other cases. This differential test pins that both give the same kept rows,
the same bucket starts and labels, and the same error for off-grid bars, over calendars
with and without lunch breaks and overnight sessions.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.calendars import get_calendar
from tickvault.errors import InvalidInput
from tickvault.model import Timeframe
from tickvault.transform._resample import _labels, _segments

DAY_US = 86_400_000_000
JAN_2023_US = 1_672_531_200_000_000
CALENDARS = ["XNYS", "XHKG", "CMES", "XLON", "XTKS", "24/5"]
TARGETS = ["2m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w", "1mo"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, str, str, str, bool]:
    src = draw(st.sampled_from(["1m", "5m", "30s"]))
    step = Timeframe.parse(src).micros
    start = JAN_2023_US + draw(st.integers(0, 400)) * DAY_US
    slots = draw(st.lists(st.integers(0, 20 * DAY_US // step - 1), min_size=1, max_size=300, unique=True))
    ts = start + np.sort(np.asarray(slots, dtype=np.int64)) * step
    if draw(st.booleans()) and ts.size > 2:  # sometimes one bar off its grid
        ts[draw(st.integers(0, ts.size - 1))] += 7_000_000
        ts = np.unique(ts)
    return (ts, src, draw(st.sampled_from(TARGETS)), draw(st.sampled_from(CALENDARS)),
            draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_segments_bucket_like_per_row_labels(case: tuple[np.ndarray, str, str, str, bool]) -> None:
    ts, src_s, tgt_s, cal_name, extended = case
    src, tgt, cal = Timeframe.parse(src_s), Timeframe.parse(tgt_s), get_calendar(cal_name)
    try:
        labels, keep = _labels(ts, src, tgt, cal, extended)
        expected: tuple[np.ndarray, np.ndarray, np.ndarray] | str = (keep, *_starts(labels[keep]))
    except InvalidInput as exc:
        expected = str(exc)
    if isinstance(expected, str):
        with pytest.raises(InvalidInput) as info:
            _segments(ts, src, tgt, cal, extended)
        assert str(info.value) == expected
        return
    seg = _segments(ts, src, tgt, cal, extended)
    if seg is None:  # extended daily bars on a calendar with extended hours: not a fast-path case
        assert extended
        assert not tgt.is_intraday
        assert cal.has_extended_hours
        return
    assert not isinstance(expected, str), expected
    got_labels, got_starts, got_keep = seg
    keep_all = np.ones(ts.size, dtype=bool) if got_keep is None else got_keep
    np.testing.assert_array_equal(keep_all, expected[0])
    np.testing.assert_array_equal(got_starts, expected[1])
    np.testing.assert_array_equal(got_labels, expected[2])


def _starts(kept_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if kept_labels.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, kept_labels[1:] != kept_labels[:-1]])
    return starts, kept_labels[starts]


def test_lunch_break_pieces_merge_into_one_daily_bar() -> None:
    cal = get_calendar("XHKG")
    # 2023-03-01: morning 01:30-04:00Z, lunch 04:00-05:00Z, afternoon 05:00-08:00Z; one bar in the break.
    day = JAN_2023_US + 59 * DAY_US
    minute = 60_000_000
    ts = day + np.array([90, 91, 239, 250, 300, 479], dtype=np.int64) * minute
    labels, starts, keep = _segments(ts, Timeframe.parse("1m"), Timeframe.parse("1d"), cal, False)  # type: ignore[misc]
    assert keep is not None
    assert keep.tolist() == [True, True, True, False, True, True]
    assert starts.tolist() == [0]
    assert labels.tolist() == [day]


def test_off_grid_bar_names_the_first_offender() -> None:
    cal = get_calendar("XNYS")
    open_us = JAN_2023_US + 2 * DAY_US + (14 * 60 + 30) * 60_000_000  # 2023-01-03 09:30 New York
    ts = open_us + np.array([0, 60, 127, 180], dtype=np.int64) * 1_000_000
    with pytest.raises(InvalidInput, match="2023-01-03 14:32:07"):
        _segments(ts, Timeframe.parse("1m"), Timeframe.parse("1h"), cal, False)
