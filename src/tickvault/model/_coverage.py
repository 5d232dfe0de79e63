"""The coverage ledger's values: what we already asked about, and with what answer.

Per (symbol, timeframe), a sorted list of non-overlapping half-open intervals, each with a
state (DESIGN §1):

- ``final``: fetched or written; will not change.
- ``provisional``: fetched but may still change (open session, vendor revision window).
- ``empty``: asked, and the answer was "nothing there" (no trades, halted, not listed).

Times are epoch microseconds (int) internally so the algebra is exact and cheap.
:func:`apply_marks` is the single way intervals change: a new mark replaces whatever it
overlaps (latest answer wins) and adjacent intervals with the same state merge.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tickvault.errors import InvalidRange

__all__ = [
    "CoverageInterval",
    "CoverageState",
    "apply_marks",
    "covered_mask",
    "intervals_from_mask",
    "us_to_ts",
    "ts_to_us",
]


class CoverageState(enum.StrEnum):
    """State of a covered interval."""

    FINAL = "final"
    PROVISIONAL = "provisional"
    EMPTY = "empty"


def ts_to_us(ts: pd.Timestamp) -> int:
    """Epoch microseconds of a tz-aware timestamp."""
    return int(ts.value // 1000)


def us_to_ts(us: int) -> pd.Timestamp:
    """Tz-aware UTC timestamp from epoch microseconds."""
    return pd.Timestamp(int(us) * 1000, tz="UTC")


@dataclass(frozen=True, order=True)
class CoverageInterval:
    """A half-open interval ``[start_us, end_us)`` with a state.

    Parameters
    ----------
    start_us, end_us
        Epoch microseconds, ``start_us < end_us``.
    state
        Coverage state.
    provider
        Who answered (``None`` for user writes).
    updated_us
        When the mark was made (epoch µs), used for staleness of provisional data.
    """

    start_us: int
    end_us: int
    state: CoverageState = CoverageState.FINAL
    provider: str | None = None
    updated_us: int = 0

    def __post_init__(self) -> None:
        if self.end_us <= self.start_us:
            raise InvalidRange(f"coverage interval is empty or reversed: [{self.start_us}, {self.end_us})")
        object.__setattr__(self, "state", CoverageState(self.state))

    @classmethod
    def of(cls, start: pd.Timestamp, end: pd.Timestamp, state: CoverageState | str = CoverageState.FINAL,
           provider: str | None = None, updated: pd.Timestamp | None = None) -> CoverageInterval:
        """Build from timestamps."""
        return cls(ts_to_us(start), ts_to_us(end), CoverageState(state), provider,
                   ts_to_us(updated) if updated is not None else 0)

    @property
    def start(self) -> pd.Timestamp:
        """Start as a UTC timestamp."""
        return us_to_ts(self.start_us)

    @property
    def end(self) -> pd.Timestamp:
        """End as a UTC timestamp."""
        return us_to_ts(self.end_us)

    def with_bounds(self, start_us: int, end_us: int) -> CoverageInterval:
        """A copy clipped to new bounds."""
        return CoverageInterval(start_us, end_us, self.state, self.provider, self.updated_us)


def apply_marks(existing: Sequence[CoverageInterval], marks: Iterable[CoverageInterval]) -> list[CoverageInterval]:
    """Return ``existing`` with each of ``marks`` applied in order.

    A mark replaces the parts of existing intervals it overlaps. Adjacent or overlapping
    intervals with the same state and provider are merged. The result is sorted and
    non-overlapping.
    """
    current = sorted(existing, key=_bounds_key)
    for mark in marks:
        nxt: list[CoverageInterval] = []
        for iv in current:
            if iv.end_us <= mark.start_us or iv.start_us >= mark.end_us:
                nxt.append(iv)
                continue
            if iv.start_us < mark.start_us:
                nxt.append(iv.with_bounds(iv.start_us, mark.start_us))
            if iv.end_us > mark.end_us:
                nxt.append(iv.with_bounds(mark.end_us, iv.end_us))
        nxt.append(mark)
        current = _merge(sorted(nxt, key=_bounds_key))
    return current


def _bounds_key(iv: CoverageInterval) -> tuple[int, int]:
    # Sort by bounds only: the dataclass order would go on to compare ``provider`` and
    # raise TypeError for None vs str when two intervals share their bounds.
    return (iv.start_us, iv.end_us)


def _merge(items: list[CoverageInterval]) -> list[CoverageInterval]:
    out: list[CoverageInterval] = []
    for iv in items:
        if out and out[-1].end_us >= iv.start_us and out[-1].state == iv.state and out[-1].provider == iv.provider:
            last = out[-1]
            out[-1] = CoverageInterval(last.start_us, max(last.end_us, iv.end_us), last.state, last.provider,
                                       max(last.updated_us, iv.updated_us))
        else:
            out.append(iv)
    return out


def covered_mask(intervals: Sequence[CoverageInterval], starts_us: np.ndarray, ends_us: np.ndarray,
                 states: Iterable[CoverageState] | None = None) -> np.ndarray:
    """Which bars ``[starts_us[i], ends_us[i])`` lie wholly inside covered intervals.

    Adjacent intervals (whatever their state) are joined first, so a bar straddling two
    marks still counts as covered. ``states`` restricts which states count (default: all).
    """
    allowed = set(states) if states is not None else None
    ivs = [iv for iv in sorted(intervals, key=_bounds_key) if allowed is None or iv.state in allowed]
    if not ivs or starts_us.size == 0:
        return np.zeros(starts_us.shape, dtype=bool)
    joined: list[list[int]] = []
    for iv in ivs:
        if joined and joined[-1][1] >= iv.start_us:
            joined[-1][1] = max(joined[-1][1], iv.end_us)
        else:
            joined.append([iv.start_us, iv.end_us])
    a = np.array(joined, dtype=np.int64)
    idx = np.searchsorted(a[:, 0], starts_us, side="right") - 1
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    return np.asarray(ok & (a[safe, 1] >= ends_us))


def intervals_from_mask(starts_us: np.ndarray, ends_us: np.ndarray, mask: np.ndarray) -> list[tuple[int, int]]:
    """Merge the bars selected by ``mask`` into maximal ``(start_us, end_us)`` runs.

    Two selected bars join when the first ends where the second starts.
    """
    s = starts_us[mask]
    e = ends_us[mask]
    if s.size == 0:
        return []
    breaks = np.nonzero(s[1:] != e[:-1])[0] + 1
    run_starts = np.concatenate(([0], breaks))
    run_ends = np.concatenate((breaks - 1, [s.size - 1]))
    return [(int(s[i]), int(e[j])) for i, j in zip(run_starts, run_ends, strict=True)]
