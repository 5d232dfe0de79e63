"""Recycled memory for big decoded blocks (:class:`tickvault.model.ColumnBlock`).

Why this exists: a symbol-year of minute bars decodes into a ~4.7 MB float block, and a
cold read that gets that memory fresh from the kernel pays for the kernel to fault it in
and zero it. On a VM that is not a fixed cost: Arrow's default allocator (mimalloc) hands
its free pages back to the kernel, its memory is backed by transparent huge pages, and
zeroing a fresh 2 MB page there was measured at 1-4 ms (``perf``: ``do_huge_pmd_anonymous_page
-> folio_zero_user -> clear_page_erms``), which made one cold read in two take 12-30 ms
instead of ~5. So the big buffers handed out lately are remembered, and one that nothing
uses any more is handed out again instead of a fresh one.

Whether a buffer is in use is read from its reference count: every user of block memory
reaches it through a ``memoryview`` of the buffer (numpy arrays and their views, pandas
blocks, and Arrow arrays through :meth:`ColumnBlock.buffer`, whose base is the block),
and each live view's managed buffer holds one reference to it. The memory kept idle is
bounded (:data:`KEEP_BYTES` for everything remembered, in use or not), per process.
"""

from __future__ import annotations

import os
import sys
import threading

import pyarrow as pa

__all__ = ["KEEP_BYTES", "MIN_BYTES", "release", "writable"]

MIN_BYTES = 1 << 18  #: buffers from this size on are recycled (a symbol-year block is ~4.7 MB)
KEEP_BYTES = 32 << 20  #: at most this many bytes of recent buffers are remembered

_lock = threading.Lock()
_recent: list[pa.Buffer] = []  # big buffers handed out lately, oldest first


def _refs(buffers: list[pa.Buffer], i: int) -> int:
    return sys.getrefcount(buffers[i])


_IDLE_REFS = _refs([pa.allocate_buffer(1)], 0)  # the count of a buffer only the list holds


def writable(nbytes: int) -> memoryview:
    """``nbytes`` of writable memory (contents undefined) for a block that may live long.

    From :data:`MIN_BYTES` on, an idle remembered buffer of about that size is reused if
    there is one (the smallest that fits), else a new one is allocated from Arrow's pool
    and remembered.
    """
    if nbytes < MIN_BYTES:
        return memoryview(pa.allocate_buffer(nbytes))
    with _lock:
        best = -1
        for i in range(len(_recent)):
            size = _recent[i].size
            # A buffer serves requests of at least 3/4 of its size (at most a third wasted).
            if nbytes <= size and 3 * size <= 4 * nbytes and _refs(_recent, i) <= _IDLE_REFS \
                    and (best < 0 or size < _recent[best].size):
                best = i
        buf = _recent.pop(best) if best >= 0 else pa.allocate_buffer(nbytes)
        _recent.append(buf)
        view = memoryview(buf)  # in use from here on (its reference), still under the lock
        total = sum(b.size for b in _recent)
        while total > KEEP_BYTES and len(_recent) > 1:
            total -= _recent.pop(0).size  # forgotten: freed now if idle, else when its users go
    return view if buf.size == nbytes else view[:nbytes]


def release() -> int:
    """Forget every remembered buffer (idle ones are freed now); returns how many there were."""
    with _lock:
        n = len(_recent)
        _recent.clear()
    return n


def _after_fork() -> None:
    # A child forked while another thread held the lock would wait for it forever; it
    # starts with a lock and a list of its own (the parent's buffers are not its to reuse).
    global _lock, _recent
    _lock = threading.Lock()
    _recent = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
