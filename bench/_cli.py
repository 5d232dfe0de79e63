"""``python -m bench``: run the suite, write the JSON record and the docs page, or compare runs.

Why this module exists: one entry point (``make bench`` calls it) with the few switches a
developer needs: a size (``--quick`` for a few minutes, ``--full`` for the issue's 49 M
rows), ``--only`` to run some workloads, ``--libs`` to pick libraries, ``--http-servers`` to
pick the HTTP servers, ``--profile`` for the "where the time goes" notes, and ``--compare OLD
NEW`` to spot regressions between two JSON records.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench._contenders import CONTENDERS, available
from bench._data import SIZES, DataSet
from bench._extra import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, EXTRA_WORKLOADS, STORE_WORKLOADS, ExtraOptions
from bench._harness import MemoryProbe, library_versions, machine_info
from bench._http import SERVERS, profile_http, run_http
from bench._profile import profile_missed
from bench._report import compare, fmt_value, ratios, targets, write_docs
from bench._workloads import WORKLOADS, Context, load, run_latest, run_read, run_storage

__all__ = ["main", "run"]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs" / "benchmarks.md"
PACKAGES = ("tickvault", "arcticdb", "duckdb", "pyarrow", "pandas", "numpy", "pyinstrument", "fastapi", "starlette",
            "uvicorn", "granian", "uvloop", "httptools")


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(size_name: str, *, only: Sequence[str] = WORKLOADS, libs: Sequence[str] = tuple(CONTENDERS),
        symbols: int | None = None, workdir: Path | None = None, keep: bool = False, profile: bool = False,
        seed: int = 0, command: str = "", log: Any = _log, database_url: str = DEFAULT_DATABASE_URL,
        redis_url: str = DEFAULT_REDIS_URL, http_servers: Sequence[str] = SERVERS) -> dict[str, Any]:
    """Run the suite and return the run record (what goes into the JSON file).

    Parameters
    ----------
    size_name
        ``tiny``, ``quick`` or ``full`` (see :data:`bench._data.SIZES`).
    only
        Workloads to measure (``ingest``, ``read``, ``latest``, ``storage``, ``http``). The
        stores are loaded once when a store workload runs; ``ingest`` makes that load a
        measured, repeated workload. ``http`` serves one symbol's bars over HTTP
        (:mod:`bench._http`).
    libs
        Libraries to run; those not installed are skipped with the reason recorded.
    symbols
        Override the size's symbol count.
    workdir
        Where stores and the data spill live (default: a fresh temporary folder, removed
        at the end unless ``keep``).
    profile
        Profile tickvault's side of each missed target with pyinstrument.
    seed
        Simulation seed.
    command
        The command line to record.
    database_url, redis_url
        Services for the ``postgres``, ``cache`` and ``upsert`` workloads (a throw-away
        database is created through ``database_url`` and dropped at the end).
    http_servers
        ASGI servers the ``http`` workload runs (``uvicorn``, ``granian``).
    """
    size = SIZES[size_name]
    if symbols is not None:
        size = replace(size, symbols=symbols, batch_symbols=min(size.batch_symbols, symbols))
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workload(s): {', '.join(sorted(unknown))}; choose from {', '.join(WORKLOADS)}")
    owned = workdir is None
    work = Path(tempfile.mkdtemp(prefix="tickvault-bench-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    contenders = []
    for name in libs:
        why = available(name)
        if why is None:
            contenders.append(CONTENDERS[name]())
        else:
            skipped[name] = why
            log(f"skipping {name}: {why}")
    started = time.time()
    probe = MemoryProbe()
    data = DataSet(size, work / "data", seed=seed)
    ctx = Context(data, contenders, work, probe, log)
    extra = ExtraOptions(database_url=database_url, redis_url=redis_url, libs=tuple(libs), skipped=skipped,
                         profile=profile)
    record: dict[str, Any] = {
        "schema": 1,
        "command": command,
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "size": asdict(size),
        "seed": seed,
        "data_source": data.source,
        "versions": library_versions(PACKAGES),
        "machine": machine_info(work),
        "memory_method": probe.method,
        "skipped": skipped,
    }
    try:
        log(f"size {size.name}: {size.symbols} symbols, data from {data.source}, work folder {work}")
        if set(only) & set(STORE_WORKLOADS):  # the added workloads set up their own data
            load(ctx, size.ingest_reps if "ingest" in only else 1, record="ingest" in only)
        if "read" in only:
            log("read workload")
            run_read(ctx)
        if "latest" in only:
            log("latest workload")
            run_latest(ctx)
        if "storage" in only:
            log("storage workload")
            run_storage(ctx)
        for name, runner in EXTRA_WORKLOADS.items():
            if name in only:
                log(f"{name} workload")
                runner(ctx, extra)
        if "http" in only:
            log("http workload")
            record["http"] = run_http(ctx, servers=http_servers)
        record["rows"] = data.rows
        record["results"] = ctx.results
        record["ratios"] = ratios(ctx.results)
        record["targets"] = targets(ctx.results)
        record["notes"] = ctx.notes
        if profile:
            missed = [t["target"] for t in record["targets"] if t["met"] is False]
            log(f"profiling tickvault for missed targets: {missed or 'none'}")
            record["profiles"] = {**profile_missed(ctx, missed), **extra.profiles}
            if "http" in only and any(t.startswith("latest 500 bars over HTTP") for t in missed):
                record["profiles"]["latest 500 over HTTP: tickvault's app in-process, cache hits"] = profile_http(
                    work / "http" / "vault", record["http"]["symbol"])
        record["duration_s"] = time.time() - started
        record["machine"]["loadavg_end"] = list(__import__("os").getloadavg())
    finally:
        for c in contenders:
            c.close()
        if owned and not keep:
            shutil.rmtree(work, ignore_errors=True)
    return record


def _summary(record: dict[str, Any]) -> str:
    lines = [f"{record['rows']:,} rows ({record['size']['name']}), data from {record['data_source']}"]
    for r in record["results"]:
        extra = f"  {r['rows_per_s'] / 1e6:.2f} M rows/s" if "rows_per_s" in r else ""
        if r["workload"] == "http":
            extra = f"  p50 {r['p50_s'] * 1e3:.2f} ms, p99 {r['p99_s'] * 1e3:.2f} ms"
        if r["workload"] == "storage":
            extra = "  lossless" if r["lossless"] else f"  LOSSY ({r['lossless_detail']})"
        lines.append(f"{r['workload']:<8} {r['variant']:<19} {r['library']:<18} "
                     f"{fmt_value(r['value'], r['unit']):>11}{extra}")
    for r in record["ratios"]:
        lines.append(f"ratio tickvault/{r['best_peer']} {r['workload']} {r['variant']}: {r['ratio']:.2f}")
    for t in record["targets"]:
        lines.append(f"target {t['target']} ({t['goal']}): {t['measured']} -> "
                     f"{'n/a' if t['met'] is None else ('met' if t['met'] else 'MISSED')}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="size", help="20 symbols x 1 year")
    size.add_argument("--full", action="store_const", const="full", dest="size", help="500 symbols x 1 year (default)")
    size.add_argument("--size", choices=sorted(SIZES), dest="size", help="a named size (tiny is for the smoke test)")
    p.add_argument("--symbols", type=int, help="override the number of symbols")
    p.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated workloads ({', '.join(WORKLOADS)})")
    p.add_argument("--libs", default=",".join(CONTENDERS), help=f"comma-separated libraries ({', '.join(CONTENDERS)})")
    p.add_argument("--http-servers", default=",".join(SERVERS),
                   help=f"comma-separated ASGI servers for the http workload ({', '.join(SERVERS)})")
    p.add_argument("--out", type=Path, help="JSON record path (default bench/results/<size>.json; none for tiny)")
    p.add_argument("--docs", type=Path, help="markdown page to update (default docs/benchmarks.md for --full only)")
    p.add_argument("--no-docs", action="store_true", help="never write the markdown page")
    p.add_argument("--profile", action="store_true", help="pyinstrument tickvault's side of each missed target")
    p.add_argument("--workdir", type=Path, help="folder for stores and data (default: temporary)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--seed", type=int, default=0, help="simulation seed")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two JSON records and exit")
    p.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                   help="PostgreSQL URL for the postgres/upsert workloads (a throw-away database is made through it)")
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Redis URL for the cache workload")
    p.add_argument("--merge", action="store_true",
                   help="merge into the existing JSON record: replace the workloads run, keep the others")
    p.add_argument("--threshold", type=float, default=0.10, help="regression threshold for --compare (0.10 = 10%%)")
    p.add_argument("--render", type=Path, metavar="RECORD",
                   help="rewrite the markdown page (--docs, default docs/benchmarks.md) from a JSON record and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    if args.compare:
        lines, regressions = compare(args.compare[0], args.compare[1], args.threshold)
        print("\n".join(lines))
        print(f"{regressions} tickvault regression(s) beyond {args.threshold:.0%}")
        return 1 if regressions else 0
    if args.render:
        target = args.docs or DOCS
        write_docs(json.loads(args.render.read_text()), target)
        _log(f"updated {target} from {args.render}")
        return 0
    size = args.size or "full"
    record = run(size, only=[w for w in args.only.split(",") if w], libs=[x for x in args.libs.split(",") if x],
                 symbols=args.symbols, workdir=args.workdir, keep=args.keep, profile=args.profile, seed=args.seed,
                 command="python -m bench " + shlex.join(args_list), database_url=args.database_url,
                 redis_url=args.redis_url,
                 http_servers=[x for x in args.http_servers.split(",") if x])
    print(_summary(record))
    out = args.out or (RESULTS / f"{size}.json" if size != "tiny" else None)
    if args.merge and out is not None and out.exists():
        from bench._merge import merge_records

        record = merge_records(json.loads(out.read_text()), record)
        _log(f"merged into {out}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1, default=str) + "\n")
        _log(f"wrote {out}")
    docs = args.docs or (DOCS if size == "full" else None)
    if docs is not None and not args.no_docs:
        write_docs(record, docs)
        _log(f"updated {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
