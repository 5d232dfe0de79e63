"""Merging a run of some workloads into an existing record (``python -m bench --merge``).

Why this module exists: a full run of every workload takes more than an hour on the
shared machine, so workloads are re-measured a few at a time with ``--only``. Merging keeps
the record whole: the new run's rows replace the rows of the workloads it ran, the others
stay, ratios and targets are recomputed, and each merged run is listed (command, time,
load average) so the page says which numbers came from which run.
"""

from __future__ import annotations

from typing import Any

from bench._report import ratios, targets

__all__ = ["merge_records"]


def merge_records(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the workloads of ``new`` replaced by ``new``'s rows.

    Raises
    ------
    SystemExit
        When the two runs are of different sizes (their rows would not be comparable).
    """
    if old["size"] != new["size"] or old.get("seed") != new.get("seed"):
        raise SystemExit(f"cannot merge a {new['size']['name']} run (seed {new.get('seed')}) into a "
                         f"{old['size']['name']} record (seed {old.get('seed')}): sizes or seeds differ")
    ran = sorted({r["workload"] for r in new["results"]})
    out = dict(old)
    out["results"] = [r for r in old["results"] if r["workload"] not in ran] + list(new["results"])
    out["ratios"] = ratios(out["results"])
    out["targets"] = targets(out["results"])
    out["notes"] = {**old.get("notes", {}), **new.get("notes", {})}
    # Profiles are titled "<workload>: ...": the re-run workloads' old notes go.
    kept_profiles = {k: v for k, v in old.get("profiles", {}).items() if k.split(":", 1)[0] not in ran}
    out["profiles"] = {**kept_profiles, **new.get("profiles", {})}
    out["skipped"] = {**old.get("skipped", {}), **new.get("skipped", {})}
    out["versions"] = {**old.get("versions", {}), **new.get("versions", {})}
    if "http" in new:  # the http workload's settings and reference rows (bench._http) go with its rows
        out["http"] = new["http"]
    part = {"workloads": ran, "command": new.get("command", ""), "started": new.get("started", ""),
            "duration_s": new.get("duration_s", 0.0), "loadavg_start": new["machine"].get("loadavg_start"),
            "loadavg_end": new["machine"].get("loadavg_end")}
    # A later run of a workload supersedes earlier merged runs for that workload.
    kept = []
    for p in old.get("merged", []):
        rest = [w for w in p["workloads"] if w not in ran]
        if rest:
            kept.append({**p, "workloads": rest})
    out["merged"] = [*kept, part]
    return out
