"""The caches through the Vault: health, stats, settings, and Redis failing under a running vault."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import redis

import tickvault
from tickvault import Settings
from tickvault.engine import Vault
from tickvault.errors import ConfigError
from tickvault.store.memory import MemoryStore

from ._util import RedisServer, wait_for

SYM, TF = "BTC/USDT", "1m"


def _frame(n: int, price: float, *, end: pd.Timestamp | None = None) -> pd.DataFrame:
    last = (end or pd.Timestamp.now(tz="UTC")).floor("min") - pd.Timedelta(minutes=1)
    idx = pd.date_range(end=last, periods=n, freq="1min", tz="UTC")
    return pd.DataFrame({"open": price, "high": price + 1, "low": price - 1, "close": price + 0.5,
                         "volume": 10.0}, index=idx)


def test_health_of_an_embedded_vault_without_redis(tmp_path: Path) -> None:
    with tickvault.open(tmp_path / "v") as vault:
        vault.write(SYM, TF, _frame(50, 100.0))
        for _ in range(3):
            vault.latest(SYM, TF, 10)
        h = vault.health()
        json.dumps(h)  # JSON-ready as it is
        assert h["status"] == "ok"
        assert h["backend"]["kind"] == "embedded"
        assert h["backend"]["connected"] is True
        assert h["backend"]["size_bytes"] > 0
        assert h["cache"]["enabled"] is True
        reads = h["cache"]["reads"]
        assert reads["hits"] == 2  # the first latest() filled the window
        assert h["cache"]["hit_rate"] == pytest.approx(reads["hits"] / (reads["hits"] + reads["misses"]))
        assert h["cache"]["redis"] is None
        assert h["cache"]["levels"]["memory"]["hits"] >= 2


def test_cache_stats_counts_levels_and_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    with tickvault.open(tmp_path / "v", redis_url=redis_url, cache_prefix=redis_prefix) as vault:
        vault.write(SYM, TF, _frame(50, 100.0))
        vault.latest(SYM, TF, 5)
        vault.latest(SYM, TF, 5)
        stats = vault.cache_stats()
        assert stats["reads"]["hits"] == 1
        assert stats["reads"]["misses"] == 2  # the write path's context read, then the first latest()
        assert stats["reads"]["fills"] == 1  # only latest() built a window
        assert set(stats["levels"]) == {"memory", "redis"}
        assert stats["levels"]["redis"]["puts"] >= 1
        assert stats["redis_errors"] == 0
        h = vault.health()
        assert h["status"] == "ok"
        assert h["cache"]["redis"]["connected"] is True
        assert h["cache"]["redis"]["url"] == redis_url


def test_cache_can_be_switched_off(tmp_path: Path) -> None:
    with tickvault.open(tmp_path / "v", cache_enabled=False) as vault:
        vault.write(SYM, TF, _frame(5, 100.0))
        assert vault.latest(SYM, TF, 2).shape[0] == 2
        assert vault.cache_stats()["enabled"] is False
        assert vault.health()["cache"]["hit_rate"] is None


def test_bad_cache_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        tickvault.open(tmp_path / "a", cache_ttls={"fortnight": 5})
    with pytest.raises(ConfigError):
        tickvault.open(tmp_path / "b", cache_ttls={"1m": 0})
    with pytest.raises(ConfigError):
        tickvault.open(tmp_path / "c", redis_url="http://not-redis:80")


def test_cache_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_CACHE_TTLS", '{"1m": 30, "1d": 600}')
    monkeypatch.setenv("TICKVAULT_CACHE_BYTES", "1048576")
    monkeypatch.setenv("TICKVAULT_CACHE_PREFIX", "desk1:")
    s = Settings()
    assert s.cache_ttls == {"1m": 30.0, "1d": 600.0}
    assert s.cache_bytes == 1 << 20
    assert s.cache_prefix == "desk1:"


def test_vaults_on_one_home_share_their_l1(tmp_path: Path) -> None:
    with tickvault.open(tmp_path / "v") as a, tickvault.open(tmp_path / "v") as b:
        a.write(SYM, TF, _frame(30, 100.0))
        assert b.latest(SYM, TF, 1)["close"].iloc[0] == 100.5
        a.write(SYM, TF, _frame(1, 200.0))  # b must not serve its earlier window
        assert b.latest(SYM, TF, 1)["close"].iloc[0] == 200.5


def test_closed_redis_port_degrades_to_the_store(tmp_path: Path, closed_port_url: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tickvault.cache"), \
            tickvault.open(tmp_path / "v", redis_url=closed_port_url) as vault:
        vault.write(SYM, TF, _frame(30, 100.0))
        for _ in range(5):
            assert vault.latest(SYM, TF, 3)["close"].tolist() == [100.5] * 3
        stats = vault.cache_stats()
        assert stats["reads"]["bypassed"] >= 5  # and the write path's context read
        assert stats["redis_errors"] >= 1
        h = vault.health()
        assert h["status"] == "degraded"
        assert h["cache"]["redis"]["connected"] is False
        assert h["cache"]["redis"]["url"] == closed_port_url
    cache_warnings = [r for r in caplog.records if r.name == "tickvault.cache" and r.levelno == logging.WARNING]
    assert 1 <= len(cache_warnings) <= 2  # once per outage: the cache and the event bus


def _two_processes(url: str, prefix: str) -> tuple[Vault, Vault]:
    """Two vaults over one store, each with its own L1 and Redis clients (like two processes)."""
    store = MemoryStore()
    settings = Settings(redis_url=url, cache_prefix=prefix)
    return Vault(store, settings), Vault(store, settings)


def test_redis_killed_mid_run_then_back(redis_server: RedisServer) -> None:
    a, b = _two_processes(redis_server.url, "tickvault-test:kill:")
    try:
        a.write(SYM, TF, _frame(40, 100.0))
        assert b.latest(SYM, TF, 1)["close"].iloc[0] == 100.5  # b fills Redis
        redis_server.stop()
        a.write(SYM, TF, _frame(1, 200.0))  # cannot invalidate Redis: no error all the same
        assert a.latest(SYM, TF, 1)["close"].iloc[0] == 200.5
        assert b.latest(SYM, TF, 1)["close"].iloc[0] == 200.5
        assert a.cache_stats()["redis_errors"] >= 1
        redis_server.start()
        wait_for(lambda: a.health()["cache"]["redis"]["connected"], timeout=30, what="a to reconnect")
        wait_for(lambda: b.health()["cache"]["redis"]["connected"], timeout=30, what="b to reconnect")
        hits = b.cache_stats()["reads"]["hits"]
        for _ in range(3):
            assert b.latest(SYM, TF, 1)["close"].iloc[0] == 200.5
        assert b.cache_stats()["reads"]["hits"] >= hits + 2  # served from the caches again
    finally:
        a.close()
        b.close()


def test_stalled_redis_never_serves_what_was_cached_before_a_write(redis_server: RedisServer) -> None:
    # CLIENT PAUSE keeps Redis's data but stops answering: the worst case, since the old
    # window is still there when it comes back and the write could not bump its generation.
    a, b = _two_processes(redis_server.url, "tickvault-test:stall:")
    raw = redis.Redis.from_url(redis_server.url)
    try:
        a.write(SYM, TF, _frame(40, 100.0))
        assert b.latest(SYM, TF, 1)["close"].iloc[0] == 100.5
        raw.client_pause(1500)
        a.write(SYM, TF, _frame(1, 200.0))  # its Redis invalidation times out
        assert a.cache_stats()["redis_errors"] >= 1
        wait_for(lambda: bool(raw.ping()), what="the pause to end")
        wait_for(lambda: a.health()["cache"]["redis"]["connected"], timeout=30, what="a to reconnect")
        for vault in (a, b):
            assert vault.latest(SYM, TF, 1)["close"].iloc[0] == 200.5
    finally:
        raw.close()
        a.close()
        b.close()


def test_separate_in_memory_stores_never_share_an_l1(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "same-home")
    a, b = Vault(MemoryStore(), settings), Vault(MemoryStore(), settings)
    try:
        a.write(SYM, TF, _frame(5, 100.0))
        a.latest(SYM, TF, 1)
        assert b.latest(SYM, TF, 1).empty  # b's store is empty, whatever a cached
    finally:
        a.close()
        b.close()
