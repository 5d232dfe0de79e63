"""The latest-N hot path: a repeated request is answered from the pre-serialised cache before
routing, with exactly the answer, the access checks, the freshness, the metrics and the log
line of the route itself."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

import tickvault
from tickvault.service import JsonLogFormatter
from tickvault.service._fastpath import serve_cached_latest
from tickvault.service._state import LatestCache, ServiceState

from ._util import ManualClock, assert_error_shape
from .conftest import daily_frame, minute_frame

_VOLATILE = {"x-request-id", "x-cache", "date"}


def _call_fast_path(st: ServiceState, path: str, query: str, headers: list[tuple[bytes, bytes]] = ()) -> \
        tuple[bool, list[dict[str, Any]]]:
    """Call :func:`serve_cached_latest` directly: whether it answered, and what it sent."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "headers": [(b"host", b"testserver"), *headers],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "scheme": "http", "http_version": "1.1"}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    answered = asyncio.run(serve_cached_latest(st, scope, receive, send))
    return answered, sent


@pytest.mark.parametrize(("path", "params", "headers"), [
    ("/v1/bars/ACME/latest", {"timeframe": "1d"}, {}),
    ("/v1/bars/ACME/latest", {"timeframe": "1d", "n": "3", "adjust": "none"}, {}),
    ("/v1/bars/ACME/latest", {"timeframe": "1d", "format": "csv"}, {}),
    ("/v1/bars/ACME/latest", {"timeframe": "1d"}, {"accept": "application/vnd.apache.arrow.stream"}),
    ("/v1/bars/BTC/USDT/latest", {"timeframe": "1m", "n": "5"}, {"accept": "text/csv;q=0.5, application/json"}),
])
def test_a_repeated_request_gets_the_same_answer_from_the_hot_path(client: TestClient, vault: tickvault.Vault,
                                                                   path: str, params: dict[str, str],
                                                                   headers: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=8))
    vault.write("BTC/USDT", "1m", minute_frame(periods=30))
    st: ServiceState = client.app.state.tv  # type: ignore[attr-defined]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert _call_fast_path(st, path, query)[0] is False  # never seen: the route must run
    first = client.get(f"{path}?{query}", headers=headers)
    second = client.get(f"{path}?{query}", headers=headers)
    assert first.status_code == second.status_code == 200
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.content == first.content
    assert {k: v for k, v in second.headers.items() if k not in _VOLATILE} == \
        {k: v for k, v in first.headers.items() if k not in _VOLATILE}
    assert second.headers["x-content-type-options"] == "nosniff"
    # The hot path answered the repeat (called directly it answers too); a different spelling of the
    # same request was never validated, so it is left to the route. (The test client sends */*.)
    accept = [(b"accept", headers.get("accept", "*/*").encode())]
    answered, sent = _call_fast_path(st, path, query, accept)
    assert answered
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == first.content
    assert _call_fast_path(st, path, query + "&x=1", accept)[0] is False


def test_the_hot_path_checks_keys_roles_and_the_rate_limit_like_the_route(
        make_client: Callable[..., TestClient], vault: tickvault.Vault, keys: dict[str, str],
        clock: ManualClock) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    client = make_client(read_requires_key=True, rate_limit_per_minute=60, rate_limit_burst=3)
    url = "/v1/bars/ACME/latest?timeframe=1d"
    assert client.get(url, headers={"X-API-Key": keys["read"]}).headers["x-cache"] == "miss"
    r = client.get(url)
    assert_error_shape(r.json(), 401, "api_key_required")
    assert r.headers["www-authenticate"].startswith("ApiKey")
    assert_error_shape(client.get(url, headers={"X-API-Key": "tvk_" + "y" * 43}).json(), 401, "invalid_api_key")
    ok = client.get(url, headers={"Authorization": f"Bearer {keys['read']}"})
    assert (ok.status_code, ok.headers["x-cache"]) == (200, "hit")
    assert client.get(url, headers={"X-API-Key": keys["read"]}).status_code == 200
    limited = client.get(url, headers={"X-API-Key": keys["read"]})  # the read key's 4th request: bucket empty
    assert_error_shape(limited.json(), 429, "rate_limited")
    assert limited.headers["retry-after"] == "1"
    clock.advance(1.0)
    assert client.get(url, headers={"X-API-Key": keys["read"]}).status_code == 200
    metrics = client.get("/metrics", headers={"X-API-Key": keys["admin"]}).text
    assert 'tickvault_rate_limited_total{route="/v1/bars/{symbol}/latest"} 1.0' in metrics
    assert 'tickvault_http_requests_total{method="GET",route="/v1/bars/{symbol}/latest",status="401"} 2.0' in metrics


def test_a_new_bar_or_an_expired_entry_sends_the_request_back_to_the_route(
        client: TestClient, vault: tickvault.Vault, clock: ManualClock) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    url = "/v1/bars/ACME/latest?timeframe=1d&n=2"
    client.get(url)
    assert client.get(url).headers["x-cache"] == "hit"
    vault.write("ACME", "1d", daily_frame("2024-03-01", 1, base=500.0))
    fresh = client.get(url)
    assert fresh.headers["x-cache"] == "miss"
    assert fresh.json()["bars"][-1]["close"] == 500.0
    assert client.get(url).headers["x-cache"] == "hit"
    clock.advance(60.0)  # past latest_cache_seconds
    assert client.get(url).headers["x-cache"] == "miss"


def test_hot_path_answers_are_logged_and_measured_under_the_route(client: TestClient, vault: tickvault.Vault,
                                                                  keys: dict[str, str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tickvault.service")
    vault.write("ACME", "1d", daily_frame(periods=5))
    for rid in ("first", "second"):
        client.get("/v1/bars/ACME/latest?timeframe=1d", headers={"X-API-Key": keys["read"], "X-Request-ID": rid})
    lines = {x["request_id"]: x for x in (json.loads(JsonLogFormatter().format(rec)) for rec in caplog.records
                                          if rec.getMessage() == "request")}
    assert lines["second"]["route"] == lines["first"]["route"] == "/v1/bars/{symbol}/latest"
    assert lines["second"]["key"] == "read-key"
    assert lines["second"]["status"] == 200
    text = client.get("/metrics").text
    assert 'tickvault_http_request_duration_seconds_count{method="GET",route="/v1/bars/{symbol}/latest"} 2.0' in text
    assert 'tickvault_response_cache_total{result="hit"} 1.0' in text


def test_remembered_requests_are_bounded_and_off_with_the_cache() -> None:
    cache = LatestCache(seconds=2.0, entries=4)
    for i in range(1000):
        cache.remember(("/v1/bars/ACME/latest", f"timeframe=1d&junk={i}".encode(), None), ("latest", "ACME"))
    assert cache.alias_of(("/v1/bars/ACME/latest", b"timeframe=1d&junk=999", None)) == ("latest", "ACME")
    assert cache.alias_of(("/v1/bars/ACME/latest", b"timeframe=1d&junk=0", None)) is None
    assert sum(cache.alias_of(("/v1/bars/ACME/latest", f"timeframe=1d&junk={i}".encode(), None)) is not None
               for i in range(1000)) == 64
    off = LatestCache(seconds=0.0, entries=4)
    off.remember(("/p", b"", None), ("latest",))
    assert off.alias_of(("/p", b"", None)) is None


def test_concurrent_misses_of_one_answer_compute_it_once(vault: tickvault.Vault, settings: Any,
                                                         clock: ManualClock) -> None:
    import httpx

    from tickvault.service import create_app

    vault.write("BTC/USDT", "1m", minute_frame(periods=600))
    app = create_app(vault, settings, clock=clock)

    async def burst(n: int) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return list(await asyncio.gather(*(c.get("/v1/bars/BTC/USDT/latest", params={"timeframe": "1m"})
                                              for _ in range(n))))

    for _ in range(2):  # a cold start, then an expired entry under load
        answers = asyncio.run(burst(16))
        assert {r.status_code for r in answers} == {200}
        assert len({r.content for r in answers}) == 1
        assert sorted(r.headers["x-cache"] for r in answers) == ["hit"] * 15 + ["miss"]
        clock.advance(60.0)
