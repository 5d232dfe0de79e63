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
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is a top-level package next to src/, not installed
    sys.path.insert(0, str(REPO))

from bench._contenders import NOCACHE  # noqa: E402

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
                 "--no-docs"])
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text())
    data["_path"] = str(out)
    return data


def test_every_workload_reports_positive_numbers_for_every_library(record: dict[str, Any]) -> None:
    assert record["rows"] > 0
    assert record["skipped"] == {}
    seen = {(r["workload"], r["variant"], r["library"]) for r in record["results"]}
    assert {(w, lib) for w, _v, lib in seen} == {(w, lib) for w in WORKLOADS for lib in LIBS} | {
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
    assert {t["target"] for t in record["targets"]}
    assert all(t["met"] is not None for t in record["targets"])
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
