"""Coverage interval algebra against a per-microsecond oracle."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tickvault.model import CoverageInterval, CoverageState, apply_marks, covered_mask, intervals_from_mask

STATES = list(CoverageState)


@st.composite
def marks(draw: st.DrawFn) -> list[CoverageInterval]:
    out = []
    for _ in range(draw(st.integers(0, 8))):
        a = draw(st.integers(0, 60))
        b = draw(st.integers(a + 1, 64))
        out.append(CoverageInterval(a, b, draw(st.sampled_from(STATES))))
    return out


def _paint(ms: list[CoverageInterval]) -> list[CoverageState | None]:
    cells: list[CoverageState | None] = [None] * 64
    for m in ms:
        for i in range(m.start_us, m.end_us):
            cells[i] = m.state
    return cells


@given(marks(), marks())
def test_apply_marks_matches_painting_oracle(first: list[CoverageInterval], second: list[CoverageInterval]) -> None:
    result = apply_marks(apply_marks([], first), second)
    assert _paint(result) == _paint(first + second)
    for a, b in itertools.pairwise(result):
        assert a.end_us <= b.start_us
        assert not (a.end_us == b.start_us and a.state == b.state and a.provider == b.provider)


@given(marks(), st.lists(st.integers(0, 63), max_size=30))
def test_covered_mask_matches_oracle(ms: list[CoverageInterval], starts: list[int]) -> None:
    ivs = apply_marks([], ms)
    s = np.array(sorted(set(starts)), dtype=np.int64)
    e = s + 1
    painted = _paint(ms)
    expected = np.array([painted[i] is not None for i in s], dtype=bool)
    assert np.array_equal(covered_mask(ivs, s, e), expected)


def test_bar_straddling_two_marks_is_covered() -> None:
    ivs = apply_marks([], [CoverageInterval(0, 5, CoverageState.FINAL), CoverageInterval(5, 10, CoverageState.EMPTY)])
    assert covered_mask(ivs, np.array([3]), np.array([8])).tolist() == [True]
    assert covered_mask(ivs, np.array([8]), np.array([11])).tolist() == [False]


def test_intervals_from_mask_merges_adjacent_bars() -> None:
    s = np.array([0, 1, 2, 5, 6, 9], dtype=np.int64)
    mask = np.array([True, True, False, True, True, True])
    assert intervals_from_mask(s, s + 1, mask) == [(0, 2), (5, 7), (9, 10)]
