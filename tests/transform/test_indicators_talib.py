"""Indicator parity with TA-Lib (the optional ``ta-lib`` package, 0.8.x), when importable.

Same-convention indicators must agree to 1e-9 (both sides are float64; TA-Lib uses running
sums, we use blocked exact sums, so they differ only by rounding). Where TA-Lib seeds
differently (documented per function and in docs/analytics.md) we check the documented
relation exactly and agreement after the seed has decayed: a Wilder/EMA seed difference
shrinks by ``(1 - alpha)`` per bar, so after ``40 * n`` bars it is below ``1e-16`` relative
(e.g. ``(13/14) ** 560 ~ 1e-18``) and 1e-9 is a safe bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.feather as feather
import pytest

import tickvault.transform.indicators as ind

talib = pytest.importorskip("talib", reason="TA-Lib comparison runs when the optional ta-lib package is installed")

ATOL = 1e-9


def _series(n: int = 4000, seed: int = 7) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    high = close + rng.uniform(0.0, 2.0, n)
    low = close - rng.uniform(0.0, 2.0, n)
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    return high, low, close, volume


def _btc(shared_data: Path) -> tuple[np.ndarray, ...]:
    t = feather.read_table(shared_data / "ohlcv" / "freqtrade" / "UNITTEST_BTC-5m.feather")
    return tuple(np.asarray(t.column(c).to_numpy(), dtype=np.float64) for c in ("high", "low", "close", "volume"))


def same(ours: np.ndarray, theirs: np.ndarray, start: int = 0, rtol: float = 0.0, atol: float = ATOL) -> None:
    """Equal NaN layout from ``start`` and values within ``atol + rtol * |theirs|``."""
    ours, theirs = np.asarray(ours)[start:], np.asarray(theirs)[start:]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 14, 50, 64, 65, 200])
def test_moving_averages_equal_talib(n: int) -> None:
    _, _, c, _ = _series()
    same(ind.sma(c, n), talib.SMA(c, n))
    same(ind.ema(c, n), talib.EMA(c, n))
    same(ind.wma(c, n), talib.WMA(c, n))


@pytest.mark.parametrize("n", [2, 5, 14, 30])
def test_rsi_equals_talib(n: int) -> None:
    _, _, c, _ = _series()
    same(ind.rsi(c, n), talib.RSI(c, n))


def test_bollinger_equals_talib() -> None:
    _, _, c, _ = _series()
    bb = ind.bbands(c, 20, 2.0)
    up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    same(bb.upper, up, rtol=1e-12)
    same(bb.middle, mid)
    same(bb.lower, lo, rtol=1e-12)


def test_stochastic_equals_talib() -> None:
    h, lo, c, _ = _series()
    st = ind.stoch(h, lo, c, 14, 3, 3)
    k, d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    # TA-Lib starts %K together with %D (bar 17); ours is defined from bar 15.
    same(st.k, k, start=17)
    same(st.d, d)


def test_obv_equals_talib_up_to_its_starting_volume() -> None:
    _, _, c, v = _series()
    # TA-Lib starts OBV at the first bar's volume, we (StockCharts, Tulip) at 0.
    same(ind.obv(c, v) + v[0], talib.OBV(c, v))


@pytest.mark.parametrize("n", [5, 14])
def test_atr_relation_to_talib(n: int) -> None:
    h, lo, c, _ = _series()
    # TA-Lib ignores the first bar: its ATR is Wilder's average of true ranges 1.. .
    tr = ind.true_range(h, lo, c)
    tr[0] = np.nan
    same(ind.wilder(tr, n), talib.ATR(h, lo, c, n))
    same(ind.atr(h, lo, c, n), talib.ATR(h, lo, c, n), start=40 * n)


def test_macd_converges_to_talib() -> None:
    _, _, c, _ = _series()
    m = ind.macd(c, 12, 26, 9)
    line, sig, hist = talib.MACD(c, 12, 26, 9)
    # TA-Lib seeds the fast EMA at bar 25 instead of 11; after 40 * 26 bars it agrees.
    start = 40 * 26
    same(m.line, line, start=start)
    same(m.signal, sig, start=start)
    same(m.hist, hist, start=start)


def test_adx_converges_to_talib() -> None:
    h, lo, c, _ = _series()
    a = ind.adx(h, lo, c, 14)
    start = 40 * 14 * 2  # TA-Lib seeds the DM/TR sums with 13 values; two chained smoothings
    same(a.adx, talib.ADX(h, lo, c, 14), start=start)
    same(a.plus_di, talib.PLUS_DI(h, lo, c, 14), start=start)
    same(a.minus_di, talib.MINUS_DI(h, lo, c, 14), start=start)


def test_real_btc_quoted_prices_match_talib(shared_data: Path) -> None:
    # UNITTEST_BTC: real prices ~0.1 BTC with 8 decimals, 5,760 bars: relative agreement
    # (absolute tolerance 1e-15, i.e. ~1e-14 of the price).
    h, lo, c, _ = _btc(shared_data)
    tiny = {"rtol": 1e-9, "atol": 1e-15}
    for n in (14, 50):
        same(ind.sma(c, n), talib.SMA(c, n), **tiny)
        same(ind.ema(c, n), talib.EMA(c, n), **tiny)
        same(ind.wma(c, n), talib.WMA(c, n), **tiny)
    rsi = ind.rsi(c, 14)
    ref = talib.RSI(c, 14)
    flat = (ref == 0.0) & (rsi == 50.0)  # TA-Lib reports 0 when nothing moved; we report 50
    same(np.where(flat, 0.0, rsi), ref, rtol=1e-9)
    same(ind.bbands(c, 20, 2.0).upper, talib.BBANDS(c, 20, 2.0, 2.0, 0)[0], **tiny)
    same(ind.atr(h, lo, c, 14), talib.ATR(h, lo, c, 14), start=600, **tiny)
