"""The ``http`` bench workload runs end to end on the tiny size: tickvault's service and the
FastAPI baselines each in their own server process on 127.0.0.1, driven by a load generator.

No timing is asserted (the numbers live in ``docs/benchmarks.md``): the tests prove that every
(app, server, connections) cell produces numbers from error-free answers, that every app served
the same 500 bars, that ratios, the target and the markdown come out of the record, that
``--compare`` sees an HTTP regression, and that the fallback load generator and wrk's output
parser work. granian is a bench extra, like ArcticDB: it runs when installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is a top-level package next to src/, not installed
    sys.path.insert(0, str(REPO))

from bench._http import CONNECTIONS, Server, _env, load, parse_wrk  # noqa: E402
from bench._report import render_markdown  # noqa: E402

from bench import main  # noqa: E402

SERVERS = ["uvicorn"] + (["granian"] if importlib.util.find_spec("granian") is not None else [])
GENERATOR = "wrk" if shutil.which("wrk") else "python-asyncio"


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench-http")
    out = tmp / "tiny-http.json"
    code = main(["--size", "tiny", "--only", "http", "--http-servers", ",".join(SERVERS), "--out", str(out),
                 "--workdir", str(tmp / "work"), "--no-docs"])
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text())
    data["_path"] = str(out)
    return data


def test_every_app_server_and_connection_count_is_measured_without_errors(record: dict[str, Any]) -> None:
    http = record["http"]
    assert http["generator"] == GENERATOR
    assert http["servers"] == SERVERS
    assert http["skipped"] == {}
    assert http["path"] == f"/v1/bars/{http['symbol']}/latest?timeframe=1m&n=500"
    assert http["body_bytes"] > 500 * 50  # 500 bars of JSON, the same from every app (checked before measuring)
    rows = [r for r in record["results"] if r["workload"] == "http"]
    cells = {(r["library"], r["server"], r["connections"]) for r in rows}
    assert cells == {(app, s, c) for app in ("tickvault", "fastapi") for s in SERVERS for c in CONNECTIONS}
    floor = {(r["library"], r["server"], r["connections"]) for r in http["reference"]}
    assert floor == {("fastapi:bytes", s, c) for s in SERVERS for c in CONNECTIONS}
    for r in rows + http["reference"]:
        assert r["requests"] > 0, r
        assert r["requests_per_s"] > 0
        assert r["value"] == pytest.approx(1.0 / r["requests_per_s"])
        assert r["p99_s"] >= r["p50_s"] > 0
        assert r["non_2xx"] == r["socket_errors"] == 0, r


def test_ratios_target_and_markdown_come_from_the_record(record: dict[str, Any]) -> None:
    http_ratios = [r for r in record["ratios"] if r["workload"] == "http"]
    assert len(http_ratios) == len(SERVERS) * len(CONNECTIONS)
    assert all(r["best_peer"] == "fastapi" and r["ratio"] > 0 for r in http_ratios)  # the floor is never a peer
    [target] = [t for t in record["targets"] if "over HTTP" in t["target"]]
    assert target["met"] is not None
    assert [b["connections"] for b in record["http"]["vs_best_baseline"]] == list(CONNECTIONS)
    text = render_markdown(record)
    assert "| server | connections | app | req/s | p50 | p99 | errors |" in text
    assert f"| uvicorn | {CONNECTIONS[-1]} | **tickvault** |" in text
    assert "| uvicorn | 4 | fastapi:bytes |" in text
    assert "| http |" not in text  # not in the store table


def test_compare_sees_an_http_regression(record: dict[str, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    old = Path(record["_path"])
    slower = json.loads(old.read_text())
    for r in slower["results"]:
        if r["library"] == "tickvault":
            r["value"] *= 1.5  # a third fewer requests per second
    new = tmp_path / "slower.json"
    new.write_text(json.dumps(slower))
    capsys.readouterr()
    assert main(["--compare", str(old), str(new), "--threshold", "0.2"]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_the_python_load_generator_drives_a_server(tmp_path: Path) -> None:
    body = {"symbol": "X", "timeframe": "1m", "adjust": "splits", "count": 1,
            "bars": [{"ts": "2024-01-02", "close": 1}]}
    (tmp_path / "latest.json").write_text(json.dumps(body))
    srv = Server("fastapi:bytes", "uvicorn", _env({"TVBENCH_BODY": str(tmp_path / "latest.json")}), tmp_path)
    try:
        assert json.loads(srv.wait_ready("/v1/bars/X/latest")) == body
        out = load("python-asyncio", srv.url("/v1/bars/X/latest?timeframe=1m"), 2, 0.5)
    finally:
        srv.stop()
    assert out["requests"] > 0
    assert out["non_2xx"] == 0
    assert out["p99_s"] >= out["p50_s"] > 0


WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:8001/v1/bars/SIM000/latest?timeframe=1m&n=500
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.21ms    2.34ms  41.02ms   88.12%
    Req/Sec     1.96k   211.40     2.31k    71.67%
  Latency Distribution
     50%    7.79ms
     75%    8.61ms
     90%   10.20ms
     99%    1.02s
  11708 requests in 3.00s, 808.29MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3901.38
Transfer/sec:    269.34MB
"""


def test_wrk_output_is_parsed_with_its_units_and_errors() -> None:
    out = parse_wrk(WRK_OUTPUT)
    assert out["requests_per_s"] == pytest.approx(3901.38)
    assert out["p50_s"] == pytest.approx(0.00779)
    assert out["p99_s"] == pytest.approx(1.02)
    assert (out["requests"], out["elapsed_s"]) == (11708, pytest.approx(3.0))
    assert (out["socket_errors"], out["non_2xx"]) == (3, 4)
    fast = parse_wrk(WRK_OUTPUT.replace("7.79ms", "612.00us").replace("  Non-2xx or 3xx responses: 4\n", ""))
    assert fast["p50_s"] == pytest.approx(612e-6)
    assert fast["non_2xx"] == 0
    with pytest.raises(RuntimeError, match="cannot read"):
        parse_wrk("wrk: connection refused")
