"""New-bar events: the in-process bus, Redis pub/sub across vaults, and Redis going away."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import tickvault
from tickvault.cache import EventBus, MemoryBus, bar_channel
from tickvault.cache.redis import RedisBus
from tickvault.engine import BarEvent

from ._util import RedisServer, wait_for


def _frame(start: str, n: int, price: float = 100.0) -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    return pd.DataFrame({"open": price, "high": price + 1, "low": price - 1, "close": price + 0.5,
                         "volume": 10.0}, index=idx)


def test_channel_names() -> None:
    assert bar_channel("tickvault:", "AAPL", "1m") == "tickvault:bars:AAPL:1m"
    assert bar_channel("p:", "BTC/USDT", "5m") == "p:bars:BTC/USDT:5m"


def test_memory_bus_filters_and_unsubscribes() -> None:
    bus = MemoryBus()
    assert isinstance(bus, EventBus)
    got: list[dict[str, object]] = []
    only_aapl = bus.subscribe(got.append, symbol="AAPL")
    bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m"})
    bus.publish("MSFT", "1m", {"symbol": "MSFT", "timeframe": "1m"})
    only_aapl()
    bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m"})
    assert got == [{"symbol": "AAPL", "timeframe": "1m"}]


def test_a_failing_subscriber_does_not_break_the_others() -> None:
    bus = MemoryBus()
    got: list[dict[str, object]] = []

    def broken(message: dict[str, object]) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m"})
    assert len(got) == 1


def test_vault_without_redis_publishes_in_process(tmp_path: Path) -> None:
    with tickvault.open(tmp_path / "v") as vault:
        events: list[BarEvent] = []
        vault.listen(events.append, symbol="AAPL", timeframe="1m")
        vault.write("AAPL", "1m", _frame("2024-01-02 14:30", 3))
        vault.write("MSFT", "1m", _frame("2024-01-02 14:30", 3))
        assert [(e.symbol, e.timeframe, e.rows) for e in events] == [("AAPL", "1m", 3)]
        assert vault.health()["events"]["bus"] == "memory"


def test_events_cross_vaults_over_redis_pubsub(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    # Two vaults stand for two processes: one writes, the other listens.
    opts = {"redis_url": redis_url, "cache_prefix": redis_prefix}
    with tickvault.open(tmp_path / "w", **opts) as writer, tickvault.open(tmp_path / "r", **opts) as reader:
        events: list[BarEvent] = []
        reader.listen(events.append, symbol="BTC/USDT")
        writer.write("BTC/USDT", "1m", _frame("2024-01-02 00:00", 5))
        writer.write("ETH/USDT", "1m", _frame("2024-01-02 00:00", 2))  # filtered out
        wait_for(lambda: len(events) >= 1, what="the pub/sub event")
        assert events[0] == BarEvent("BTC/USDT", "1m", 1704153600000000, 1704153840000000, 5)
        assert reader.health()["events"]["bus"] == "redis"


def test_events_use_one_channel_per_series(redis_url: str, redis_prefix: str) -> None:
    import redis

    raw = redis.Redis.from_url(redis_url)
    sub = raw.pubsub()
    sub.subscribe(f"{redis_prefix}bars:AAPL:1m")
    wait_for(lambda: sub.get_message(timeout=0.1) is not None, what="the subscription")
    bus = RedisBus(redis_url, prefix=redis_prefix)
    try:
        bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m", "rows": 1})
        got: list[dict[str, object]] = []

        def _poll() -> bool:
            msg = sub.get_message(timeout=0.1)
            if msg is not None and msg["type"] == "message":
                got.append(msg)
            return bool(got)

        wait_for(_poll, what="the message on the series channel")
        assert got[0]["data"] == b'{"rows":1,"symbol":"AAPL","timeframe":"1m"}'
    finally:
        bus.close()
        sub.close()
        raw.close()


def test_bus_survives_redis_going_away_and_coming_back(redis_server: RedisServer) -> None:
    bus = RedisBus(redis_server.url, prefix="tickvault-test:bus:")
    try:
        got: list[dict[str, object]] = []
        bus.subscribe(got.append)
        bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m", "n": 1})
        wait_for(lambda: len(got) == 1, what="the first event")
        redis_server.stop()
        bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m", "n": 2})  # no error reaches us
        assert got[-1]["n"] == 2  # delivered locally when it cannot be published
        assert bus.stats()["dropped"] == 1
        redis_server.start()
        wait_for(lambda: bus.listening, timeout=20, what="the listener to resubscribe")
        wait_for(bus.ping, timeout=20, what="the publisher's circuit to close again")
        bus.publish("AAPL", "1m", {"symbol": "AAPL", "timeframe": "1m", "n": 3})
        wait_for(lambda: bus.stats()["received"] == 2, timeout=20, what="an event over Redis after the restart")
        assert [m["n"] for m in got] == [1, 2, 3]
        assert bus.stats()["published"] == 2
    finally:
        bus.close()
