"""Fixtures for the dashboard's end-to-end tests: a real server, a real browser.

- ``dashboard``: the real app (``create_app``) under uvicorn on ``127.0.0.1`` (a free port, in a
  thread) over an embedded vault in a temporary folder, filled with simulated bars (AAPL daily
  and minute bars with injected bad ticks, so there are holes and quarantined rows; BTC/USDT
  hourly bars fetched through the ``sim`` provider, so provider health has calls to show).
  One server per module: starting it costs more than the tests that share it.
- ``browser``: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright. It is never
  downloaded (``playwright install`` is not used); if it is missing the tests FAIL and say how
  to install it, because a skipped browser test would hide that the dashboard is untested.
- ``page``: a fresh browser context per test; any request leaving the local test servers (a
  CDN, a font service) is blocked and fails the test, and so does any uncaught JavaScript error.

Screenshots go to ``tests/dashboard/artifacts/`` (ignored by git; CI keeps it as an artifact).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import tickvault
from tickvault.providers.sim import SimProvider, simulate_bars
from tickvault.service import ApiKeyEntry, Role, ServiceSettings, create_app, generate_key, hash_key

# Read once at import, before the hermetic fixture clears the environment for each test.
CHROMIUM = Path(os.environ.get("TICKVAULT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = ("install Debian's Chromium with `apt-get install -y chromium` (make dashboard-deps) and the "
                "`playwright` Python package with `pip install playwright`; do not run `playwright install`")


def us(when: str) -> int:
    """Microseconds since the epoch of a UTC date or instant."""
    return int(pd.Timestamp(when, tz="UTC").value // 1000)


@dataclass
class Dashboard:
    """A running server over a filled vault."""

    url: str
    vault: tickvault.Vault
    write_key: str
    http: httpx.Client

    def api(self, path: str, **params: Any) -> Any:
        """GET a JSON API answer (raises on an error status)."""
        resp = self.http.get(path, params=params)
        resp.raise_for_status()
        return resp.json()


@dataclass
class PageProblems:
    """What went wrong inside the page: uncaught errors and requests that left the server."""

    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def _fill(vault: tickvault.Vault) -> None:
    table, _ = simulate_bars("AAPL", "1d", us("2023-01-01"), us("2024-03-08"), seed=1, bad_ticks=0.01)
    vault.write("AAPL", "1d", table, "sim")
    table, _ = simulate_bars("AAPL", "1m", us("2024-03-04"), us("2024-03-08"), seed=3, bad_ticks=0.005)
    vault.write("AAPL", "1m", table, "sim")
    vault.fetch("BTC/USDT", "1h", "2024-02-01", "2024-03-01")


@contextmanager
def serve(vault: tickvault.Vault, settings: ServiceSettings) -> Iterator[str]:
    """Run ``create_app(vault, settings)`` under uvicorn on a free local port; yields its URL."""
    url, server, thread = _serve(create_app(vault, settings))
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; uvicorn serves on this very socket
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard test server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    root = tmp_path_factory.mktemp("dashboard")
    key = generate_key()
    settings = ServiceSettings(api_keys=(ApiKeyEntry(name="e2e-writer", role=Role.WRITE, sha256=hash_key(key)),),
                               keys_file=root / "keys.json")
    with tickvault.open(root / "vault", providers=[SimProvider(seed=7)]) as vault:
        _fill(vault)
        with serve(vault, settings) as url, httpx.Client(base_url=url, timeout=10) as http:
            yield Dashboard(url, vault, key, http)


@pytest.fixture(scope="module")  # the sync API holds an event loop: release it after this module
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"the dashboard tests need Chromium at {CHROMIUM}, which is missing: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the dashboard tests need the playwright package: {INSTALL_HINT}")
    pw = sync_playwright().start()
    try:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir).
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
    except Exception as exc:
        pw.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start ({exc}); {INSTALL_HINT}")
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    problems = PageProblems()
    context = browser.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(20_000)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1:", "data:")):
            r.continue_()
        else:
            problems.external.append(url)
            r.abort()

    pg.route("**/*", route)
    pg.on("pageerror", lambda exc: problems.errors.append(str(exc)))
    pg.on("console", lambda msg: problems.console.append(msg.text) if msg.type == "error" else None)
    pg.problems = problems
    yield pg
    context.close()
    assert not problems.errors, f"uncaught errors in the page: {problems.errors} (console: {problems.console})"
    assert not problems.external, f"the page requested outside resources (bundle them): {problems.external}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder for screenshots (kept by CI; ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def hook_state(page: Any) -> dict[str, Any]:
    """The data fields of ``window.__tickvault`` (functions dropped)."""
    state: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.__tickvault))")
    return state


def wait_for(page: Any, expression: str, what: str, timeout_ms: int = 20_000) -> None:
    """Wait until the JS ``expression`` (over ``h = window.__tickvault``) is true; fail with the hook's state."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => {{ const h = window.__tickvault; return !!h && ({expression}); }}",
                               timeout=timeout_ms)
    except PlaywrightTimeout:
        state = hook_state(page) if page.evaluate("() => !!window.__tickvault") else None
        pytest.fail(f"timed out waiting for {what} ({expression}); page state: {state}; "
                    f"problems: {page.problems}")

