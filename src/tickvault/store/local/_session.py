"""Writer sessions: knowing on open whether a writer died, so cleanup runs only when needed.

Scanning every series folder for orphans on every open costs a lock and a directory
walk per series (tens of milliseconds for hundreds of series, more with a cold cache),
yet orphans exist only after a writer died mid-operation. So a process announces itself
before its first file operation: it creates ``sessions/<pid>-<token>`` (durably) and
holds an ``flock`` on it until :meth:`Session.close` removes it. The kernel drops the
lock when the process dies, however it dies. On open, a session file whose lock can be
taken belongs to a dead writer: only then does the store sweep for orphans, and it
removes the stale session files once the sweep is complete.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
from pathlib import Path

from tickvault.store.local._fs import FileSystem

__all__ = ["Session", "stale_sessions"]

_SUFFIX = ".session"


def _try_lock(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def stale_sessions(folder: Path) -> list[tuple[Path, int]]:
    """Session files of dead writers, each with an open, locked descriptor (close it after)."""
    try:
        names = sorted(p for p in folder.iterdir() if p.name.endswith(_SUFFIX))
    except FileNotFoundError:
        return []
    out = []
    for path in names:
        fd = _try_lock(path)
        if fd is not None:
            out.append((path, fd))
    return out


class Session:
    """This process's writer session on one store (created lazily, see the module docstring)."""

    def __init__(self, folder: Path, fs: FileSystem) -> None:
        self._folder = folder
        self._fs = fs
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._fd: int | None = None
        self._pid = 0

    def ensure(self) -> None:
        """Make sure a durable, locked session file exists before this process writes."""
        if self._fd is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                return
            # After fork() the child shares the parent's lock: it needs its own session.
            self._fs.makedirs(self._folder)
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            # Lock it under a temp name, then rename: an opener never sees it unlocked.
            tmp = self._folder / f".{name}.tmp"
            path = self._folder / f"{name}{_SUFFIX}"
            self._fs.write_new(tmp, b"")
            fd = os.open(tmp, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._fs.rename(tmp, path)
                self._fs.fsync_dir(self._folder)
            except BaseException:
                os.close(fd)
                raise
            self._path, self._fd, self._pid = path, fd, os.getpid()

    def close(self) -> None:
        """End the session: remove the file, then drop the lock (idempotent)."""
        with self._lock:
            path, fd = self._path, self._fd
            self._path = self._fd = None
            if fd is None:
                return
            try:
                if path is not None and self._pid == os.getpid():
                    self._fs.unlink(path)
            finally:
                os.close(fd)
