"""The compiled indicator kernels against plain-Python references, and how they are loaded.

The references below are written from the documented conventions (docs/analytics.md), one
bar at a time, with no shared code: SMA seeds at ``first + n - 1`` (or the first value),
recursive outputs NaN from a gap on, Bollinger NaN while a gap is in the window, RSI 50 on
no movement. Hypothesis draws stacked rows with ragged starts, NaN/inf gaps, short rows
(shorter than the period, empty) and price levels from 1e-3 to 1e300.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tickvault.transform.indicators as ind

# --------------------------------------------------------------------------- references


def _first(row: list[float]) -> int:
    return next((i for i, v in enumerate(row) if math.isfinite(v)), len(row))


def _ema_ref(row: list[float], n: int, alpha: float, sma_seed: bool) -> list[float]:
    out = [math.nan] * len(row)
    f = _first(row)
    y = math.nan
    for t in range(f, len(row)):
        v = row[t]
        if not math.isfinite(v):
            break  # poisoned from the gap on
        k = t - f
        if sma_seed:
            if k == n - 1:
                y = sum(row[f: t + 1]) / n
            elif k >= n:
                y = y + alpha * (v - y)
        else:
            y = v if k == 0 else y + alpha * (v - y)
        if k >= n - 1:
            out[t] = y
    return out


def _rsi_ref(row: list[float], n: int, sma_seed: bool) -> list[float]:
    out = [math.nan] * len(row)
    f = _first(row)
    gains: list[float] = []
    losses: list[float] = []
    g = lo = 0.0
    for t in range(f + 1, len(row)):
        if not math.isfinite(row[t]):
            break
        d = row[t] - row[t - 1]
        gains.append(max(d, 0.0))
        losses.append(max(-d, 0.0))
        k = len(gains)  # changes so far
        if sma_seed:
            if k == n:
                g, lo = sum(gains) / n, sum(losses) / n
            elif k > n:
                g, lo = g + (gains[-1] - g) / n, lo + (losses[-1] - lo) / n
        else:  # averages start at 0 on the first bar
            g, lo = g + (gains[-1] - g) / n, lo + (losses[-1] - lo) / n
        if k >= n:
            out[t] = 50.0 if g + lo == 0.0 else 100.0 * g / (g + lo)
    return out


def _macd_ref(row: list[float], fast: int, slow: int, signal: int,
              sma_seed: bool) -> tuple[list[float], list[float], list[float]]:
    ef = _ema_ref(row, fast, 2.0 / (fast + 1), sma_seed)
    es = _ema_ref(row, slow, 2.0 / (slow + 1), sma_seed)
    line = [a - b for a, b in zip(ef, es, strict=True)]
    sig = _ema_ref(line, signal, 2.0 / (signal + 1), sma_seed)
    return line, sig, [a - b for a, b in zip(line, sig, strict=True)]


def _bbands_ref(row: list[float], n: int, k: float) -> list[list[float]]:
    out = [[math.nan] * len(row) for _ in range(5)]
    f = _first(row)
    for t in range(f + n - 1, len(row)):
        w = np.asarray(row[t - n + 1: t + 1])
        if not np.isfinite(w).all():
            continue
        mean = float(w.mean())
        size = float(np.max(np.abs(w))) or 1.0  # scaled so that squares of 1e300 do not overflow
        std = size * float(np.sqrt(np.mean((w / size - mean / size) ** 2)))  # two-pass population std
        up, lo = mean + k * std, mean - k * std
        span = up - lo
        values = (mean, up, lo, 0.5 if span == 0.0 else (row[t] - lo) / span, span / mean * 100.0)
        for j, v in enumerate(values):
            out[j][t] = v
    return out


# --------------------------------------------------------------------------- data


@st.composite
def series(draw: st.DrawFn) -> np.ndarray:
    """``(rows, bars)`` random walks at one price level, with leading NaNs and gaps."""
    rows = draw(st.integers(1, 3))
    n = draw(st.integers(0, 90))
    level = draw(st.sampled_from([1e-3, 1.0, 100.0, 1e6, 1e150, 1e300]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    step = draw(st.sampled_from([0.0, 1e-4, 1e-2]))
    x = level * np.exp(np.cumsum(rng.normal(0.0, step, (rows, n)), axis=1))
    if draw(st.booleans()):  # some bars repeat the previous price (flat stretches)
        x = np.where(rng.random((rows, n)) < 0.3, np.roll(x, 1, axis=1), x)
    for r in range(rows):
        lead = draw(st.integers(0, n))
        x[r, :lead] = np.nan
        for _ in range(draw(st.integers(0, 2))):
            if n:
                x[r, draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


def _close(got: np.ndarray, want: np.ndarray, atol: np.ndarray | float, rtol: float = 1e-9) -> None:
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaN layout")
    ok = ~np.isnan(want)
    diff = np.abs(got[ok] - want[ok])
    bound = (np.broadcast_to(atol, want.shape)[ok] + rtol * np.abs(want[ok]))
    assert np.all(diff <= bound), f"max excess {np.max(diff - bound)}"


def _scale(x: np.ndarray) -> np.ndarray:
    """Per-row largest finite magnitude, as a column (1 for an empty row)."""
    finite = np.where(np.isfinite(x), np.abs(x), 0.0)
    return (finite.max(axis=1, keepdims=True) if x.shape[1] else np.ones((x.shape[0], 1))) + 0.0


# --------------------------------------------------------------------------- differential tests


@settings(max_examples=150, deadline=None)
@given(x=series(), n=st.integers(1, 30), seed=st.sampled_from(["sma", "first"]))
def test_ema_and_wilder_match_the_plain_recursion(x: np.ndarray, n: int, seed: str) -> None:
    for fn, alpha in ((ind.ema, 2.0 / (n + 1)), (ind.wilder, 1.0 / n)):
        want = np.array([_ema_ref(r, n, alpha, seed == "sma") for r in x.tolist()]).reshape(x.shape)
        _close(fn(x, n, seed=seed), want, 1e-12 * _scale(x))  # type: ignore[operator]
        if x.shape[0] == 1:
            _close(fn(x[0], n, seed=seed), want[0], 1e-12 * _scale(x)[0])  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(x=series(), n=st.integers(1, 30), seed=st.sampled_from(["sma", "first"]))
def test_rsi_matches_the_plain_recursion(x: np.ndarray, n: int, seed: str) -> None:
    want = np.array([_rsi_ref(r, n, seed == "sma") for r in x.tolist()]).reshape(x.shape)
    got = ind.rsi(x, n, seed=seed)  # type: ignore[arg-type]
    # RSI is a ratio of two averages of changes; where both are tiny against the price
    # level (a nearly flat window) their rounding shows, so the bound is in RSI points.
    _close(got, want, 1e-6)
    assert np.all((got[~np.isnan(got)] >= 0.0) & (got[~np.isnan(got)] <= 100.0))


@settings(max_examples=150, deadline=None)
@given(x=series(), fast=st.integers(1, 15), slow=st.integers(1, 30), signal=st.integers(1, 12),
       seed=st.sampled_from(["sma", "first"]))
def test_macd_matches_three_plain_emas(x: np.ndarray, fast: int, slow: int, signal: int, seed: str) -> None:
    got = ind.macd(x, fast, slow, signal, seed=seed)  # type: ignore[arg-type]
    ref = [_macd_ref(r, fast, slow, signal, seed == "sma") for r in x.tolist()]
    for j in range(3):
        want = np.array([r[j] for r in ref]).reshape(x.shape)
        _close(got[j], want, 1e-12 * _scale(x))


@settings(max_examples=150, deadline=None)
@given(x=series(), n=st.integers(1, 40), k=st.sampled_from([1.0, 2.0, 2.5]))
def test_bbands_match_two_pass_window_statistics(x: np.ndarray, n: int, k: float) -> None:
    got = ind.bbands(x, n, k)
    ref = [_bbands_ref(r, n, k) for r in x.tolist()]
    want = [np.array([r[j] for r in ref]).reshape(x.shape) for j in range(5)]
    scale = _scale(x)
    # The mean is exact to rounding. The std comes from window sums around a local
    # reference: ~sqrt(eps) of the window's drift from it where the variance is ~0.
    _close(got.middle, want[0], 1e-12 * scale)
    _close(got.upper, want[1], 1e-7 * k * scale)
    _close(got.lower, want[2], 1e-7 * k * scale)
    span = want[1] - want[2]
    sure = np.isnan(want[0]) | (span > 1e-4 * scale)  # %b and width where the bands are apart
    _close(np.where(sure, got.pctb, np.nan), np.where(sure, want[3], np.nan), 1e-6)
    _close(np.where(sure, got.width, np.nan), np.where(sure, want[4], np.nan), 1e-6 * np.abs(want[4]) + 1e-9)
    np.testing.assert_array_equal(np.isnan(got.pctb), np.isnan(want[3]))
    np.testing.assert_array_equal(np.isnan(got.width), np.isnan(want[4]))


@settings(max_examples=100, deadline=None)
@given(x=series(), n=st.integers(1, 40), k=st.sampled_from([1.0, 2.0]))
def test_bands_only_are_the_first_three_outputs_bit_for_bit(x: np.ndarray, n: int, k: float) -> None:
    full = ind.bbands(x, n, k)
    bands = ind.bbands(x, n, k, bands_only=True)
    assert isinstance(bands, ind.BollingerBands)
    assert len(bands) == 3
    for got, want in zip(bands, full[:3], strict=True):
        assert got.shape == x.shape
        np.testing.assert_array_equal(got, want)  # NaNs in the same places, values identical


def test_a_flat_window_after_movement_has_zero_width_for_short_windows() -> None:
    x = np.concatenate([np.linspace(100.0, 130.0, 50), np.full(30, 130.0)])
    bb = ind.bbands(x, 5)
    assert np.all(bb.width[-25:] == 0.0)
    assert np.all(bb.pctb[-25:] == 0.5)


# --------------------------------------------------------------------------- price levels


@pytest.mark.parametrize("level", [1e150, 1e300])
def test_huge_prices_give_finite_values_without_warnings(level: float) -> None:
    rng = np.random.default_rng(3)
    close = level * np.exp(np.cumsum(rng.normal(0.0, 1e-2, 2_000)))
    small = close / level
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bb = ind.bbands(close, 20)
        bb_long = ind.bbands(close, 90)
        outs = [ind.ema(close, 20), ind.rsi(close), *ind.macd(close), *bb, *bb_long]
    for a in outs:
        assert np.isfinite(a[200:]).all()
    # Scale-free outputs equal those of the same series at price level 1.
    np.testing.assert_allclose(ind.rsi(close)[200:], ind.rsi(small)[200:], rtol=1e-9, atol=1e-9)
    ref = ind.bbands(small, 20)
    np.testing.assert_allclose(bb.upper[200:] / level, ref.upper[200:], rtol=1e-9)
    np.testing.assert_allclose(bb.width[200:], ref.width[200:], rtol=1e-6)
    np.testing.assert_allclose(bb_long.lower[200:] / level, ind.bbands(small, 90).lower[200:], rtol=1e-9)


def test_the_long_sums_do_not_drift() -> None:
    # 1M bars of a drifting walk: every refresh block restarts the Bollinger sums, so the
    # std stays as accurate at the end as at the start.
    rng = np.random.default_rng(5)
    x = 1000.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, 1_000_000)))
    bb = ind.bbands(x, 30)
    w = np.lib.stride_tricks.sliding_window_view(x[-5_000:], 30)
    np.testing.assert_allclose(bb.middle[-w.shape[0]:], w.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(bb.upper[-w.shape[0]:] - bb.middle[-w.shape[0]:], 2.0 * w.std(axis=1), rtol=1e-7)


def test_large_outputs_are_independent_writable_arrays() -> None:
    # From 4 MiB on, outputs are anonymous mappings of their own (not numpy's allocator):
    # they must behave like any array, and one kept output must not pin the others.
    rng = np.random.default_rng(8)
    x = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, (8, 70_000)), axis=1))
    bb = ind.bbands(x, 20)
    line = ind.macd(x)
    for group in (bb, line):
        for a in group:
            assert a.flags.writeable
            assert a.flags.c_contiguous
            assert a.shape == x.shape
        assert not any(np.shares_memory(a, b) for i, a in enumerate(group) for b in group[i + 1:])
    np.testing.assert_array_equal(bb.upper[3], ind.bbands(x[3], 20).upper)
    np.testing.assert_array_equal(ind.ema(x, 20)[5], ind.ema(x[5], 20))
    np.testing.assert_array_equal(ind.rsi(x)[7], ind.rsi(x[7]))
    kept = bb.width.copy()
    bb.width[:] = 0.0
    np.testing.assert_array_equal(ind.bbands(x, 20).width, kept)


# --------------------------------------------------------------------------- loading


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error", "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_importing_tickvault_does_not_import_numba(tmp_path: Path) -> None:
    code = ("import sys, tickvault, tickvault.transform.indicators as ind\n"
            "assert 'numba' not in sys.modules, 'numba imported at import time'\n"
            "import numpy as np\n"
            "ind.ema(np.arange(30.0), 5)\n"
            "assert 'numba' in sys.modules\n")
    done = _run(code, dict(os.environ), tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_an_install_without_a_writable_cache_compiles_without_warnings(tmp_path: Path) -> None:
    # A copy of the package where numba can create neither __pycache__ beside the kernels
    # nor a user-wide cache (each is a plain file where a directory is needed; chmod would
    # not stop root): the kernels must still work, silently (warnings are errors).
    src = Path(ind.__file__).resolve().parents[2]  # .../tickvault
    root = tmp_path / "site"
    shutil.copytree(src, root / "tickvault", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tickvault" / "transform" / "indicators" / "__pycache__").write_text("not a directory")
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(root), HOME=str(blocked), XDG_CACHE_HOME=str(blocked), PYTHONDONTWRITEBYTECODE="1")
    code = ("import numpy as np, tickvault.transform.indicators as ind\n"
            f"assert ind.__file__.startswith({str(root)!r}), ind.__file__\n"
            "x = 100 + np.cumsum(np.random.default_rng(0).normal(size=300))\n"
            "assert np.isfinite(ind.rsi(x)[14:]).all()\n"
            "assert np.isfinite(ind.bbands(x).width[19:]).all()\n")
    done = _run(code, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert not list(tmp_path.rglob("*.nbi"))
