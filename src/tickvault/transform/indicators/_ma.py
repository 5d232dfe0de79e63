"""Moving averages: SMA, EMA, WMA and Wilder's smoothing, batch and incremental.

Why this module exists: every other indicator is built from these, and their warm-up and
seeding conventions decide whether our numbers match TA-Lib, StockCharts or Tulip.

Conventions (see docs/analytics.md for the table):

- Warm-up: the first valid output is at index ``first + n - 1`` where ``first`` is the row's
  first finite input; earlier outputs are NaN.
- ``seed="sma"`` (default; TA-Lib, StockCharts, Wilder, Tulip's ``wilders``): the recursive
  averages start at index ``first + n - 1`` with the simple mean of the first ``n`` inputs.
- ``seed="first"`` (pandas ``ewm(adjust=False)``, the ``ta`` library, Tulip's ``ema``): the
  recursion starts at ``first`` with ``y = x[first]``; outputs before ``first + n - 1`` are
  still hidden so both conventions have the same warm-up.
- Missing values after the first finite input: windowed averages (SMA, WMA) are NaN while
  the gap is inside their window; recursive ones (EMA, Wilder) are NaN from the gap on, as
  in TA-Lib. Fill gaps (``resample(fill="ffill")``) before computing if that is not wanted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from tickvault.errors import InvalidInput
from tickvault.transform.indicators._kernels import (
    Prepared,
    as_2d,
    check_period,
    empty,
    finish,
    jit,
    prepare,
    run_rows,
    weighted_window_sum,
    window_sum,
)
from tickvault.transform.indicators._state import Window, as_row, out_value, window_from, window_push

__all__ = [
    "EMAState",
    "SMAState",
    "Seed",
    "WMAState",
    "ema",
    "ema_state",
    "ema_update",
    "sma",
    "sma_state",
    "sma_update",
    "wilder",
    "wilder_state",
    "wilder_update",
    "wma",
    "wma_state",
    "wma_update",
]

Seed = Literal["sma", "first"]
FloatArray = np.ndarray


def _check_seed(seed: str) -> str:
    if seed not in ("sma", "first"):
        raise InvalidInput(f"seed must be 'sma' or 'first', got {seed!r}")
    return seed


def _mask_window_gaps(out: FloatArray, p: Prepared, k: int) -> None:
    """NaN where a missing value (after the row's start) lies inside the ``k``-bar window."""
    if p.missing is None or not p.interior_missing:
        return
    n = p.n
    gap = (p.missing & (np.arange(n)[None, :] >= p.first[:, None])).astype(np.float64)
    out[window_sum(gap, k) > 0.5] = np.nan


# --------------------------------------------------------------------------- SMA


def sma(x: object, n: int) -> FloatArray:
    """Simple moving average.

    Parameters
    ----------
    x
        Prices, 1-D ``(bars,)`` or 2-D ``(symbols, bars)``.
    n
        Window length (bars).

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``; NaN during the warm-up (first ``n - 1`` bars of each row).
    """
    n = check_period("n", n)
    p = prepare(x)
    out = window_sum(p.values, n)
    out *= 1.0 / n
    _mask_window_gaps(out, p, n)
    return finish(out, p.first + n - 1, None, p.squeeze)


@dataclass(frozen=True)
class SMAState:
    """Incremental SMA state: the last ``n`` inputs."""

    n: int
    window: Window


def sma_state(x: object, n: int) -> SMAState:
    """State after the bars of ``x`` (same layout as :func:`sma`)."""
    n = check_period("n", n)
    return SMAState(n, window_from(x, n))


def sma_update(state: SMAState, x: object) -> tuple[np.ndarray | float, SMAState]:
    """Append one bar; return the new SMA value(s) and state."""
    w = window_push(state.window, as_row(x, state.window.rows, state.window.squeeze))
    value = np.where(w.count >= state.n, w.buf.sum(axis=1) / state.n, np.nan)
    return out_value(value, w.squeeze), replace(state, window=w)


# --------------------------------------------------------------------------- EMA / Wilder


def _smooth(p: Prepared, n: int, alpha: float, seed: str) -> tuple[FloatArray, np.ndarray]:
    """Unmasked exponential smoothing of ``p`` and each row's seed index.

    Returns ``(y, s)``: ``y[:, t]`` is 0 before ``s`` and the recursion from ``s`` on.
    """
    s = p.first + n - 1 if seed == "sma" else p.first.copy()
    y = empty(p.values.shape)
    first = np.ascontiguousarray(p.first, dtype=np.int64)
    run_rows(jit().smooth_filled, (np.ascontiguousarray(p.values), first), (n, alpha, seed == "sma"), (y,))
    return y, s


def _ema_core(x: object, n: int, alpha: float, seed: str) -> FloatArray:
    arr, squeeze = as_2d(x)
    out = empty(arr.shape)
    run_rows(jit().ema_rows, (arr,), (n, alpha, seed == "sma"), (out,))
    return out[0] if squeeze else out


def ema(x: object, n: int, *, seed: Seed = "sma", alpha: float | None = None) -> FloatArray:
    """Exponential moving average, ``alpha = 2 / (n + 1)`` unless given.

    Parameters
    ----------
    x
        Prices, 1-D ``(bars,)`` or 2-D ``(symbols, bars)``.
    n
        Period; also the warm-up length.
    seed
        ``"sma"`` (TA-Lib/StockCharts: start with the mean of the first ``n`` values) or
        ``"first"`` (pandas ``adjust=False``: start with the first value).
    alpha
        Smoothing factor override (``0 < alpha <= 1``).

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``; NaN for the first ``n - 1`` bars of each row.
    """
    n = check_period("n", n)
    a = _alpha(n, alpha)
    return _ema_core(x, n, a, _check_seed(seed))


def wilder(x: object, n: int, *, seed: Seed = "sma") -> FloatArray:
    """Wilder's smoothing (RMA, SMMA): an EMA with ``alpha = 1 / n``.

    Parameters and result as :func:`ema`. Used by RSI, ATR and ADX.
    """
    n = check_period("n", n)
    return _ema_core(x, n, 1.0 / n, _check_seed(seed))


def _alpha(n: int, alpha: float | None) -> float:
    if alpha is None:
        return 2.0 / (n + 1)
    if not (0.0 < float(alpha) <= 1.0):
        raise InvalidInput(f"alpha must be in (0, 1], got {alpha!r}")
    return float(alpha)


@dataclass(frozen=True)
class EMAState:
    """Incremental EMA/Wilder state.

    Attributes
    ----------
    n, alpha, seed
        Parameters.
    window
        Last ``n`` inputs (needed until the SMA seed is taken).
    value
        ``(rows,)`` current recursion value (NaN before the seed or after a gap).
    """

    n: int
    alpha: float
    seed: str
    window: Window
    value: np.ndarray


def _smooth_state(x: object, n: int, alpha: float, seed: str) -> EMAState:
    p = prepare(x)
    y, s = _smooth(p, n, alpha, seed)
    last = p.n - 1
    if p.n == 0:
        value = np.full(p.values.shape[0], np.nan)
    else:
        value = np.where((s <= last) & (p.poison > last), y[:, last], np.nan)
    return EMAState(n, alpha, seed, window_from(x, n), value)


def _derived_state(raw: FloatArray, squeeze: bool, first: np.ndarray, poison: np.ndarray, n: int, alpha: float,
                   seed: str) -> EMAState:
    """State of a smoothing over a *derived* series that starts at ``first`` per row.

    Used for bar-to-bar changes (RSI, ADX), which start on the input's second bar even when
    that value is missing; ``poison`` comes from the input's gaps.
    """
    length = raw.shape[1]
    values = np.where(np.isfinite(raw), raw, 0.0)
    y, s = _smooth(Prepared(values, first, poison, None, False), n, alpha, seed)
    last = length - 1
    if length == 0:
        value = np.full(raw.shape[0], np.nan)
    else:
        value = np.where((s <= last) & (poison > last), y[:, last], np.nan)
    w = window_from(raw, n)
    w = replace(w, count=np.maximum(length - first, 0).astype(np.int64), squeeze=squeeze)
    return EMAState(n, alpha, seed, w, value)


def ema_state(x: object, n: int, *, seed: Seed = "sma", alpha: float | None = None) -> EMAState:
    """State of :func:`ema` after the bars of ``x``."""
    n = check_period("n", n)
    return _smooth_state(x, n, _alpha(n, alpha), _check_seed(seed))


def wilder_state(x: object, n: int, *, seed: Seed = "sma") -> EMAState:
    """State of :func:`wilder` after the bars of ``x``."""
    n = check_period("n", n)
    return _smooth_state(x, n, 1.0 / n, _check_seed(seed))


def _smooth_push(state: EMAState, x: np.ndarray, force: np.ndarray | None = None) -> tuple[np.ndarray, EMAState]:
    """Advance by one bar; returns the *unmasked* value and the new state (``force``: see window_push)."""
    w = window_push(state.window, x, force)
    c = w.count
    rec = state.value * (1.0 - state.alpha) + state.alpha * x
    if state.seed == "sma":
        value = np.where(c == state.n, w.buf.mean(axis=1), np.where(c > state.n, rec, np.nan))
    else:
        value = np.where(c == 1, x, np.where(c > 1, rec, np.nan))
    return value, replace(state, window=w, value=value)


def ema_update(state: EMAState, x: object) -> tuple[np.ndarray | float, EMAState]:
    """Append one bar; return the new EMA value(s) and state.

    Parameters
    ----------
    state
        From :func:`ema_state` (or a previous update).
    x
        The new bar: a float for a 1-D series, else a ``(rows,)`` array.
    """
    xv = as_row(x, state.window.rows, state.window.squeeze)
    value, new = _smooth_push(state, xv)
    out = np.where(new.window.count >= state.n, value, np.nan)
    return out_value(out, new.window.squeeze), new


wilder_update = ema_update


# --------------------------------------------------------------------------- WMA


def _wma_weights(n: int) -> tuple[float, ...]:
    denom = n * (n + 1) / 2.0
    return tuple(float(n - j) / denom for j in range(n))


def wma(x: object, n: int) -> FloatArray:
    """Linearly weighted moving average (weight ``n`` on the newest bar, 1 on the oldest).

    Parameters and result as :func:`sma`.
    """
    n = check_period("n", n)
    p = prepare(x)
    out = weighted_window_sum(p.values, n)
    out *= 2.0 / (n * (n + 1))
    _mask_window_gaps(out, p, n)
    return finish(out, p.first + n - 1, None, p.squeeze)


@dataclass(frozen=True)
class WMAState:
    """Incremental WMA state: the last ``n`` inputs."""

    n: int
    window: Window


def wma_state(x: object, n: int) -> WMAState:
    """State of :func:`wma` after the bars of ``x``."""
    n = check_period("n", n)
    return WMAState(n, window_from(x, n))


def wma_update(state: WMAState, x: object) -> tuple[np.ndarray | float, WMAState]:
    """Append one bar; return the new WMA value(s) and state."""
    w = window_push(state.window, as_row(x, state.window.rows, state.window.squeeze))
    weights = np.asarray(_wma_weights(state.n)[::-1])
    value = np.where(w.count >= state.n, w.buf @ weights, np.nan)
    return out_value(value, w.squeeze), replace(state, window=w)
