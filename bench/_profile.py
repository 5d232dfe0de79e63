"""Where tickvault's time (and bytes) go, for the targets a run missed.

Why this module exists: a missed target needs a pointer to the cost, not a guess. After the
measured run, each workload whose target was missed is replayed on tickvault alone under
pyinstrument (never during the timed runs, whose numbers the sampler would distort) and a
trimmed flat "self time" listing is kept in the JSON and shown in ``docs/benchmarks.md``.
For the bytes-per-bar target the note is a breakdown of the store folder instead: bytes per
bar per file kind and, inside the Parquet files, per column.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._contenders import Contender
from bench._harness import evict_page_cache
from bench._workloads import Context, read_symbols

__all__ = ["bytes_breakdown", "profile_missed"]

_TARGET_WORKLOAD = {
    "ingest faster than ArcticDB write_batch": "ingest",
    "symbol-year read to pandas faster than ArcticDB": "warm",
    "symbol-year read to pandas, cold (store open)": "cold",
    "symbol-year read to pandas, cold + opening the store": "cold + open",
    "bytes per 1-minute bar, lossless": "bytes",
}


def _profile(fn: Callable[[], Any], times: int, lines: int, setup: Callable[[], Any] | None = None) -> str:
    """Flat self-time listing of ``times`` calls of ``fn``; ``setup`` runs before each, unprofiled."""
    from pyinstrument import Profiler

    prof = Profiler(interval=0.0005)
    for _ in range(times):
        if setup is not None:
            setup()
        prof.start()  # pyinstrument appends consecutive start/stop sessions
        try:
            fn()
        finally:
            prof.stop()
    text = prof.output_text(unicode=True, color=False, flat=True, time="percent_of_total")
    # The harness's own frames (profiler start/stop, the loop) are not tickvault's time.
    body = [ln for ln in text.splitlines() if "%" in ln and "bench/_profile.py" not in ln]
    head = [ln[ln.index("Duration"):].strip() for ln in text.splitlines() if "Duration" in ln]
    return "\n".join(head + body[:lines])


def profile_missed(ctx: Context, missed: list[str], lines: int = 20) -> dict[str, str]:
    """Notes (text) on tickvault's side for each missed target in ``missed``."""
    tv = next((c for c in ctx.contenders if c.name == "tickvault"), None)
    if tv is None or not missed:
        return {}
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return {"note": "pyinstrument is not installed (pip install '.[bench]')"}
    sym = read_symbols(ctx)[0]
    out: dict[str, str] = {}
    for target in missed:
        what = _TARGET_WORKLOAD.get(target)
        if what == "ingest":
            title = f"ingest: first batch ({ctx.data.size.batch_symbols} symbols) into a fresh store"
            out[title] = _ingest(ctx, tv, lines)
        elif what == "warm":
            tv.open()
            tv.read_pandas(sym)
            out["read one symbol-year to pandas, warm (50 reads)"] = _profile(lambda: tv.read_pandas(sym), 50, lines)
            tv.close()
        elif what in ("cold", "cold + open"):
            with_open = what == "cold + open"

            def evict(o: bool = with_open) -> None:
                tv.close()
                evict_page_cache(tv.root)
                if not o:
                    tv.open()

            def cold(o: bool = with_open) -> None:
                if o:
                    tv.open()
                tv.read_pandas(sym)

            title = "open + read" if with_open else "read, store already open"
            out[f"read one symbol-year to pandas, cold: {title} (10 reads; eviction not profiled)"] = _profile(
                cold, 10, lines, setup=evict)
            tv.close()
        elif what == "bytes":
            out["bytes per bar: where tickvault's bytes go"] = bytes_breakdown(tv.root, ctx.data.rows)
    return out


def bytes_breakdown(root: Path, rows: int) -> str:
    """Allocated bytes per bar by file kind, and compressed bytes per bar per Parquet column."""
    import pyarrow.parquet as pq

    kinds: dict[str, int] = {}
    columns: dict[str, int] = {}
    files = 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        kind = path.suffix or path.name
        kinds[kind] = kinds.get(kind, 0) + path.stat().st_blocks * 512
        if path.suffix == ".parquet":
            files += 1
            meta = pq.ParquetFile(path).metadata
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    columns[col.path_in_schema] = columns.get(col.path_in_schema, 0) + col.total_compressed_size
    lines = [f"{rows:,} rows; {files} Parquet files", "allocated bytes per bar by file kind:"]
    lines += [f"  {k:<10} {v / rows:7.2f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])]
    lines.append("compressed bytes per bar per column (Parquet metadata):")
    lines += [f"  {k:<12} {v / rows:7.2f}" for k, v in sorted(columns.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def _ingest(ctx: Context, tv: Contender, lines: int) -> str:
    kept_root = tv.root
    root = ctx.workdir / "tickvault-profile"
    batch = next(iter(ctx.data.batches()))

    def fresh() -> None:
        tv.close()
        shutil.rmtree(root, ignore_errors=True)
        tv.create(root)

    try:
        return _profile(lambda: tv.ingest(tv.prepare(batch)), 1, lines, setup=fresh)
    finally:
        tv.close()
        tv.root = kept_root
        shutil.rmtree(root, ignore_errors=True)
