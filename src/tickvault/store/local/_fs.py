"""Every file-system step of the embedded store, in one small place.

Atomic publication of a file is: write a temp file next to the target, ``fsync`` it,
``rename`` it over the final name, ``fsync`` the directory; only then does the caller
commit the manifest row that makes the file visible (the publication point). Each of
these steps is one method of :class:`FileSystem`, so the crash tests can substitute a
subclass that fails at any chosen step or simulates a power loss that drops whatever was
not yet synced. Nothing else in the store touches the file system for writing.

Publishing many small files at once can instead make them all durable with one
``syncfs(2)`` of their file system (:meth:`FileSystem.sync_all`): write every temp file,
rename each to its final name, then one call flushes every file's data and every folder
entry, where per-file ``fsync`` costs two journal commits per file (~0.7 s for 500 files
on this VM even overlapped on 8 threads, against ~15 ms). ``syncfs`` also flushes what
other processes left dirty on that file system, so it is used only while the machine's
dirty page cache is small (:data:`SYNCFS_MAX_DIRTY`), and only on Linux >= 5.8, where it
reports write-back errors.

``durable=False`` skips the ``fsync`` calls: data then survives a crash of the process
(the kernel keeps its page cache) but not a power loss. It exists for bulk loads and tests
that accept that trade-off; the default is durable.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path

import pyarrow as pa

__all__ = ["SYNCFS_MAX_DIRTY", "TEMP_SUFFIX", "FileSystem", "dirty_bytes"]

TEMP_SUFFIX = ".tmp"
#: ``sync_all`` is used only while the machine holds at most this much dirty or
#: in-flight page cache (``Dirty`` + ``Writeback`` in /proc/meminfo): it bounds how much
#: of other processes' data one ``syncfs`` may have to wait for (~30 ms for 64 MiB on this
#: VM's disk, against ~0.7 s for the per-file fsyncs of a 500-file call).
SYNCFS_MAX_DIRTY = 64 * 2**20


@cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, where it exists and reports write-back errors (Linux >= 5.8)."""
    if sys.platform != "linux":
        return None
    version = re.match(r"(\d+)\.(\d+)", platform.release())
    if version is None or (int(version[1]), int(version[2])) < (5, 8):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def dirty_bytes() -> int | None:
    """The machine's dirty plus under-write-back page cache in bytes (``None``: unknown)."""
    total = 0
    seen = 0
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith((b"Dirty:", b"Writeback:")):
                    total += int(line.split()[1]) * 1024
                    seen += 1
    except (OSError, ValueError, IndexError):
        return None
    return total if seen == 2 else None


class FileSystem:
    """The store's file-system primitives (see the module docstring).

    Parameters
    ----------
    durable
        When false, ``fsync_file`` and ``fsync_dir`` do nothing.
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable

    # -- hooks --------------------------------------------------------------------------
    def point(self, name: str) -> None:
        """Mark a named step of a protocol (``before_commit``, ``after_commit`` ...).

        The real file system ignores it; fault-injection subclasses crash here.
        """

    # -- primitives ---------------------------------------------------------------------
    def mkdir(self, path: Path) -> None:
        """Create one folder (its entry is durable only once the parent is synced)."""
        os.mkdir(path)

    def makedirs(self, path: Path) -> None:
        """Create ``path`` and any missing parents, making each new entry durable."""
        self.ensure_dirs([path])

    def ensure_dirs(self, paths: Iterable[Path]) -> None:
        """Create every missing folder of ``paths``, then sync each changed parent once.

        Publishing 50 yearly files into new folders costs 2 folder syncs, not 50.
        """
        missing: set[Path] = set()
        for path in paths:
            p = path
            while p not in missing and not p.is_dir():
                missing.add(p)
                p = p.parent
        parents: set[Path] = set()
        for d in sorted(missing, key=lambda q: len(q.parts)):
            try:
                self.mkdir(d)
            except FileExistsError:
                continue
            parents.add(d.parent)
        # The new entries live in their parents; sync deepest first so no folder is
        # synced before the entries created inside it.
        for parent in sorted(parents, key=lambda q: len(q.parts), reverse=True):
            self.fsync_dir(parent)

    def write_new(self, path: Path, data: bytes | memoryview) -> None:
        """Create ``path`` (which must not exist) holding ``data``; not synced."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view.nbytes:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)

    def fsync_file(self, path: Path) -> None:
        """Flush the file's data and metadata to stable storage."""
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        """Atomically rename ``src`` to ``dst`` (same file system)."""
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        """Flush a directory so the entries created/renamed in it survive a power loss."""
        if not self.durable:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        except OSError as exc:  # some file systems refuse fsync on directories
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
                raise
        finally:
            os.close(fd)

    def can_sync_all(self) -> bool:
        """Whether :meth:`sync_all` is available and cheap right now (see the module docstring).

        A subclass that models durability by overriding ``fsync_file`` or ``fsync_dir``
        (fault injection) gets ``False`` unless it overrides :meth:`sync_all` too, so its
        model never misses a sync.
        """
        cls = type(self)
        if not self.durable or _syncfs() is None:
            return False
        if cls.sync_all is FileSystem.sync_all and (cls.fsync_file is not FileSystem.fsync_file
                                                    or cls.fsync_dir is not FileSystem.fsync_dir):
            return False
        dirty = dirty_bytes()
        return dirty is not None and dirty <= SYNCFS_MAX_DIRTY

    def sync_all(self, paths: Iterable[Path]) -> None:
        """Flush every file system holding one of ``paths`` (folders) with ``syncfs(2)``.

        When it returns, the data of every file written there and every folder entry
        created or renamed there is durable, as if each file and folder had been
        ``fsync``'d. Only call it when :meth:`can_sync_all` said so.

        Raises
        ------
        OSError
            If the kernel reports a write-back error on one of those file systems.
        """
        fn = _syncfs()
        assert fn is not None
        devices: dict[int, Path] = {}
        for path in paths:
            devices.setdefault(os.stat(path).st_dev, path)
        for path in devices.values():
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if fn(fd) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), str(path))
            finally:
                os.close(fd)

    def unlink(self, path: Path) -> None:
        """Remove a file; a file already gone is not an error."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def rmdir_if_empty(self, path: Path) -> None:
        """Remove an empty directory; a non-empty or missing one is left alone."""
        try:
            os.rmdir(path)
        except OSError:
            pass

    def open_read(self, path: Path) -> pa.NativeFile:
        """Open a published file for reading (raises ``FileNotFoundError`` if it is gone).

        A plain OS file, not a memory map: a map of a file that is later truncated would
        turn a damaged file into a SIGBUS instead of an error.
        """
        return pa.OSFile(str(path), "r")

    def scandir_files(self, path: Path) -> Iterator[Path]:
        """Every regular file below ``path`` (recursively); nothing if it does not exist."""
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from self.scandir_files(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)

    # -- composed protocols ---------------------------------------------------------------
    def publish(self, final: Path, data: bytes | memoryview) -> None:
        """Atomically make ``final`` hold ``data``: temp file, fsync, rename, fsync dir.

        The caller commits the manifest row afterwards; until then the file is an orphan
        (invisible to readers), which the next open after a crash removes.
        """
        self.makedirs(final.parent)
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        self.write_new(tmp, data)
        self.fsync_file(tmp)
        self.rename(tmp, final)
        self.fsync_dir(final.parent)

    def move_aside(self, src: Path, dst: Path) -> None:
        """Durably move a (damaged) file out of the data tree into ``dst``."""
        self.makedirs(dst.parent)
        self.rename(src, dst)
        self.fsync_dir(dst.parent)
        self.fsync_dir(src.parent)
