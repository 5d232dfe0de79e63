"""Volatility indicators: true range, ATR (Wilder) and Bollinger Bands.

Why this module exists: ATR and Bollinger Bands size positions and stops, so their exact
conventions matter: ATR follows Wilder/StockCharts/Tulip (the first bar's true range is its
high-low range, the first ATR is the mean of the first ``n`` true ranges, at bar ``n - 1``);
Bollinger Bands use the population standard deviation (StockCharts, TA-Lib, Tulip) and
StockCharts' BandWidth in percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, overload

import numpy as np

from tickvault.transform.indicators._kernels import (
    Prepared,
    as_2d,
    check_period,
    empty_many,
    finish,
    jit,
    prepare,
    run_rows,
)
from tickvault.transform.indicators._ma import EMAState, _smooth, _smooth_push, wilder_state
from tickvault.transform.indicators._state import Window, as_row, out_value, window_from, window_push

__all__ = [
    "ATRState",
    "BBState",
    "Bollinger",
    "BollingerBands",
    "atr",
    "atr_state",
    "atr_update",
    "bbands",
    "bbands_state",
    "bbands_update",
    "true_range",
]

FloatArray = np.ndarray


def _true_range_2d(h: FloatArray, lo: FloatArray, c: FloatArray, first: np.ndarray) -> FloatArray:
    """True range with ``high - low`` on each row's first bar (in-place passes, no shifted copy)."""
    tr: FloatArray = h - lo
    if tr.shape[1] > 1:
        tail = tr[:, 1:]
        gap = h[:, 1:] - c[:, :-1]
        np.abs(gap, out=gap)
        np.maximum(tail, gap, out=tail)
        np.subtract(lo[:, 1:], c[:, :-1], out=gap)
        np.abs(gap, out=gap)
        np.maximum(tail, gap, out=tail)
    rows = np.nonzero((first > 0) & (first < c.shape[1]))[0]
    f = first[rows]
    tr[rows, f] = h[rows, f] - lo[rows, f]
    return tr


def true_range(high: object, low: object, close: object) -> FloatArray:
    """True range: ``max(high - low, |high - prev_close|, |low - prev_close|)``.

    At each row's first bar (no previous close) it is ``high - low``.
    """
    h, squeeze = as_2d(high, "high")
    lo, _ = as_2d(low, "low")
    c, _ = as_2d(close, "close")
    tr = _true_range_2d(h, lo, c, prepare(c).first)
    return tr[0] if squeeze else tr


def atr(high: object, low: object, close: object, n: int = 14) -> FloatArray:
    """Average True Range with Wilder's smoothing (``alpha = 1/n``, SMA seed).

    Parameters
    ----------
    high, low, close
        Same shape: 1-D or ``(symbols, bars)``.
    n
        Period.

    Returns
    -------
    numpy.ndarray
        First valid value at bar ``n - 1`` (StockCharts, Tulip). TA-Lib skips the first bar
        (its first ATR is at bar ``n``, averaging true ranges ``1..n``); the two agree once
        the seed has decayed, about ``n * ln(1/tol)`` bars later.
    """
    n = check_period("n", n)
    h = prepare(high, "high")
    lo = prepare(low, "low")
    c = prepare(close, "close")
    first = np.maximum(np.maximum(h.first, lo.first), c.first)
    poison = np.minimum(np.minimum(h.poison, lo.poison), c.poison)
    tr = _true_range_2d(h.values, lo.values, c.values, first)
    y, _ = _smooth(Prepared(tr, first, poison, None, False), n, 1.0 / n, "sma")
    return finish(y, first + n - 1, poison, c.squeeze)


@dataclass(frozen=True)
class ATRState:
    """Incremental ATR state: the last close and the Wilder average of true range."""

    last: np.ndarray
    smooth: EMAState


def atr_state(high: object, low: object, close: object, n: int = 14) -> ATRState:
    """State of :func:`atr` after the given bars."""
    n = check_period("n", n)
    c, _ = as_2d(close, "close")
    tr = true_range(high, low, close)
    last = c[:, -1].copy() if c.shape[1] else np.full(c.shape[0], np.nan)
    return ATRState(last, wilder_state(tr, n))


def _tr_row(hv: np.ndarray, lv: np.ndarray, prev: np.ndarray, started: np.ndarray) -> np.ndarray:
    full = np.maximum(hv - lv, np.maximum(np.abs(hv - prev), np.abs(lv - prev)))
    out: np.ndarray = np.where(started, full, hv - lv)
    return out


def atr_update(state: ATRState, high: object, low: object, close: object) -> tuple[np.ndarray | float, ATRState]:
    """Append one bar; return the new ATR value(s) and state."""
    w = state.smooth.window
    hv = as_row(high, w.rows, w.squeeze, "high")
    lv = as_row(low, w.rows, w.squeeze, "low")
    cv = as_row(close, w.rows, w.squeeze, "close")
    tr = _tr_row(hv, lv, state.last, w.count > 0)
    value, smooth = _smooth_push(state.smooth, tr)
    out = np.where(smooth.window.count >= state.smooth.n, value, np.nan)
    return out_value(out, w.squeeze), ATRState(cv.copy(), smooth)


class Bollinger(NamedTuple):
    """Bollinger Band outputs.

    ``pctb = (close - lower) / (upper - lower)`` (0.5 when the bands touch) and
    ``width = (upper - lower) / middle * 100`` (StockCharts BandWidth, in percent).
    """

    middle: FloatArray
    upper: FloatArray
    lower: FloatArray
    pctb: FloatArray
    width: FloatArray


class BollingerBands(NamedTuple):
    """The three bands alone, as TA-Lib's ``BBANDS`` and charting tools draw them.

    The same values as the first three fields of :class:`Bollinger`; returned by
    ``bbands(..., bands_only=True)``.
    """

    middle: FloatArray
    upper: FloatArray
    lower: FloatArray


def _bands(x: FloatArray, mean: FloatArray, std: FloatArray, k: float) -> Bollinger:
    upper = mean + k * std
    lower = mean - k * std
    span = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pctb = np.where(span == 0.0, 0.5, (x - lower) / span)
        width = span / mean * 100.0
    return Bollinger(mean, upper, lower, pctb, width)


@overload
def bbands(x: object, n: int = 20, k: float = 2.0, *, bands_only: Literal[False] = False) -> Bollinger: ...


@overload
def bbands(x: object, n: int = 20, k: float = 2.0, *, bands_only: Literal[True]) -> BollingerBands: ...


def bbands(x: object, n: int = 20, k: float = 2.0, *, bands_only: bool = False) -> Bollinger | BollingerBands:
    """Bollinger Bands: SMA(n) plus/minus ``k`` population standard deviations.

    Parameters
    ----------
    x
        Closes, 1-D or ``(symbols, bars)``.
    n
        Window length.
    k
        Band width in standard deviations.
    bands_only
        Compute the three bands only (TA-Lib's ``BBANDS``): two fewer outputs to allocate
        and write, which for a large universe is ~40 % of the time (the call is bound by
        the first touch of fresh output memory).

    Returns
    -------
    Bollinger or BollingerBands
        ``(middle, upper, lower, pctb, width)`` — or ``(middle, upper, lower)`` with
        ``bands_only`` — each shaped like ``x``; NaN for the first ``n - 1`` bars of each
        row.
    """
    n = check_period("n", n)
    k = float(k)
    arr, squeeze = as_2d(x)
    if bands_only:
        bands = empty_many(3, arr.shape)
        unused = np.empty((arr.shape[0], 0))
        run_rows(jit().bbands_rows, (arr,), (n, k, False), [*bands, unused, unused])
        return BollingerBands(*(b[0] for b in bands)) if squeeze else BollingerBands(*bands)
    out = empty_many(5, arr.shape)
    run_rows(jit().bbands_rows, (arr,), (n, k, True), out)
    if squeeze:
        return Bollinger(*(b[0] for b in out))
    return Bollinger(*out)


@dataclass(frozen=True)
class BBState:
    """Incremental Bollinger state: the last ``n`` closes."""

    n: int
    k: float
    window: Window


def bbands_state(x: object, n: int = 20, k: float = 2.0) -> BBState:
    """State of :func:`bbands` after the bars of ``x``."""
    n = check_period("n", n)
    return BBState(n, float(k), window_from(x, n))


def bbands_update(state: BBState, x: object) -> tuple[Bollinger, BBState]:
    """Append one close; return the bands for that bar and the new state."""
    xv = as_row(x, state.window.rows, state.window.squeeze)
    w = window_push(state.window, xv)
    ok = w.count >= state.n
    mean = np.where(ok, w.buf.mean(axis=1), np.nan)
    std = np.where(ok, w.buf.std(axis=1), np.nan)
    bands = _bands(xv, mean, std, state.k)
    out = Bollinger(*(out_value(b, w.squeeze) for b in bands))  # type: ignore[arg-type]
    return out, BBState(state.n, state.k, w)
