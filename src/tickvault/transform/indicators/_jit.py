"""Compiled single-pass kernels (numba) for the recursive and rolling indicators.

Why this module exists: TA-Lib computes each indicator in one compiled pass over the data;
numpy needs several full passes (differences, clipping, a blocked scan, a division, masks),
each allocating a temporary, and BLAS block products for the recursions. These kernels do
one pass per row with every intermediate in registers, writing straight into outputs the
caller allocated (fresh temporaries cost page faults on large arrays).

Conventions shared by every kernel:

- Inputs are C-contiguous ``(rows, bars)`` float64 arrays, one row per symbol; one kernel
  serves a single series (one row) and a stacked universe (rows in a loop).
- Missing values (NaN, inf) are handled here, not by the caller: a row's leading missing
  values mean "not started yet"; a missing value after the start poisons the recursive
  outputs from there on, and blanks the windowed outputs while it is inside the window.
- Warm-up and seed rules are those of :mod:`tickvault.transform.indicators._ma` (TA-Lib's
  SMA seed, or the first value), documented in docs/analytics.md.

This module imports numba, which takes ~0.5 s: it is imported on the first indicator call
(:func:`tickvault.transform.indicators._kernels.jit`), never when tickvault is imported.
Each kernel is compiled on its first call and cached on disk beside this file (numba's
``cache=True``; ``NUMBA_CACHE_DIR`` moves the cache). Where no cache directory is writable
the kernels are compiled without a cache (once per process) instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numba.extending
import numpy as np

__all__ = ["bbands_rows", "cumsum_rows", "ema_rows", "macd_rows", "rsi_rows", "smooth_filled"]

FloatArray = np.ndarray

# Bollinger: the window sums are recomputed from scratch (around a new reference value) at
# the start of every block of max(_BLOCK, 2n) bars, so rounding from adding and removing
# values cannot accumulate; windows of at most _SMALL bars are summed in full at every bar
# (centred on that bar, so that a window of equal values has a std of exactly 0).
_BLOCK = 1024
_SMALL = 8


def _compile(fn: Callable[..., Any]) -> Any:
    """``fn`` compiled lazily by numba, with an on-disk cache where one is writable.

    ``error_model="numpy"``: a division by zero gives inf/NaN as in numpy (Bollinger's width
    on a zero mean), not an exception; ``fastmath=False`` keeps IEEE semantics (NaN checks,
    no reassociation), so results do not depend on the CPU's vector width.
    """
    options: dict[str, Any] = {"nogil": True, "fastmath": False, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available" (read-only install)
        return numba.njit(cache=False, **options)(fn)


def _first_finite_py(row: FloatArray) -> int:
    """Index of the first finite value of ``row`` (its length if none)."""
    i = 0
    n = row.shape[0]
    while i < n and not math.isfinite(row[i]):
        i += 1
    return i


first_finite = _compile(_first_finite_py)


def _fma_typer(typingctx: Any, a: Any, b: Any, c: Any) -> tuple[Any, Callable[..., Any]]:
    """Typing and code generation of :func:`fma` (numba ``intrinsic`` protocol)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fma(*args)

    return numba.float64(numba.float64, numba.float64, numba.float64), codegen


# ``fma(a, b, c)``: ``a * b + c`` rounded once (IEEE fused multiply-add, llvm.fma). The
# recursions ``y = keep * y + alpha * x`` are a chain of dependent operations, one per bar;
# fusing the multiply and the add shortens that chain from two roundings (~6 cycles) to one
# (~4 cycles) and is exactly specified, so results stay the same on every CPU (one without
# FMA instructions computes it in software, slowly).
fma: Any = numba.extending.intrinsic(_fma_typer)


def _ema_rows_py(x: FloatArray, n: int, alpha: float, sma_seed: bool, out: FloatArray) -> None:
    """EMA/Wilder of every row of ``x`` into ``out``, masked (warm-up and from a gap on: NaN)."""
    rows, length = x.shape
    keep = 1.0 - alpha
    for r in range(rows):
        row = x[r]
        dst = out[r]
        f = first_finite(row)
        warm = min(f + n - 1, length)
        for t in range(warm):
            dst[t] = np.nan
        if warm >= length:
            continue
        stop = length
        if sma_seed:
            acc = 0.0
            for t in range(f, warm + 1):
                v = row[t]
                if not math.isfinite(v):
                    stop = t
                    break
                acc += v
            y = acc / n
        else:
            y = row[f]
            for t in range(f + 1, warm + 1):
                v = row[t]
                if not math.isfinite(v):
                    stop = t
                    break
                y = fma(keep, y, alpha * v)
        if stop == length:
            dst[warm] = y
            xs = row[warm + 1:]  # slices indexed from 0: no negative-index handling per bar
            ys = dst[warm + 1:]
            for j in range(xs.shape[0]):
                v = xs[j]
                if not math.isfinite(v):
                    stop = warm + 1 + j
                    break
                y = fma(keep, y, alpha * v)
                ys[j] = y
        for t in range(max(stop, warm), length):
            dst[t] = np.nan


ema_rows = _compile(_ema_rows_py)


def _smooth_filled_py(values: FloatArray, first: np.ndarray, n: int, alpha: float, sma_seed: bool,
                      out: FloatArray) -> None:
    """Unmasked smoothing of zero-filled ``values`` rows: 0 before the seed, the recursion after.

    The seed index is ``first + n - 1`` with the mean of ``values[first : first + n]``
    (``sma_seed``), else ``first`` with ``values[first]``. Callers mask the result.
    """
    rows, length = values.shape
    keep = 1.0 - alpha
    for r in range(rows):
        row = values[r]
        dst = out[r]
        f = first[r]
        s = min(f + n - 1 if sma_seed else f, length)
        for t in range(s):
            dst[t] = 0.0
        if s >= length:
            continue
        if sma_seed:
            acc = 0.0
            for t in range(f, s + 1):
                acc += row[t]
            y = acc / n
        else:
            y = row[s]
        dst[s] = y
        xs = row[s + 1:]
        ys = dst[s + 1:]
        for j in range(xs.shape[0]):
            y = fma(keep, y, alpha * xs[j])
            ys[j] = y


smooth_filled = _compile(_smooth_filled_py)


def _rsi_rows_py(x: FloatArray, n: int, sma_seed: bool, out: FloatArray) -> None:
    """Wilder RSI of every row of ``x`` into ``out`` (NaN warm-up of ``n`` bars; 50 when flat)."""
    rows, length = x.shape
    alpha = 1.0 / n
    keep = 1.0 - alpha
    for r in range(rows):
        row = x[r]
        dst = out[r]
        f = first_finite(row)
        warm = min(f + n, length)  # first output
        for t in range(warm):
            dst[t] = np.nan
        if warm >= length:
            continue
        stop = length
        gain = 0.0
        loss = 0.0
        prev = row[f]
        for t in range(f + 1, warm + 1):
            v = row[t]
            if not math.isfinite(v):
                stop = t
                break
            d = v - prev
            prev = v
            g = d if d > 0.0 else 0.0
            lo = -d if d < 0.0 else 0.0
            if sma_seed:
                gain += g
                loss += lo
            else:  # the averages start at 0 on the first bar
                gain = fma(keep, gain, alpha * g)
                loss = fma(keep, loss, alpha * lo)
        if stop == length:
            if sma_seed:
                gain /= n
                loss /= n
            total = gain + loss
            dst[warm] = 50.0 if total == 0.0 else gain / total * 100.0
            xs = row[warm + 1:]  # slices indexed from 0: no negative-index handling per bar
            ys = dst[warm + 1:]
            for j in range(xs.shape[0]):
                v = xs[j]
                if not math.isfinite(v):
                    stop = warm + 1 + j
                    break
                d = v - prev
                prev = v
                g = d if d > 0.0 else 0.0
                lo = -d if d < 0.0 else 0.0
                gain = fma(keep, gain, alpha * g)
                loss = fma(keep, loss, alpha * lo)
                total = gain + loss
                ys[j] = 50.0 if total == 0.0 else gain / total * 100.0
        for t in range(max(stop, warm), length):
            dst[t] = np.nan


rsi_rows = _compile(_rsi_rows_py)


def _macd_rows_py(x: FloatArray, fast: int, slow: int, signal: int, sma_seed: bool, line: FloatArray,
                  sig: FloatArray, hist: FloatArray) -> None:
    """MACD of every row: ``line = EMA(fast) - EMA(slow)``, ``sig = EMA(signal)`` of the line.

    The line starts at ``first + max(fast, slow) - 1`` and the signal (and ``hist``)
    ``signal - 1`` bars later; every EMA is seeded as :func:`_ema_rows_py` seeds it.
    """
    rows, length = x.shape
    af = 2.0 / (fast + 1)
    as_ = 2.0 / (slow + 1)
    ag = 2.0 / (signal + 1)
    kf = 1.0 - af
    ks = 1.0 - as_
    kg = 1.0 - ag
    for r in range(rows):
        row = x[r]
        ln = line[r]
        sg = sig[r]
        hs = hist[r]
        f = first_finite(row)
        l0 = min(f + max(fast, slow) - 1, length)  # first line value
        s0 = min(l0 + signal - 1, length)  # first signal value
        for t in range(l0):
            ln[t] = np.nan
        for t in range(s0):
            sg[t] = np.nan
            hs[t] = np.nan
        if l0 >= length:
            continue
        stop = length
        ef = 0.0
        es = 0.0
        acc_f = 0.0
        acc_s = 0.0
        ok = True
        # Warm-up of the two price EMAs (through l0 inclusive).
        for t in range(f, l0 + 1):
            v = row[t]
            if not math.isfinite(v):
                stop = t
                ok = False
                break
            k = t - f  # bars before t
            if sma_seed:
                if k < fast:
                    acc_f += v
                    if k == fast - 1:
                        ef = acc_f / fast
                else:
                    ef = fma(kf, ef, af * v)
                if k < slow:
                    acc_s += v
                    if k == slow - 1:
                        es = acc_s / slow
                else:
                    es = fma(ks, es, as_ * v)
            elif k == 0:
                ef = v
                es = v
            else:
                ef = fma(kf, ef, af * v)
                es = fma(ks, es, as_ * v)
        if ok:
            lv = ef - es
            ln[l0] = lv
            # Warm-up of the signal EMA (l0 .. s0 inclusive).
            g = lv
            acc_g = lv
            if s0 == l0:
                g = lv
                sg[l0] = g
                hs[l0] = lv - g
            for t in range(l0 + 1, min(s0 + 1, length)):
                v = row[t]
                if not math.isfinite(v):
                    stop = t
                    ok = False
                    break
                ef = fma(kf, ef, af * v)
                es = fma(ks, es, as_ * v)
                lv = ef - es
                ln[t] = lv
                if sma_seed:
                    acc_g += lv
                    if t == s0:
                        g = acc_g / signal
                else:
                    g = fma(kg, g, ag * lv)
                if t == s0:
                    sg[t] = g
                    hs[t] = lv - g
        if ok:
            xs = row[s0 + 1:]  # slices indexed from 0: no negative-index handling per bar
            lns = ln[s0 + 1:]
            sgs = sg[s0 + 1:]
            hss = hs[s0 + 1:]
            for j in range(xs.shape[0]):
                v = xs[j]
                if not math.isfinite(v):
                    stop = s0 + 1 + j
                    break
                ef = fma(kf, ef, af * v)
                es = fma(ks, es, as_ * v)
                lv = ef - es
                g = fma(kg, g, ag * lv)
                lns[j] = lv
                sgs[j] = g
                hss[j] = lv - g
        for t in range(stop, length):
            ln[t] = np.nan
            sg[t] = np.nan
            hs[t] = np.nan


macd_rows = _compile(_macd_rows_py)


def _bbands_block(row: FloatArray, a: int, c: int, n: int, k: float, extras: bool, mid: FloatArray,
                  upp: FloatArray, low: FloatArray, pct: FloatArray, wid: FloatArray, dev: FloatArray,
                  dev2: FloatArray, sum1: FloatArray, sum2: FloatArray) -> None:
    """Bollinger outputs at bars ``a .. c-1`` of one row, whose windows hold finite values only.

    ``extras`` False writes the three bands only (``pct`` and ``wid`` are not touched).

    Deviations from a reference value (the block's first bar; for windows of at most
    ``_SMALL`` bars, each bar's own value) are scaled by a power of two near the magnitude
    of the block's first window, so squares cannot overflow unless prices jump by ~1e150x
    within a block. The only sequential work is the two running
    sums; every other loop reads and writes distinct arrays, so the compiler vectorises it
    (indexing with an offset, or updating an array in place, would keep it scalar), and the
    five outputs come from one such pass (separate passes re-read the intermediate arrays,
    which with the deviations and sums no longer fit in the L1 cache).
    """
    size = c - a
    lo_i = a - n + 1
    big = 0.0
    for j in range(lo_i, a + 1):  # the first window: a scan of the block would cost more than the sums
        big = max(big, abs(row[j]))
    scale = 1.0  # exact scaling by a power of two
    if big > 0.0 and math.isfinite(big):
        scale = math.ldexp(1.0, math.frexp(big)[1])
    inv = 1.0 / scale
    inv_n = 1.0 / n
    s1 = sum1[:size]
    s2 = sum2[:size]
    xs = row[a:c]
    ref = row[a]
    if n > _SMALL:
        win = row[lo_i:c]
        dv = dev[: size + n - 1]
        dv2 = dev2[: size + n - 1]
        for j in range(size + n - 1):
            d = (win[j] - ref) * inv
            dv[j] = d
            dv2[j] = d * d
        acc1 = 0.0
        acc2 = 0.0
        for j in range(n):
            acc1 += dv[j]
            acc2 += dv2[j]
        s1[0] = acc1
        s2[0] = acc2
        for j in range(1, size):  # add the newest deviation, drop the oldest
            acc1 += dv[j + n - 1] - dv[j - 1]
            acc2 += dv2[j + n - 1] - dv2[j - 1]
            s1[j] = acc1
            s2[j] = acc2
    else:  # centred on each bar's own value: a window of equal values has a std of exactly 0
        for j in range(size):
            r0 = row[a + j]
            acc1 = 0.0
            acc2 = 0.0
            for i in range(n):
                d = (row[a + j - i] - r0) * inv
                acc1 += d
                acc2 += d * d
            s1[j] = acc1
            s2[j] = acc2
    own = n <= _SMALL
    ms = mid[a:c]
    us = upp[a:c]
    ls = low[a:c]
    ps = pct[a:c]
    ws = wid[a:c]
    if not extras:  # the three bands (two loops rather than a test per bar keep both vectorised)
        for j in range(size):
            m = s1[j] * inv_n
            centre = xs[j] if own else ref
            mj = centre + m * scale
            var = s2[j] * inv_n - m * m
            half = k * (math.sqrt(var if var > 0.0 else 0.0) * scale)
            ms[j] = mj
            us[j] = mj + half
            ls[j] = mj - half
        return
    for j in range(size):  # one pass writes the five outputs (each array written once)
        m = s1[j] * inv_n
        centre = xs[j] if own else ref
        mj = centre + m * scale
        var = s2[j] * inv_n - m * m
        half = k * (math.sqrt(var if var > 0.0 else 0.0) * scale)
        u = mj + half
        lw = mj - half
        span = u - lw
        ms[j] = mj
        us[j] = u
        ls[j] = lw
        ps[j] = 0.5 if span == 0.0 else (xs[j] - lw) / span
        ws[j] = span / mj * 100.0


bbands_block = _compile(_bbands_block)


def _bbands_nan_py(mid: FloatArray, upp: FloatArray, low: FloatArray, pct: FloatArray, wid: FloatArray,
                   extras: bool, a: int, b: int) -> None:
    """NaN at bars ``a .. b-1`` of one row's outputs (the bands only unless ``extras``)."""
    for j in range(a, b):
        mid[j] = np.nan
        upp[j] = np.nan
        low[j] = np.nan
    if extras:
        for j in range(a, b):
            pct[j] = np.nan
            wid[j] = np.nan


bbands_nan = _compile(_bbands_nan_py)


def _bbands_rows_py(x: FloatArray, n: int, k: float, extras: bool, middle: FloatArray, upper: FloatArray,
                    lower: FloatArray, pctb: FloatArray, width: FloatArray) -> None:
    """Bollinger Bands of every row: SMA(n) +- k population std, %b and BandWidth (percent).

    With ``extras`` False only the three bands are written; ``pctb`` and ``width`` may then
    be ``(rows, 0)`` placeholders.

    NaN before ``first + n - 1`` and while a missing value is inside the window. Each run
    of full windows is cut into blocks of ``max(_BLOCK, 2n)`` bars whose window sums are
    recomputed from scratch (:func:`_bbands_block`): ``E[d^2] - E[d]^2`` then loses
    precision only in proportion to (local drift / std)^2, never to (price / std)^2, and
    rounding from adding and removing values cannot accumulate along a row.
    """
    rows, length = x.shape
    block = max(_BLOCK, 2 * n)
    dev = np.empty(block + n)
    dev2 = np.empty(block + n)
    sum1 = np.empty(block)
    sum2 = np.empty(block)
    for r in range(rows):
        row = x[r]
        mid = middle[r]
        upp = upper[r]
        low = lower[r]
        pct = pctb[r]
        wid = width[r]
        t = first_finite(row)  # candidate first bar of the next full window
        stop = 0  # outputs before stop are written
        while t < length:
            e = t + n - 1  # first output of a window starting at t
            if e >= length:
                break
            bad = -1
            for j in range(t, e):
                if not math.isfinite(row[j]):
                    bad = j
            if bad >= 0:  # a gap inside the window: start again after it
                t = bad + 1
                continue
            u = e
            while u < length:
                b = min(u + block, length)
                c = u
                while c < b and math.isfinite(row[c]):
                    c += 1
                if c > u:
                    bbands_block(row, u, c, n, k, extras, mid, upp, low, pct, wid, dev, dev2, sum1, sum2)
                u = c
                if c < b:  # a missing value at c
                    break
            bbands_nan(mid, upp, low, pct, wid, extras, stop, e)  # bars of this window before it is full
            stop = u
            t = u  # u is a missing value (or the end): the next window starts after it
            if u < length:
                bbands_nan(mid, upp, low, pct, wid, extras, u, u + 1)
                stop = u + 1
                t = u + 1
        bbands_nan(mid, upp, low, pct, wid, extras, stop, length)


bbands_rows = _compile(_bbands_rows_py)


def _cumsum_rows_py(values: FloatArray, out: FloatArray) -> None:
    """Running sum along each row of ``values`` into ``out``."""
    rows, length = values.shape
    for r in range(rows):
        acc = 0.0
        for t in range(length):
            acc += values[r, t]
            out[r, t] = acc


cumsum_rows = _compile(_cumsum_rows_py)
