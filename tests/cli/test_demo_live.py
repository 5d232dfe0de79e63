"""``tickvault demo`` serving: the real console script fills the vault, serves it with the
dashboard on 127.0.0.1 while simulated bars arrive (HTTP and WebSocket see them), and stops
cleanly on SIGINT / SIGTERM; and the live feed itself, step by step, in process."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from websockets.sync.client import connect

import tickvault
from tickvault.cli._demo import LIVE_SYMBOLS
from tickvault.cli._demo_live import DEFAULT_PORT, LiveFeed, listen
from tickvault.model import AssetClass, CoverageState, Instrument
from tickvault.providers.sim import simulate_bars

_URL = re.compile(r"dashboard\s+(http://127\.0\.0\.1:(\d+))/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(fn: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class _Demo:
    """``tickvault demo`` in a subprocess; stdout lines are collected by a reader thread."""

    def __init__(self, exe: Path, cwd: Path, *args: str) -> None:
        env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="160")
        self.proc = subprocess.Popen([str(exe), "demo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=cwd)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def url(self, timeout: float = 60.0) -> str:
        """The dashboard URL, once the demo printed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(f"demo exited {self.proc.returncode}: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.stdout.append(line)
            found = _URL.search(line)
            if found:
                return found.group(1)
        raise AssertionError("the demo printed no URL in time:\n" + "".join(self.stdout))

    def finish(self, sig: int, timeout: float = 20.0) -> tuple[int, str, str]:
        """Send ``sig``; the exit code, the rest of stdout and stderr."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        while not self.lines.empty():
            self.stdout.append(self.lines.get())
        err = self.proc.stderr.read() if self.proc.stderr else ""
        return code, "".join(self.stdout), err

    def close(self) -> None:
        """Kill the process if it still runs; close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def demo(tickvault_bin: Path, tmp_path: Path) -> Iterator[Callable[..., _Demo]]:
    started: list[_Demo] = []

    def start(*args: str) -> _Demo:
        d = _Demo(tickvault_bin, tmp_path, *args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


def _latest_ts(base: str, symbol: str) -> str:
    r = httpx.get(f"{base}/v1/bars/{symbol}/latest", params={"timeframe": "1m", "n": 1}, timeout=5)
    assert r.status_code == 200, r.text
    [bar] = r.json()["bars"]
    return str(bar["ts"])


def test_demo_serves_the_dashboard_with_live_bars_and_stops_cleanly_on_ctrl_c(demo: Callable[..., _Demo],
                                                                             tmp_path: Path) -> None:
    home = tmp_path / "demo"
    port = _free_port()
    d = demo("--home", str(home), "--end", "2024-06-28", "--port", str(port), "--interval", "0.5")
    base = d.url()
    assert base == f"http://127.0.0.1:{port}"
    assert httpx.get(base + "/health", timeout=5).json() == {"status": "ok"}
    assert "<html" in httpx.get(base + "/", timeout=5).text.lower()  # the dashboard is served
    first = _latest_ts(base, "AAPL")
    # A new bar arrives over the WebSocket stream ...
    with connect(base.replace("http://", "ws://") + "/v1/stream") as ws:
        ws.send(json.dumps({"action": "subscribe", "symbols": ["AAPL"], "timeframes": ["1m"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        msg = json.loads(ws.recv(timeout=10))
        while msg["type"] != "bars":
            msg = json.loads(ws.recv(timeout=10))
        assert (msg["symbol"], msg["timeframe"], msg["count"]) == ("AAPL", "1m", 1)
        assert msg["bars"][0]["provider"] == "sim"
    # ... and REST sees the newest bar move on (the stored data ended 2024-06-28; live bars follow it).
    _poll(lambda: _latest_ts(base, "AAPL") > first)
    _poll(lambda: _latest_ts(base, "BTC/USDT") >= "2024-06-29")
    assert _latest_ts(base, "AAPL") >= "2024-07-01T13:30"  # the next XNYS session after Friday 2024-06-28
    # Read-only: writes need a key, and a demo folder has none.
    r = httpx.post(base + "/v1/bars/AAPL", params={"timeframe": "1m"}, content=b"ts,open\n", timeout=5,
                   headers={"content-type": "text/csv"})
    assert r.status_code == 401
    code, out, err = d.finish(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Stopped: the service is down" in out
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "/health", timeout=2)
    with tickvault.open(home) as vault:
        assert vault.verify().ok
        status = {(s.symbol, s.timeframe): s for s in vault.status()}
        for symbol in LIVE_SYMBOLS:
            assert status[symbol, "1m"].last is not None
            assert status[symbol, "1m"].last >= pd.Timestamp("2024-06-29", tz="UTC")


def test_demo_stops_cleanly_on_sigterm_and_port_0_picks_a_free_port(demo: Callable[..., _Demo],
                                                                    tmp_path: Path) -> None:
    d = demo("--home", str(tmp_path / "demo"), "--end", "2024-06-28", "--port", "0", "--interval", "0.2")
    base = d.url()
    assert httpx.get(base + "/health", timeout=5).status_code == 200
    code, out, err = d.finish(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Stopped" in out


def test_an_explicit_busy_port_is_refused_before_anything_is_simulated(cli: Callable[..., object],
                                                                      tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = cli("demo", "--home", tmp_path / "d", "--port", str(port))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "d").exists()


def test_without_a_port_the_first_free_one_from_8001_is_used() -> None:
    with listen(None) as first, listen(None) as second:
        a, b = first.getsockname()[1], second.getsockname()[1]
    assert DEFAULT_PORT <= a < b < DEFAULT_PORT + 100


def _us(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").value // 1000)


def test_the_live_feed_continues_the_simulated_path_across_nights_and_no_trade_minutes(tmp_path: Path) -> None:
    seed = 7
    with tickvault.open(tmp_path / "v") as vault:
        vault.add_instrument(Instrument("AAPL", AssetClass.EQUITY, "XNAS", "USD", "XNYS"))
        vault.add_instrument(Instrument("MSFT", AssetClass.EQUITY, "XNAS", "USD", "XNYS"))
        vault.add_instrument(Instrument("BTC/USDT", AssetClass.CRYPTO, "SIM", "USDT", "24/7"))
        # AAPL (seed 7) has no trade at 2024-07-01 17:01: stored up to 17:00, its next bar is 17:02.
        aapl, _ = simulate_bars("AAPL", "1m", _us("2024-07-01 16:58"), _us("2024-07-01 17:01"), seed=seed)
        assert aapl.num_rows == 3
        empty = [c for c in simulate_bars("AAPL", "1m", _us("2024-07-01 17:01"), _us("2024-07-01 17:03"),
                                          seed=seed)[1] if c.state is CoverageState.EMPTY]
        assert [(c.start_us, c.end_us) for c in empty] == [(_us("2024-07-01 17:01"), _us("2024-07-01 17:02"))]
        vault.write("AAPL", "1m", aapl, provider="sim")
        # MSFT stored up to 19:58, the session's second-to-last minute: next comes 19:59, then the next session.
        msft, _ = simulate_bars("MSFT", "1m", _us("2024-07-01 19:57"), _us("2024-07-01 19:59"), seed=seed)
        vault.write("MSFT", "1m", msft, provider="sim")
        btc, _ = simulate_bars("BTC/USDT", "1m", _us("2024-06-30 23:58"), _us("2024-07-01"), seed=seed)
        vault.write("BTC/USDT", "1m", btc, provider="sim")

        feed = LiveFeed(vault, ["AAPL", "MSFT", "BTC/USDT"], seed=seed, interval=1.0)
        assert [feed.step() for _ in range(3)] == [3, 3, 3]
        assert feed.written == 9

        def stored(symbol: str, start: str) -> pa.Table:
            return vault.bars(symbol, "1m", start, "2024-07-03", adjust="none", fetch="never", format="arrow")

        got = stored("AAPL", "2024-07-01 17:01")
        assert [str(t) for t in got.column("ts").to_pylist()][:1] == ["2024-07-01 17:02:00+00:00"]
        want, _ = simulate_bars("AAPL", "1m", _us("2024-07-01 17:01"), _us("2024-07-01 17:05"), seed=seed)
        assert got.select(["ts", "open", "high", "low", "close", "volume"]).equals(
            want.slice(0, 3).select(["ts", "open", "high", "low", "close", "volume"]))
        # The no-trade minute is recorded as confirmed empty, so it is not a hole.
        states = {(c.start_us, str(c.state)) for c in vault.coverage("AAPL", "1m")}
        assert (_us("2024-07-01 17:01"), "empty") in states
        [aapl_status] = vault.status("AAPL")
        assert aapl_status.holes == 0

        msft_ts = [str(t) for t in stored("MSFT", "2024-07-01 19:59").column("ts").to_pylist()]
        assert msft_ts[:2] == ["2024-07-01 19:59:00+00:00", "2024-07-02 13:30:00+00:00"]  # over the night
        btc_ts = [str(t) for t in stored("BTC/USDT", "2024-07-01").column("ts").to_pylist()]
        assert btc_ts == ["2024-07-01 00:00:00+00:00", "2024-07-01 00:01:00+00:00", "2024-07-01 00:02:00+00:00"]
