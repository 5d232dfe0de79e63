"""Momentum oscillators: RSI (Wilder), MACD and the stochastic oscillator.

Why this module exists: these three are the most requested indicators after the moving
averages, and each has a convention trap (RSI's seeding, MACD's signal start, the
stochastic's slowing), documented per function and in docs/analytics.md.

Undefined ratios (a window with no movement at all) give the neutral value 50 rather than
TA-Lib's 0, so a flat market does not read as "oversold".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tickvault.transform.indicators._kernels import (
    as_2d,
    check_period,
    empty,
    empty_many,
    finish,
    jit,
    prepare,
    rolling_max,
    rolling_min,
    run_rows,
)
from tickvault.transform.indicators._ma import (
    EMAState,
    Seed,
    SMAState,
    _check_seed,
    _derived_state,
    _smooth_push,
    ema_state,
    ema_update,
    sma,
    sma_state,
    sma_update,
)
from tickvault.transform.indicators._state import Window, as_row, out_value, window_from, window_push

__all__ = [
    "MACD",
    "MACDState",
    "RSIState",
    "Stoch",
    "StochState",
    "macd",
    "macd_state",
    "macd_update",
    "rsi",
    "rsi_state",
    "rsi_update",
    "stoch",
    "stoch_state",
    "stoch_update",
]

FloatArray = np.ndarray


def _ratio(num: FloatArray, den: FloatArray, neutral: float) -> FloatArray:
    """``num / den`` with ``neutral`` where ``den == 0`` (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = num / den
    zero = den == 0.0
    if zero.any():
        out[zero] = neutral
    return out


# --------------------------------------------------------------------------- RSI


def _changes(arr: FloatArray, first: np.ndarray, seed: str) -> FloatArray:
    """Bar-to-bar changes; NaN at each row's first bar, or 0 there with ``seed="first"``."""
    d = np.empty_like(arr)
    d[:, :1] = np.nan
    np.subtract(arr[:, 1:], arr[:, :-1], out=d[:, 1:])
    if seed == "first":
        rows = np.nonzero(first < arr.shape[1])[0]
        d[rows, first[rows]] = 0.0
    return d


def rsi(x: object, n: int = 14, *, seed: Seed = "sma") -> FloatArray:
    """Relative Strength Index with Wilder's smoothing.

    ``RSI = 100 * avg_gain / (avg_gain + avg_loss)``, both averages smoothed with
    ``alpha = 1/n``.

    Parameters
    ----------
    x
        Closes, 1-D ``(bars,)`` or 2-D ``(symbols, bars)``.
    n
        Period.
    seed
        ``"sma"`` (Wilder, TA-Lib, StockCharts, Tulip): the averages start as the mean of the
        first ``n`` changes, so the first RSI is at bar ``n``. ``"first"`` (the ``ta`` library,
        pandas ``ewm(adjust=False)``): the change at the first bar counts as 0 and the averages
        start there; the first RSI is still reported at bar ``n``.

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``; NaN for the first ``n`` bars of each row; 50 where there was
        no change at all over the smoothing memory.
    """
    n = check_period("n", n)
    mode = _check_seed(seed)
    arr, squeeze = as_2d(x)
    out = empty(arr.shape)
    run_rows(jit().rsi_rows, (arr,), (n, mode == "sma"), (out,))
    return out[0] if squeeze else out


@dataclass(frozen=True)
class RSIState:
    """Incremental RSI state: the last close and the two Wilder averages."""

    n: int
    last: np.ndarray
    seen: np.ndarray
    gain: EMAState
    loss: EMAState


def rsi_state(x: object, n: int = 14, *, seed: Seed = "sma") -> RSIState:
    """State of :func:`rsi` after the bars of ``x``."""
    n = check_period("n", n)
    _check_seed(seed)
    arr, squeeze = as_2d(x)
    p = prepare(arr)
    d = _changes(arr, p.first, seed)
    g = np.maximum(d, 0.0)
    lo = np.maximum(-d, 0.0)
    last = arr[:, -1].copy() if arr.shape[1] else np.full(arr.shape[0], np.nan)
    seen = p.first < arr.shape[1]
    start = p.first + 1 if seed == "sma" else p.first
    gain = _derived_state(g, squeeze, start, p.poison, n, 1.0 / n, seed)
    loss = _derived_state(lo, squeeze, start, p.poison, n, 1.0 / n, seed)
    return RSIState(n, last, seen, gain, loss)


def rsi_update(state: RSIState, x: object) -> tuple[np.ndarray | float, RSIState]:
    """Append one close; return the new RSI value(s) and state."""
    w = state.gain.window
    xv = as_row(x, w.rows, w.squeeze)
    d = xv - state.last
    if state.gain.seed == "first":
        d = np.where((w.count == 0) & np.isfinite(xv), 0.0, d)
    gv, gain = _smooth_push(state.gain, np.maximum(d, 0.0), state.seen)
    lv, loss = _smooth_push(state.loss, np.maximum(-d, 0.0), state.seen)
    ok = gain.window.count >= (state.n if state.gain.seed == "sma" else state.n + 1)
    value = np.where(ok, 100.0 * _ratio(gv, gv + lv, 0.5), np.nan)
    seen = state.seen | np.isfinite(xv)
    return out_value(value, w.squeeze), RSIState(state.n, xv.copy(), seen, gain, loss)


# --------------------------------------------------------------------------- MACD


class MACD(NamedTuple):
    """MACD outputs: ``line = EMA(fast) - EMA(slow)``, ``signal = EMA(line)``, ``hist``."""

    line: FloatArray
    signal: FloatArray
    hist: FloatArray


def macd(x: object, fast: int = 12, slow: int = 26, signal: int = 9, *, seed: Seed = "sma") -> MACD:
    """Moving Average Convergence/Divergence.

    Parameters
    ----------
    x
        Closes, 1-D or ``(symbols, bars)``.
    fast, slow, signal
        EMA periods.
    seed
        Seeding of all three EMAs (see :func:`ema`). With ``"sma"`` (StockCharts) the line
        starts at bar ``slow - 1`` and the signal at ``slow + signal - 2``; TA-Lib seeds the
        fast EMA later and agrees once its seed has decayed.

    Returns
    -------
    MACD
        ``(line, signal, hist)``, each shaped like ``x``.
    """
    fast = check_period("fast", fast)
    slow = check_period("slow", slow)
    signal = check_period("signal", signal)
    mode = _check_seed(seed)
    arr, squeeze = as_2d(x)
    line, sig, hist = empty_many(3, arr.shape)
    run_rows(jit().macd_rows, (arr,), (fast, slow, signal, mode == "sma"), (line, sig, hist))
    if squeeze:
        return MACD(line[0], sig[0], hist[0])
    return MACD(line, sig, hist)


@dataclass(frozen=True)
class MACDState:
    """Incremental MACD state: the three EMA states."""

    fast: EMAState
    slow: EMAState
    signal: EMAState


def macd_state(x: object, fast: int = 12, slow: int = 26, signal: int = 9, *, seed: Seed = "sma") -> MACDState:
    """State of :func:`macd` after the bars of ``x``."""
    line = macd(x, fast, slow, signal, seed=seed).line
    return MACDState(ema_state(x, fast, seed=seed), ema_state(x, slow, seed=seed), ema_state(line, signal, seed=seed))


def macd_update(state: MACDState, x: object) -> tuple[MACD, MACDState]:
    """Append one close; return ``MACD(line, signal, hist)`` for that bar and the state."""
    f, fs = ema_update(state.fast, x)
    s, ss = ema_update(state.slow, x)
    line = np.asarray(f) - np.asarray(s)
    sig, sgs = ema_update(state.signal, line)
    hist = line - np.asarray(sig)
    squeeze = state.fast.window.squeeze
    return (MACD(out_value(np.atleast_1d(line), squeeze), sig, out_value(np.atleast_1d(hist), squeeze)),  # type: ignore[arg-type]
            MACDState(fs, ss, sgs))


# --------------------------------------------------------------------------- Stochastic


class Stoch(NamedTuple):
    """Stochastic outputs: ``k`` (slowed %K) and ``d`` (its moving average)."""

    k: FloatArray
    d: FloatArray


def _hl_start(h: FloatArray, lo: FloatArray) -> np.ndarray:
    """First bar of each row where both high and low are known (the look-back starts there)."""
    start: np.ndarray = np.maximum(prepare(h).first, prepare(lo).first)
    return start


def _fast_k(c: FloatArray, hh: FloatArray, ll: FloatArray) -> FloatArray:
    return 100.0 * _ratio(c - ll, hh - ll, 0.5)


def stoch(high: object, low: object, close: object, k: int = 14, slowing: int = 3, d: int = 3) -> Stoch:
    """Stochastic oscillator (full form: %K smoothed by ``slowing``, %D = SMA of %K).

    ``slowing=1`` gives the fast stochastic (StockCharts' "%K" and its 3-bar "%D"); the
    default ``(14, 3, 3)`` is the full stochastic of StockCharts and TA-Lib ``STOCH`` with
    SMA smoothing.

    Parameters
    ----------
    high, low, close
        Same shape: 1-D or ``(symbols, bars)``.
    k
        Look-back of the highest high / lowest low.
    slowing
        SMA length applied to the raw %K.
    d
        SMA length of %D.

    Returns
    -------
    Stoch
        ``(k, d)``: %K valid from bar ``k + slowing - 2``, %D from ``k + slowing + d - 3``;
        50 where the high-low range is zero.
    """
    k = check_period("k", k)
    slowing = check_period("slowing", slowing)
    d = check_period("d", d)
    h, squeeze = as_2d(high, "high")
    lo, _ = as_2d(low, "low")
    c, _ = as_2d(close, "close")
    raw = _fast_k(c, rolling_max(h, k), rolling_min(lo, k))
    raw = finish(raw, _hl_start(h, lo) + k - 1, None, False)
    slow_k = sma(raw, slowing) if slowing > 1 else raw
    sig = sma(slow_k, d)
    if squeeze:
        return Stoch(slow_k[0], sig[0])
    return Stoch(slow_k, sig)


@dataclass(frozen=True)
class StochState:
    """Incremental stochastic state: high/low windows and the two SMA states."""

    k: int
    slowing: int
    high: Window
    low: Window
    slow: SMAState
    signal: SMAState


def stoch_state(high: object, low: object, close: object, k: int = 14, slowing: int = 3, d: int = 3) -> StochState:
    """State of :func:`stoch` after the given bars."""
    k = check_period("k", k)
    slowing = check_period("slowing", slowing)
    d = check_period("d", d)
    h, squeeze = as_2d(high, "high")
    lo, _ = as_2d(low, "low")
    c, _ = as_2d(close, "close")
    raw = finish(_fast_k(c, rolling_max(h, k), rolling_min(lo, k)), _hl_start(h, lo) + k - 1, None, False)
    slow_k = sma(raw, slowing) if slowing > 1 else raw
    if squeeze:
        raw, slow_k = raw[0], slow_k[0]
    return StochState(k, slowing, window_from(high, k), window_from(low, k), sma_state(raw, slowing),
                      sma_state(slow_k, d))


def stoch_update(state: StochState, high: object, low: object, close: object) -> tuple[Stoch, StochState]:
    """Append one bar; return ``Stoch(k, d)`` for it and the new state."""
    rows, squeeze = state.high.rows, state.high.squeeze
    hv = as_row(high, rows, squeeze, "high")
    lv = as_row(low, rows, squeeze, "low")
    cv = as_row(close, rows, squeeze, "close")
    hw = window_push(state.high, hv)
    lw = window_push(state.low, lv)
    ok = (hw.count >= state.k) & (lw.count >= state.k)
    raw = np.where(ok, _fast_k(cv, hw.buf.max(axis=1), lw.buf.min(axis=1)), np.nan)
    if state.slowing > 1:
        slow_k, slow = sma_update(state.slow, raw[0] if squeeze else raw)
    else:
        slow_k, slow = out_value(raw, squeeze), state.slow
    sig, signal = sma_update(state.signal, slow_k)
    new = StochState(state.k, state.slowing, hw, lw, slow, signal)
    return Stoch(slow_k, sig), new  # type: ignore[arg-type]
