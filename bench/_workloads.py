"""The workloads: bulk ingest, symbol-year read (warm and cold), latest bars, bytes per bar, and
latest bars over HTTP (that one lives in :mod:`bench._http`: servers and a load generator).

Why this module exists: it is the single place that decides *what* is timed. Each workload
runs every library in the same process on the same data, interleaving libraries (the order
rotates per batch / per repetition) so a noisy neighbour or a warming cache does not favour
whoever runs first. Results are flat dicts (one per workload x variant x library) that the
report and the ``--compare`` mode read.

Every result row has ``value`` in ``unit`` where *lower is better* (seconds or bytes per bar),
so ratios and regressions are computed the same way for all of them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._contenders import Contender, TickvaultLocal, lossless
from bench._data import DataSet
from bench._harness import MemoryProbe, Samples, dir_bytes, evict_page_cache, resident_bytes, timed

__all__ = ["WORKLOADS", "Context", "load", "read_symbols", "run_latest", "run_read", "run_storage"]

WORKLOADS = ("ingest", "read", "latest", "storage",
             # added workloads with their own peers and setup (bench/_extra.py runs them)
             "resample", "indicators", "postgres", "cache", "upsert",
             "http")  # latest bars over HTTP: servers and a load generator (bench/_http.py runs it)
LATEST_N = 500

Log = Callable[[str], None]


class Context:
    """What every workload needs: the data, the libraries, the probe, the folders, the log."""

    def __init__(self, data: DataSet, contenders: list[Contender], workdir: Path, probe: MemoryProbe,
                 log: Log) -> None:
        self.data = data
        self.contenders = contenders
        self.workdir = workdir
        self.probe = probe
        self.log = log
        self.results: list[dict[str, Any]] = []
        self.notes: dict[str, str] = {}

    def rotated(self, k: int) -> list[Contender]:
        """The libraries, starting at a different one for each ``k``."""
        n = len(self.contenders)
        return [self.contenders[(k + i) % n] for i in range(n)]

    def record(self, workload: str, variant: str, contender: Contender, samples: Samples, unit: str = "s",
               **extra: Any) -> dict[str, Any]:
        """Append one result row built from ``samples``."""
        s = samples.summary()
        row: dict[str, Any] = {"workload": workload, "variant": variant, "library": contender.name, "unit": unit,
                               "value": s.get("median_s"), **s, **extra}
        self.results.append(row)
        return row


def load(ctx: Context, reps: int, record: bool) -> None:
    """Bulk ingest the whole data set ``reps`` times per library; keep the last stores.

    Each repetition writes into fresh folders. The timed part per library is the sum of its
    ``ingest`` calls over all batches plus its ``finish``; preparing each library's input is
    not timed. With ``record`` false this is only setup for the other workloads.
    """
    totals = {c.name: Samples() for c in ctx.contenders}
    for rep in range(reps):
        run_t = dict.fromkeys(totals, 0.0)
        run_m = dict.fromkeys(totals, 0)
        for c in ctx.contenders:
            root = ctx.workdir / f"{c.name}-rep{rep}"
            if root.exists():
                shutil.rmtree(root)
            c.create(root)
        t0 = time.perf_counter()
        for b, batch in enumerate(ctx.data.batches()):
            for c in ctx.rotated(b + rep):
                payload = c.prepare(batch)
                _, sec, mem = timed(lambda c=c, p=payload: c.ingest(p), ctx.probe, full_gc=True)  # type: ignore[misc]
                run_t[c.name] += sec
                run_m[c.name] = max(run_m[c.name], mem)
                del payload
        for c in ctx.contenders:
            _, sec, mem = timed(c.finish, ctx.probe, full_gc=True)
            run_t[c.name] += sec
            run_m[c.name] = max(run_m[c.name], mem)
            c.close()
            totals[c.name].add(run_t[c.name], run_m[c.name])
        ctx.log(f"ingest rep {rep + 1}/{reps}: {ctx.data.rows:,} rows in {time.perf_counter() - t0:.1f}s wall; "
                + ", ".join(f"{k} {v:.2f}s" for k, v in run_t.items()))
        if rep > 0:
            for c in ctx.contenders:
                shutil.rmtree(ctx.workdir / f"{c.name}-rep{rep - 1}", ignore_errors=True)
    for c in ctx.contenders:
        c.root = ctx.workdir / f"{c.name}-rep{reps - 1}"
        if record:
            s = totals[c.name].summary()
            ctx.record("ingest", "bulk, durable", c, totals[c.name], rows=ctx.data.rows,
                       rows_per_s=ctx.data.rows / float(s["median_s"]))


def read_symbols(ctx: Context) -> list[str]:
    """The symbols the read workloads use: spread evenly over the data set."""
    syms = ctx.data.symbols
    k = min(ctx.data.size.read_symbols, len(syms))
    return [syms[i * len(syms) // k] for i in range(k)]


def _reader(c: Contender, fmt: str, latest: bool) -> Callable[[str], Any]:
    if latest:
        return (lambda s: c.latest_arrow(s, LATEST_N)) if fmt == "arrow" else (lambda s: c.latest_pandas(s, LATEST_N))
    return c.read_arrow if fmt == "arrow" else c.read_pandas


def _with_nocache(ctx: Context) -> list[Contender]:
    """The libraries plus tickvault without its decoded-file cache, reading tickvault's folder."""
    out = list(ctx.contenders)
    tv = next((c for c in out if c.name == "tickvault"), None)
    if tv is not None:
        bare = TickvaultLocal(cache_bytes=0)
        bare.root = tv.root
        out.insert(out.index(tv) + 1, bare)
    return out


def _warm(ctx: Context, workload: str, latest: bool) -> None:
    symbols = read_symbols(ctx)
    reps = ctx.data.size.read_reps
    libs = _with_nocache(ctx)
    for c in libs:
        c.open()
    for fmt in ("arrow", "pandas"):
        samples = {c.name: Samples() for c in libs}
        for c in libs:  # warm-up: first touch of every symbol is not counted
            for s in symbols:
                _reader(c, fmt, latest)(s)
        for r in range(reps):
            for i, s in enumerate(symbols):
                for k in range(len(libs)):
                    c = libs[(r + i + k) % len(libs)]
                    out, sec, mem = timed(lambda c=c, s=s, f=fmt: _reader(c, f, latest)(s), ctx.probe)  # type: ignore[misc]
                    samples[c.name].add(sec, mem)
                    del out
        for c in libs:
            ctx.record(workload, f"{fmt}, warm", c, samples[c.name], symbols=len(symbols))
    for c in libs:
        c.close()


def _cold(ctx: Context) -> None:
    """First read of a symbol after the store's files left the page cache.

    Two variants: ``cold`` opens a fresh handle *before* the clock starts (the data files
    are cold, the store is open: a long-running service), ``cold + open`` times opening
    the handle too (what a new process pays, including any work the store does on open).
    """
    symbols = read_symbols(ctx)
    for fmt in ("arrow", "pandas"):
        for with_open in (False, True):
            samples = {c.name: Samples() for c in ctx.contenders}
            resident: dict[str, int | None] = {}
            for r in range(ctx.data.size.cold_reps):
                for c in ctx.rotated(r):
                    s = symbols[r % len(symbols)]
                    c.close()
                    # Untimed, as before every timed upsert: finish the write-back that earlier
                    # work left (the ingest's hundreds of MB, any library's), so a cold read
                    # measures reading an idle device, not queueing behind another's writes.
                    os.sync()
                    try:
                        ctx.notes["cold"] = evict_page_cache(c.root)
                    except OSError as exc:
                        ctx.notes["cold"] = f"not measured: cannot evict the page cache ({exc})"
                        return
                    left = resident_bytes(c.root)
                    resident[c.name] = max(resident.get(c.name) or 0, left or 0) if left is not None else None
                    if left:  # e.g. tmpfs, where pages cannot leave memory: say so next to the numbers
                        warm_libs = sorted({*ctx.notes.get("cold_warning_libs", "").split(), c.name})
                        ctx.notes["cold_warning_libs"] = " ".join(warm_libs)
                        ctx.notes["cold_warning"] = (f"files of {', '.join(warm_libs)} stayed in the page cache "
                                                     "after eviction: their cold numbers are partly warm")
                    if not with_open:
                        c.open()

                    def op(c: Contender = c, s: str = s, f: str = fmt, o: bool = with_open) -> Any:
                        if o:
                            c.open()
                        return _reader(c, f, False)(s)

                    out, sec, mem = timed(op, ctx.probe)
                    samples[c.name].add(sec, mem)
                    del out
            for c in ctx.contenders:
                ctx.record("read", f"{fmt}, cold" + (" + open" if with_open else ""), c, samples[c.name],
                           symbols=len(symbols), resident_after_evict_bytes=resident.get(c.name))
                c.close()


def run_read(ctx: Context) -> None:
    """One symbol-year read to Arrow and to pandas, warm then cold."""
    _warm(ctx, "read", latest=False)
    _cold(ctx)


def run_latest(ctx: Context) -> None:
    """The latest 500 bars of a symbol, warm, to Arrow and to pandas."""
    _warm(ctx, "latest", latest=True)


def run_storage(ctx: Context) -> None:
    """Bytes on disk per stored bar (``du``), and whether a symbol reads back bit-exact."""
    sym = read_symbols(ctx)[0]
    original = ctx.data.bars(sym)
    for c in ctx.contenders:
        c.open()
        diff = lossless(c.read_arrow(sym), original)
        c.close()
        alloc, apparent = dir_bytes(c.root)
        ctx.results.append({
            "workload": "storage", "variant": "bytes per bar", "library": c.name, "unit": "B/bar",
            "value": alloc / ctx.data.rows, "n": 1, "bytes_allocated": alloc, "bytes_apparent": apparent,
            "apparent_per_bar": apparent / ctx.data.rows, "rows": ctx.data.rows,
            "lossless": diff is None, "lossless_detail": diff or "bit-exact on " + sym,
        })
