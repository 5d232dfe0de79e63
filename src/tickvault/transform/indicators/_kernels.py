"""Vectorised numeric kernels shared by every indicator.

Why this module exists: the indicators are recursions (EMA, Wilder smoothing) and sliding
windows (SMA, WMA, rolling max/min, window moments). numba is not available and a Python loop
over 100K bars is ~50x slower than TA-Lib, so the sequential parts are rewritten as dense
linear algebra that numpy runs in optimised C/BLAS:

- A first-order linear recurrence ``y[t] = r * y[t-1] + u[t]`` is solved *blockwise*: the
  series is cut into blocks of ``_BLOCK`` values, each block is solved at once by a matrix
  product with the ``B x B`` triangular Toeplitz matrix of powers of ``r`` (BLAS, no
  loop-carried dependency), and block ends are chained by the same recurrence with
  coefficient ``r**B`` over the (16x shorter) series of block ends. On one 100K-bar series
  this runs as fast as ``scipy.signal.lfilter`` (both ~0.5 ms here) and about 25x faster
  than a Python loop, without adding scipy as a dependency.
- A short finite window (``k <= _FIR_MAX``) is a blocked FIR: two matrix products per block
  (the current and the previous block). Each output is an exact sum of ``k`` products, so
  there is no running-sum drift.
- Longer windows are split into chunks of at most ``_FIR_MAX`` lags whose outputs are added
  with their lag, so they stay exact too (no running sum, unlike TA-Lib).
- Rolling max/min use a sparse table (``log2(k)`` vector passes).

Layout: every kernel takes a 2-D float64 array ``(rows, bars)``: one row per symbol, time on
the last axis. Missing values (NaN/inf) must have been replaced by 0 by the caller, which
re-applies its own missing-value mask (see :func:`prepare`), because ``0 * NaN`` inside a
matrix product would leak a NaN backwards in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tickvault.errors import InvalidInput

__all__ = [
    "Prepared",
    "fir",
    "linear_scan",
    "prefix_sum",
    "prepare",
    "rolling_max",
    "rolling_min",
    "weighted_window_sum",
    "window_sum",
]

_BLOCK = 16
_FIR_MAX = 64
# Below this, r**B is so small that chaining block ends beyond one block changes nothing.
_NEGLIGIBLE = 1e-18
# Blocks per carry-update chunk: keeps that temporary (~64 KB) on the heap, not a fresh mmap.
_CHUNK = 512

FloatArray = np.ndarray


@dataclass(frozen=True)
class Prepared:
    """A 2-D input with its missing-value bookkeeping.

    Attributes
    ----------
    values
        ``(rows, bars)`` float64 with missing values replaced by 0.
    first
        ``(rows,)`` index of each row's first finite value (``bars`` if none).
    poison
        ``(rows,)`` index of the first missing value *after* ``first`` (``bars`` if none).
    missing
        ``(rows, bars)`` bool mask of missing values, or ``None`` when there are none.
    squeeze
        Whether the caller passed a 1-D array (outputs are squeezed back).
    """

    values: FloatArray
    first: np.ndarray
    poison: np.ndarray
    missing: np.ndarray | None
    squeeze: bool

    @property
    def n(self) -> int:
        """Number of bars."""
        return int(self.values.shape[1])

    @property
    def interior_missing(self) -> bool:
        """Whether any row has a missing value after its first finite value."""
        return bool(np.any(self.poison < self.n))


def as_2d(x: object, name: str = "x") -> tuple[FloatArray, bool]:
    """``x`` as a C-contiguous 2-D float64 array and whether it was 1-D."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return np.ascontiguousarray(arr[None, :]), True
    if arr.ndim == 2:
        return np.ascontiguousarray(arr), False
    raise InvalidInput(f"{name} must be 1-D (bars) or 2-D (symbols, bars), got {arr.ndim}-D")


def prepare(x: object, name: str = "x") -> Prepared:
    """Split ``x`` into zero-filled values and its missing-value structure.

    Leading missing values of a row mean "no data yet" (a symbol listed later in a stacked
    layout); missing values after the first finite one are recorded in ``poison``.
    """
    arr, squeeze = as_2d(x, name)
    rows, n = arr.shape
    full = np.full(rows, n, dtype=np.int64)
    if n == 0 or bool(np.isfinite(np.add.reduce(arr, axis=None))):
        # A finite sum means every value is finite (one pass instead of isfinite + all).
        return Prepared(arr, np.zeros(rows, dtype=np.int64), full, None, squeeze)
    finite = np.isfinite(arr)
    first = np.argmax(finite, axis=1).astype(np.int64)
    first[~finite[np.arange(rows), first]] = n
    values = np.where(finite, arr, 0.0)
    missing = ~finite
    if bool(np.all(np.count_nonzero(finite, axis=1) == n - first)):
        return Prepared(values, first, full, missing, squeeze)  # only leading gaps
    after = missing & (np.arange(n)[None, :] >= first[:, None])
    poison = np.where(after.any(axis=1), np.argmax(after, axis=1), n).astype(np.int64)
    return Prepared(values, first, poison, missing, squeeze)


def finish(out: FloatArray, valid_from: np.ndarray, poison: np.ndarray | None, squeeze: bool) -> FloatArray:
    """Mask ``out`` in place before ``valid_from`` and from ``poison`` on; squeeze if needed."""
    rows, n = out.shape
    vf = np.minimum(valid_from, n)
    if rows == 1 or bool(np.all(vf == vf[0])):
        out[:, : int(vf[0])] = np.nan
    else:
        out[np.arange(n)[None, :] < vf[:, None]] = np.nan
    if poison is not None and bool(np.any(poison < n)):
        out[np.arange(n)[None, :] >= poison[:, None]] = np.nan
    return out[0] if squeeze else out


@lru_cache(maxsize=256)
def _scan_matrix(r: float, block: int) -> FloatArray:
    """``block + 1`` by ``block``: ``T[j, i] = r**(i-j)`` for ``i >= j`` (else 0), then ``r**(i+1)``.

    The last row multiplies the carry column (the previous block's final value), so one
    matrix product solves a block *and* adds the carry.
    """
    i = np.arange(block)
    d = i[None, :] - i[:, None]
    with np.errstate(under="ignore"):
        t = np.where(d >= 0, float(r) ** np.maximum(d, 0).astype(np.float64), 0.0)
        pw = float(r) ** np.arange(1, block + 1, dtype=np.float64)
    out = np.vstack([t, pw[None, :]])
    out.setflags(write=False)
    return out


def _carry(ends: FloatArray, r: float, block: int) -> FloatArray:
    """True recursion value at each block end, from the block-local ends (``y[-1] = 0``)."""
    with np.errstate(under="ignore"):
        rb = float(r) ** block
    if r == 1.0:
        return np.cumsum(ends, axis=1)
    if rb < _NEGLIGIBLE:
        carry = ends.copy()
        carry[:, 1:] += rb * ends[:, :-1]
        return carry
    return linear_scan(ends, rb)


def linear_scan(x: FloatArray, r: float, *, scale: float = 1.0, start: np.ndarray | None = None,
                seed: np.ndarray | None = None) -> FloatArray:
    """Solve ``y[t] = r * y[t-1] + u[t]`` (``y[-1] = 0``) along the last axis.

    ``u = scale * x``, except that with ``start`` (per row) ``u`` is 0 before ``start`` and
    ``seed`` (per row) at ``start``: this is how the EMA family starts each row's recursion
    at its own seed without a separate pass.

    Only the output is allocated at full size: ``scale`` is folded into the block matrix,
    the seeded blocks are recomputed from a small copy, and the carries are added in chunks
    (large temporaries cost page faults on every call, which on a VM dominated the runtime).

    Parameters
    ----------
    x
        ``(rows, bars)`` finite float64 values.
    r
        Recurrence coefficient, ``0 <= r <= 1``.
    scale
        Multiplier applied to ``x``.
    start, seed
        Optional ``(rows,)`` start index (``>= bars`` for "never") and value at the start.

    Returns
    -------
    numpy.ndarray
        A new ``(rows, bars)`` array.
    """
    rows, n = x.shape
    b = _BLOCK
    m = n // b
    body = m * b
    out = np.empty((rows, n))
    mat = _scan_matrix(float(r), b)
    tmat = mat[:b] * scale if scale != 1.0 else mat[:b]
    y = out[:, :body].reshape(rows, m, b)
    if m:
        np.matmul(x[:, :body].reshape(rows, m, b), tmat, out=y)
    tail = x[:, body:] * scale
    if start is not None and seed is not None:
        _apply_seed(x, y, tail, mat[:b], scale, start, seed)
    if m > 1:
        carry = _carry(np.ascontiguousarray(y[:, :, -1]), r, b)
        pw = mat[b]
        step = max(1, _CHUNK // max(rows, 1))
        for a in range(1, m, step):
            z = min(a + step, m)
            y[:, a:z, :] += carry[:, a - 1: z - 1, None] * pw
    prev = out[:, body - 1] if m else np.zeros(rows)
    # The last n % 16 values: a short loop over columns, vectorised across rows.
    for j in range(n - body):
        prev = prev * r + tail[:, j]
        out[:, body + j] = prev
    return out


def _apply_seed(x: FloatArray, y: FloatArray, tail: FloatArray, tmat: FloatArray, scale: float,
                start: np.ndarray, seed: np.ndarray) -> None:
    """Recompute the blocks up to each row's start with ``u`` zeroed before it and seeded at it."""
    rows, m, b = y.shape
    body = m * b
    n = body + tail.shape[1]
    s = np.minimum(start, n)
    live = np.nonzero(s < n)[0]
    dead = s >= n
    if dead.any():  # a row that never starts is all zeros
        y[dead] = 0.0
        tail[dead] = 0.0
    # Blocks that hold a position <= some live row's start.
    last = int(min(int(s[live].max()) // b, m - 1)) if live.size and m else -1
    if last >= 0:
        width = (last + 1) * b
        u = x[:, :width] * scale
        u[np.arange(width)[None, :] < s[:, None]] = 0.0
        in_body = live[s[live] < width]
        u[in_body, s[in_body]] = seed[in_body]
        np.matmul(u.reshape(rows, last + 1, b), tmat, out=y[:, : last + 1, :])
    if tail.shape[1]:
        tail[np.arange(body, n)[None, :] < s[:, None]] = 0.0
        in_tail = live[s[live] >= body]
        tail[in_tail, s[in_tail] - body] = seed[in_tail]


def prefix_sum(u: FloatArray) -> FloatArray:
    """Cumulative sum along the last axis (blockwise, faster than ``np.cumsum``)."""
    return linear_scan(u, 1.0)


@lru_cache(maxsize=256)
def _fir_matrices(weights: tuple[float, ...], block: int) -> tuple[FloatArray, FloatArray]:
    """Matrices of the blocked FIR: current block ``A`` and previous block ``C``.

    ``y[t] = sum_j w[j] * x[t - j]``; ``A[i_in, i_out] = w[i_out - i_in]`` and
    ``C[i_in, i_out] = w[i_out + block - i_in]`` where the index is in ``[0, k)``.
    """
    w = np.asarray(weights, dtype=np.float64)
    k = w.size
    i = np.arange(block)
    d = i[None, :] - i[:, None]
    a = np.where((d >= 0) & (d < k), w[np.clip(d, 0, k - 1)], 0.0)
    dc = d + block
    c = np.where((dc >= 0) & (dc < k), w[np.clip(dc, 0, k - 1)], 0.0)
    a.setflags(write=False)
    c.setflags(write=False)
    return a, c


def fir(x: FloatArray, weights: tuple[float, ...]) -> FloatArray:
    """Causal FIR filter ``y[t] = sum_j weights[j] * x[t - j]`` (``x[t<0] = 0``).

    ``weights[0]`` applies to the newest value. Exact per output (no running sum); used for
    windows up to ``_FIR_MAX`` long.
    """
    rows, n = x.shape
    k = len(weights)
    b = max(_BLOCK, -(-(k - 1) // 8) * 8)
    m = -(-n // b)
    if m * b != n:
        padded = np.zeros((rows, m * b))
        padded[:, :n] = x
        x = padded
    a, c = _fir_matrices(weights, b)
    xb = x.reshape(rows, m, b)
    y = np.matmul(xb, a)
    if m > 1:
        y[:, 1:, :] += np.matmul(xb[:, :-1, :], c)
    out: FloatArray = y.reshape(rows, m * b)
    return out[:, :n] if m * b != n else out


def _chunks(k: int) -> list[tuple[int, int]]:
    """Split a window of ``k`` lags into ``(offset, length)`` chunks of at most ``_FIR_MAX``."""
    q = -(-k // _FIR_MAX)
    c = -(-k // q)
    return [(m * c, min(c, k - m * c)) for m in range(q)]


def _add_shifted(out: FloatArray, part: FloatArray, lag: int) -> None:
    """``out[t] += part[t - lag]`` (in place)."""
    n = out.shape[1]
    if lag < n:
        out[:, lag:] += part[:, : n - lag]


def window_sum(x: FloatArray, k: int) -> FloatArray:
    """Sum of the last ``k`` values at each bar (values before the start count as 0).

    Exact per output (a sum of ``k`` values, no running-sum drift): windows longer than
    ``_FIR_MAX`` are split into chunks whose FIR outputs are added with the chunk's lag.
    """
    if k <= _FIR_MAX:
        return fir(x, (1.0,) * k)
    parts: dict[int, FloatArray] = {}
    out = np.zeros_like(x)
    for lag, length in _chunks(k):
        if length not in parts:
            parts[length] = fir(x, (1.0,) * length)
        _add_shifted(out, parts[length], lag)
    return out


def weighted_window_sum(x: FloatArray, k: int) -> FloatArray:
    """``sum_j (k - j) * x[t - j]`` over the last ``k`` bars (weight ``k`` on the newest).

    A chunk at lag ``m`` with length ``L`` contributes ``(k - m) * S_L - R_L`` shifted by
    ``m``, where ``S_L`` is the ``L``-bar sum and ``R_L[t] = sum_i i * x[t - i]``.
    """
    if k <= _FIR_MAX:
        return fir(x, tuple(float(k - j) for j in range(k)))
    sums: dict[int, tuple[FloatArray, FloatArray]] = {}
    out = np.zeros_like(x)
    for lag, length in _chunks(k):
        if length not in sums:
            sums[length] = (fir(x, (1.0,) * length), fir(x, tuple(float(i) for i in range(length))))
        s_l, r_l = sums[length]
        _add_shifted(out, (k - lag) * s_l - r_l, lag)
    return out


def _rolling(x: FloatArray, k: int, op: np.ufunc) -> FloatArray:
    """Sliding-window reduction by a sparse table; the first ``k-1`` outputs are partial."""
    cur = x
    width = 1
    while width * 2 <= k:
        nxt = cur.copy()
        op(cur[:, width:], cur[:, :-width], out=nxt[:, width:])
        cur = nxt
        width *= 2
    if width == k:
        return cur
    out = cur.copy()
    lag = k - width
    op(cur[:, lag:], cur[:, :-lag], out=out[:, lag:])
    return out


def rolling_max(x: FloatArray, k: int) -> FloatArray:
    """Maximum of the last ``k`` values (NaN-propagating)."""
    return _rolling(x, k, np.maximum)


def rolling_min(x: FloatArray, k: int) -> FloatArray:
    """Minimum of the last ``k`` values (NaN-propagating)."""
    return _rolling(x, k, np.minimum)


def check_period(name: str, value: int, minimum: int = 1) -> int:
    """Validate an integer period parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise InvalidInput(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def window_moments(x: FloatArray, k: int) -> tuple[FloatArray, FloatArray]:
    """Mean and population variance of the last ``k`` values at each bar.

    For ``k <= _FIR_MAX`` every output block is centred on a value of its own block before
    the sums are taken, so the ``E[x^2] - E[x]^2`` form loses precision only in proportion
    to ``(local range / std)^2`` rather than ``(price level / std)^2``. Longer windows centre
    each row on its first value (documented precision loss for drifting series).
    """
    rows, n = x.shape
    if n == 0:
        return x.copy(), x.copy()
    if k > _FIR_MAX:
        # Rare for band widths; exact window sums, centred on each row's first value.
        d = x - x[:, :1]
        s1 = window_sum(d, k) / k
        s2 = window_sum(d * d, k) / k
        var = np.maximum(s2 - s1 * s1, 0.0)
        return s1 + x[:, :1], var
    ones = (1.0,) * k
    b = max(_BLOCK, -(-(k - 1) // 8) * 8)
    m = -(-n // b)
    if m * b != n:
        padded = np.empty((rows, m * b))
        padded[:, :n] = x
        padded[:, n:] = x[:, -1:]
        x = padded
    a, c = _fir_matrices(ones, b)
    xb = x.reshape(rows, m, b)
    ref = xb[:, :, :1]
    cur = xb - ref
    s1 = np.matmul(cur, a)
    s2 = np.matmul(cur * cur, a)
    if m > 1:
        prev = xb[:, :-1, :] - ref[:, 1:, :]
        s1[:, 1:, :] += np.matmul(prev, c)
        s2[:, 1:, :] += np.matmul(prev * prev, c)
    s1 /= k
    s2 /= k
    var = np.maximum(s2 - s1 * s1, 0.0)
    mean = s1 + ref
    mean = mean.reshape(rows, m * b)[:, :n]
    var = var.reshape(rows, m * b)[:, :n]
    return mean, var
