"""The routes the dashboard asked for: fundamentals, removing an instrument, every configured
provider in ``/health/providers``, ``/v1/status?symbol=`` and the latest-N response cache's
counts in ``/health/cache``."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.testclient import TestClient

import tickvault
from tickvault.model import AssetClass
from tickvault.service import ServiceSettings, create_app

from ._util import FUNDAMENTALS_SECRET as SECRET
from ._util import FundamentalsStub, assert_error_shape
from .conftest import daily_frame

_FIELDS: dict[str, tuple[float | str, str]] = {
    "market_cap": (2.5e12, "fundy profile"), "sector": ("Technology", "fundy profile"),
    "pe_ratio": (math.nan, "fundy ratios"), "beta": (math.inf, "fundy ratios")}


def test_fundamentals_are_read_with_sources_cached_and_refreshed_with_the_write_role(
        settings: ServiceSettings, keys: dict[str, str]) -> None:
    provider = FundamentalsStub("fundy", _FIELDS)
    with tickvault.open(":memory:", providers=[provider]) as v, TestClient(create_app(v, settings)) as c:
        r = c.get("/v1/fundamentals/ACME")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["symbol"] == "ACME"
        assert body["count"] == 4
        assert body["fields"]["market_cap"] == {"value": 2.5e12, "source": "fundy profile"}
        assert body["fields"]["sector"] == {"value": "Technology", "source": "fundy profile"}
        # Non-finite numbers are not JSON: they leave as null, with their source.
        assert body["fields"]["pe_ratio"] == {"value": None, "source": "fundy ratios"}
        assert body["fields"]["beta"]["value"] is None
        assert c.get("/v1/fundamentals/ACME").json() == body
        assert provider.calls == 1  # the second answer came from the vault's cache
        # Asking the providers again spends quota: the write role.
        assert_error_shape(c.get("/v1/fundamentals/ACME", params={"refresh": "true"}).json(), 401,
                           "api_key_required")
        assert_error_shape(c.get("/v1/fundamentals/ACME", params={"refresh": "true"},
                                 headers={"X-API-Key": keys["read"]}).json(), 403, "forbidden")
        assert provider.calls == 1
        r = c.get("/v1/fundamentals/ACME", params={"refresh": "true"}, headers={"X-API-Key": keys["write"]})
        assert r.status_code == 200
        assert provider.calls == 2
        assert_error_shape(c.get("/v1/fundamentals/..%2Fetc").json(), 400, "invalid_symbol")


def test_fundamentals_without_a_provider_or_with_a_failing_one_are_4xx_5xx_in_the_error_shape(
        settings: ServiceSettings) -> None:
    with tickvault.open(":memory:") as v, TestClient(create_app(v, settings)) as c:
        assert_error_shape(c.get("/v1/fundamentals/ACME").json(), 422, "unsupported_request")
    s = settings.replace(redact=(SECRET,))
    with tickvault.open(":memory:", providers=[FundamentalsStub("fundy")]) as v, TestClient(create_app(v, s)) as c:
        r = c.get("/v1/fundamentals/ACME")
        assert_error_shape(r.json(), 502, "provider_auth_failed")
        assert SECRET not in r.text
        # The failure shows in the provider health, masked.
        [row] = c.get("/health/providers").json()["providers"]
        assert (row["name"], row["calls"], row["errors"]) == ("fundy", 1, 1)
        assert "apikey=***" in row["last_error"]
        assert SECRET not in c.get("/health/providers").text


def test_health_providers_lists_every_configured_provider_without_secrets(settings: ServiceSettings) -> None:
    good = FundamentalsStub("fundy", _FIELDS)
    idle = FundamentalsStub("keyed", _FIELDS, keyed=True, key_set=False)
    with tickvault.open(":memory:", providers=[good, idle]) as v, TestClient(create_app(v, settings)) as c:
        assert c.get("/v1/fundamentals/ACME").status_code == 200
        body = c.get("/health/providers").json()
    assert body["status"] == "ok"
    rows = {p["name"]: p for p in body["providers"]}
    assert list(rows) == ["fundy", "keyed"]  # every configured one, in the user's order, called or not
    assert rows["fundy"]["calls"] == 1
    assert rows["fundy"]["errors"] == 0
    assert rows["fundy"]["last_error"] is None
    assert rows["fundy"]["last_ok"] is not None
    assert rows["fundy"]["kinds"] == ["fundamentals"]
    assert rows["fundy"]["timeframes"] == ["1d"]
    assert set(rows["fundy"]["asset_classes"]) == {str(a) for a in AssetClass}
    assert (rows["fundy"]["needs_credentials"], rows["fundy"]["credentials_set"]) == (False, False)
    assert rows["keyed"]["calls"] == 0  # its credentials are missing, so selection skipped it
    assert (rows["keyed"]["needs_credentials"], rows["keyed"]["credentials_set"]) == (True, False)
    assert rows["keyed"]["last_ok"] is None


def test_an_instrument_is_removed_with_the_write_role_and_its_bars_stay(client: TestClient,
                                                                       vault: tickvault.Vault,
                                                                       keys: dict[str, str]) -> None:
    w = {"X-API-Key": keys["write"]}
    body = {"symbol": "NEWCO", "calendar": "XLON", "currency": "GBP", "name": "New Co"}
    assert client.post("/v1/instruments", json=body, headers=w).status_code == 201
    vault.write("NEWCO", "1d", daily_frame(periods=3))
    assert_error_shape(client.delete("/v1/instruments/NEWCO").json(), 401, "api_key_required")
    assert_error_shape(client.delete("/v1/instruments/NEWCO", headers={"X-API-Key": keys["read"]}).json(), 403)
    assert client.get("/v1/instruments/NEWCO").status_code == 200
    r = client.delete("/v1/instruments/NEWCO", headers=w)
    assert r.status_code == 200, r.text
    assert r.json() == {"symbol": "NEWCO", "removed": True}
    assert_error_shape(client.get("/v1/instruments/NEWCO").json(), 404, "not_found")
    assert all(i.symbol != "NEWCO" for i in vault.instruments())
    assert client.get("/v1/bars/NEWCO", params={"timeframe": "1d"}).json()["count"] == 3  # the bars stay
    assert_error_shape(client.delete("/v1/instruments/NEWCO", headers=w).json(), 404, "not_found")
    assert_error_shape(client.delete("/v1/instruments/..%2Fx", headers=w).json(), 400, "invalid_symbol")


def test_status_filters_by_symbol(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("ACME", "1d", daily_frame(periods=3))
    vault.write("OTHER", "1d", daily_frame(periods=2))
    everything = client.get("/v1/status").json()["series"]
    assert {s["symbol"] for s in everything} == {"ACME", "OTHER"}
    [one] = client.get("/v1/status", params={"symbol": "ACME"}).json()["series"]
    assert (one["symbol"], one["timeframe"], one["rows"]) == ("ACME", "1d", 3)
    assert client.get("/v1/status", params={"symbol": "NOPE"}).json() == {"series": []}
    assert_error_shape(client.get("/v1/status", params={"symbol": "BAD..SYM"}).json(), 400, "invalid_symbol")


def test_health_cache_counts_latest_n_response_cache_hits_and_misses(make_client: Callable[..., TestClient],
                                                                     vault: tickvault.Vault) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    client = make_client()
    assert client.get("/health/cache").json()["response_cache"] == {"enabled": True, "hits": 0, "misses": 0}
    for _ in range(3):
        client.get("/v1/bars/ACME/latest", params={"timeframe": "1d", "n": 2})
    vault.write("ACME", "1d", daily_frame("2024-02-01", 1))  # a new bar: the next answer is computed again
    client.get("/v1/bars/ACME/latest", params={"timeframe": "1d", "n": 2})
    assert client.get("/health/cache").json()["response_cache"] == {"enabled": True, "hits": 2, "misses": 2}
    off = make_client(latest_cache_seconds=0)
    off.get("/v1/bars/ACME/latest", params={"timeframe": "1d"})
    assert off.get("/health/cache").json()["response_cache"] == {"enabled": False, "hits": 0, "misses": 0}
