"""Security: the authorization matrix (every role x every route), API keys stored hashed and
never shown, the per-key rate limit, and provider secrets kept out of answers and logs."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import tickvault
from tickvault.errors import AuthenticationFailed
from tickvault.model import AssetClass
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, TimeframeSupport
from tickvault.service import KeyRing, ServiceSettings, add_key, create_app, hash_key, load_keys_file

from ._util import ManualClock, assert_error_shape
from .conftest import daily_frame

_BAR = {"ts": "2024-01-02T00:00:00Z", "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0}
_INSTRUMENT = {"symbol": "NEWCO", "calendar": "XNYS"}

#: One valid request per route: (method, url, params, body). The matrix test fails if a route
#: exists without an entry here, so a new route cannot skip the authorization check.
REQUESTS: dict[str, tuple[str, str, dict[str, Any], Any]] = {
    "GET /health": ("GET", "/health", {}, None),
    "GET /health/db": ("GET", "/health/db", {}, None),
    "GET /health/cache": ("GET", "/health/cache", {}, None),
    "GET /health/providers": ("GET", "/health/providers", {}, None),
    "GET /metrics": ("GET", "/metrics", {}, None),
    "GET /v1/status": ("GET", "/v1/status", {}, None),
    "GET /v1/bars": ("GET", "/v1/bars", {"symbols": "ACME", "timeframe": "1d", "start": "2024-01-01"}, None),
    "GET /v1/latest": ("GET", "/v1/latest", {"symbols": "ACME", "timeframe": "1d"}, None),
    "GET /v1/bars/{symbol}": ("GET", "/v1/bars/ACME", {"timeframe": "1d"}, None),
    "GET /v1/bars/{symbol}/latest": ("GET", "/v1/bars/ACME/latest", {"timeframe": "1d"}, None),
    "GET /v1/bars/{symbol}/coverage": ("GET", "/v1/bars/ACME/coverage", {"timeframe": "1d"}, None),
    "GET /v1/bars/{symbol}/stats": ("GET", "/v1/bars/ACME/stats", {"timeframe": "1d"}, None),
    "GET /v1/bars/{symbol}/quality": ("GET", "/v1/bars/ACME/quality", {"timeframe": "1d"}, None),
    "GET /v1/bars/{symbol}/quarantine": ("GET", "/v1/bars/ACME/quarantine", {"timeframe": "1d"}, None),
    "POST /v1/bars/{symbol}/validate": ("POST", "/v1/bars/ACME/validate", {"timeframe": "1d"}, None),
    "POST /v1/bars/{symbol}": ("POST", "/v1/bars/ACME", {"timeframe": "1d"}, [_BAR]),
    "GET /v1/instruments": ("GET", "/v1/instruments", {}, None),
    "GET /v1/instruments/{symbol}": ("GET", "/v1/instruments/ACME", {}, None),
    "POST /v1/instruments": ("POST", "/v1/instruments", {}, _INSTRUMENT),
    "PUT /v1/instruments/{symbol}": ("PUT", "/v1/instruments/NEWCO", {}, _INSTRUMENT),
    "DELETE /v1/instruments/{symbol}": ("DELETE", "/v1/instruments/NEWCO", {}, None),
    "GET /v1/fundamentals/{symbol}": ("GET", "/v1/fundamentals/ACME", {}, None),
    "GET /v1/actions/{symbol}": ("GET", "/v1/actions/ACME", {}, None),
    "GET /v1/indicators/{symbol}": ("GET", "/v1/indicators/ACME", {"timeframe": "1d", "names": "sma_2",
                                                                   "start": "2024-01-01"}, None),
    "GET /v1/snapshot": ("GET", "/v1/snapshot", {"symbols": "ACME"}, None),
    "GET /v1/screen": ("GET", "/v1/screen", {"expr": "close > 0"}, None),
    "POST /v1/actions/{symbol}": ("POST", "/v1/actions/ACME", {},
                                  {"actions": [{"ex_date": "2024-01-05", "kind": "dividend", "value": 0.1}]}),
    "POST /v1/fetch": ("POST", "/v1/fetch", {}, {"symbols": ["ACME"], "timeframe": "1d", "start": "2024-01-01",
                                                 "end": "2024-01-10"}),
    "POST /v1/admin/verify": ("POST", "/v1/admin/verify", {}, None),
    "POST /v1/admin/compact": ("POST", "/v1/admin/compact", {}, None),
    "GET /v1/admin/keys": ("GET", "/v1/admin/keys", {}, None),
    "WS /v1/stream": ("WS", "/v1/stream", {}, None),  # covered by test_stream.py
}
#: Reads that need the write role because of a parameter (they fetch from providers).
EXTRA: dict[str, tuple[str, tuple[str, str, dict[str, Any], Any]]] = {
    "GET /v1/bars/{symbol}?fetch=auto": ("write", ("GET", "/v1/bars/ACME", {"timeframe": "1d", "start": "2024-01-01",
                                                                           "end": "2024-01-05", "fetch": "auto"},
                                                   None)),
    "GET /v1/bars?fetch=always": ("write", ("GET", "/v1/bars", {"symbols": "ACME", "timeframe": "1d",
                                                                "start": "2024-01-01", "end": "2024-01-05",
                                                                "fetch": "always"}, None)),
    "GET /v1/fundamentals/{symbol}?refresh=true": ("write", ("GET", "/v1/fundamentals/ACME", {"refresh": "true"},
                                                             None)),
    "GET /v1/status?symbol=": ("read", ("GET", "/v1/status", {"symbol": "ACME"}, None)),
}
PRINCIPALS = ("anonymous", "invalid", "read", "write", "admin")
_RANK = {"read": 0, "write": 1, "admin": 2}


def _expected(needed: str, who: str, *, read_requires_key: bool) -> int | None:
    """The refusal status for ``who`` calling a route that needs ``needed`` (None: allowed)."""
    if needed == "public":
        return None
    if who == "invalid":
        return 401
    if needed == "read" and not read_requires_key:
        return None
    if who == "anonymous":
        return 401
    return None if _RANK[who] >= _RANK[needed] else 403


def _call(client: TestClient, spec: tuple[str, str, dict[str, Any], Any], headers: dict[str, str]) -> Any:
    method, url, params, body = spec
    return client.request(method, url, params=params, json=body, headers=headers)


@pytest.mark.parametrize("read_requires_key", [False, True])
def test_authorization_matrix_every_role_times_every_route(make_client: Callable[..., TestClient],
                                                           vault: tickvault.Vault, keys: dict[str, str],
                                                           read_requires_key: bool) -> None:
    vault.write("ACME", "1d", daily_frame(periods=3))
    client = make_client(read_requires_key=read_requires_key)
    access: dict[str, str] = client.app.state.access  # type: ignore[attr-defined]
    assert set(access) == set(REQUESTS), "every route needs an entry in REQUESTS (and nothing else)"
    routes = {**{k: (access[k], v) for k, v in REQUESTS.items() if v[0] != "WS"}, **EXTRA}
    failures = []
    for route, (needed, spec) in sorted(routes.items()):
        for who in PRINCIPALS:
            headers = {"X-API-Key": keys[who]} if who in keys else {}
            if who == "invalid":
                headers = {"X-API-Key": "tvk_" + "x" * 43}
            r = _call(client, spec, headers)
            want = _expected(needed, who, read_requires_key=read_requires_key)
            ok = r.status_code not in (401, 403) and r.status_code < 500 if want is None else r.status_code == want
            if not ok:
                failures.append(f"{route} as {who}: {r.status_code} (wanted {want or 'allowed'}) {r.text[:120]}")
            if r.status_code in (401, 403):
                assert_error_shape(r.json(), r.status_code)
                if r.status_code == 401:
                    assert r.headers["www-authenticate"].startswith("ApiKey")
    assert not failures, "\n".join(failures)


def test_bearer_tokens_work_like_the_header(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post("/v1/admin/compact", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert r.status_code == 200
    r = client.post("/v1/admin/compact", headers={"Authorization": f"Bearer {keys['write']}"})
    assert_error_shape(r.json(), 403, "forbidden")


def test_keys_file_holds_hashes_only_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "home" / "service" / "api_keys.json"
    key = add_key(path, "ci", "write")
    text = path.read_text()
    assert key not in text
    assert hash_key(key) in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    [entry] = load_keys_file(path)
    assert entry.name == "ci"
    assert entry.role == "write"
    ring = KeyRing([], path)
    principal = ring.authenticate(key)
    assert principal is not None
    assert principal.name == "ci"
    assert ring.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert ring.authenticate("") is None
    assert ring.authenticate("x" * 10_000) is None


def test_keys_added_while_serving_work_and_removed_ones_stop(make_client: Callable[..., TestClient],
                                                            tmp_path: Path) -> None:
    keys_file = tmp_path / "live-keys.json"
    client = make_client(keys_file=keys_file, api_keys=())
    ring: KeyRing = client.app.state.guard.keys  # type: ignore[attr-defined]
    ring._recheck = 0.0  # re-read the file on every request (the default is at most once a second)
    key = add_key(keys_file, "late", "admin")
    assert client.post("/v1/admin/compact", headers={"X-API-Key": key}).status_code == 200
    from tickvault.service import remove_key

    remove_key(keys_file, "late")
    assert client.post("/v1/admin/compact", headers={"X-API-Key": key}).status_code == 401


def test_a_damaged_keys_file_refuses_its_keys_instead_of_crashing(make_client: Callable[..., TestClient],
                                                                  tmp_path: Path) -> None:
    keys_file = tmp_path / "k.json"
    key = add_key(keys_file, "ci", "admin")
    client = make_client(keys_file=keys_file, api_keys=())
    client.app.state.guard.keys._recheck = 0.0  # type: ignore[attr-defined]
    keys_file.write_text("{not json")
    r = client.post("/v1/admin/compact", headers={"X-API-Key": key})
    assert_error_shape(r.json(), 401, "invalid_api_key")
    with pytest.raises(tickvault.errors.ConfigError):
        create_app(tickvault.open(":memory:"), ServiceSettings(keys_file=keys_file))


def test_rate_limit_per_key_answers_429_with_retry_after(make_client: Callable[..., TestClient],
                                                         keys: dict[str, str], clock: ManualClock) -> None:
    client = make_client(rate_limit_per_minute=60, rate_limit_burst=2)
    r_key = {"X-API-Key": keys["read"]}
    assert [client.get("/v1/instruments", headers=r_key).status_code for _ in range(2)] == [200, 200]
    limited = client.get("/v1/instruments", headers=r_key)
    err = assert_error_shape(limited.json(), 429, "rate_limited")
    assert limited.headers["retry-after"] == "1"
    assert err["details"]["retry_after_seconds"] == 1
    assert client.get("/v1/instruments", headers={"X-API-Key": keys["write"]}).status_code == 200  # its own bucket
    clock.advance(1.0)
    assert client.get("/v1/instruments", headers=r_key).status_code == 200
    # Guessing keys spends the client address's bucket, so it is rate-limited as well.
    codes = [client.get("/v1/instruments", headers={"X-API-Key": f"tvk_guess{i:040d}"}).status_code
             for i in range(4)]
    assert codes[:2] == [401, 401]
    assert codes[2:] == [429, 429]
    assert client.get("/health").status_code == 200  # liveness is never limited
    metrics = client.get("/metrics", headers={"X-API-Key": keys["admin"]}).text
    assert 'tickvault_rate_limited_total{route="/v1/instruments"}' in metrics


class _LeakyProvider:
    """A provider whose errors carry its credential (what a careless adapter might do)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    @property
    def name(self) -> str:
        return "leaky"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("leaky", frozenset(AssetClass), (TimeframeSupport("1d"),))

    async def bars(self, query: BarsQuery) -> BarsResult:
        raise AuthenticationFailed(f"GET https://api.example.com/bars?apiKey={self.secret} -> 401",
                                   provider="leaky")

    async def aclose(self) -> None:
        return None


def test_provider_secrets_never_reach_answers_or_logs(settings: ServiceSettings, keys: dict[str, str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    secret = "pk_live_9f8e7d6c5b4a39281706"
    caplog.set_level(logging.DEBUG, logger="tickvault")
    s = settings.replace(redact=(secret,))
    with tickvault.open(":memory:", providers=[_LeakyProvider(secret)]) as v, TestClient(create_app(v, s)) as c:
        w = {"X-API-Key": keys["write"]}
        r1 = c.get("/v1/bars/AAPL", params={"timeframe": "1d", "start": "2024-01-02", "end": "2024-01-10",
                                            "fetch": "auto"}, headers=w)
        assert r1.status_code == 404
        assert "apiKey=***" in r1.text
        r2 = c.post("/v1/fetch", json={"symbols": ["AAPL"], "timeframe": "1d", "start": "2024-01-02"}, headers=w)
        assert r2.status_code == 200
        assert r2.json()["results"][0]["errors"]
        r3 = c.get("/health/providers")
        for r in (r1, r2, r3):
            assert secret not in r.text
        # Our own API keys are never logged either, even when sent where they do not belong.
        c.get(f"/v1/bars/{keys['admin']}", params={"timeframe": "1d"}, headers={"X-API-Key": keys["read"]})
        c.get("/v1/instruments", headers={"X-API-Key": "tvk_not_a_real_key_but_shaped_like_one_0000"})
    logged = "\n".join(json.dumps(vars(rec), default=str) for rec in caplog.records)
    assert caplog.records, "the service logs its requests"
    assert secret not in logged
    for k in keys.values():
        assert k not in logged
    assert "tvk_not_a_real_key" not in logged
