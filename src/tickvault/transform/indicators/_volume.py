"""Volume indicators: On-Balance Volume and session-anchored VWAP.

Why this module exists: both are running sums, but with different anchors. OBV starts at 0
on each row's first bar (StockCharts, Tulip, Achelis; TA-Lib starts at the first bar's
volume, a constant offset). VWAP restarts at every session: the caller passes session ids
(from the calendar, e.g. ``cal.session_labels(ts)``) because a pure function cannot know
where an exchange's session begins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickvault.errors import InvalidInput
from tickvault.transform.indicators._kernels import as_2d, finish, prefix_sum, prepare
from tickvault.transform.indicators._state import as_row, out_value

__all__ = ["OBVState", "VWAPState", "obv", "obv_state", "obv_update", "session_starts", "vwap", "vwap_state",
           "vwap_update"]

FloatArray = np.ndarray


def obv(close: object, volume: object) -> FloatArray:
    """On-Balance Volume: running sum of ``sign(close - prev_close) * volume``.

    Parameters
    ----------
    close, volume
        Same shape: 1-D or ``(symbols, bars)``.

    Returns
    -------
    numpy.ndarray
        0 at each row's first bar; NaN from a missing close or volume on (a running sum
        cannot skip a gap without shifting every later value).
    """
    c, squeeze = as_2d(close, "close")
    v, _ = as_2d(volume, "volume")
    pc = prepare(c)
    pv = prepare(v)
    d = np.empty_like(c)
    d[:, :1] = 0.0
    np.subtract(pc.values[:, 1:], pc.values[:, :-1], out=d[:, 1:])
    step = np.sign(d) * pv.values
    n = c.shape[1]
    step[np.arange(n)[None, :] <= pc.first[:, None]] = 0.0
    out = prefix_sum(step)
    poison = np.minimum(pc.poison, np.maximum(pv.poison, pc.first))
    return finish(out, pc.first, poison, squeeze)


@dataclass(frozen=True)
class OBVState:
    """Incremental OBV state: last close, running total and whether each row has started."""

    last: np.ndarray
    total: np.ndarray
    started: np.ndarray
    squeeze: bool


def obv_state(close: object, volume: object) -> OBVState:
    """State of :func:`obv` after the given bars."""
    c, squeeze = as_2d(close, "close")
    v, _ = as_2d(volume, "volume")
    rows, n = c.shape
    if n == 0:
        nan = np.full(rows, np.nan)
        return OBVState(nan, nan.copy(), np.zeros(rows, dtype=bool), squeeze)
    o = obv(c, v)
    return OBVState(c[:, -1].copy(), o[:, -1].copy(), np.isfinite(c).any(axis=1), squeeze)


def obv_update(state: OBVState, close: object, volume: object) -> tuple[np.ndarray | float, OBVState]:
    """Append one bar; return the new OBV value(s) and state."""
    rows = state.last.shape[0]
    cv = as_row(close, rows, state.squeeze, "close")
    vv = as_row(volume, rows, state.squeeze, "volume")
    begin = ~state.started & np.isfinite(cv)
    total = np.where(state.started, state.total + np.sign(cv - state.last) * vv, np.where(begin, 0.0, np.nan))
    return out_value(total, state.squeeze), OBVState(cv.copy(), total, state.started | begin, state.squeeze)


def session_starts(session_ids: object, bars: int) -> np.ndarray:
    """Boolean ``(bars,)`` or ``(rows, bars)`` mask of bars that open a new session."""
    ids = np.asarray(session_ids)
    if ids.shape[-1] != bars or ids.ndim not in (1, 2):
        raise InvalidInput(f"session_ids must have {bars} entries along the last axis, got shape {ids.shape}")
    new = np.ones(ids.shape, dtype=bool)
    new[..., 1:] = ids[..., 1:] != ids[..., :-1]
    return new


def vwap(high: object, low: object, close: object, volume: object, session_ids: object) -> FloatArray:
    """Session-anchored VWAP of the typical price ``(high + low + close) / 3``.

    Parameters
    ----------
    high, low, close, volume
        Same shape: 1-D or ``(symbols, bars)``.
    session_ids
        One id per bar (any comparable dtype: session dates, integers), ``(bars,)`` shared by
        all rows or ``(symbols, bars)``. The running sums restart where the id changes.

    Returns
    -------
    numpy.ndarray
        ``sum(tp * volume) / sum(volume)`` since the session start. A bar with a missing value
        carries no weight; NaN while the session has no volume yet.
    """
    h, squeeze = as_2d(high, "high")
    lo, _ = as_2d(low, "low")
    c, _ = as_2d(close, "close")
    v, _ = as_2d(volume, "volume")
    rows, n = c.shape
    new = np.broadcast_to(session_starts(session_ids, n), (rows, n))
    tp = (h + lo + c) / 3.0
    pv = tp * v
    ok = np.isfinite(pv) & np.isfinite(v)
    pv = np.where(ok, pv, 0.0)
    vol = np.where(ok, v, 0.0)
    both = prefix_sum(np.concatenate([pv, vol]))
    cum_pv, cum_v = both[:rows], both[rows:]
    # Index of each bar's session start, then subtract the sums accumulated before it.
    start = np.maximum.accumulate(np.where(new, np.arange(n)[None, :], 0), axis=1)
    before = start - 1
    has = before >= 0
    idx = np.where(has, before, 0)
    base_pv = np.where(has, np.take_along_axis(cum_pv, idx, axis=1), 0.0)
    base_v = np.where(has, np.take_along_axis(cum_v, idx, axis=1), 0.0)
    sv = cum_v - base_v
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sv > 0.0, (cum_pv - base_pv) / sv, np.nan)
    return out[0] if squeeze else out


@dataclass(frozen=True)
class VWAPState:
    """Incremental VWAP state: current session id and its running sums."""

    session: np.ndarray
    pv: np.ndarray
    volume: np.ndarray
    squeeze: bool


def vwap_state(high: object, low: object, close: object, volume: object, session_ids: object) -> VWAPState:
    """State of :func:`vwap` after the given bars."""
    h, squeeze = as_2d(high, "high")
    lo, _ = as_2d(low, "low")
    c, _ = as_2d(close, "close")
    v, _ = as_2d(volume, "volume")
    rows, n = c.shape
    ids = np.broadcast_to(np.asarray(session_ids), (rows, n)) if n else np.empty((rows, 0), dtype=object)
    pv = np.zeros(rows)
    vol = np.zeros(rows)
    session = np.full(rows, None, dtype=object)
    if n:
        new = np.broadcast_to(session_starts(session_ids, n), (rows, n))
        start = np.maximum.accumulate(np.where(new, np.arange(n)[None, :], 0), axis=1)[:, -1]
        tp = (h + lo + c) / 3.0
        w = tp * v
        ok = np.isfinite(w) & np.isfinite(v)
        mask = ok & (np.arange(n)[None, :] >= start[:, None])
        pv = np.where(mask, w, 0.0).sum(axis=1)
        vol = np.where(mask, v, 0.0).sum(axis=1)
        session = np.array(ids[:, -1])
    return VWAPState(session, pv, vol, squeeze)


def vwap_update(state: VWAPState, high: object, low: object, close: object, volume: object,
                session_id: object) -> tuple[np.ndarray | float, VWAPState]:
    """Append one bar of session ``session_id``; return the new VWAP value(s) and state."""
    rows = state.pv.shape[0]
    hv = as_row(high, rows, state.squeeze, "high")
    lv = as_row(low, rows, state.squeeze, "low")
    cv = as_row(close, rows, state.squeeze, "close")
    vv = as_row(volume, rows, state.squeeze, "volume")
    sid = np.array(np.broadcast_to(np.asarray(session_id), (rows,)))
    if state.session.dtype == object or state.session.dtype != sid.dtype:
        same = np.array([a == b for a, b in zip(state.session.tolist(), sid.tolist(), strict=True)], dtype=bool)
    else:
        same = state.session == sid
    w = (hv + lv + cv) / 3.0 * vv
    ok = np.isfinite(w) & np.isfinite(vv)
    pv = np.where(same, state.pv, 0.0) + np.where(ok, w, 0.0)
    vol = np.where(same, state.volume, 0.0) + np.where(ok, vv, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(vol > 0.0, pv / vol, np.nan)
    return out_value(value, state.squeeze), VWAPState(sid, pv, vol, state.squeeze)
