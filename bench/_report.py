"""Turning result rows into ratios, target checks, the markdown page and run comparisons.

Why this module exists: the JSON file is the record, and everything a reader sees
(``docs/benchmarks.md``, the console summary, ``--compare``) is derived from it here, so the
page can always be regenerated from a stored run and two runs compare cell by cell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["compare", "fmt_bytes", "fmt_value", "ratios", "render_markdown", "targets", "write_docs"]

TV = "tickvault"
BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


def _cells(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        if r.get("value") is not None:
            out.setdefault((r["workload"], r["variant"]), {})[r["library"]] = r
    return out


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (workload, variant): tickvault's value over the best peer's (< 1: tickvault wins)."""
    out = []
    for (workload, variant), libs in _cells(results).items():
        peers = {k: v for k, v in libs.items() if not k.startswith(TV)}  # tickvault variants are not peers
        if TV not in libs or not peers:
            continue
        if any(r.get("comparable") is False for r in libs.values()):  # outputs differ: not like with like
            continue
        best = min(peers, key=lambda k: float(peers[k]["value"]))
        out.append({"workload": workload, "variant": variant, "best_peer": best,
                    "ratio": float(libs[TV]["value"]) / float(peers[best]["value"])})
    return out


def _get(results: list[dict[str, Any]], workload: str, variant: str, library: str) -> dict[str, Any] | None:
    return next((r for r in results if (r["workload"], r["variant"], r["library"]) == (workload, variant, library)),
                None)


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's performance targets, each marked met / missed / not measured (never asserted)."""
    tv_ing, adb_ing = _get(results, "ingest", "bulk, durable", TV), _get(results, "ingest", "bulk, durable", "arcticdb")
    tv_warm = _get(results, "read", "pandas, warm", TV)
    adb_warm = _get(results, "read", "pandas, warm", "arcticdb")
    tv_cold = _get(results, "read", "pandas, cold", TV)
    tv_cold_open = _get(results, "read", "pandas, cold + open", TV)
    tv_bytes = _get(results, "storage", "bytes per bar", TV)
    out: list[dict[str, Any]] = []

    def add(name: str, ok: bool | None, measured: str, goal: str) -> None:
        out.append({"target": name, "met": ok, "measured": measured, "goal": goal})

    if tv_ing and adb_ing:
        add("ingest faster than ArcticDB write_batch", tv_ing["value"] < adb_ing["value"],
            f"{tv_ing['rows_per_s'] / 1e6:.2f} M rows/s vs {adb_ing['rows_per_s'] / 1e6:.2f}", "> ArcticDB")
    else:
        add("ingest faster than ArcticDB write_batch", None, "not measured", "> ArcticDB")
    if tv_warm and adb_warm:
        add("symbol-year read to pandas faster than ArcticDB", tv_warm["value"] < adb_warm["value"],
            f"{fmt_value(tv_warm['value'], 's')} vs {fmt_value(adb_warm['value'], 's')}", "< ArcticDB")
    else:
        add("symbol-year read to pandas faster than ArcticDB", None, "not measured", "< ArcticDB")
    for name, cell in (("symbol-year read to pandas, cold (store open)", tv_cold),
                       ("symbol-year read to pandas, cold + opening the store", tv_cold_open)):
        if cell and cell.get("value") is not None:
            add(name, cell["value"] <= 0.005, fmt_value(cell["value"], "s"), "≤ 5 ms")
        else:
            add(name, None, "not measured", "≤ 5 ms")
    if tv_bytes:
        add("bytes per 1-minute bar, lossless", tv_bytes["value"] <= 8 and bool(tv_bytes["lossless"]),
            f"{tv_bytes['value']:.2f} B/bar, lossless={tv_bytes['lossless']}", "≤ 8 B/bar")
    else:
        add("bytes per 1-minute bar, lossless", None, "not measured", "≤ 8 B/bar")
    from bench._goals import extra_targets  # the added workloads' targets (lazy: no import cycle)
    from bench._http import http_targets

    return out + extra_targets(results) + http_targets(results)


def fmt_value(value: float | None, unit: str) -> str:
    """Human units: µs/ms/s for durations, requests per second for HTTP, two decimals for bytes per bar."""
    if value is None:
        return "–"
    if unit == "s/req":  # the http workload keeps time per request (lower is better); people read req/s
        return f"{1.0 / value:,.0f} req/s"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.2f} ms"
        return f"{value:.2f} s"
    return f"{value:.2f} {unit}"


def fmt_bytes(n: float | None) -> str:
    """MiB with one decimal (``–`` when unknown)."""
    return "–" if n is None else f"{n / 2**20:.1f} MiB"


def _table(run: dict[str, Any]) -> list[str]:
    ratio_of = {(r["workload"], r["variant"]): r for r in run.get("ratios", [])}
    lines = ["| workload | variant | library | median | p99 | peak mem | other | tickvault / best peer |",
             "|---|---|---|---:|---:|---:|---|---:|"]
    for (workload, variant), libs in _cells(run["results"]).items():
        if workload == "http":  # a table of its own (bench._http.markdown)
            continue
        rr = ratio_of.get((workload, variant))
        for i, (lib, r) in enumerate(sorted(libs.items(), key=lambda kv: (not kv[0].startswith(TV), kv[0]))):
            if workload == "ingest":
                other = f"{r['rows_per_s'] / 1e6:.2f} M rows/s"
            elif workload == "storage":
                other = f"{'lossless' if r['lossless'] else 'LOSSY: ' + r['lossless_detail']}; " \
                        f"apparent {r['apparent_per_bar']:.2f} B/bar"
            elif "rows_per_s" in r:
                other = f"{r['rows_per_s'] / 1e6:.2f} M rows/s; n={r['n']}"
            else:
                other = f"n={r['n']}"
            if r.get("comparable") is False:
                other += f"; **not comparable**: {r.get('check', 'outputs differ')}"
            p99 = fmt_value(r.get("p99_s"), "s") if workload in ("read", "latest", "cache", "indicators") else "–"
            ratio = f"**{rr['ratio']:.2f}** (vs {rr['best_peer']})" if rr and i == 0 else ""
            name = f"**{lib}**" if lib.startswith(TV) else lib
            lines.append(f"| {workload} | {variant} | {name} | {fmt_value(r['value'], r['unit'])} | {p99} | "
                         f"{fmt_bytes(r.get('peak_mem_bytes'))} | {other} | {ratio} |")
    return lines


def _load(values: list[float] | None) -> str:
    return "/".join(f"{x:.1f}" for x in values) if values else "unknown"


def render_markdown(run: dict[str, Any]) -> str:
    """The generated block of ``docs/benchmarks.md`` for one run."""
    m, v, size = run["machine"], run["versions"], run["size"]
    lines = [BEGIN, "", f"Run of {run['started']} — size **{size['name']}**: {size['symbols']} symbols × "
             f"[{size['start']}, {size['end']}) of 1-minute bars = **{run['rows']:,} rows**, "
             f"data from `{run['data_source']}` (seed {run['seed']}).", "",
             "```", run["command"], "```", ""]
    lines += _table(run)
    from bench._http import markdown as http_markdown  # lazy, like bench._goals: no import cycle

    lines += http_markdown(run)
    lines += ["", "Targets (reported, not asserted):", "", "| target | goal | measured | met |", "|---|---|---|---|"]
    for t in run["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | {met} |")
    lines += ["", f"- Repetitions: ingest {size['ingest_reps']}× the whole data set per library; warm reads "
              f"{size['read_reps']}× each of {size['read_symbols']} symbols; cold reads {size['cold_reps']}× per "
              "library.",
              *([f"- **Warning**: {run['notes']['cold_warning']}"] if "cold_warning" in run["notes"] else []),
              f"- Peak memory: {run['memory_method']} (high-water mark above the RSS at the start of each call).",
              f"- Cold reads: page cache evicted with {run['notes'].get('cold', 'not run')}; `cold` opens a fresh "
              "handle before the clock starts, `cold + open` inside the timed region.",
              "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
              f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
              f"{m['ram_bytes'] / 2**30:.1f} GiB RAM, {m['platform']}, work folder on {m['workdir_fs']}; "
              f"load average (1, 5, 15 min) {_load(m.get('loadavg_start'))} at the start, "
              f"{_load(m.get('loadavg_end'))} at the end.",
              f"- Wall time of the whole run: {run['duration_s'] / 60:.1f} min.",
              *[f"- {text}" for key, text in sorted(run["notes"].items()) if key.startswith("about:")],
              *[f"- Workloads {', '.join(part['workloads'])} come from a later run `{part['command']}` of "
                f"{part['started']} ({part['duration_s'] / 60:.1f} min; load average {_load(part.get('loadavg_start'))}"
                f" at the start, {_load(part.get('loadavg_end'))} at the end) merged into this record."
                for part in run.get("merged", [])]]
    if run.get("skipped"):
        lines.append("- Not run: " + "; ".join(f"{k}: {why}" for k, why in run["skipped"].items()))
    if run.get("profiles"):
        lines += ["", "Where tickvault's time goes (pyinstrument, tickvault's side only, for the missed targets):"]
        for name, text in run["profiles"].items():
            # Older records kept pyinstrument's ASCII logo on the duration line.
            clean = [ln[ln.index("Duration"):] if "Duration:" in ln else ln for ln in text.rstrip().splitlines()]
            lines += ["", f"<details><summary>{name}</summary>", "", "```", *clean, "```", "", "</details>"]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(run: dict[str, Any], path: Path) -> None:
    """Replace the generated block in ``path`` (creating the page if needed); keep the prose."""
    block = render_markdown(run)
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
            path.write_text(text)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Benchmarks\n\n" + block + "\n")


def compare(old_path: Path, new_path: Path, threshold: float) -> tuple[list[str], int]:
    """Lines comparing two runs cell by cell, and how many tickvault cells regressed.

    A cell regresses when its value (lower is better) grew by more than ``threshold``
    (0.10 = 10 %). Ratio changes are listed too: they cancel out a slower or busier machine.
    """
    old, new = (json.loads(Path(p).read_text()) for p in (old_path, new_path))
    lines = [f"old: {old_path} ({old['size']['name']}, {old['rows']:,} rows, {old['started']})",
             f"new: {new_path} ({new['size']['name']}, {new['rows']:,} rows, {new['started']})"]
    if old["rows"] != new["rows"]:
        lines.append("warning: the runs have different sizes; changes mix size and speed")
    o_cells, n_cells = _cells(old["results"]), _cells(new["results"])
    regressions = 0
    lines.append(f"{'workload':<9} {'variant':<19} {'library':<18} {'old':>11} {'new':>11} {'change':>8}")
    for key, libs in n_cells.items():
        for lib, r in libs.items():
            prev = o_cells.get(key, {}).get(lib)
            if prev is None:
                continue
            change = float(r["value"]) / float(prev["value"]) - 1.0
            flag = ""
            if change > threshold:
                flag = "  REGRESSION"
                regressions += lib == TV
            elif change < -threshold:
                flag = "  improved"
            lines.append(f"{key[0]:<9} {key[1]:<19} {lib:<18} {fmt_value(prev['value'], r['unit']):>11} "
                         f"{fmt_value(r['value'], r['unit']):>11} {change:>+8.1%}{flag}")
    o_ratio = {(r["workload"], r["variant"]): r["ratio"] for r in old.get("ratios", [])}
    for r in new.get("ratios", []):
        prev_ratio = o_ratio.get((r["workload"], r["variant"]))
        if prev_ratio:
            change = r["ratio"] / prev_ratio - 1.0
            flag = "  REGRESSION" if change > threshold else ""
            lines.append(f"ratio tickvault/best peer {r['workload']} {r['variant']}: {prev_ratio:.2f} -> "
                         f"{r['ratio']:.2f} ({change:+.1%}){flag}")
    return lines, regressions
