"""Numeric kernels shared by every indicator, and the loader of the compiled ones.

Why this module exists: the indicators are recursions (EMA, Wilder smoothing) and sliding
windows (SMA, WMA, rolling max/min, window moments).

- The recursions, RSI, MACD and Bollinger Bands run as compiled single-pass kernels
  (numba, :mod:`tickvault.transform.indicators._jit`), loaded by :func:`jit` on first use so
  that importing tickvault never imports numba or compiles anything.
- A short finite window (``k <= _FIR_MAX``: SMA, WMA, the gap masks) is a blocked FIR in
  numpy: two matrix products per block (the current and the previous block). Each output
  is an exact sum of ``k`` products, so there is no running-sum drift. Longer windows are
  split into chunks of at most ``_FIR_MAX`` lags whose outputs are added with their lag,
  so they stay exact too (no running sum, unlike TA-Lib).
- Rolling max/min use a sparse table (``log2(k)`` vector passes).
- A large universe is cut into contiguous row blocks that the compiled kernels (which release
  the GIL) compute on every usable core at once (:func:`run_rows`); each row is computed by
  the same code as on one thread, so the results are bit-identical.

Layout: every kernel takes a 2-D float64 array ``(rows, bars)``: one row per symbol, time on
the last axis. The numpy kernels need missing values (NaN/inf) replaced by 0 by the caller,
which re-applies its own missing-value mask (see :func:`prepare`), because ``0 * NaN``
inside a matrix product would leak a NaN backwards in time; the compiled ones take raw
values and handle missing values themselves.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, lru_cache
from types import ModuleType
from typing import Any, cast

import numpy as np

from tickvault.errors import InvalidInput

__all__ = [
    "Prepared",
    "empty",
    "empty_many",
    "fir",
    "jit",
    "prefix_sum",
    "prepare",
    "rolling_max",
    "rolling_min",
    "run_rows",
    "weighted_window_sum",
    "window_sum",
]

_BLOCK = 16
_FIR_MAX = 64

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


# numpy asks for transparent huge pages (MADV_HUGEPAGE) on arrays from 4 MiB on.
_HUGE = 4 << 20


def empty(shape: tuple[int, ...]) -> FloatArray:
    """An uninitialised float64 output array, allocated like a C library's output.

    From 4 MiB on, numpy's allocator marks arrays for transparent huge pages. On VMs whose
    freed memory is handed back to the host (free page reporting, as on the benchmark VM),
    every fresh huge page then costs a host fault: a 389 MB indicator output took 0.3-3 s
    (median 1.1 s) to fill instead of ~0.35 s with ordinary pages, swinging with whatever
    else had allocated memory (docs/analytics.md). Large outputs are therefore backed by an anonymous
    mapping of their own (ordinary pages, unmapped when the array is freed), as a C
    library's ``malloc`` would give; small ones come from ``numpy.empty``.
    """
    nbytes = 8 * math.prod(shape)
    if nbytes < _HUGE or not hasattr(mmap, "MAP_PRIVATE"):  # (no MAP_PRIVATE on Windows)
        return np.empty(shape)
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE), dtype=np.float64).reshape(shape)


def empty_many(count: int, shape: tuple[int, ...]) -> list[FloatArray]:
    """``count`` outputs of ``shape`` (:func:`empty`); small ones share one allocation.

    One allocation instead of several keeps glibc's heap from being trimmed and refaulted
    between calls (measured: 0 page faults per call instead of ~900 for Bollinger on one
    100K series). Large outputs are allocated separately so that keeping one of them does
    not keep the others' memory alive.
    """
    if 8 * count * math.prod(shape) < _HUGE:
        return list(np.empty((count, *shape)))
    return [empty(shape) for _ in range(count)]


@cache
def jit() -> ModuleType:
    """The compiled kernels (:mod:`._jit`); imports numba on the first call, not before."""
    from tickvault.transform.indicators import _jit

    return _jit


# Below this many values a universe stays on the calling thread: handing blocks to other
# threads costs ~0.1 ms, the compiled kernels take ~2 ns per value.
_PARALLEL_MIN = 1 << 20
# Blocks per thread: with the cores shared with other work, one late thread then delays the
# call by a small block only (the others take over the remaining blocks).
_BLOCKS_PER_THREAD = 4
# madvise(2) advice that faults a range in, writable, in one call (Linux 5.14+).
_MADV_POPULATE_WRITE = 23
_PAGE = mmap.PAGESIZE


@cache
def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise`` (the GIL released while it runs), or ``None`` off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int, int, int], int], fn)


def _prefault(a: FloatArray) -> None:
    """Fault in the pages of ``a`` with one system call instead of one trap per page.

    The pages of a fresh output are faulted in by the first write anyway; asking for them in
    one ``MADV_POPULATE_WRITE`` saves the per-page trap (measured on the benchmark VM: 160-170
    ms of CPU instead of 185-265 ms for a fresh 389 MB output). Pages are only mapped, never
    written, so a page shared with a neighbouring block (or already in use) is unaffected.
    A kernel without the advice (EINVAL) changes nothing: the writes fault the pages in.
    """
    fn = _madvise()
    if fn is None or a.nbytes == 0:
        return
    start = a.ctypes.data
    first = start - start % _PAGE
    fn(first, start + a.nbytes - first, _MADV_POPULATE_WRITE)


@cache
def threads() -> int:
    """Number of CPUs this process may run on (its affinity mask where the OS has one)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return max(1, int(count() or 1))
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@cache
def _pool() -> ThreadPoolExecutor:
    """Helper threads shared by every call (the calling thread is the last worker)."""
    return ThreadPoolExecutor(max_workers=threads() - 1, thread_name_prefix="tickvault-indicators")


if hasattr(os, "register_at_fork"):  # a forked child (a pre-forking server) starts its own helpers
    os.register_at_fork(after_in_child=_pool.cache_clear)


def run_rows(kernel: Callable[..., None], inputs: Sequence[np.ndarray], params: Sequence[Any],
             outputs: Sequence[FloatArray]) -> None:
    """``kernel(*inputs, *params, *outputs)``, on every usable core for a large universe.

    Parameters
    ----------
    kernel
        A compiled row kernel of :mod:`._jit` (releases the GIL; row ``r`` of every output
        depends on row ``r`` of the inputs only).
    inputs
        Arrays whose first axis is the row (values, per-row start indices).
    params
        Scalar parameters, passed as is.
    outputs
        ``(rows, bars)`` arrays written by the kernel.

    Notes
    -----
    With at least 2 rows, ``_PARALLEL_MIN`` values and more than one usable CPU, the rows are
    cut into contiguous blocks that the calling thread and a small shared pool of helper
    threads take in turn, so the kernel and the first-touch page faults of fresh output
    memory run on every core (each block's output pages are faulted in by one system call,
    :func:`_prefault`). Numba's own ``parallel=True`` is not used: its default
    threading layer aborts the process when it is entered from several threads at once (a
    web service computing indicators in its request threads). Each row goes through the same
    compiled code either way, so the results are bit-identical to one thread's.
    """
    rows = int(outputs[0].shape[0])
    workers = min(threads(), rows)
    if workers < 2 or outputs[0].size < _PARALLEL_MIN:
        kernel(*inputs, *params, *outputs)
        return
    count = min(rows, workers * _BLOCKS_PER_THREAD)
    bounds = [rows * i // count for i in range(count + 1)]

    def block(i: int) -> None:
        a, b = bounds[i], bounds[i + 1]
        for y in outputs:  # each thread faults in its own block's pages, in one call per output
            _prefault(y[a:b])
        kernel(*(x[a:b] for x in inputs), *params, *(y[a:b] for y in outputs))

    _Blocks(count, block).run(workers - 1)


class _Blocks:
    """Blocks ``0 .. count-1`` of one call, taken in turn by the caller and helper threads.

    The caller waits for the blocks, not for the helpers: a helper that starts late (the pool
    busy with another call's blocks) finds nothing left to do, and the caller has not waited
    for it.
    """

    def __init__(self, count: int, block: Callable[[int], None]) -> None:
        self._count = count
        self._block = block
        self._next = 0
        self._finished = 0
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._done = threading.Event()

    def run(self, helpers: int) -> None:
        """Compute every block with up to ``helpers`` pool threads; re-raise a block's error."""
        for _ in range(helpers):
            _pool().submit(self._work)
        self._work()
        self._done.wait()
        if self._errors:
            raise self._errors[0]

    def _work(self) -> None:
        while True:
            with self._lock:
                i = self._next
                self._next += 1
            if i >= self._count:
                return
            try:
                self._block(i)
            except BaseException as exc:  # handed to the caller, which re-raises it
                self._errors.append(exc)
            finally:
                with self._lock:
                    self._finished += 1
                    if self._finished == self._count:
                        self._done.set()


def prefix_sum(u: FloatArray) -> FloatArray:
    """Cumulative sum along the last axis (``u``: finite ``(rows, bars)`` float64)."""
    out = empty(u.shape)
    run_rows(jit().cumsum_rows, (np.ascontiguousarray(u),), (), (out,))
    return out


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
