"""Thread pools of the embedded store, one per process.

Why this module exists: the writer's pool (encodings, fsyncs) and the decoder's helper
thread are made on first use and must be made again in a child forked from a process
that had them (a pool inherited through ``fork()`` has no threads); one small class does
that for both.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["ProcessPool"]


class ProcessPool:
    """A :class:`ThreadPoolExecutor` made on first :meth:`get`, per process.

    Parameters
    ----------
    workers
        Its number of threads.
    prefix
        Its threads' name prefix.
    """

    def __init__(self, workers: int, prefix: str) -> None:
        self._workers = workers
        self._prefix = prefix
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def get(self) -> ThreadPoolExecutor:
        """This process's pool (made now if this process has none yet)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self._prefix)
                self._pid = os.getpid()
            return self._pool
