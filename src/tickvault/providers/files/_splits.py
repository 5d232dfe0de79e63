"""Does a split column agree with the prices next to it?

tickvault stores raw prices and applies splits on read (DESIGN §3). Some files carry a split
column *and* prices that are already split-adjusted (zipline's AAPL sample: 7.0 on
2014-06-09 with no price jump); importing both would adjust twice. This check compares the
last close before each split's ex-date with the open on the ex-date, streaming (files may be
newest-first or oldest-first), and produces a warning when the expected jump is missing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SplitCheck"]

_DAY_US = 86_400_000_000
_LOOKBACK_US = 10 * _DAY_US  # the previous session is within a long weekend plus holidays
_TAIL = 16


@dataclass
class _Pending:
    ratio: float
    ex_us: int
    open: float
    prev_us: int = -(1 << 62)
    prev_close: float = math.nan


class SplitCheck:
    """Collects, across chunks, the prices around each split of a daily file."""

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._tail_ts = np.zeros(0, dtype=np.int64)
        self._tail_close = np.zeros(0, dtype=np.float64)

    def _offer(self, item: _Pending, ts: np.ndarray, close: np.ndarray) -> None:
        mask = (ts < item.ex_us) & (ts >= item.ex_us - _LOOKBACK_US) & ~np.isnan(close)
        if mask.any():
            j = int(np.flatnonzero(mask)[np.argmax(ts[mask])])
            if ts[j] > item.prev_us:
                item.prev_us, item.prev_close = int(ts[j]), float(close[j])

    def observe(self, ts: np.ndarray, open_: np.ndarray, close: np.ndarray, split_rows: np.ndarray,
                ratios: np.ndarray) -> None:
        """Feed one chunk (session-keyed ``ts`` in µs) and the rows carrying splits."""
        for row, ratio in zip(split_rows.tolist(), ratios.tolist(), strict=True):
            key = int(ts[row])
            if key not in self._pending:
                item = _Pending(float(ratio), key, float(open_[row]))
                self._offer(item, self._tail_ts, self._tail_close)  # oldest-first: previous chunk's end
                self._pending[key] = item
        for item in self._pending.values():
            self._offer(item, ts, close)
        self._tail_ts = ts[-_TAIL:].copy()
        self._tail_close = close[-_TAIL:].copy()

    def warnings(self) -> list[str]:
        """One warning per split whose expected price jump is absent."""
        out: list[str] = []
        for item in sorted(self._pending.values(), key=lambda p: p.ex_us):
            if not (item.open > 0 and item.prev_close > 0):
                continue
            observed = item.prev_close / item.open
            # A real split moves the price by about its ratio; "already adjusted" data moves ~1x.
            if abs(math.log(observed)) < abs(math.log(item.ratio)) / 2:
                day = dt.date(1970, 1, 1) + dt.timedelta(days=item.ex_us // _DAY_US)
                out.append(f"split {item.ratio:g} on {day}: no matching price jump at the ex-date (close "
                           f"{item.prev_close:g} -> open {item.open:g}); the prices may already be split-adjusted "
                           "(adjusting on read would apply the split twice) or the split date may be off")
        return out
