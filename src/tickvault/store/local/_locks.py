"""Per-series writer locks: one ``flock`` file per (symbol, timeframe).

``flock`` locks belong to an open file description, so two threads of one process that
each open the lock file exclude each other exactly like two processes do, and the kernel
drops the lock when its holder dies (``kill -9`` included): a crashed writer never leaves
a stale lock behind. Readers never take these locks.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from tickvault.errors import StoreLocked

__all__ = ["SeriesLock"]


class SeriesLock:
    """An exclusive lock on one series, waiting at most ``timeout`` seconds.

    Parameters
    ----------
    path
        The lock file (created if missing).
    timeout
        Seconds to wait; ``0`` tries once.
    symbol, timeframe
        Context for the :class:`~tickvault.errors.StoreLocked` message.
    """

    def __init__(self, path: Path, timeout: float, *, symbol: str, timeframe: str) -> None:
        self._path = path
        self._timeout = timeout
        self._symbol = symbol
        self._timeframe = timeframe
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; return whether it was taken."""
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the series' first writer: create the folder once
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def acquire(self) -> None:
        """Wait for the lock.

        Raises
        ------
        StoreLocked
            If another writer still holds it after ``timeout`` seconds.
        """
        deadline = time.monotonic() + self._timeout
        delay = 0.0005
        while not self.try_acquire():
            now = time.monotonic()
            if now >= deadline:
                raise StoreLocked("another writer holds this series", symbol=self._symbol,
                                  timeframe=self._timeframe, waited_s=self._timeout)
            # Back off exponentially (0.5 ms .. 50 ms) so waiting costs little CPU.
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)

    def release(self) -> None:
        """Release the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> SeriesLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
