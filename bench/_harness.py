"""Measurement primitives: repeated timing, peak memory, page-cache eviction, environment.

Why this module exists: every workload measures the same way (``perf_counter_ns`` around
the call only, garbage collected before, peak RSS reset before), so numbers from different
libraries and different runs stay comparable. Nothing here knows about a library.

Peak memory is the process high-water mark (``VmHWM``) reset through
``/proc/self/clear_refs`` before each measured call, minus the RSS just before it: it sees
native allocations (Arrow pools, ArcticDB's C++ buffers, DuckDB) that ``tracemalloc``
cannot. Where ``clear_refs`` is unavailable (not Linux) it falls back to ``tracemalloc``,
which sees Python and numpy allocations only; the method used is recorded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "MemoryProbe",
    "Samples",
    "dir_bytes",
    "evict_page_cache",
    "library_versions",
    "machine_info",
    "resident_bytes",
    "timed",
]

T = TypeVar("T")


@dataclass
class Samples:
    """Durations (seconds) of repeated runs of one (workload, variant, library) cell."""

    seconds: list[float] = field(default_factory=list)
    peak_bytes: int = 0

    def add(self, seconds: float, peak: int) -> None:
        """Record one run."""
        self.seconds.append(seconds)
        self.peak_bytes = max(self.peak_bytes, peak)

    def summary(self) -> dict[str, float | int]:
        """Median, p99, min, mean and count of the durations, plus the peak memory."""
        s = self.seconds
        if not s:
            return {"n": 0}
        return {
            "n": len(s),
            "median_s": statistics.median(s),
            "p99_s": float(np.percentile(np.asarray(s), 99)),
            "min_s": min(s),
            "mean_s": statistics.fmean(s),
            "peak_mem_bytes": self.peak_bytes,
        }


class MemoryProbe:
    """Peak memory of one call: RSS high-water mark where the kernel lets us reset it."""

    def __init__(self) -> None:
        self.method = "rss-hwm" if self._can_reset() else "tracemalloc"

    @staticmethod
    def _can_reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return _status_kib("VmHWM") is not None
        except OSError:
            return False

    def start(self) -> int:
        """Reset the high-water mark; return the baseline."""
        if self.method == "rss-hwm":
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return (_status_kib("VmRSS") or 0) * 1024
        import tracemalloc

        tracemalloc.start()
        tracemalloc.reset_peak()
        return tracemalloc.get_traced_memory()[0]

    def stop(self, baseline: int) -> int:
        """Peak bytes above ``baseline`` since :meth:`start`."""
        if self.method == "rss-hwm":
            return max(0, (_status_kib("VmHWM") or 0) * 1024 - baseline)
        import tracemalloc

        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return max(0, peak - baseline)


def _proc_kib(path: str, key: str) -> int | None:
    """The kB value of ``key`` in a /proc file such as /proc/self/status or /proc/meminfo."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _status_kib(key: str) -> int | None:
    return _proc_kib("/proc/self/status", key)


def timed(fn: Callable[[], T], probe: MemoryProbe, full_gc: bool = False) -> tuple[T, float, int]:
    """Run ``fn`` once; return its result, its wall time in seconds and its peak memory.

    Garbage is collected *before* the clock starts so one library does not pay for the
    previous one's garbage: the young generations for short calls (a full collection costs
    tens of ms with these libraries loaded), everything with ``full_gc`` for long ones.
    """
    gc.collect() if full_gc else gc.collect(1)
    base = probe.start()
    t0 = time.perf_counter_ns()
    out = fn()
    elapsed = (time.perf_counter_ns() - t0) / 1e9
    return out, elapsed, probe.stop(base)


# -- disk ---------------------------------------------------------------------------------


def _files(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield Path(dirpath) / name


def dir_bytes(root: Path) -> tuple[int, int]:
    """``(allocated, apparent)`` bytes of every file under ``root`` (``du`` and ``du -b``)."""
    alloc = apparent = 0
    for path in _files(root):
        st = path.lstat()
        alloc += st.st_blocks * 512
        apparent += st.st_size
    return alloc, apparent


def evict_page_cache(root: Path) -> str:
    """Drop ``root``'s files from the OS page cache; return the method used.

    Per-file ``fsync`` + ``posix_fadvise(DONTNEED)`` needs no privilege and leaves the other
    users' caches alone; the global ``drop_caches`` is only a fallback.
    """
    if hasattr(os, "posix_fadvise"):
        for path in _files(root):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        return "fadvise-dontneed"
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("3")
    return "drop_caches"


_libc: Any = None


def resident_bytes(root: Path) -> int | None:
    """Bytes of ``root``'s files resident in the page cache (``mincore``), ``None`` if unknown."""
    global _libc
    if sys.platform != "linux":
        return None
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _libc.mmap.restype = ctypes.c_void_p
        _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                               ctypes.c_long]
        _libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for path in _files(root):
        size = path.stat().st_size
        if size == 0:
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = _libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                pages = (size + page - 1) // page
                vec = ctypes.create_string_buffer(pages)
                if _libc.mincore(addr, size, vec) != 0:
                    return None
                total += sum(b & 1 for b in vec.raw) * page
            finally:
                _libc.munmap(addr, size)
        finally:
            os.close(fd)
    return total


# -- environment --------------------------------------------------------------------------


def library_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``names`` (``"absent"`` when not installed), plus Python."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def machine_info(workdir: Path) -> dict[str, Any]:
    """CPU model, cores, RAM, kernel, the work folder's filesystem and the load average."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    mem = (_meminfo_kib("MemTotal") or 0) * 1024
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_bytes": mem,
        "platform": platform.platform(),
        "workdir_fs": _fs_type(workdir),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _meminfo_kib(key: str) -> int | None:
    return _proc_kib("/proc/meminfo", key)


def _fs_type(path: Path) -> str:
    best, kind = "", "unknown"
    try:
        target = str(path.resolve())
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mnt = parts[1]
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind
