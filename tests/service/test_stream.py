"""``WS /v1/stream``: bars written during the test arrive, wildcards match, heartbeats flow,
bad subscriptions and missing keys close the connection with a clear code and reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import tickvault
from tickvault.service._stream import Subscription, parse_subscriptions

from .conftest import daily_frame, minute_frame


def _next(ws: Any, kind: str, limit: int = 50) -> dict[str, Any]:
    """The next message of type ``kind`` (heartbeats and others in between are skipped)."""
    for _ in range(limit):
        msg: dict[str, Any] = ws.receive_json()
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} message in {limit} messages")


def _subscribe(ws: Any, **msg: Any) -> dict[str, Any]:
    ws.send_json({"action": "subscribe", **msg})
    return _next(ws, "subscribed")


def test_bars_written_during_the_test_are_delivered(make_client: Callable[..., TestClient],
                                                    vault: tickvault.Vault, keys: dict[str, str]) -> None:
    client = make_client(stream_heartbeat_seconds=5)
    with client.websocket_connect("/v1/stream") as ws:
        ack = _subscribe(ws, symbols=["BTC/*"], timeframes=["1m"])
        assert ack["subscriptions"] == [{"symbol": "BTC/*", "timeframe": "1m", "adjust": "splits"}]
        vault.write("ETH/BTC", "1m", minute_frame(periods=3, base=0.05))  # not subscribed
        vault.write("BTC/USDT", "1m", minute_frame(periods=3))
        msg = _next(ws, "bars")
        assert (msg["symbol"], msg["timeframe"], msg["count"]) == ("BTC/USDT", "1m", 3)
        assert [b["close"] for b in msg["bars"]] == [60_001.0, 60_002.0, 60_003.0]
        assert msg["bars"][0]["ts"] == "2024-03-01T00:00:00.000000Z"
        # Through the API too: an ingest is published like any other write.
        csv = minute_frame("2024-03-01 00:03", periods=2).reset_index().to_csv(index=False).encode()
        r = client.post("/v1/bars/BTC/EUR", params={"timeframe": "1m"}, content=csv,
                        headers={"X-API-Key": keys["write"], "content-type": "text/csv"})
        assert r.status_code == 200
        msg = _next(ws, "bars")
        assert msg["symbol"] == "BTC/EUR"
        assert msg["count"] == 2
        # Unsubscribed: the next write is not delivered, a ping still answers.
        ws.send_json({"action": "unsubscribe", "symbols": ["BTC/*"], "timeframes": ["1m"]})
        assert _next(ws, "subscribed")["subscriptions"] == []
        vault.write("BTC/USDT", "1m", minute_frame("2024-03-01 00:10", periods=1))
        ws.send_json({"action": "ping"})
        assert ws.receive_json()["type"] == "pong"


def test_exact_and_all_timeframe_subscriptions(client: TestClient, vault: tickvault.Vault) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        _subscribe(ws, symbols=["acme"], timeframes=["*"], adjust="none")
        vault.write("ACME", "1d", daily_frame(periods=2))
        msg = _next(ws, "bars")
        assert (msg["symbol"], msg["timeframe"], msg["adjust"], msg["count"]) == ("ACME", "1d", "none", 2)


def test_heartbeats_keep_flowing(make_client: Callable[..., TestClient]) -> None:
    client = make_client(stream_heartbeat_seconds=0.05)
    with client.websocket_connect("/v1/stream") as ws:
        beat = _next(ws, "heartbeat")
        assert beat["ts"].endswith("Z")


@pytest.mark.parametrize(("message", "reason"), [
    ({"action": "subscribe", "symbols": ["../../etc/passwd"]}, "invalid symbol"),
    ({"action": "subscribe", "symbols": ["AAPL"], "timeframes": ["7x"]}, "timeframe"),
    ({"action": "subscribe", "symbols": []}, "'symbols' must be a non-empty list"),
    ({"action": "subscribe", "symbols": ["A*B[0]"]}, "invalid symbol pattern"),
    ({"action": "subscribe", "symbols": ["AAPL"], "adjust": "both"}, "'adjust' must be one of"),
    ({"action": "dance"}, "unknown action"),
    ("not json at all", "not valid JSON"),
    (["a", "list"], "JSON objects"),
])
def test_bad_subscriptions_close_with_4400_and_the_reason(client: TestClient, message: Any, reason: str) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        if isinstance(message, str):
            ws.send_text(message)
        else:
            ws.send_json(message)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400
    assert reason in closed.value.reason


def test_too_many_subscriptions_close_the_connection(make_client: Callable[..., TestClient]) -> None:
    client = make_client(stream_max_subscriptions=2)
    with client.websocket_connect("/v1/stream") as ws:
        _subscribe(ws, symbols=["A", "B"], timeframes=["1m"])
        ws.send_json({"action": "subscribe", "symbols": ["C"], "timeframes": ["1m"]})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400
    assert "more than 2 subscriptions" in closed.value.reason


def test_keys_on_the_stream_when_reads_need_one(make_client: Callable[..., TestClient], vault: tickvault.Vault,
                                                keys: dict[str, str]) -> None:
    client = make_client(read_requires_key=True)
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({"action": "subscribe", "symbols": ["*"]})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401
    assert "API key" in closed.value.reason
    with client.websocket_connect("/v1/stream", headers={"X-API-Key": "tvk_wrong_wrong_wrong_wrong"}) as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4401
    with client.websocket_connect("/v1/stream") as ws:  # browsers: the key in the first message
        ws.send_json({"action": "auth", "api_key": keys["read"]})
        assert ws.receive_json() == {"type": "authenticated", "role": "read"}
        _subscribe(ws, symbols=["*"])
        vault.write("ACME", "1d", daily_frame(periods=1))
        assert _next(ws, "bars")["symbol"] == "ACME"
    with client.websocket_connect("/v1/stream", headers={"X-API-Key": keys["admin"]}) as ws:
        assert _subscribe(ws, symbols=["ACME"])["subscriptions"][0]["symbol"] == "ACME"


def test_staleness_of_subscribed_series_is_exported(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("BTC/USDT", "1m", minute_frame(periods=5))
    with client.websocket_connect("/v1/stream") as ws:
        _subscribe(ws, symbols=["BTC/USDT"], timeframes=["1m"])
        metrics = client.get("/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith("tickvault_data_staleness_seconds{"))
        assert 'symbol="BTC/USDT"' in line
        assert 'timeframe="1m"' in line
        assert float(line.rsplit(" ", 1)[1]) > 0
        assert "tickvault_stream_clients 1.0" in metrics


def test_unknown_stream_paths_are_closed(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/v1/nope") as ws:
        ws.receive_json()
    assert closed.value.code == 4404


def test_wildcards_match_only_what_they_say() -> None:
    [sub] = parse_subscriptions({"symbols": ["BTC/*"], "timeframes": ["1m"]})
    assert sub == Subscription("BTC/*", "1m", "splits")
    assert not sub.exact
    assert sub.matches("BTC/USDT", "1m")
    assert not sub.matches("BTC/USDT", "5m")
    assert not sub.matches("ETH/BTC", "1m")
    assert not sub.matches("XBTC/USD", "1m")
    [star] = parse_subscriptions({"symbols": ["*"], "timeframes": ["*"]})
    assert star.matches("ANY.THING", "1mo")
    [dot] = parse_subscriptions({"symbols": ["BRK.*"]})
    assert dot.matches("BRK.B", "1d")
    assert not dot.matches("BRKXB", "1d")
