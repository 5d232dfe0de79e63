"""Saved state for the incremental (one bar at a time) form of the indicators.

Why this module exists: a live feed or a scheduled update appends one bar to many symbols;
recomputing a 200-bar EMA over the whole history for that is wasteful. Every indicator
therefore has a batch form and an incremental form that carries a small frozen state
(the last ``k`` inputs and the recursion registers) from bar to bar. States are immutable:
``value, state = xxx_update(state, ...)`` returns a new state, so a caller can keep the old
one (e.g. to revise a still-open bar).

The incremental form follows the batch form's conventions exactly (warm-up, seeding,
missing values); the tests check that appending bars one by one reproduces the batch output.
Both are computed in float64 but in a different order (the batch form works in blocks), so
they agree to rounding (about 1e-12 relative), not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickvault.errors import InvalidInput
from tickvault.transform.indicators._kernels import as_2d

__all__ = ["Window", "as_row", "out_value", "window_from", "window_push"]


@dataclass(frozen=True)
class Window:
    """The last ``k`` inputs of each row (oldest first) and how many bars each row has seen.

    Attributes
    ----------
    buf
        ``(rows, k)`` float64; NaN where fewer than ``k`` bars were seen.
    count
        ``(rows,)`` int64: bars seen since the row's first finite value (0 = not started).
    squeeze
        Whether the series is 1-D (updates take and return scalars).
    """

    buf: np.ndarray
    count: np.ndarray
    squeeze: bool

    @property
    def rows(self) -> int:
        """Number of rows (symbols)."""
        return int(self.buf.shape[0])


def window_from(x: object, k: int) -> Window:
    """The window state after the bars of ``x`` (1-D or ``(rows, bars)``)."""
    arr, squeeze = as_2d(x)
    rows, n = arr.shape
    buf = np.full((rows, k), np.nan)
    take = min(k, n)
    if take:
        buf[:, k - take:] = arr[:, n - take:]
    if n == 0:
        return Window(buf, np.zeros(rows, dtype=np.int64), squeeze)
    finite = np.isfinite(arr)
    first = np.where(finite.any(axis=1), np.argmax(finite, axis=1), n)
    return Window(buf, (n - first).astype(np.int64), squeeze)


def as_row(value: object, rows: int, squeeze: bool, name: str = "value") -> np.ndarray:
    """A new bar's value(s) as a ``(rows,)`` float64 array."""
    arr = np.asarray(value, dtype=np.float64)
    if squeeze and arr.ndim == 0:
        return arr.reshape(1)
    if arr.shape != (rows,):
        want = "a scalar" if squeeze else f"shape ({rows},)"
        raise InvalidInput(f"{name} must be {want} for this state, got shape {arr.shape}")
    return arr


def window_push(w: Window, x: np.ndarray, force: np.ndarray | None = None) -> Window:
    """The window after appending one bar ``x`` (``(rows,)``).

    A row starts at its first finite value, or where ``force`` is true: a derived series
    (bar-to-bar changes) starts on the input's second bar even if that value is missing,
    so that a gap there counts as a gap, as in the batch form.
    """
    started = (w.count > 0) | np.isfinite(x)
    if force is not None:
        started |= force
    buf = np.empty_like(w.buf)
    buf[:, :-1] = w.buf[:, 1:]
    buf[:, -1] = x
    return Window(buf, np.where(started, w.count + 1, 0), w.squeeze)


def out_value(values: np.ndarray, squeeze: bool) -> np.ndarray | float:
    """Return a ``(rows,)`` result as a float for 1-D series, else the array."""
    return float(values[0]) if squeeze else values
