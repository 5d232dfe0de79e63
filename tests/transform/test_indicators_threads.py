"""A large universe is computed on several threads: results must not depend on it.

:func:`tickvault.transform.indicators._kernels.run_rows` cuts the rows into blocks that the
calling thread and a small pool compute with the same compiled kernels; these tests force
that path on small inputs (and a thread count above this machine's) and compare with one
thread bit for bit, on rows with ragged starts and gaps, and from several caller threads at
once, as a web service's request threads would call it.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import tickvault.transform.indicators as ind
from tickvault.transform.indicators import _kernels

# Every indicator whose batch form goes through the row kernels (EMA/Wilder, RSI, MACD,
# Bollinger; ATR and ADX through the smoothing kernel; OBV and VWAP through the running sum).
CALLS: dict[str, Callable[[np.ndarray], Any]] = {
    "ema": lambda x: ind.ema(x, 20),
    "ema_first": lambda x: ind.ema(x, 20, seed="first"),
    "wilder": lambda x: ind.wilder(x, 14),
    "rsi": lambda x: ind.rsi(x, 14),
    "rsi_first": lambda x: ind.rsi(x, 14, seed="first"),
    "macd": lambda x: ind.macd(x, 12, 26, 9),
    "bbands": lambda x: ind.bbands(x, 20, 2.0),
    "bbands_short": lambda x: ind.bbands(x, 5, 2.0),
    "bbands_only": lambda x: ind.bbands(x, 20, 2.0, bands_only=True),
    "atr": lambda x: ind.atr(x * 1.01, x * 0.99, x, 14),
    "adx": lambda x: ind.adx(x * 1.01, x * 0.99, x, 14),
    "obv": lambda x: ind.obv(x, np.abs(x)),
    "vwap": lambda x: ind.vwap(x * 1.01, x * 0.99, x, np.abs(x), np.arange(x.shape[1]) // 100),
}


def _universe(rows: int = 23, bars: int = 700) -> np.ndarray:
    rng = np.random.default_rng(11)
    x = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-2, (rows, bars)), axis=1))
    x[1, :40] = np.nan  # a later listing
    x[4, 300] = np.nan  # a gap
    x[5, 200:230] = np.inf
    x[7] = np.nan  # never listed
    x[9, 650:] = np.nan  # delisted
    return x


def _arrays(result: Any) -> list[np.ndarray]:
    return [np.asarray(a) for a in result] if isinstance(result, tuple) else [np.asarray(result)]


def _one_thread(monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> list[np.ndarray]:
    with monkeypatch.context() as m:
        m.setattr(_kernels, "threads", lambda: 1)
        return _arrays(fn())


def _threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(_kernels, "threads", lambda: 4)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_threaded_rows_are_bit_identical_to_one_thread(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    x = _universe()
    want = _one_thread(monkeypatch, lambda: CALLS[name](x))
    _threaded(monkeypatch)
    got = _arrays(CALLS[name](x))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)  # NaN == NaN here; values bit for bit


def test_a_read_only_universe_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _universe()
    x.setflags(write=False)
    want = _one_thread(monkeypatch, lambda: ind.macd(x))
    _threaded(monkeypatch)
    for g, w in zip(_arrays(ind.macd(x)), want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_concurrent_callers_get_their_own_results(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many request threads computing at once share the helper pool; none may see another's rows.
    inputs = [_universe(rows=10 + i, bars=400 + 10 * i) * (1.0 + i) for i in range(8)]
    want = [_one_thread(monkeypatch, lambda x=x: ind.bbands(x, 20)) for x in inputs]
    _threaded(monkeypatch)
    with ThreadPoolExecutor(max_workers=8) as callers:
        got = list(callers.map(lambda x: _arrays(ind.bbands(x, 20)), inputs * 3))
    for i, result in enumerate(got):
        for g, w in zip(result, want[i % len(inputs)], strict=True):
            np.testing.assert_array_equal(g, w)


def test_an_error_in_a_block_reaches_the_caller_after_every_block(monkeypatch: pytest.MonkeyPatch) -> None:
    _threaded(monkeypatch)
    done: list[int] = []

    def kernel(x: np.ndarray, out: np.ndarray) -> None:
        if x[0, 0] == 3.0:
            raise ValueError("bad block")
        out[:] = x
        done.append(x.shape[0])

    x = np.repeat(np.arange(12.0)[:, None], 5, axis=1)
    out = np.zeros_like(x)
    with pytest.raises(ValueError, match="bad block"):
        _kernels.run_rows(kernel, (x,), (), (out,))
    assert sum(done) == 12 - 1  # the other blocks were all written before the call returned
    np.testing.assert_array_equal(np.delete(out, 3, axis=0), np.delete(x, 3, axis=0))


def test_small_inputs_stay_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "threads", lambda: 4)
    seen: set[str] = set()

    def kernel(x: np.ndarray, out: np.ndarray) -> None:
        seen.add(threading.current_thread().name)
        out[:] = x

    one_row = np.ones((1, 2_000_000))
    small = np.ones((8, 1000))
    for x in (one_row, small):
        _kernels.run_rows(kernel, (x,), (), (np.empty_like(x),))
    assert seen == {threading.current_thread().name}


def test_thread_count_follows_the_process_affinity() -> None:
    assert 1 <= _kernels.threads() <= (os.cpu_count() or 1)


def _rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only (madvise, /proc)")
def test_prefault_maps_a_block_of_a_fresh_output_and_keeps_contents() -> None:
    out = _kernels.empty((4, 1 << 19))  # 16 MiB: an anonymous mapping of its own
    out[0, :10] = np.arange(10.0)
    before = _rss()
    _kernels._prefault(out[1:3, 5:])  # not page-aligned at either end
    grown = _rss() - before
    np.testing.assert_array_equal(out[0, :10], np.arange(10.0))
    release = tuple(int(p) for p in os.uname().release.split(".")[:2] if p.isdigit())
    if release < (5, 14):  # an older kernel ignores the advice: the writes fault the pages in
        pytest.skip("MADV_POPULATE_WRITE needs Linux 5.14")
    assert grown >= (8 << 20) - 2 * 4096  # rows 1-2 (8 MiB) are now resident
    _kernels._prefault(out[1:3])  # again: nothing changes
    out[1:3] = 1.0
    assert float(out[1:3].sum()) == 2 * (1 << 19)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_computes_with_its_own_helper_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pre-forking server forks after the parent used the pool: the child's copy of the pool
    # has no threads, so it must start its own (else every block runs on the caller).
    _threaded(monkeypatch)
    seen: set[str] = set()
    lock = threading.Lock()

    def kernel(x: np.ndarray, out: np.ndarray) -> None:
        with lock:
            seen.add(threading.current_thread().name)
        threading.Event().wait(0.01)  # long enough for a helper to take a block
        out[:] = x

    x = np.ones((16, 10))
    _kernels.run_rows(kernel, (x,), (), (np.empty_like(x),))  # the parent's pool exists now
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report whether a helper thread took a block, then leave at once
        seen.clear()
        _kernels.run_rows(kernel, (x,), (), (np.empty_like(x),))
        os.write(write, b"1" if any(n.startswith("tickvault-indicators") for n in seen) else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"
