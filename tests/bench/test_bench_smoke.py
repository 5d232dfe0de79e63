"""The benchmark suite runs end to end on a tiny size, and ``--compare`` flags regressions.

No timing is asserted here (performance lives in ``bench/`` and ``docs/benchmarks.md``): the
test proves that every workload produces a positive number for every library, that each
library reads back exactly what it was given, and that the JSON record and the comparison
mode are usable. ArcticDB is an optional (``bench`` extra) peer and is left out only when it
is not installed; tickvault, DuckDB and Parquet always run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is a top-level package next to src/, not installed
    sys.path.insert(0, str(REPO))

from bench._contenders import NOCACHE  # noqa: E402
from bench._extra import STORE_WORKLOADS  # noqa: E402
from bench._profile import _TARGET_WORKLOAD as STORE_TARGETS  # noqa: E402

from bench import WORKLOADS, main  # noqa: E402

HAS_ARCTICDB = importlib.util.find_spec("arcticdb") is not None
LIBS = ["tickvault", "duckdb", "parquet"] + (["arcticdb"] if HAS_ARCTICDB else [])

# ArcticDB 6.28 and DuckDB 2.0 call pandas APIs that pandas 3.1 deprecates (the last one is
# raised inside pandas on ArcticDB's behalf); those warnings are theirs, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:arcticdb"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:duckdb"),
    pytest.mark.filterwarnings("ignore:DatetimeIndex.values returning an ndarray:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "tiny.json"
    code = main(["--size", "tiny", "--libs", ",".join(LIBS), "--out", str(out), "--workdir", str(tmp / "work"),
                 "--no-docs", "--only", ",".join(STORE_WORKLOADS)])
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text())
    data["_path"] = str(out)
    return data


def test_every_workload_reports_positive_numbers_for_every_library(record: dict[str, Any]) -> None:
    assert record["rows"] > 0
    assert record["skipped"] == {}
    seen = {(r["workload"], r["variant"], r["library"]) for r in record["results"]}
    assert {(w, lib) for w, _v, lib in seen} == {(w, lib) for w in STORE_WORKLOADS for lib in LIBS} | {
        ("read", NOCACHE), ("latest", NOCACHE)}
    # The cache-less tickvault variant reads tickvault's folder warm only; it is not a peer.
    assert {v for _w, v, lib in seen if lib == NOCACHE} == {"arrow, warm", "pandas, warm"}
    assert all(r["best_peer"] in LIBS and r["best_peer"] != "tickvault" for r in record["ratios"])
    for r in record["results"]:
        assert r["value"] > 0, r
        if r["unit"] == "s":
            assert r["n"] >= 1
            assert r["p99_s"] >= r["median_s"] >= r["min_s"] > 0
            assert r["peak_mem_bytes"] >= 0


def test_read_workloads_cover_arrow_pandas_warm_and_cold(record: dict[str, Any]) -> None:
    variants = {r["variant"] for r in record["results"] if r["workload"] == "read"}
    assert variants == {"arrow, warm", "pandas, warm", "arrow, cold", "pandas, cold", "arrow, cold + open",
                        "pandas, cold + open"}
    cold = [r for r in record["results"] if "cold" in r["variant"]]
    # Where the file system cannot drop pages (tmpfs), the run must say its cold numbers are not cold.
    if any(r["resident_after_evict_bytes"] for r in cold):
        assert "cold_warning" in record["notes"]
    assert record["notes"]["cold"] in ("fadvise-dontneed", "drop_caches")


def test_every_library_stores_the_bars_losslessly(record: dict[str, Any]) -> None:
    storage = [r for r in record["results"] if r["workload"] == "storage"]
    assert {r["library"] for r in storage} == set(LIBS)
    for r in storage:
        assert r["lossless"], r
        assert r["bytes_allocated"] > 0


def test_ratios_targets_versions_and_machine_are_recorded(record: dict[str, Any]) -> None:
    cells = {(r["workload"], r["variant"]) for r in record["results"]}
    assert {(r["workload"], r["variant"]) for r in record["ratios"]} == cells
    assert all(r["ratio"] > 0 for r in record["ratios"])
    # The store workloads' targets are all measured here (the other workloads' read "not measured").
    assert set(STORE_TARGETS) <= {t["target"] for t in record["targets"]}
    # A target against ArcticDB reads "not measured" when that optional peer is not installed (CI);
    # every other store target is decided.
    store = [t for t in record["targets"] if t["target"] in STORE_TARGETS]
    assert all(t["met"] is not None or t["measured"] == "not measured" for t in store)
    assert any(t["met"] is not None for t in store)
    assert record["versions"]["tickvault"] != "absent"
    assert record["machine"]["cores"] >= 1
    assert record["machine"]["ram_bytes"] > 0
    assert record["command"].startswith("python -m bench --size tiny")


def test_compare_flags_a_tickvault_regression_and_nothing_else(record: dict[str, Any], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    old = Path(record["_path"])
    assert main(["--compare", str(old), str(old)]) == 0
    slower = json.loads(old.read_text())
    for r in slower["results"]:
        if r["library"] == "tickvault" and r["workload"] == "ingest":
            r["value"] *= 1.5
    new = tmp_path / "slower.json"
    new.write_text(json.dumps(slower))
    capsys.readouterr()
    assert main(["--compare", str(old), str(new), "--threshold", "0.2"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out
    assert "1 tickvault regression(s)" in out


def test_markdown_block_is_replaced_in_place(record: dict[str, Any], tmp_path: Path) -> None:
    from bench._report import BEGIN, END, write_docs

    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nprose before\n\n{BEGIN}\nold numbers\n{END}\n\nprose after\n")
    write_docs(record, page)
    text = page.read_text()
    assert "old numbers" not in text
    assert text.startswith("# Benchmarks\n\nprose before")
    assert text.rstrip().endswith("prose after")
    assert "| ingest | bulk, durable | **tickvault** |" in text


# -- the added workloads: resample, indicators, postgres, cache, upsert ---------------------------
# They run against real PostgreSQL and Redis: a missing service is recorded in ``skipped``,
# which the first test below requires to be empty, so it fails rather than skips.

DATABASE_URL = os.environ.get("TICKVAULT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TICKVAULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EXTRA = ("resample", "indicators", "postgres", "cache", "upsert")
HAS_TALIB = importlib.util.find_spec("talib") is not None


@pytest.fixture(scope="module")
def extra_record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench-extra")
    out = tmp / "tiny-extra.json"
    code = main(["--size", "tiny", "--only", ",".join(EXTRA), "--libs", ",".join(LIBS), "--out", str(out),
                 "--workdir", str(tmp / "work"), "--no-docs", "--database-url", DATABASE_URL, "--redis-url", REDIS_URL])
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text())
    data["_path"] = str(out)
    return data


def _libs_of(record: dict[str, Any], workload: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in record["results"]:
        if r["workload"] == workload:
            out.setdefault(r["variant"], set()).add(r["library"])
    return out


def test_added_workloads_run_every_peer_with_the_services_up(extra_record: dict[str, Any]) -> None:
    assert set(EXTRA) <= set(WORKLOADS)
    # PostgreSQL or Redis down, or a peer missing, lands here: the smoke test fails, it does not skip.
    assert extra_record["skipped"] == ({} if HAS_TALIB else {"talib": extra_record["skipped"].get("talib")})
    assert {r["workload"] for r in extra_record["results"]} == set(EXTRA)
    resample_libs = {"tickvault", "duckdb", "polars", "pandas"}
    assert _libs_of(extra_record, "resample") == {"1m→1h": resample_libs, "1m→1d": resample_libs}
    indicators = _libs_of(extra_record, "indicators")
    # 4 indicators + all four, on one series and on the universe, each with TA-Lib; plus the
    # five-output Bollinger call, tickvault only (TA-Lib has no %b / BandWidth)
    assert len(indicators) == 12
    five = {v for v in indicators if v.startswith("bbands(20,2) with %b and width, ")}
    assert five == {"bbands(20,2) with %b and width, one series", "bbands(20,2) with %b and width, universe"}
    indicator_libs = {"tickvault"} | ({"talib"} if HAS_TALIB else set())
    assert all(libs == ({"tickvault"} if v in five else indicator_libs) for v, libs in indicators.items())
    assert _libs_of(extra_record, "postgres") == {
        "ingest with dedup": {"tickvault", "tickvault:write", "postgresql:copy"},
        "symbol-year read to pandas": {"tickvault", "postgresql:fetchall", "postgresql:copy-csv"}}
    tiers = {"tickvault:store", "tickvault:L1", "tickvault:redis", "tickvault:L1+redis"}
    assert _libs_of(extra_record, "cache") == {"arrow": tiers, "pandas": tiers}
    upsert_libs = {"tickvault", "tickvault:postgres", "duckdb", "postgresql"}
    upsert_libs |= {"arcticdb"} if HAS_ARCTICDB else set()
    assert set().union(*_libs_of(extra_record, "upsert").values()) == upsert_libs
    for r in extra_record["results"]:
        assert r["value"] > 0, r
        assert r["n"] >= 1
        assert r["p99_s"] >= r["median_s"] >= r["min_s"] > 0
        assert r["peak_mem_bytes"] >= 0


def test_added_workloads_compare_like_with_like(extra_record: dict[str, Any]) -> None:
    for r in extra_record["results"]:
        # Peers' resampled buckets, TA-Lib's indicators, every tier's latest bars, every read-back
        # after the upsert: each matched tickvault's (or the store's) output before being timed.
        assert r.get("comparable", True), r
        if r["workload"] == "postgres" and "read" in r["variant"]:
            assert r["lossless"], r
    ratio_cells = {(r["workload"], r["variant"]) for r in extra_record["ratios"]}
    assert ("resample", "1m→1d") in ratio_cells
    assert ("upsert", extra_record["results"][-1]["variant"]) in ratio_cells
    assert all(r["best_peer"] != "tickvault" and not r["best_peer"].startswith("tickvault:")
               for r in extra_record["ratios"])


def test_added_workloads_report_their_targets(extra_record: dict[str, Any]) -> None:
    names = {t["target"]: t for t in extra_record["targets"]}
    for name in ("resample 1m→1d faster than DuckDB on its own table", "RSI(14) within 1.25× of TA-Lib",
                 "PostgreSQL ingest with dedup", "latest 500 bars from the store (vault, Arrow)",
                 "latest 500 bars from L1 (vault, Arrow)", "daily upsert ≤ ¼ of DuckDB's time"):
        assert name in names
        assert names[name]["met"] is not None or (name.startswith("RSI") and not HAS_TALIB)


def test_added_workloads_clean_up_their_database_and_redis_keys(extra_record: dict[str, Any]) -> None:
    import psycopg
    import redis

    pid = os.getpid()  # the run above happened in this process: its names carry this pid
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"tickvault_bench_{pid}_%",)).fetchall()
    assert left == []
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert list(client.scan_iter(match=f"tickvault-bench-{pid}-*")) == []
    finally:
        client.close()


def test_merge_keeps_other_workloads_and_lists_the_later_run(record: dict[str, Any], extra_record: dict[str, Any],
                                                             tmp_path: Path) -> None:
    from bench._merge import merge_records
    from bench._report import render_markdown

    merged = merge_records(record, extra_record)
    assert {r["workload"] for r in merged["results"]} == set(STORE_WORKLOADS) | set(EXTRA)
    assert merged["command"] == record["command"]
    assert [p["workloads"] for p in merged["merged"]] == [sorted(EXTRA)]
    assert {(r["workload"], r["variant"]) for r in merged["ratios"]} >= {
        (r["workload"], r["variant"]) for r in record["ratios"] + extra_record["ratios"]}
    # Re-merging the same workloads replaces their rows instead of adding a second copy.
    again = merge_records(merged, extra_record)
    assert len(again["results"]) == len(merged["results"])
    assert len(again["merged"]) == 1
    text = render_markdown(merged)
    assert "come from a later run" in text
    assert "| resample | 1m→1d | **tickvault** |" in text
    other = json.loads(json.dumps(extra_record))
    other["size"]["symbols"] += 1
    with pytest.raises(SystemExit, match="sizes or seeds differ"):
        merge_records(record, other)


def test_merge_flag_writes_the_merged_record(record: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "tiny.json"
    out.write_text(Path(record["_path"]).read_text())
    assert main(["--size", "tiny", "--only", "indicators", "--libs", "tickvault", "--out", str(out),
                 "--workdir", str(tmp_path / "work"), "--no-docs", "--merge"]) == 0
    merged = json.loads(out.read_text())
    assert {r["workload"] for r in merged["results"]} == set(STORE_WORKLOADS) | {"indicators"}
