"""Recycled block memory: a freed block's memory is reused, memory anyone still sees never is."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tickvault.model import ColumnBlock, _memory

ROWS, N = 6, 50_000  # 2.4 MB: recycled


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    _memory.release()
    yield
    _memory.release()


def _address(block: ColumnBlock) -> int:
    return int(block.values.ctypes.data)


def test_a_freed_block_is_reused_by_the_next_one_of_about_its_size() -> None:
    block = ColumnBlock(np.float64, ROWS, N)
    first = _address(block)
    del block
    again = ColumnBlock(np.float64, ROWS, N - 1000)  # a slightly shorter symbol-year
    assert _address(again) == first
    assert again.values.shape == (ROWS, N - 1000)


@pytest.mark.parametrize("keep", ["values", "row view", "arrow column", "arrow buffer", "frame", "polars",
                                  "numpy of arrow"])
def test_memory_in_use_anywhere_is_never_handed_out(keep: str) -> None:
    block = ColumnBlock(np.float64, ROWS, N)
    block.values[:] = 7.0
    first = _address(block)
    arrays = [block.array(i) for i in range(ROWS)]
    held: object = {
        "values": block.values,
        "row view": block.values[2, 10:20],
        "arrow column": arrays[3],
        "arrow buffer": arrays[1].buffers()[1],
        "frame": pd.DataFrame(block.values.T),  # may or may not copy: either way it is safe
        "polars": pl.from_arrow(pa.table({"a": arrays[0]})),
        "numpy of arrow": arrays[4].to_numpy(),
    }[keep]
    del block, arrays
    gc.collect()
    other = ColumnBlock(np.float64, ROWS, N)
    other.values[:] = -1.0
    assert _address(other) != first or (keep == "frame" and not np.shares_memory(held.to_numpy(), other.values))
    if keep == "polars":
        assert held.to_series().to_numpy()[0] == 7.0  # type: ignore[attr-defined]
    elif keep == "frame":
        assert (held.to_numpy() == 7.0).all()  # type: ignore[attr-defined]
    elif keep == "arrow buffer":
        assert np.frombuffer(held, dtype=np.float64)[0] == 7.0  # type: ignore[call-overload]
    elif keep == "arrow column":
        assert held.to_numpy()[0] == 7.0  # type: ignore[attr-defined]
    else:
        assert (np.asarray(held) == 7.0).all()


def test_small_blocks_are_not_remembered() -> None:
    ColumnBlock(np.float64, 2, 100)
    assert _memory.release() == 0


def test_remembered_bytes_are_bounded() -> None:
    blocks = [ColumnBlock(np.float64, ROWS, N) for _ in range(40)]  # 96 MB, all in use
    assert sum(b.size for b in _memory._recent) <= _memory.KEEP_BYTES
    del blocks
    fresh = [ColumnBlock(np.float64, ROWS, N) for _ in range(3)]
    assert len({_address(b) for b in fresh}) == 3


def test_a_much_bigger_idle_buffer_is_not_used_for_a_small_request() -> None:
    big = ColumnBlock(np.float64, ROWS, 4 * N)
    address = _address(big)
    del big
    small = ColumnBlock(np.float64, ROWS, N)
    assert _address(small) != address


def test_threads_never_share_a_block() -> None:
    errors: list[str] = []

    def work(k: int) -> None:
        for _ in range(200):
            block = ColumnBlock(np.float64, ROWS, N)
            block.values[:, ::997] = k
            time.sleep(0)  # let the others allocate meanwhile
            if not (block.values[:, ::997] == k).all():
                errors.append(f"thread {k} saw another thread's writes")
            del block

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_child_forked_while_the_lock_is_held_allocates() -> None:
    ColumnBlock(np.float64, ROWS, N)  # something remembered
    with _memory._lock:  # another thread of the parent is allocating at the moment of fork
        pid = os.fork()
        if pid == 0:  # the child: exit code 0 only if it can allocate (no deadlock)
            code = 1
            try:
                block = ColumnBlock(np.float64, ROWS, N)
                block.values[:] = 1.0
                code = 0 if _memory.release() == 1 else 2
            finally:
                os._exit(code)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child deadlocked on the block memory lock")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
