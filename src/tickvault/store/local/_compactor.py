"""Deferred compaction: merging a crowded partition off the writer's critical path.

A write that leaves a period partition with more than ``compact_threshold`` files used
to merge it before returning, so one write in every few paid for a compaction (the p99
of small upserts). Now the write only commits and hands the crowded partitions to this
object; one daemon thread per store merges them (:meth:`Core.compact_many`: one
publication and one manifest transaction per group of a few series). It takes each
series lock without waiting and skips a series another writer holds: the next write of
that series finds the partition still crowded and hands it over again. It also steps
aside for this store's own writes: between two groups it waits while a write is running,
so a write waits at most for the one group in progress, never for the whole backlog.

Compaction never changes what a reader sees (same rows, fewer files), and it is
crash-safe like any publication, so running it later or not at all (the process exits
first) only costs read speed. :meth:`Compactor.close` stops the thread after the
compaction in progress; what was still queued is dropped and found again by later writes.

The same thread also checkpoints the catalog's WAL when a write asks for it
(:meth:`Compactor.request_idle`): writes that carry inline deltas append megabytes to the
WAL, and SQLite's automatic checkpoint would copy them into the database file (and fsync
it) inside the next commit. A commit is durable once its WAL frames are synced, so the
copy can wait for a moment when no write of this store is running.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tickvault.store.local._layout import SeriesKey

__all__ = ["Compactor", "Todo"]

Todo = dict[SeriesKey, set[str] | None]
_LIVE: weakref.WeakSet[Compactor] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """At interpreter exit, let running compactions finish instead of dying mid-way."""
    for compactor in list(_LIVE):
        compactor.close()


class Compactor:
    """One background thread running ``run(todo)`` for the partitions handed to it.

    Parameters
    ----------
    run
        Compacts the given partitions; must not raise for a routine failure (log it).
    order
        Sort key of a series (the store's lock order).
    group
        How many series one call of ``run`` gets.
    idle
        Work to run once after :meth:`request_idle`, when no write is running and no
        compaction is queued (a WAL checkpoint); must not raise for a routine failure.
    """

    def __init__(self, run: Callable[[Todo], None], order: Callable[[SeriesKey], Any], group: int = 16,
                 idle: Callable[[], None] | None = None) -> None:
        self._run = run
        self._idle = idle
        self._idle_wanted = False
        self._order = order
        self._group = group
        self._writers = 0
        self._cond = threading.Condition()
        self._todo: Todo = {}
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        _LIVE.add(self)

    def submit(self, todo: Todo) -> None:
        """Queue partitions for compaction and return at once."""
        with self._cond:
            if self._closed:
                return
            for key, periods in todo.items():
                have = self._todo.get(key, set())
                self._todo[key] = None if periods is None or have is None else have | periods
            self._wake()

    def request_idle(self) -> None:
        """Run the ``idle`` work once the thread is idle (many requests, one run)."""
        if self._idle is None:
            return
        with self._cond:
            if self._closed:
                return
            self._idle_wanted = True
            self._wake()

    def _wake(self) -> None:
        """Start the thread if needed and wake it (the caller holds the condition)."""
        # A thread does not survive fork(): a child process starts its own.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="tickvault-compactor", daemon=True)
            self._pid = os.getpid()
            self._busy = False
            self._thread.start()
        self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Mark a write of this store as running (the thread pauses between groups)."""
        with self._cond:
            self._writers += 1
        try:
            yield
        finally:
            with self._cond:
                self._writers -= 1
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while (not (self._todo or self._idle_wanted) or self._writers) and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                keys = sorted(self._todo, key=self._order)[:self._group]
                todo = {k: self._todo.pop(k) for k in keys}
                idle = self._idle if not todo and self._idle_wanted else None
                if idle is not None:
                    self._idle_wanted = False
                self._busy = True
            try:
                if idle is not None:
                    idle()
                else:
                    self._run(todo)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def drain(self) -> None:
        """Wait until everything queued so far has been compacted (or skipped), idle work included."""
        with self._cond:
            while (self._todo or self._idle_wanted or self._busy) and not self._closed and self._alive():
                self._cond.wait(0.1)

    def _alive(self) -> bool:
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread after the compaction in progress (idempotent)."""
        with self._cond:
            self._closed = True
            self._todo = {}
            self._cond.notify_all()
            thread = self._thread if self._alive() else None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
