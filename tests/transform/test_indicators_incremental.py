"""The incremental form (state + one bar at a time) reproduces the batch form.

For every indicator: compute the batch output over a whole series, build the state from a
prefix, append the remaining bars one by one, and compare. Both run in float64 but the batch
form sums in blocks, so values agree to rounding (rtol 1e-9 on values of order 100), and the
NaN layout (warm-up, gaps) must be identical. Hypothesis draws lengths, periods, the split
point, stacked rows with ragged starts (leading NaNs) and interior gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tickvault.transform.indicators as ind

Bars = dict[str, np.ndarray]


def _batch_and_stream(batch: Callable[[Bars], tuple[np.ndarray, ...]], start: Callable[[Bars], Any],
                      step: Callable[[Any, Bars], tuple[tuple[Any, ...], Any]], bars: Bars, split: int) -> None:
    expected = batch(bars)
    n = bars["close"].shape[-1]
    state = start({k: v[..., :split] for k, v in bars.items()})
    got: list[tuple[Any, ...]] = []
    for t in range(split, n):
        values, state = step(state, {k: v[..., t] for k, v in bars.items()})
        got.append(values)
    for k, exp in enumerate(expected):
        exp_tail = np.asarray(exp)[..., split:]
        if not got:
            continue
        stream = np.stack([np.asarray(g[k], dtype=np.float64) for g in got], axis=-1)
        np.testing.assert_array_equal(np.isnan(stream), np.isnan(exp_tail), err_msg=f"output {k} NaN layout")
        np.testing.assert_allclose(stream, exp_tail, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=f"output {k}")


def _cases(p: int, q: int) -> dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]]:
    """name -> (batch, state-from-history, update) for periods ``p`` (main) and ``q`` (aux)."""
    hlc = ("high", "low", "close")
    return {
        "sma": (lambda b: (ind.sma(b["close"], p),), lambda b: ind.sma_state(b["close"], p),
                lambda s, x: _one(ind.sma_update(s, x["close"]))),
        "ema": (lambda b: (ind.ema(b["close"], p),), lambda b: ind.ema_state(b["close"], p),
                lambda s, x: _one(ind.ema_update(s, x["close"]))),
        "ema_first": (lambda b: (ind.ema(b["close"], p, seed="first"),),
                      lambda b: ind.ema_state(b["close"], p, seed="first"),
                      lambda s, x: _one(ind.ema_update(s, x["close"]))),
        "wilder": (lambda b: (ind.wilder(b["close"], p),), lambda b: ind.wilder_state(b["close"], p),
                   lambda s, x: _one(ind.wilder_update(s, x["close"]))),
        "wma": (lambda b: (ind.wma(b["close"], p),), lambda b: ind.wma_state(b["close"], p),
                lambda s, x: _one(ind.wma_update(s, x["close"]))),
        "rsi": (lambda b: (ind.rsi(b["close"], p),), lambda b: ind.rsi_state(b["close"], p),
                lambda s, x: _one(ind.rsi_update(s, x["close"]))),
        "rsi_first": (lambda b: (ind.rsi(b["close"], p, seed="first"),),
                      lambda b: ind.rsi_state(b["close"], p, seed="first"),
                      lambda s, x: _one(ind.rsi_update(s, x["close"]))),
        "macd": (lambda b: tuple(ind.macd(b["close"], q, p + q, p)),
                 lambda b: ind.macd_state(b["close"], q, p + q, p),
                 lambda s, x: ind.macd_update(s, x["close"])),
        "bbands": (lambda b: tuple(ind.bbands(b["close"], p, 2.0)), lambda b: ind.bbands_state(b["close"], p, 2.0),
                   lambda s, x: ind.bbands_update(s, x["close"])),
        "atr": (lambda b: (ind.atr(*(b[k] for k in hlc), p),), lambda b: ind.atr_state(*(b[k] for k in hlc), p),
                lambda s, x: _one(ind.atr_update(s, *(x[k] for k in hlc)))),
        "stoch": (lambda b: tuple(ind.stoch(*(b[k] for k in hlc), p, q, 2)),
                  lambda b: ind.stoch_state(*(b[k] for k in hlc), p, q, 2),
                  lambda s, x: ind.stoch_update(s, *(x[k] for k in hlc))),
        "adx": (lambda b: tuple(ind.adx(*(b[k] for k in hlc), p)), lambda b: ind.adx_state(*(b[k] for k in hlc), p),
                lambda s, x: ind.adx_update(s, *(x[k] for k in hlc))),
        "obv": (lambda b: (ind.obv(b["close"], b["volume"]),), lambda b: ind.obv_state(b["close"], b["volume"]),
                lambda s, x: _one(ind.obv_update(s, x["close"], x["volume"]))),
        "vwap": (lambda b: (ind.vwap(*(b[k] for k in (*hlc, "volume")), b["session"]),),
                 lambda b: ind.vwap_state(*(b[k] for k in (*hlc, "volume")), b["session"]),
                 lambda s, x: _one(ind.vwap_update(s, *(x[k] for k in (*hlc, "volume")), x["session"]))),
    }


def _one(result: tuple[Any, Any]) -> tuple[tuple[Any], Any]:
    value, state = result
    return (value,), state


NAMES = sorted(_cases(2, 1))


def _bars(rows: int, n: int, seed: int, lead: list[int], gap: int | None, squeeze: bool) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, (rows, n)), axis=1)
    high = close + rng.uniform(0.0, 1.5, (rows, n))
    low = close - rng.uniform(0.0, 1.5, (rows, n))
    volume = rng.integers(0, 1000, (rows, n)).astype(np.float64)
    bars = {"high": high, "low": low, "close": close, "volume": volume}
    for r, k in enumerate(lead):
        for arr in bars.values():
            arr[r, :k] = np.nan
    if gap is not None and rows > 0:
        for arr in bars.values():
            arr[0, gap] = np.nan
    session = np.cumsum(rng.random(n) < 0.15).astype(np.int64)
    out: Bars = {k: (v[0] if squeeze else v) for k, v in bars.items()}
    out["session"] = session if squeeze else np.broadcast_to(session, (rows, n)).copy()
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, int, int, Bars, int]:
    name = draw(st.sampled_from(NAMES))
    p = draw(st.integers(1, 6))
    q = draw(st.integers(1, 4))
    n = draw(st.integers(0, 45))
    squeeze = draw(st.booleans())
    rows = 1 if squeeze else draw(st.integers(1, 3))
    lead = [draw(st.integers(0, n)) for _ in range(rows)]
    gap = draw(st.one_of(st.none(), st.integers(0, n - 1))) if n else None
    split = draw(st.integers(0, n))
    seed = draw(st.integers(0, 2**32 - 1))
    return name, p, q, _bars(rows, n, seed, lead, gap, squeeze), split


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_incremental_equals_batch(case: tuple[str, int, int, Bars, int]) -> None:
    name, p, q, bars, split = case
    batch, start, step = _cases(p, q)[name]
    _batch_and_stream(batch, start, step, bars, split)


@pytest.mark.parametrize("name", NAMES)
def test_incremental_equals_batch_on_long_stacked_series(name: str) -> None:
    # Long enough to cross many kernel blocks (16-bar scan blocks, FIR blocks) and ragged starts.
    bars = _bars(3, 700, seed=11, lead=[0, 37, 250], gap=None, squeeze=False)
    batch, start, step = _cases(14, 5)[name]
    _batch_and_stream(batch, start, step, bars, split=300)


@pytest.mark.parametrize("name", NAMES)
def test_state_from_empty_history(name: str) -> None:
    bars = _bars(1, 60, seed=3, lead=[0], gap=None, squeeze=True)
    batch, start, step = _cases(5, 3)[name]
    _batch_and_stream(batch, start, step, bars, split=0)


def test_update_rejects_wrong_shape() -> None:
    state = ind.ema_state(np.ones((2, 30)), 5)
    with pytest.raises(ValueError, match="shape"):
        ind.ema_update(state, 1.0)
    value, _ = ind.ema_update(state, np.array([1.0, 2.0]))
    assert np.asarray(value).shape == (2,)
    scalar_state = ind.ema_state(np.ones(30), 5)
    v, _ = ind.ema_update(scalar_state, 2.0)
    assert isinstance(v, float)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("gap", [1, 2, 5])
def test_gap_just_after_the_start(name: str, gap: int) -> None:
    # A gap on the second bar falls before derived series (changes, directional movement)
    # have a value of their own: it must still count as a gap, as in the batch form.
    for lead in (0, 3):
        bars = _bars(2, 40, seed=5, lead=[lead, 0], gap=gap + lead, squeeze=False)
        batch, start, step = _cases(3, 2)[name]
        _batch_and_stream(batch, start, step, bars, split=min(gap + lead, 1))
