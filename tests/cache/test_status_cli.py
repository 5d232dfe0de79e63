"""``tickvault status`` reports the backend, its size, the cache hit rate and Redis connectivity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import tickvault
from tickvault.cli import app


def _seed(home: Path, **settings: str) -> None:
    idx = pd.date_range("2024-01-02", periods=30, freq="1min", tz="UTC")
    frame = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0}, index=idx)
    with tickvault.open(home, **settings) as vault:  # type: ignore[arg-type]
        vault.write("BTC/USDT", "1m", frame)
        for _ in range(4):
            vault.latest("BTC/USDT", "1m", 5)


def test_status_json_carries_health(tmp_path: Path) -> None:
    home = tmp_path / "v"
    _seed(home)
    result = CliRunner().invoke(app, ["status", "--home", str(home), "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    health = json.loads(result.stdout)["health"]
    assert health["backend"]["kind"] == "embedded"
    assert health["backend"]["size_bytes"] > 0
    assert health["status"] == "ok"
    assert health["cache"]["redis"] is None


def test_status_shows_the_shared_hit_rate_with_redis(tmp_path: Path, redis_url: str, redis_prefix: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "v"
    _seed(home, redis_url=redis_url, cache_prefix=redis_prefix)
    monkeypatch.setenv("TICKVAULT_REDIS_URL", redis_url)
    monkeypatch.setenv("TICKVAULT_CACHE_PREFIX", redis_prefix)
    result = CliRunner().invoke(app, ["status", "--home", str(home), "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    redis = json.loads(result.stdout)["health"]["cache"]["redis"]
    assert redis["connected"] is True
    shared = redis["shared"]  # counted in Redis by the seeding process, reported when it closed
    assert shared["hits"] == 3
    assert shared["misses"] == 2  # the write path's context read and the first latest()
    assert shared["hit_rate"] == 0.6
    text = CliRunner().invoke(app, ["status", "--home", str(home)], catch_exceptions=False).stdout
    assert "cache hit rate 60%" in text
    assert "connected" in text
