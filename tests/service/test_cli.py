"""``tickvault keys`` and ``tickvault serve``: keys through the CLI runner, and the real server
(uvicorn in a subprocess) answering HTTP and WebSocket clients end to end."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner
from websockets.sync.client import connect

from tickvault.cli import app
from tickvault.cli._serve import env_secrets
from tickvault.service import default_keys_file, load_keys_file

from .conftest import minute_frame


def _cli(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_keys_add_list_remove(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    added = _cli("keys", "add", "ci-writer", "--role", "write", "--home", home)
    assert added.exit_code == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("tvk_")
    assert len(key) == 47
    path = default_keys_file(home)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key not in path.read_text()
    listed = _cli("keys", "list", "--home", home)
    assert listed.stdout.split("\t")[:2] == ["ci-writer", "write"]
    assert key not in listed.stdout
    dup = _cli("keys", "add", "ci-writer", "--home", home)
    assert dup.exit_code == 2
    assert "exists" in dup.stderr
    bad_role = _cli("keys", "add", "x", "--role", "root", "--home", home)
    assert bad_role.exit_code == 2
    assert "unknown role" in bad_role.stderr
    assert _cli("keys", "remove", "ci-writer", "--home", home).exit_code == 2  # needs --yes
    assert _cli("keys", "remove", "ci-writer", "--yes", "--home", home).exit_code == 0
    assert load_keys_file(path) == []


def test_serve_refuses_bad_settings_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_SERVICE_MAX_ROWS", "lots")
    r = _cli("serve", "--home", tmp_path / "v")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: invalid service configuration")
    assert "max_rows" in r.stderr


def test_env_secrets_picks_credentials_only() -> None:
    env = {"TICKVAULT_POLYGON_API_KEY": "pk1", "TICKVAULT_ALPACA_API_SECRET": "sec", "TICKVAULT_HOME": "/x",
           "TICKVAULT_DATABASE_URL": "postgresql://u:pw@h/db", "TICKVAULT_API_KEYS": "[]", "HOME": "/root",
           "TICKVAULT_FOO_TOKEN": "tok", "TICKVAULT_EMPTY_API_KEY": ""}
    assert sorted(env_secrets(env)) == ["pk1", "postgresql://u:pw@h/db", "sec", "tok"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(fn: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class _Server:
    """``tickvault serve`` in a subprocess; :meth:`stop` returns its stderr lines."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "tickvault"
        self.proc = subprocess.Popen([str(exe), "serve", "--port", str(self.port), "--home", str(home)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _poll(self._up)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
        try:
            return httpx.get(self.base + "/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> list[str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        return list(err.splitlines())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[_Server, str]]:
    home = tmp_path / "vault"
    key = _cli("keys", "add", "e2e", "--role", "write", "--home", home).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKVAULT_")}
    env["TICKVAULT_POLYGON_API_KEY"] = SECRET
    srv = _Server(home, env)
    try:
        yield srv, key
    finally:
        srv.stop()


SECRET = "pk_e2e_should_never_show_0123"


def test_the_real_server_answers_http_streams_bars_and_logs_json(server: tuple[_Server, str]) -> None:
    srv, key = server
    base = srv.base
    with connect(base.replace("http://", "ws://") + "/v1/stream") as ws:
        ws.send(json.dumps({"action": "subscribe", "symbols": ["BTC/*"], "timeframes": ["1m"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        csv = minute_frame(periods=4).reset_index().to_csv(index=False).encode()
        r = httpx.post(base + "/v1/bars/BTC/USDT", params={"timeframe": "1m"}, content=csv,
                       headers={"X-API-Key": key, "content-type": "text/csv", "X-Request-ID": "e2e-ingest"})
        assert r.status_code == 200, r.text
        assert r.json()["rows_written"] == 4
        msg = json.loads(ws.recv(timeout=10))
        while msg["type"] != "bars":
            msg = json.loads(ws.recv(timeout=10))
        assert (msg["symbol"], msg["count"]) == ("BTC/USDT", 4)
    latest = httpx.get(base + "/v1/bars/BTC/USDT/latest", params={"timeframe": "1m", "n": 2}).json()
    assert [b["close"] for b in latest["bars"]] == [60_003.0, 60_004.0]
    assert httpx.post(base + "/v1/bars/BTC/USDT", params={"timeframe": "1m"}, content=b"x").status_code == 401
    r = httpx.get(base + f"/v1/bars/{SECRET}", params={"timeframe": "1d"})
    assert r.status_code == 400
    assert SECRET not in r.text
    lines = srv.stop()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    ingest = next(r for r in records if r.get("request_id") == "e2e-ingest")
    assert ingest["route"] == "/v1/bars/{symbol}"
    assert ingest["status"] == 200
    assert ingest["key"] == "e2e"
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    text = "\n".join(lines)
    assert SECRET not in text
    assert key not in text
