"""Trend strength: Wilder's Directional Movement System (+DI, -DI, ADX).

Why this module exists: ADX is the most convention-laden of the common indicators (three
Wilder smoothings, two of them chained). We follow Wilder, StockCharts and TA-Lib: the
directional movements and true range start at the second bar, their smoothed sums start at
bar ``n`` with the sum of the first ``n`` values, +DI/-DI are therefore valid from bar ``n``
and ADX (the Wilder average of DX) from bar ``2n - 1``. Tulip seeds one bar earlier (with
``n - 1`` values) and so differs by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tickvault.transform.indicators._kernels import Prepared, as_2d, check_period, finish, prepare
from tickvault.transform.indicators._ma import EMAState, _derived_state, _smooth, _smooth_push, wilder_state
from tickvault.transform.indicators._oscillators import _ratio
from tickvault.transform.indicators._state import as_row

__all__ = ["ADX", "ADXState", "adx", "adx_state", "adx_update"]

FloatArray = np.ndarray


class ADX(NamedTuple):
    """ADX outputs: the ADX line and the two directional indicators (0..100)."""

    adx: FloatArray
    plus_di: FloatArray
    minus_di: FloatArray


def _movements(h: FloatArray, lo: FloatArray, c: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """True range, +DM and -DM; NaN at each row's first bar (no previous bar)."""
    up = np.empty_like(h)
    down = np.empty_like(h)
    up[:, :1] = np.nan
    down[:, :1] = np.nan
    np.subtract(h[:, 1:], h[:, :-1], out=up[:, 1:])
    np.subtract(lo[:, :-1], lo[:, 1:], out=down[:, 1:])
    nan = np.isnan(up) | np.isnan(down)
    plus = np.where((up > down) & (up > 0.0), up, 0.0)
    minus = np.where((down > up) & (down > 0.0), down, 0.0)
    plus[nan] = np.nan
    minus[nan] = np.nan
    prev = np.empty_like(c)
    prev[:, :1] = np.nan
    prev[:, 1:] = c[:, :-1]
    tr = np.maximum(h - lo, np.maximum(np.abs(h - prev), np.abs(lo - prev)))
    return tr, plus, minus


def _stacked_movements(h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    """``[tr; +DM; -DM]`` stacked by rows, from zero-filled inputs, with few full passes.

    Values at and before each row's first bar are garbage; the caller's seeding starts at
    the second bar and its poison mask covers gaps.
    """
    rows, n = h.shape
    out = np.empty((3 * rows, n))
    out[:, :1] = 0.0
    if n < 2:
        return out
    tr, plus, minus = out[:rows, 1:], out[rows: 2 * rows, 1:], out[2 * rows:, 1:]
    # Few full-size temporaries: each fresh multi-MB array costs page faults on every call.
    up = h[:, 1:] - h[:, :-1]
    down = np.subtract(lo[:, :-1], lo[:, 1:], out=tr)  # tr's memory is free until below
    np.maximum(up, 0.0, out=plus)
    np.copyto(plus, 0.0, where=up <= down)
    np.maximum(down, 0.0, out=minus)
    np.copyto(minus, 0.0, where=down <= up)
    np.subtract(h[:, 1:], lo[:, 1:], out=tr)
    gap = np.abs(h[:, 1:] - c[:, :-1], out=up)
    np.maximum(tr, gap, out=tr)
    np.subtract(lo[:, 1:], c[:, :-1], out=gap)
    np.abs(gap, out=gap)
    np.maximum(tr, gap, out=tr)
    return out


def _di(tr: FloatArray, plus: FloatArray, minus: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    pdi = 100.0 * _ratio(plus, tr, 0.0)
    mdi = 100.0 * _ratio(minus, tr, 0.0)
    dx = 100.0 * _ratio(np.abs(pdi - mdi), pdi + mdi, 0.0)
    return pdi, mdi, dx


def _di_inplace(y: FloatArray, rows: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """+DI, -DI and DX computed in the memory of the smoothed ``[tr; +DM; -DM]`` stack."""
    tr, plus, minus = y[:rows], y[rows: 2 * rows], y[2 * rows:]
    flat = tr == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(plus, tr, out=plus)
        np.divide(minus, tr, out=minus)
    np.multiply(plus, 100.0, out=plus)
    np.multiply(minus, 100.0, out=minus)
    np.copyto(plus, 0.0, where=flat)
    np.copyto(minus, 0.0, where=flat)
    dx = np.subtract(plus, minus, out=tr)
    np.abs(dx, out=dx)
    den = plus + minus
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(dx, den, out=dx)
    np.multiply(dx, 100.0, out=dx)
    np.copyto(dx, 0.0, where=den == 0.0)
    return plus, minus, dx


def adx(high: object, low: object, close: object, n: int = 14) -> ADX:
    """Average Directional Index with +DI and -DI (Wilder).

    Parameters
    ----------
    high, low, close
        Same shape: 1-D or ``(symbols, bars)``.
    n
        Period.

    Returns
    -------
    ADX
        ``(adx, plus_di, minus_di)``; DI valid from bar ``n``, ADX from bar ``2n - 1``.
        DX is 0 where both DI are 0.
    """
    n = check_period("n", n)
    h = prepare(high, "high")
    lo = prepare(low, "low")
    c = prepare(close, "close")
    rows = c.values.shape[0]
    first = np.maximum(np.maximum(h.first, lo.first), c.first) + 1  # movements start at the 2nd bar
    poison = np.minimum(np.minimum(h.poison, lo.poison), c.poison)
    stacked = Prepared(_stacked_movements(h.values, lo.values, c.values), np.tile(first, 3), np.tile(poison, 3),
                       None, False)
    y, _ = _smooth(stacked, n, 1.0 / n, "sma")
    pdi, mdi, dx = _di_inplace(y, rows)
    valid = first + n - 1
    # DX is finite everywhere (garbage outside [valid, poison), which the seeding and the
    # poison mask exclude), so it is smoothed as is.
    a, _ = _smooth(Prepared(dx, valid, poison, None, False), n, 1.0 / n, "sma")
    adx_line = finish(a, valid + n - 1, poison, c.squeeze)
    pdi = finish(pdi, valid, poison, c.squeeze)
    mdi = finish(mdi, valid, poison, c.squeeze)
    return ADX(adx_line, pdi, mdi)


@dataclass(frozen=True)
class ADXState:
    """Incremental ADX state: the previous bar and the four Wilder averages."""

    n: int
    last_high: np.ndarray
    last_low: np.ndarray
    last_close: np.ndarray
    seen: np.ndarray
    tr: EMAState
    plus: EMAState
    minus: EMAState
    dx: EMAState


def adx_state(high: object, low: object, close: object, n: int = 14) -> ADXState:
    """State of :func:`adx` after the given bars."""
    n = check_period("n", n)
    h, squeeze = as_2d(high, "high")
    lo, _ = as_2d(low, "low")
    c, _ = as_2d(close, "close")
    ph, pl, pc = prepare(h), prepare(lo), prepare(c)
    first = np.maximum(np.maximum(ph.first, pl.first), pc.first) + 1  # movements start at the 2nd bar
    poison = np.minimum(np.minimum(ph.poison, pl.poison), pc.poison)
    tr, plus, minus = _movements(h, lo, c)
    rows = h.shape[0]
    stacked = Prepared(_stacked_movements(ph.values, pl.values, pc.values), np.tile(first, 3), np.tile(poison, 3),
                       None, False)
    y, _ = _smooth(stacked, n, 1.0 / n, "sma")
    dx_series = finish(_di(y[:rows], y[rows: 2 * rows], y[2 * rows:])[2], first + n - 1, poison, False)

    def last(a: FloatArray) -> np.ndarray:
        return a[:, -1].copy() if a.shape[1] else np.full(a.shape[0], np.nan)

    def state(series: FloatArray) -> EMAState:
        return _derived_state(series, squeeze, first, poison, n, 1.0 / n, "sma")

    dx_state = wilder_state(dx_series[0] if squeeze else dx_series, n)
    return ADXState(n, last(h), last(lo), last(c), pc.first < c.shape[1], state(tr), state(plus), state(minus),
                    dx_state)


def adx_update(state: ADXState, high: object, low: object, close: object) -> tuple[ADX, ADXState]:
    """Append one bar; return ``ADX(adx, plus_di, minus_di)`` for it and the new state."""
    w = state.tr.window
    hv = as_row(high, w.rows, w.squeeze, "high")
    lv = as_row(low, w.rows, w.squeeze, "low")
    cv = as_row(close, w.rows, w.squeeze, "close")
    up = hv - state.last_high
    down = state.last_low - lv
    nan = np.isnan(up) | np.isnan(down)
    plus = np.where(nan, np.nan, np.where((up > down) & (up > 0.0), up, 0.0))
    minus = np.where(nan, np.nan, np.where((down > up) & (down > 0.0), down, 0.0))
    prev = state.last_close
    tr = np.maximum(hv - lv, np.maximum(np.abs(hv - prev), np.abs(lv - prev)))
    t, trs = _smooth_push(state.tr, tr, state.seen)
    p, ps = _smooth_push(state.plus, plus, state.seen)
    m, ms = _smooth_push(state.minus, minus, state.seen)
    pdi, mdi, dx = _di(t, p, m)
    ok = trs.window.count >= state.n
    dx = np.where(ok, dx, np.nan)
    a, dxs = _smooth_push(state.dx, dx)
    adx_line = np.where(dxs.window.count >= state.n, a, np.nan)
    pdi = np.where(ok, pdi, np.nan)
    mdi = np.where(ok, mdi, np.nan)

    def o(v: np.ndarray) -> np.ndarray | float:
        return float(v[0]) if w.squeeze else v

    seen = state.seen | np.isfinite(cv)
    new = ADXState(state.n, hv.copy(), lv.copy(), cv.copy(), seen, trs, ps, ms, dxs)
    return ADX(o(adx_line), o(pdi), o(mdi)), new  # type: ignore[arg-type]
