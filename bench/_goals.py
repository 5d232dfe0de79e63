"""The performance targets of the added workloads, marked met / missed / not measured.

Why this module exists: :func:`bench._report.targets` knows the first suite's targets;
these are the issues' later ones (resampling, indicators, PostgreSQL, cache tiers, daily
upsert). They are reported, never asserted. It imports nothing from the rest of ``bench``
so the report can import it lazily without a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INDICATORS", "UPSERT_TARGET", "UPSERT_VARIANT", "UPSERT_VARIANT_2DAYS", "extra_targets", "fmt_s"]

TV = "tickvault"
#: (variant prefix, label) of the indicator cells, in report order.
INDICATORS = (("rsi(14)", "RSI(14)"), ("ema(20)", "EMA(20)"), ("macd(12,26,9)", "MACD(12,26,9)"),
              ("bbands(20,2)", "BBANDS(20,2)"))
UPSERT_VARIANT = "daily: 195 new + 195 changed bars per symbol"
UPSERT_VARIANT_2DAYS = "2 sessions: 390 new + 390 changed bars per symbol"
UPSERT_TARGET = "daily upsert ≤ ¼ of DuckDB's time"


def fmt_s(value: float) -> str:
    """Seconds in µs/ms/s (the report's own format, repeated to avoid an import cycle)."""
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def _get(results: list[dict[str, Any]], workload: str, variant: str, library: str) -> dict[str, Any] | None:
    return next((r for r in results if (r["workload"], r["variant"], r["library"]) == (workload, variant, library)
                 and r.get("value") is not None), None)


def _has(results: list[dict[str, Any]], workload: str) -> bool:
    return any(r["workload"] == workload for r in results)


def extra_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Targets of the workloads present in ``results`` (absent workloads add nothing)."""
    out: list[dict[str, Any]] = []

    def add(name: str, ok: bool | None, measured: str, goal: str) -> None:
        out.append({"target": name, "met": ok, "measured": measured, "goal": goal})

    if _has(results, "resample"):
        tv, duck = _get(results, "resample", "1m→1d", TV), _get(results, "resample", "1m→1d", "duckdb")
        name, goal = "resample 1m→1d faster than DuckDB on its own table", "< DuckDB"
        if tv and duck:
            add(name, tv["value"] < duck["value"], f"{fmt_s(tv['value'])} vs {fmt_s(duck['value'])} "
                f"(ratio {tv['value'] / duck['value']:.2f})", goal)
        else:
            add(name, None, "not measured", goal)
    if _has(results, "indicators"):
        for prefix, label in INDICATORS:
            cells = []
            met: bool | None = True
            for scope in ("one series", "universe"):
                variant = f"{prefix}, {scope}"
                tv, ta = _get(results, "indicators", variant, TV), _get(results, "indicators", variant, "talib")
                if tv is None or ta is None or not (tv.get("comparable", True) and ta.get("comparable", True)):
                    cells.append(f"{scope}: not comparable" if tv and ta else f"{scope}: not measured")
                    met = None if met is True else met
                    continue
                ratio = tv["value"] / ta["value"]
                cells.append(f"{scope} {ratio:.2f}× ({fmt_s(tv['value'])} vs {fmt_s(ta['value'])})")
                if ratio > 1.25:
                    met = False
            add(f"{label} within 1.25× of TA-Lib", met, "; ".join(cells), "≤ 1.25× TA-Lib")
    if _has(results, "postgres"):
        tv = _get(results, "postgres", "ingest with dedup", TV)
        name, goal = "PostgreSQL ingest with dedup", "≥ 0.6 M rows/s (aim ≥ 0.8)"
        if tv and "rows_per_s" in tv:
            peer = _get(results, "postgres", "ingest with dedup", "postgresql:copy")
            vs = f" vs COPY with a key {peer['rows_per_s'] / 1e6:.2f}" if peer else ""
            add(name, tv["rows_per_s"] >= 0.6e6, f"{tv['rows_per_s'] / 1e6:.2f} M rows/s{vs}", goal)
        else:
            add(name, None, "not measured", goal)
    if _has(results, "cache"):
        for lib, label, limit in (("tickvault:store", "from the store", 0.5e-3), ("tickvault:L1", "from L1", 0.1e-3)):
            cell = _get(results, "cache", "arrow", lib)
            name, goal = f"latest 500 bars {label} (vault, Arrow)", f"≤ {limit * 1e3:.1f} ms"
            if cell:
                add(name, cell["value"] <= limit, fmt_s(cell["value"]), goal)
            else:
                add(name, None, "not measured", goal)
    if _has(results, "upsert"):
        for variant, suffix in ((UPSERT_VARIANT, ""), (UPSERT_VARIANT_2DAYS, " (2 sessions, 390 K rows)")):
            tv, duck = _get(results, "upsert", variant, TV), _get(results, "upsert", variant, "duckdb")
            name, goal = UPSERT_TARGET + suffix, "≤ 0.25× DuckDB"
            if tv and duck:
                ratio = tv["value"] / duck["value"]
                add(name, ratio <= 0.25, f"{fmt_s(tv['value'])} vs {fmt_s(duck['value'])} (ratio {ratio:.2f})", goal)
            else:
                add(name, None, "not measured", goal)
    return out
