"""Write, fetch and admin routes: ingest in every body format, instruments, corporate actions,
validation, read-through and fetch/backfill against the sim provider, verify and compact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

import tickvault
from tickvault.providers.sim import SimProvider
from tickvault.service import ServiceSettings, create_app

from ._util import arrow_stream, assert_error_shape
from .conftest import daily_frame


def _auth(keys: dict[str, str], role: str) -> dict[str, str]:
    return {"X-API-Key": keys[role]}


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.reset_index().to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ").encode()


@pytest.mark.parametrize("kind", ["json", "json-object", "ndjson", "csv", "arrow", "arrow-file"])
def test_ingest_in_every_body_format(client: TestClient, vault: tickvault.Vault, keys: dict[str, str],
                                     kind: str) -> None:
    frame = daily_frame(periods=8)
    records = [{"ts": ts.isoformat(), **row} for ts, row in zip(frame.index, frame.to_dict("records"), strict=True)]
    table = pa.Table.from_pandas(frame.reset_index(), preserve_index=False)
    if kind == "json":
        body, ctype = json.dumps(records).encode(), "application/json"
    elif kind == "json-object":
        body, ctype = json.dumps({"bars": records}).encode(), "application/json; charset=utf-8"
    elif kind == "ndjson":
        body, ctype = "\n".join(json.dumps(r) for r in records).encode(), "application/x-ndjson"
    elif kind == "csv":
        body, ctype = _csv(frame), "text/csv"
    elif kind == "arrow":
        body, ctype = arrow_stream(table), "application/vnd.apache.arrow.stream"
    else:
        import io

        sink = io.BytesIO()
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        body, ctype = sink.getvalue(), "application/vnd.apache.arrow.file"
    r = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=body,
                    headers={**_auth(keys, "write"), "content-type": ctype})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rows_in"] == 8
    assert out["rows_written"] == 8
    assert out["rows_quarantined"] == 0
    stored = vault.bars("ACME", "1d", fetch="never")
    assert stored["close"].tolist() == frame["close"].tolist()
    assert set(stored["provider"]) == {"api"}
    again = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=body,
                        headers={**_auth(keys, "write"), "content-type": ctype}).json()
    assert again["rows_written"] == 0
    assert again["rows_unchanged"] == 8


def test_ingest_quarantines_bad_rows_and_reports_them(client: TestClient, vault: tickvault.Vault,
                                                     keys: dict[str, str]) -> None:
    frame = daily_frame(periods=5)
    frame.iloc[1, frame.columns.get_loc("close")] = -3.0
    r = client.post("/v1/bars/ACME", params={"timeframe": "1d", "provider": "my_feed"}, content=_csv(frame),
                    headers={**_auth(keys, "write"), "content-type": "text/csv"})
    out = r.json()
    assert out["rows_written"] == 4
    assert out["rows_quarantined"] == 1
    assert out["flagged"]["non_positive_price"] == 1
    assert vault.quarantine("ACME", "1d").shape[0] == 1
    assert set(vault.bars("ACME", "1d", fetch="never")["provider"]) == {"my_feed"}


def test_a_real_file_with_an_unnamed_date_column_is_refused_whole(client: TestClient, vault: tickvault.Vault,
                                                                  keys: dict[str, str], shared_data: Path) -> None:
    body = (shared_data / "ohlcv" / "backtesting.py" / "GOOG.csv").read_bytes()  # header ",Open,High,..."
    r = client.post("/v1/bars/GOOG", params={"timeframe": "1d"}, content=body,
                    headers={**_auth(keys, "write"), "content-type": "text/csv"})
    err = assert_error_shape(r.json(), 400, "invalid_data")
    assert "ts" in err["message"]
    assert vault.status() == []


def test_instruments_create_conflict_replace(client: TestClient, vault: tickvault.Vault,
                                             keys: dict[str, str]) -> None:
    w = _auth(keys, "write")
    body = {"symbol": "shop", "asset_class": "equity", "exchange": "XNYS", "currency": "USD", "calendar": "XNYS",
            "name": "Shopify", "listed": "2015-05-21", "provider_symbols": {"yahoo": "SHOP"}}
    r = client.post("/v1/instruments", json=body, headers=w)
    assert r.status_code == 201
    assert r.json()["symbol"] == "SHOP"
    assert vault.instrument("SHOP").name == "Shopify"
    assert_error_shape(client.post("/v1/instruments", json=body, headers=w).json(), 409, "conflict")
    r = client.put("/v1/instruments/SHOP", json={**body, "name": "Shopify Inc.", "calendar": "XTSE"}, headers=w)
    assert r.status_code == 200
    assert vault.instrument("SHOP").calendar == "XTSE"
    bad = client.put("/v1/instruments/SHOP", json={**body, "calendar": "MARS"}, headers=w)
    assert_error_shape(bad.json(), 400, "invalid_input")
    other = client.put("/v1/instruments/AAPL", json=body, headers=w)
    assert_error_shape(other.json(), 400, "invalid_input")
    assert_error_shape(client.post("/v1/instruments", json={**body, "extra": 1}, headers=w).json(), 422,
                       "validation_error")
    assert vault.instrument("SHOP").calendar == "XTSE"


def test_adding_a_split_readjusts_history_at_once(client: TestClient, vault: tickvault.Vault,
                                                  keys: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=10))
    params = {"timeframe": "1d", "n": 10}
    before = client.get("/v1/bars/ACME/latest", params=params).json()["bars"]
    r = client.post("/v1/actions/ACME", json={"actions": [{"ex_date": "2024-01-09", "kind": "split", "value": 4}]},
                    headers=_auth(keys, "write"))
    assert r.json() == {"symbol": "ACME", "changed": 1}
    after = client.get("/v1/bars/ACME/latest", params=params).json()["bars"]
    assert after[0]["close"] == before[0]["close"] / 4
    assert after[-1]["close"] == before[-1]["close"]
    again = client.post("/v1/actions/ACME", json={"actions": [{"ex_date": "2024-01-09", "kind": "split",
                                                               "value": 4}]}, headers=_auth(keys, "write"))
    assert again.json()["changed"] == 0
    bad = client.post("/v1/actions/ACME", json={"actions": [{"ex_date": "2024-01-09", "kind": "split", "value": 0}]},
                      headers=_auth(keys, "write"))
    assert_error_shape(bad.json(), 422, "validation_error")


def test_validate_runs_the_rules_over_the_stored_series(client: TestClient, vault: tickvault.Vault,
                                                       keys: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=6))
    r = client.post("/v1/bars/ACME/validate", params={"timeframe": "1d"}, headers=_auth(keys, "write"))
    assert r.status_code == 200
    assert r.json()["rows"] == 6
    assert r.json()["hard_failures"] == 0


@pytest.fixture
def sim_client(settings: ServiceSettings) -> Iterator[tuple[TestClient, tickvault.Vault]]:
    with tickvault.open(":memory:", providers=[SimProvider(seed=7)]) as v, TestClient(create_app(v, settings)) as c:
        yield c, v


def test_fetch_backfills_a_range_from_the_providers(sim_client: tuple[TestClient, tickvault.Vault],
                                                    keys: dict[str, str]) -> None:
    client, vault = sim_client
    body = {"symbols": ["AAPL", "MSFT"], "timeframe": "1d", "start": "2023-01-01", "end": "2023-03-31"}
    r = client.post("/v1/fetch", json=body, headers=_auth(keys, "write"))
    assert r.status_code == 200, r.text
    results = {x["symbol"]: x for x in r.json()["results"]}
    # Q1 2023 has 62 sessions (a bare end date is inclusive).
    assert results["AAPL"]["rows_written"] == len(vault.bars("AAPL", "1d", fetch="never")) == 62
    assert results["AAPL"]["providers"] == ["sim"]
    assert results["AAPL"]["errors"] == []
    again = client.post("/v1/fetch", json=body, headers=_auth(keys, "write")).json()["results"]
    assert all(x["calls"] == 0 and x["rows_written"] == 0 for x in again)  # nothing missing any more
    health = client.get("/health/providers").json()
    [sim] = health["providers"]
    assert (sim["name"], sim["calls"], sim["errors"]) == ("sim", vault.provider_calls["sim"], 0)
    assert sim["last_error"] is None


def test_read_through_on_get_needs_the_write_role(sim_client: tuple[TestClient, tickvault.Vault],
                                                  keys: dict[str, str]) -> None:
    client, vault = sim_client
    params = {"timeframe": "1d", "start": "2023-06-01", "end": "2023-06-30", "fetch": "auto"}
    assert_error_shape(client.get("/v1/bars/AAPL", params=params).json(), 401, "api_key_required")
    assert_error_shape(client.get("/v1/bars/AAPL", params=params, headers=_auth(keys, "read")).json(), 403)
    assert vault.provider_calls == {}
    r = client.get("/v1/bars/AAPL", params=params, headers=_auth(keys, "write"))
    assert r.status_code == 200
    assert r.json()["count"] == 21
    missing = client.get("/v1/bars/AAPL", params={**params, "fetch": "never", "start": "2023-07-01",
                                                  "end": "2023-07-31"})
    assert missing.json()["count"] == 0


def test_missing_data_without_providers_is_404_with_the_intervals(client: TestClient,
                                                                 keys: dict[str, str]) -> None:
    params = {"timeframe": "1d", "start": "2023-06-01", "end": "2023-06-30", "fetch": "auto"}
    err = assert_error_shape(client.get("/v1/bars/AAPL", params=params, headers=_auth(keys, "write")).json(), 404,
                             "missing_data")
    assert err["details"]["intervals_total"] >= 1
    assert err["details"]["symbol"] == "AAPL"


def test_admin_verify_compact_and_key_listing(client: TestClient, vault: tickvault.Vault,
                                              keys: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=3))
    a = _auth(keys, "admin")
    assert client.post("/v1/admin/verify", headers=a).json()["ok"] is True
    assert client.post("/v1/admin/compact", headers=a).json()["compacted"] >= 0
    listed = client.get("/v1/admin/keys", headers=a).json()["keys"]
    assert sorted((k["name"], k["role"]) for k in listed) == [("admin-key", "admin"), ("read-key", "read"),
                                                              ("write-key", "write")]
    assert not any(v in json.dumps(listed) for v in keys.values())


def test_the_embedded_store_works_the_same(tmp_path: Path, settings: ServiceSettings, keys: dict[str, str]) -> None:
    with tickvault.open(tmp_path / "vault") as v, TestClient(create_app(v, settings)) as c:
        r = c.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=_csv(daily_frame(periods=4)),
                   headers={**_auth(keys, "write"), "content-type": "text/csv"})
        assert r.json()["rows_written"] == 4
        assert c.get("/v1/bars/ACME/latest", params={"timeframe": "1d", "n": 10}).json()["count"] == 4
        assert c.get("/health/db").json()["backend"]["kind"] == "embedded"
