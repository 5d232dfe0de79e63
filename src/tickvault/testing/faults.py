"""Fault injection for the embedded store's file-system layer: crashes and power loss.

:class:`PowerLossFS` is a :class:`~tickvault.store.local.FileSystem` that performs every
operation for real while keeping a model of what the disk would still hold after a power
cut: file contents not yet ``fsync``'d and directory entries (creations, renames,
unlinks, new folders) not yet made durable by an ``fsync`` of their folder. Arm it to
crash before its N-th operation (or at a named protocol point such as
``before_commit``); after the :class:`SimulatedCrash` call :meth:`PowerLossFS.power_loss`
to roll the folder back to exactly what a real power loss could leave, then reopen the
store with a plain file system and check it.

Usage::

    fs = PowerLossFS()
    store = LocalStore(root, fs=fs)          # set up the old state
    fs.arm(crash_at=3)                       # crash before the 4th operation from now
    with pytest.raises(SimulatedCrash):
        store.write("AAPL", "1m", table)
    fs.power_loss()
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tickvault.store.local import FileSystem

__all__ = ["PowerLossFS", "SimulatedCrash"]


class SimulatedCrash(BaseException):
    """The injected crash. A ``BaseException`` so no ``except Exception`` can swallow it."""


@dataclass
class _Pending:
    """A directory change that a power loss may undo."""

    kind: str  # "create" | "rename" | "unlink" | "mkdir"
    path: Path
    source: Path | None = None
    content: bytes | None = None


class PowerLossFS(FileSystem):
    """A file system that can crash at any step and forget everything not yet synced.

    Every operation name is appended to :attr:`trace` (``write_new``, ``fsync_file``,
    ``rename``, ``fsync_dir``, ``unlink``, ``mkdir``, ``point:<name>`` ...), which is how
    a test enumerates the steps of a protocol and then crashes at each of them.
    """

    def __init__(self) -> None:
        super().__init__(durable=True)
        self.trace: list[str] = []
        self.crashed = False
        self._crash_at: int | None = None
        self._crash_point: str | None = None
        self._unsynced: dict[Path, int] = {}  # file -> bytes that were durable before the writes
        self._pending: dict[Path, list[_Pending]] = {}  # folder -> entry changes since its last fsync

    # -- arming -------------------------------------------------------------------------
    def arm(self, *, crash_at: int | None = None, point: str | None = None) -> None:
        """Reset the trace; crash before operation ``crash_at`` or at protocol ``point``."""
        self.trace = []
        self._crash_at = crash_at
        self._crash_point = point

    def _step(self, name: str) -> None:
        if self.crashed:
            raise SimulatedCrash(f"the machine is down ({name} after the crash)")
        if self._crash_at is not None and len(self.trace) == self._crash_at:
            self.crashed = True
            raise SimulatedCrash(f"crash before step {len(self.trace)}: {name}")
        self.trace.append(name)

    def _note(self, folder: Path, change: _Pending) -> None:
        self._pending.setdefault(folder, []).append(change)

    # -- operations -----------------------------------------------------------------------
    def point(self, name: str) -> None:
        """Protocol points count as steps too, so a crash can land between two of them."""
        if self._crash_point == name and not self.crashed:
            self.crashed = True
            raise SimulatedCrash(f"crash at {name}")
        self._step(f"point:{name}")

    def mkdir(self, path: Path) -> None:
        """Create a folder; it survives a power loss only once its parent is synced."""
        self._step("mkdir")
        os.mkdir(path)
        self._note(path.parent, _Pending("mkdir", path))

    def write_new(self, path: Path, data: bytes | memoryview) -> None:
        """Create a file whose content is not durable until :meth:`fsync_file`."""
        self._step("write_new")
        super().write_new(path, data)
        self._unsynced[path] = 0
        self._note(path.parent, _Pending("create", path))

    def fsync_file(self, path: Path) -> None:
        """The file's content becomes durable."""
        self._step("fsync_file")
        self._unsynced.pop(path, None)

    def rename(self, src: Path, dst: Path) -> None:
        """Rename now; the new name is durable only after the folder is synced."""
        self._step("rename")
        os.replace(src, dst)
        if src in self._unsynced:
            self._unsynced[dst] = self._unsynced.pop(src)
        self._note(dst.parent, _Pending("rename", dst, source=src))

    def fsync_dir(self, path: Path) -> None:
        """Every pending entry change of ``path`` becomes durable."""
        self._step("fsync_dir")
        self._pending.pop(path, None)

    def unlink(self, path: Path) -> None:
        """Remove now; a power loss before the folder is synced brings the file back."""
        self._step("unlink")
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            return
        os.unlink(path)
        self._unsynced.pop(path, None)
        self._note(path.parent, _Pending("unlink", path, content=content))

    def rmdir_if_empty(self, path: Path) -> None:
        """Folders are only removed when nothing pending refers to them."""
        self._step("rmdir")
        if not self._pending.get(path):
            super().rmdir_if_empty(path)

    # -- the power cut --------------------------------------------------------------------
    def power_loss(self) -> None:
        """Undo what a power cut would lose: unsynced contents and folder entries."""
        for folder in sorted(self._pending, key=lambda p: len(p.parts), reverse=True):
            for change in reversed(self._pending[folder]):
                self._undo(change)
        for path, keep in self._unsynced.items():
            if path.exists():
                with open(path, "r+b") as fh:
                    fh.truncate(keep)
        self._pending = {}
        self._unsynced = {}

    def _undo(self, change: _Pending) -> None:
        if change.kind == "create":
            if change.path.exists():
                change.path.unlink()
        elif change.kind == "rename":
            if change.path.exists() and change.source is not None:
                os.replace(change.path, change.source)
                if change.path in self._unsynced:
                    self._unsynced[change.source] = self._unsynced.pop(change.path)
        elif change.kind == "unlink":
            if change.content is not None and not change.path.exists():
                change.path.parent.mkdir(parents=True, exist_ok=True)
                change.path.write_bytes(change.content)
        elif change.kind == "mkdir" and change.path.exists():
            shutil.rmtree(change.path)
