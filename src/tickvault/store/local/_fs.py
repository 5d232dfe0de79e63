"""Every file-system step of the embedded store, in one small place.

Atomic publication of a file is: write a temp file next to the target, ``fsync`` it,
``rename`` it over the final name, ``fsync`` the directory; only then does the caller
commit the manifest row that makes the file visible (the publication point). Each of
these steps is one method of :class:`FileSystem`, so the crash tests can substitute a
subclass that fails at any chosen step or simulates a power loss that drops whatever was
not yet synced. Nothing else in the store touches the file system for writing.

``durable=False`` skips the ``fsync`` calls: data then survives a crash of the process
(the kernel keeps its page cache) but not a power loss. It exists for bulk loads and tests
that accept that trade-off; the default is durable.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

__all__ = ["TEMP_SUFFIX", "FileSystem"]

TEMP_SUFFIX = ".tmp"


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
