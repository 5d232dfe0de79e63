"""The ``http`` workload: the latest 500 bars over HTTP, tickvault's service against FastAPI.

Why this module exists: issue 7 asks for requests per second and p50/p99 latency of
``GET /v1/bars/{symbol}/latest?timeframe=1m&n=500`` at 4 and 32 connections, measured with a
load generator on the same machine, side by side with a minimal FastAPI endpoint returning the
same bars from memory, under uvicorn and (when installed) granian. Each (app, server) pair runs
in its own subprocess on a free 127.0.0.1 port; only 127.0.0.1 is ever targeted and every load
run is bounded in time.

- Apps (:mod:`bench._http_apps`): ``tickvault`` (``create_app`` over a LocalStore vault holding
  one symbol-year of sim bars), ``fastapi`` (the baseline: bars in memory as Python objects,
  serialised per request) and ``fastapi:bytes`` (the same endpoint returning pre-serialised
  bytes: a floor for routing + server cost, not a peer).
- Servers: uvicorn (uvloop + httptools, one process) and granian (one worker, ``--interface
  asgi``), both with access logs off. granian is a bench extra: without it those cells are
  skipped and the reason recorded.
- Load generator: ``wrk`` (Debian package) when it is on ``PATH``, else a Python asyncio
  generator over raw keep-alive sockets (``python -m bench._http load``, its own process). The
  run records which one; the Python one is slower than the servers it drives, so its numbers
  are lower bounds.
- Order: every server is started first; then, for each round, the (app, server) pairs run in an
  order that rotates per round, each at 4 then 32 connections for ``duration`` seconds after a
  short warm-up. A cell's value is the median over rounds.

Every response is checked before measuring (status 200, the same 500 bars from every app) and
wrk's non-2xx and socket-error counts are recorded with the numbers. Result rows have
``value`` = seconds per request (1 / req/s, lower is better, like every other workload), so
ratios and ``--compare`` work unchanged; ``requests_per_s``, ``p50_s`` and ``p99_s`` are kept
alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["APPS", "CONNECTIONS", "SERVERS", "http_targets", "markdown", "profile_http", "run_http"]

REPO = Path(__file__).resolve().parents[1]
SYMBOL_N = 500
CONNECTIONS = (4, 32)
#: App name -> factory (``module:function``) in :mod:`bench._http_apps`.
APPS = {"tickvault": "bench._http_apps:tickvault_app", "fastapi": "bench._http_apps:fastapi_app",
        "fastapi:bytes": "bench._http_apps:fastapi_bytes_app"}
SERVERS = ("uvicorn", "granian")
BASELINE = "fastapi"
#: Apps measured for reference only (kept under ``record["http"]["reference"]``, never a peer).
REFERENCE_APPS = ("fastapi:bytes",)
#: Seconds per measured cell, warm-up seconds and rounds, per bench size.
DURATION_S = {"tiny": 1, "quick": 3, "full": 10}
WARMUP_S = {"tiny": 0, "quick": 1, "full": 2}
ROUNDS = {"tiny": 1, "quick": 1, "full": 3}
_TARGET = "latest 500 bars over HTTP: more req/s than the FastAPI baseline"


def _log(msg: str) -> None:
    print(f"[bench http {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _path(symbol: str) -> str:
    return f"/v1/bars/{symbol}/latest?timeframe=1m&n={SYMBOL_N}"


def server_missing(server: str) -> str | None:
    """Why ``server`` cannot run here, or ``None``."""
    import importlib.util

    if importlib.util.find_spec(server) is None:
        return f"{server} is not installed (pip install {server})"
    return None


def generator_name() -> str:
    """``wrk`` when it is on PATH, else ``python-asyncio``."""
    return "wrk" if shutil.which("wrk") else "python-asyncio"


# -- servers ------------------------------------------------------------------------------------

class Server:
    """One (app, server) pair in its own process on a free 127.0.0.1 port."""

    def __init__(self, app: str, server: str, env: dict[str, str], log_dir: Path) -> None:
        self.app, self.server = app, server
        self.port = _free_port()
        target = APPS[app]
        if server == "uvicorn":
            cmd = [sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port",
                   str(self.port), "--log-level", "warning", "--no-access-log", "--lifespan", "on"]
        else:
            cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1", "--log-level", "warning", "--no-access-log", target]
        self.log_path = log_dir / f"{app.replace(':', '-')}-{server}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def label(self) -> str:
        return f"{self.app} on {self.server}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, path: str, timeout: float = 90.0) -> bytes:
        """Poll until ``path`` answers 200; returns that body."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                r = httpx.get(self.url(path), timeout=5.0)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if r.status_code != 200:
                raise RuntimeError(f"{self.label} answered {r.status_code}: {r.text[:500]}")
            return r.content
        raise RuntimeError(f"{self.label} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the server's process group (granian's workers too)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


# -- load generators ----------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests per second, p50/p99 latency, request and error counts from ``wrk --latency`` output."""
    pct = {int(p): _seconds(v, u) for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if rps is None or done is None or 50 not in pct or 99 not in pct:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    return {"requests_per_s": float(rps.group(1)), "p50_s": pct[50], "p99_s": pct[99],
            "requests": int(done.group(1)), "elapsed_s": _seconds(done.group(2), done.group(3)),
            "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def run_wrk(url: str, connections: int, duration: int) -> dict[str, Any]:
    """Drive ``url`` with wrk (2 threads, keep-alive) for ``duration`` seconds."""
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def run_python_load(url: str, connections: int, duration: float) -> dict[str, Any]:
    """Drive ``url`` with the asyncio generator in its own process for ``duration`` seconds."""
    cmd = [sys.executable, "-m", "bench._http", "load", url, "--connections", str(connections),
           "--duration", str(duration)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=duration + 60, check=False,
                          env=_env({}))
    if done.returncode != 0:
        raise RuntimeError(f"the Python load generator failed: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def load(generator: str, url: str, connections: int, duration: float) -> dict[str, Any]:
    """One measured load run with ``generator`` (``wrk`` or ``python-asyncio``)."""
    if generator == "wrk":
        return run_wrk(url, connections, max(1, round(duration)))
    return run_python_load(url, connections, duration)


async def _client(host: str, port: int, request: bytes, deadline: float, latencies: list[float],
                  statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            headers = head.lower()
            found = re.search(rb"\r\ncontent-length:\s*(\d+)", headers)
            if found is not None:
                await reader.readexactly(int(found.group(1)))
            else:  # chunked
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _python_load(url: str, connections: int, duration: float) -> dict[str, Any]:
    m = re.match(r"http://([^:/]+):(\d+)(/.*)$", url)
    if m is None:
        raise SystemExit(f"not an http://host:port/path URL: {url}")
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    t0 = time.perf_counter()
    deadline = t0 + duration
    await asyncio.gather(*(_client(host, port, request, deadline, latencies, statuses) for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies)
    return {"requests_per_s": len(lat) / elapsed, "p50_s": float(np.percentile(lat, 50)),
            "p99_s": float(np.percentile(lat, 99)), "requests": len(lat), "elapsed_s": elapsed, "socket_errors": 0,
            "non_2xx": sum(n for s, n in statuses.items() if not 200 <= s < 400)}


# -- the workload ---------------------------------------------------------------------------------

def _env(extra: dict[str, str]) -> dict[str, str]:
    """The servers' environment: no TICKVAULT_* settings from the caller, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra)
    return env


def _bars_of(body: bytes) -> list[dict[str, Any]]:
    doc = json.loads(body)
    bars: list[dict[str, Any]] = doc["bars"]
    return bars


def prepare_vault(home: Path, symbol: str, bars: Any) -> int:
    """Write ``bars`` (one symbol's 1m bars) into a fresh embedded vault at ``home``; returns the rows stored."""
    import tickvault

    if home.exists():
        shutil.rmtree(home)
    with tickvault.open(home) as vault:
        receipt = vault.write(symbol, "1m", bars, provider="sim")
    return int(receipt.rows_written)


def run_http(ctx: Any, servers: Sequence[str] = SERVERS, apps: Sequence[str] = tuple(APPS),
             generator: str | None = None) -> dict[str, Any]:
    """Measure every (app, server) pair at :data:`CONNECTIONS`; append result rows to ``ctx.results``.

    Returns
    -------
    dict
        What the record keeps under ``"http"``: generator, durations, the skipped servers,
        the symbol, body size and per-connection comparisons against the best baseline.
    """
    from bench._workloads import read_symbols

    if "tickvault" not in apps:
        raise SystemExit("the http workload needs the tickvault app: its answer is what the baselines serve")
    size = ctx.data.size.name
    duration = DURATION_S.get(size, 3)
    warmup = WARMUP_S.get(size, 1)
    rounds = ROUNDS.get(size, 1)
    gen = generator or generator_name()
    skipped = {s: why for s in servers if (why := server_missing(s)) is not None}
    run_servers = [s for s in servers if s not in skipped]
    for s, why in skipped.items():
        ctx.log(f"http: skipping {s}: {why}")
    symbol = read_symbols(ctx)[0]
    work = ctx.workdir / "http"
    work.mkdir(parents=True, exist_ok=True)
    home = work / "vault"
    rows = prepare_vault(home, symbol, ctx.data.bars(symbol))
    body_file = work / "latest.json"
    info: dict[str, Any] = {"generator": gen, "duration_s": duration, "warmup_s": warmup, "rounds": rounds,
                            "connections": list(CONNECTIONS), "symbol": symbol, "vault_rows": rows,
                            "path": _path(symbol), "skipped": skipped, "servers": run_servers, "apps": list(apps)}
    if gen == "wrk":
        banner = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"wrk\s+(?:\S*/)?(\d+(?:\.\d+)+)", banner)  # "wrk debian/4.1.0-3+b2 [epoll] ..."
        info["generator_version"] = f"wrk {found.group(1)}" if found else "wrk"
    path = _path(symbol)
    started: list[Server] = []
    env = _env({"TVBENCH_HOME": str(home), "TVBENCH_BODY": str(body_file)})
    try:
        # tickvault first: its answer is the body the FastAPI baselines serve from memory. Each group
        # starts in parallel (imports dominate start-up), then every server is checked.
        reference: list[dict[str, Any]] | None = None
        for group in (["tickvault"], [a for a in apps if a != "tickvault"]):
            fresh = [Server(app, server, env, work) for app in group if app in apps for server in run_servers]
            started += fresh
            for srv in fresh:
                body = srv.wait_ready(path)
                if not body_file.exists():
                    body_file.write_bytes(body)
                bars = _bars_of(body)
                if reference is None:
                    reference = bars
                    info["body_bytes"] = len(body)
                if len(bars) != SYMBOL_N or bars != reference:
                    raise RuntimeError(f"{srv.label} does not answer the same {SYMBOL_N} bars")
        samples: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for r in range(rounds):
            for k in range(len(started)):
                srv = started[(r + k) % len(started)]
                url = srv.url(path)
                if warmup:
                    load(gen, url, max(CONNECTIONS), warmup)  # warm-up: not recorded
                for conns in CONNECTIONS:
                    out = load(gen, url, conns, duration)
                    ctx.log(f"http round {r + 1}/{rounds}: {srv.label}, {conns} conns: "
                            f"{out['requests_per_s']:,.0f} req/s, p50 {out['p50_s'] * 1e3:.2f} ms, "
                            f"p99 {out['p99_s'] * 1e3:.2f} ms, non-2xx {out['non_2xx']}")
                    samples.setdefault((srv.app, srv.server, conns), []).append(out)
    finally:
        for srv in started:
            srv.stop()
    info["reference"] = []
    for (app, server, conns), outs in samples.items():
        rps = float(np.median([o["requests_per_s"] for o in outs]))
        # The floor is a reference, not a peer: it stays out of the results (ratios, --compare).
        (info["reference"] if app in REFERENCE_APPS else ctx.results).append({
            "workload": "http", "variant": f"latest {SYMBOL_N}, {server}, {conns} conns", "library": app,
            "unit": "s/req", "value": 1.0 / rps, "n": len(outs), "requests_per_s": rps,
            "p50_s": float(np.median([o["p50_s"] for o in outs])),
            "p99_s": float(np.median([o["p99_s"] for o in outs])),
            "server": server, "connections": conns, "requests": sum(o["requests"] for o in outs),
            "non_2xx": sum(o["non_2xx"] for o in outs), "socket_errors": sum(o["socket_errors"] for o in outs),
            "rounds": [{k: o[k] for k in ("requests_per_s", "p50_s", "p99_s")} for o in outs],
        })
    info["vs_best_baseline"] = vs_best_baseline(ctx.results)
    return info


def _http_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r["workload"] == "http"]


def vs_best_baseline(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per connection count: tickvault's best server against the best FastAPI baseline (req/s)."""
    out = []
    for conns in CONNECTIONS:
        cells = [r for r in _http_rows(results) if r["connections"] == conns]
        tv = max((r for r in cells if r["library"] == "tickvault"), key=lambda r: r["requests_per_s"], default=None)
        base = max((r for r in cells if r["library"] == BASELINE), key=lambda r: r["requests_per_s"], default=None)
        if tv is None or base is None:
            continue
        out.append({"connections": conns, "tickvault_server": tv["server"], "tickvault_rps": tv["requests_per_s"],
                    "tickvault_p99_s": tv["p99_s"], "baseline_server": base["server"],
                    "baseline_rps": base["requests_per_s"], "baseline_p99_s": base["p99_s"],
                    "speedup": tv["requests_per_s"] / base["requests_per_s"]})
    return out


def http_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's HTTP target: tickvault serves more req/s than the best FastAPI baseline at 4 and 32 conns.

    Nothing when the workload did not run (like the other added workloads' targets).
    """
    if not _http_rows(results):
        return []
    best = vs_best_baseline(results)
    goal = "> best FastAPI baseline (uvicorn, granian) at 4 and 32 connections"
    if len(best) < len(CONNECTIONS):
        return [{"target": _TARGET, "met": None, "measured": "not measured", "goal": goal}]
    measured = "; ".join(f"{b['connections']} conns: {b['tickvault_rps']:,.0f} req/s ({b['tickvault_server']}) vs "
                         f"{b['baseline_rps']:,.0f} ({b['baseline_server']}), x{b['speedup']:.2f}" for b in best)
    return [{"target": _TARGET, "met": all(b["speedup"] > 1.0 for b in best), "measured": measured, "goal": goal}]


def markdown(run: dict[str, Any]) -> list[str]:
    """The HTTP section of the results block (empty when the workload did not run)."""
    info = run.get("http")
    rows = _http_rows(run.get("results", [])) + list((info or {}).get("reference", []))
    if not rows or not info:
        return []
    ratio_of = {(r["workload"], r["variant"]): r for r in run.get("ratios", [])}
    gen = info.get("generator_version") or info["generator"]
    lines = ["", f"HTTP: `GET {info['path']}` ({info.get('body_bytes', 0):,} bytes of JSON) on 127.0.0.1, load from "
             f"`{gen}` on the same machine ({'2 threads, ' if info['generator'] == 'wrk' else ''}keep-alive), "
             f"{info['duration_s']} s per cell after a {info['warmup_s']} s warm-up, median of {info['rounds']} "
             "round(s). `fastapi` is the baseline (bars in memory, serialised per request); `fastapi:bytes` returns "
             "pre-serialised bytes (a floor, not a peer).", "",
             "| server | connections | app | req/s | p50 | p99 | errors | tickvault / FastAPI (time per request) |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    order = {"tickvault": 0, "fastapi": 1, "fastapi:bytes": 2}
    for r in sorted(rows, key=lambda r: (r["server"], r["connections"], order.get(r["library"], 9))):
        rr = ratio_of.get(("http", r["variant"]))
        ratio = f"**{rr['ratio']:.2f}**" if rr and r["library"] == "tickvault" else ""
        name = f"**{r['library']}**" if r["library"] == "tickvault" else r["library"]
        errors = r["non_2xx"] + r["socket_errors"]
        lines.append(f"| {r['server']} | {r['connections']} | {name} | {r['requests_per_s']:,.0f} | "
                     f"{r['p50_s'] * 1e3:.2f} ms | {r['p99_s'] * 1e3:.2f} ms | {errors} | {ratio} |")
    lines.append("")
    for b in info.get("vs_best_baseline", []):
        lines.append(f"- {b['connections']} connections: tickvault on {b['tickvault_server']} "
                     f"{b['tickvault_rps']:,.0f} req/s (p99 {b['tickvault_p99_s'] * 1e3:.2f} ms) vs the best FastAPI "
                     f"baseline, on {b['baseline_server']}, {b['baseline_rps']:,.0f} req/s (p99 "
                     f"{b['baseline_p99_s'] * 1e3:.2f} ms): **x{b['speedup']:.2f}**.")
    if info.get("skipped"):
        lines.append("- HTTP servers not run: " + "; ".join(f"{k}: {v}" for k, v in info["skipped"].items()))
    return lines


# -- profile ----------------------------------------------------------------------------------------

async def _drive(app: Any, path: str, query: bytes, n: int) -> None:
    """Call the ASGI app ``n`` times in-process (no network): what one request costs the app."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*")], "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 8001)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    for _ in range(n):
        await app(dict(scope), receive, send)


def app_cost(home: Path, symbol: str, n: int = 2000) -> float:
    """Mean seconds per in-process call of tickvault's latest-500 route (after warming its cache)."""
    import tickvault
    from tickvault.service import ServiceSettings, create_app

    with tickvault.open(home) as vault:
        app = create_app(vault, ServiceSettings(rate_limit_per_minute=0))
        path, _, query = _path(symbol).partition("?")
        asyncio.run(_drive(app, path, query.encode(), 50))
        t0 = time.perf_counter()
        asyncio.run(_drive(app, path, query.encode(), n))
        return (time.perf_counter() - t0) / n


def profile_http(home: Path, symbol: str, n: int = 3000, lines: int = 25) -> str:
    """pyinstrument's flat listing of ``n`` in-process calls of tickvault's latest-500 route."""
    from pyinstrument import Profiler

    import tickvault
    from tickvault.service import ServiceSettings, create_app

    with tickvault.open(home) as vault:
        app = create_app(vault, ServiceSettings(rate_limit_per_minute=0))
        path, _, query = _path(symbol).partition("?")
        asyncio.run(_drive(app, path, query.encode(), 50))
        prof = Profiler(interval=0.0002, async_mode="disabled")
        prof.start()
        t0 = time.perf_counter()
        asyncio.run(_drive(app, path, query.encode(), n))
        per_call = (time.perf_counter() - t0) / n
        prof.stop()
    text = prof.output_text(unicode=True, color=False, flat=True, time="percent_of_total")
    body = [ln for ln in text.splitlines() if "%" in ln and "bench/_http.py" not in ln]
    return "\n".join([f"{n} in-process calls, {per_call * 1e6:.0f} µs per call (under the profiler)", *body[:lines]])


# -- command line (the Python load generator, and a standalone run) --------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench._http load URL ...`` (the fallback load generator) or ``profile HOME SYMBOL``."""
    p = argparse.ArgumentParser(prog="python -m bench._http")
    sub = p.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("load", help="drive URL with keep-alive connections; print JSON")
    lg.add_argument("url")
    lg.add_argument("--connections", type=int, default=4)
    lg.add_argument("--duration", type=float, default=3.0)
    pr = sub.add_parser("profile", help="profile tickvault's latest-500 route in-process (a fresh sim vault)")
    pr.add_argument("--symbol", default="SIM000")
    pr.add_argument("--calls", type=int, default=3000)
    args = p.parse_args(argv)
    if args.cmd == "load":
        if not args.url.startswith("http://127.0.0.1:"):
            raise SystemExit("the load generator only targets http://127.0.0.1")
        try:
            import uvloop

            runner: Any = uvloop.run
        except ImportError:
            runner = asyncio.run
        print(json.dumps(runner(_python_load(args.url, args.connections, args.duration))))
        return 0
    from bench._data import make_bars, sim_source

    with tempfile.TemporaryDirectory(prefix="tickvault-bench-http-") as tmp:
        home = Path(tmp) / "vault"
        prepare_vault(home, args.symbol, make_bars(args.symbol, "2023-01-01", "2024-01-01", sim_source()))
        print(f"{app_cost(home, args.symbol) * 1e6:.1f} µs per call without the profiler")
        print(profile_http(home, args.symbol, args.calls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
