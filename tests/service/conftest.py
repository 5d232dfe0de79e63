"""Fixtures for the HTTP service tests: a vault, keys of every role, the app and its client.

Every test drives the real ASGI app through Starlette's ``TestClient`` (HTTP and WebSocket),
over a real vault (in memory, or the embedded store in a temporary folder), and checks what
the vault holds afterwards through the public facade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import tickvault
from tickvault.service import ApiKeyEntry, Role, ServiceSettings, create_app, generate_key, hash_key

from ._util import ManualClock

ROLES = ("read", "write", "admin")


@pytest.fixture
def keys() -> dict[str, str]:
    """A fresh key per role: ``{"read": "tvk_...", "write": ..., "admin": ...}``."""
    return {role: generate_key() for role in ROLES}


@pytest.fixture
def key_entries(keys: dict[str, str]) -> tuple[ApiKeyEntry, ...]:
    """The hashed entries of :func:`keys` (what ``TICKVAULT_API_KEYS`` would hold)."""
    return tuple(ApiKeyEntry(name=f"{role}-key", role=Role(role), sha256=hash_key(k)) for role, k in keys.items())


@pytest.fixture
def settings(key_entries: tuple[ApiKeyEntry, ...], tmp_path: Path) -> ServiceSettings:
    """Default limits, the three keys, no rate limit in the way."""
    return ServiceSettings(api_keys=key_entries, rate_limit_per_minute=0, keys_file=tmp_path / "keys.json")


@pytest.fixture
def vault() -> Iterator[tickvault.Vault]:
    with tickvault.open(":memory:") as v:
        yield v


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_client(vault: tickvault.Vault, settings: ServiceSettings,
                clock: ManualClock) -> Iterator[Callable[..., TestClient]]:
    """Build a client over ``vault`` with ``settings`` changed by keyword (lifespan entered)."""
    opened: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        app: FastAPI = create_app(vault, settings.replace(**changes), clock=clock)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def daily_frame(start: str = "2024-01-02", periods: int = 10, base: float = 100.0) -> pd.DataFrame:
    """Plausible daily bars on NYSE sessions (business days)."""
    idx = pd.bdate_range(start, periods=periods, tz="UTC", name="ts")
    close = base + np.arange(periods, dtype=float)
    return pd.DataFrame({"open": close - 0.5, "high": close + 1.0, "low": close - 1.0, "close": close,
                         "volume": 1000.0 + np.arange(periods)}, index=idx)


def minute_frame(start: str = "2024-03-01 00:00", periods: int = 60, base: float = 60_000.0) -> pd.DataFrame:
    """24/7 minute bars (crypto)."""
    idx = pd.date_range(start, periods=periods, freq="1min", tz="UTC", name="ts")
    close = base + np.arange(periods, dtype=float)
    return pd.DataFrame({"open": close, "high": close + 5, "low": close - 5, "close": close + 1,
                         "volume": np.full(periods, 2.5)}, index=idx)


@pytest.fixture
def goog(vault: tickvault.Vault, shared_data: Path) -> str:
    """Real GOOG daily history 2004-2013 (backtesting.py's test file) imported into the vault."""
    vault.import_file(shared_data / "ohlcv" / "backtesting.py" / "GOOG.csv", symbol="GOOG", timeframe="1d")
    return "GOOG"
