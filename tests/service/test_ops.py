"""Operations: health checks, Prometheus metrics, structured JSON logs with request ids, and
the one error shape for framework errors (404, 405, 422) and bugs (500)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

import tickvault
from tickvault.service import JsonLogFormatter, ServiceSettings, create_app

from ._util import assert_error_shape
from .conftest import daily_frame


def test_liveness_and_component_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    db = client.get("/health/db").json()
    assert db["status"] == "ok"
    assert db["backend"]["kind"] == "memory"
    assert db["backend"]["connected"] is True
    cache = client.get("/health/cache").json()
    assert cache["status"] == "ok"
    assert cache["cache"]["enabled"] is True
    assert cache["events"]["bus"] == "memory"
    assert client.get("/health/providers").json() == {"status": "ok", "providers": []}


def test_an_unreachable_redis_makes_the_cache_health_503_but_reads_still_work(settings: ServiceSettings) -> None:
    with tickvault.open(":memory:", redis_url="redis://:hunter2hunter2@127.0.0.1:1/0") as v, \
            TestClient(create_app(v, settings)) as c:
        v.write("ACME", "1d", daily_frame(periods=3))
        r = c.get("/health/cache")
        err = assert_error_shape(r.json(), 503, "degraded")
        assert err["details"]["cache"]["redis"]["connected"] is False
        assert "hunter2hunter2" not in r.text
        assert c.get("/health/db").status_code == 200
        assert c.get("/v1/bars/ACME", params={"timeframe": "1d"}).json()["count"] == 3


def _metric(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_metrics_cover_latency_per_route_cache_ingest_and_providers(client: TestClient, vault: tickvault.Vault,
                                                                    keys: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    for _ in range(3):
        client.get("/v1/bars/ACME/latest", params={"timeframe": "1d", "n": 2})
    client.get("/v1/bars/BAD..SYMBOL", params={"timeframe": "1d"})
    csv = daily_frame("2024-02-01", 3).reset_index().to_csv(index=False).encode()
    client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=csv,
                headers={"X-API-Key": keys["write"], "content-type": "text/csv"})
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    buckets = _metric(text, 'tickvault_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/bars/{'
                            'symbol}/latest"}')
    assert len(buckets) == 1
    series = 'tickvault_http_request_duration_seconds_count{method="GET",route="/v1/bars/{symbol}/latest"}'
    assert _metric(text, series) == [series + " 3.0"]
    assert 'tickvault_http_requests_total{method="GET",route="/v1/bars/{symbol}",status="400"} 1.0' in text
    assert 'tickvault_response_cache_total{result="hit"} 2.0' in text
    assert 'tickvault_response_cache_total{result="miss"} 1.0' in text
    assert 'tickvault_ingest_rows_total{result="written"} 3.0' in text
    assert 'tickvault_bars_written_total{timeframe="1d"} 8.0' in text  # every write's event (5 + 3 rows)
    assert _metric(text, 'tickvault_cache_reads_total{result="hits"}')
    assert "# TYPE tickvault_provider_calls_total counter" in text
    assert "# TYPE tickvault_data_staleness_seconds gauge" in text
    # Unknown paths share one label: a URL scan cannot explode the series count.
    client.get("/random/a"), client.get("/random/b")
    assert _metric(client.get("/metrics").text, 'tickvault_http_requests_total{method="GET",route="unmatched",'
                                                'status="404"} 2.0')


def test_request_ids_are_echoed_or_made_and_logged_as_json(client: TestClient, keys: dict[str, str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tickvault.service")
    r = client.get("/v1/instruments", headers={"X-Request-ID": "trace-abc.123", "X-API-Key": keys["read"]})
    assert r.headers["x-request-id"] == "trace-abc.123"
    hostile_id = 'no spaces, quotes or "injections" ' + "x" * 80
    bad = client.get("/v1/bars/BAD..SYM", params={"timeframe": "1d"}, headers={"X-Request-ID": hostile_id})
    rid = bad.headers["x-request-id"]
    assert "spaces" not in rid
    assert len(rid) == 32
    assert bad.json()["error"]["request_id"] == rid
    lines = [json.loads(JsonLogFormatter().format(rec)) for rec in caplog.records if rec.getMessage() == "request"]
    first = next(x for x in lines if x["request_id"] == "trace-abc.123")
    assert first["route"] == "/v1/instruments"
    assert first["status"] == 200
    assert first["key"] == "read-key"
    assert first["level"] == "info"
    assert first["method"] == "GET"
    assert first["duration_ms"] >= 0
    assert any(x["request_id"] == rid and x["status"] == 400 for x in lines)


def test_framework_errors_share_the_error_shape(client: TestClient, keys: dict[str, str]) -> None:
    assert_error_shape(client.get("/v1/nothing-here").json(), 404, "not_found")
    assert_error_shape(client.patch("/v1/instruments/ACME", headers={"X-API-Key": keys["admin"]}).json(), 405,
                       "method_not_allowed")
    err = assert_error_shape(client.get("/v1/bars/ACME").json(), 422, "validation_error")
    assert err["details"]["errors"][0]["loc"] == ["query", "timeframe"]
    err = assert_error_shape(client.get("/v1/bars/ACME/latest", params={"timeframe": "1d", "n": -1}).json(), 422)
    assert "n" in err["message"]


def test_a_bug_is_a_500_in_the_error_shape_with_its_traceback_logged(vault: tickvault.Vault,
                                                                    settings: ServiceSettings,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="tickvault.service")
    app: FastAPI = create_app(vault, settings.replace(redact=("s3cr3t-value",)))

    async def boom(request: Request) -> Response:
        raise RuntimeError("invariant broken near s3cr3t-value")

    app.router.routes.insert(0, Route("/boom", boom))  # a route with a bug (test-only, bypasses the checks)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    err = assert_error_shape(r.json(), 500, "internal_error")
    assert "s3cr3t" not in r.text
    assert "RuntimeError" not in r.text
    [record] = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert record.error_type == "RuntimeError"
    assert record.request_id == err["request_id"]
    assert "invariant broken near ***" in record.traceback  # type: ignore[attr-defined]


def test_a_route_without_an_access_declaration_refuses_to_build(vault: tickvault.Vault,
                                                                settings: ServiceSettings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tickvault.service import _routes_ops

    @_routes_ops.router.get("/v1/undeclared")
    async def undeclared() -> dict[str, str]:
        return {}

    try:
        with pytest.raises(tickvault.errors.ConfigError, match="must declare exactly one access role"):
            create_app(vault, settings)
    finally:
        _routes_ops.router.routes.pop()


def test_settings_come_from_the_environment_at_the_edge(monkeypatch: pytest.MonkeyPatch,
                                                        make_client: Callable[..., TestClient]) -> None:
    from tickvault.service import ApiKeyEntry, hash_key

    entry = {"name": "env-key", "role": "admin", "sha256": hash_key("tvk_from_env_000000000000")}
    monkeypatch.setenv("TICKVAULT_API_KEYS", json.dumps([entry]))
    monkeypatch.setenv("TICKVAULT_SERVICE_READ_REQUIRES_KEY", "true")
    monkeypatch.setenv("TICKVAULT_SERVICE_MAX_ROWS", "1234")
    s = ServiceSettings()
    assert s.api_keys == (ApiKeyEntry(**entry),)
    assert s.read_requires_key
    assert s.max_rows == 1234
    monkeypatch.setenv("TICKVAULT_API_KEYS", json.dumps([{"name": "x", "role": "root", "sha256": "00"}]))
    with pytest.raises(ValueError, match="role"):
        ServiceSettings()
