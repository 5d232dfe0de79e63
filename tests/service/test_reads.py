"""Read routes through the ASGI client: bars, latest, several symbols, coverage, stats,
quality, quarantine, instruments, corporate actions, status — and every response format."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from starlette.testclient import TestClient

import tickvault
from tickvault.service import STATIC_DIR

from ._util import assert_error_shape, read_arrow, read_parquet
from .conftest import daily_frame, minute_frame


def _vault_table(vault: tickvault.Vault, symbol: str, tf: str, **kw: object) -> pa.Table:
    table = vault.bars(symbol, tf, format="arrow", **kw)
    return table.set_column(table.schema.get_field_index("provider"), "provider",
                            table.column("provider").cast(pa.string()))


def test_bars_json_matches_the_vault_bar_for_bar(client: TestClient, vault: tickvault.Vault, goog: str) -> None:
    r = client.get(f"/v1/bars/{goog}", params={"timeframe": "1d", "start": "2010-01-01", "end": "2010-12-31"})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = vault.bars(goog, "1d", "2010-01-01", "2010-12-31", fetch="never")
    assert body["symbol"] == "GOOG"
    assert body["timeframe"] == "1d"
    assert body["adjust"] == "splits"
    assert body["count"] == len(expected) == len(body["bars"]) == int(r.headers["x-row-count"]) == 252
    got = pd.DataFrame(body["bars"])
    assert list(got.columns) == ["ts", "open", "high", "low", "close", "volume", "vwap", "trade_count", "provider"]
    pd.testing.assert_index_equal(pd.DatetimeIndex(pd.to_datetime(got["ts"], utc=True), name="ts"), expected.index)
    for col in ("open", "high", "low", "close", "volume"):
        assert got[col].tolist() == expected[col].tolist()  # exact: shortest round-trip float text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("fmt", "accept"), [("csv", None), ("arrow", None), ("parquet", None),
                                             (None, "text/csv"), (None, "application/vnd.apache.arrow.stream"),
                                             (None, "application/vnd.apache.parquet;q=0.9, text/html;q=0.1")])
def test_bars_in_every_format_hold_the_same_rows(client: TestClient, vault: tickvault.Vault, goog: str,
                                                 fmt: str | None, accept: str | None) -> None:
    params = {"timeframe": "1d", "start": "2012-01-01", "end": "2012-06-30"}
    if fmt:
        params["format"] = fmt
    r = client.get(f"/v1/bars/{goog}", params=params, headers={"accept": accept} if accept else {})
    assert r.status_code == 200, r.text
    expected = _vault_table(vault, goog, "1d", start="2012-01-01", end="2012-06-30", fetch="never")
    kind = fmt or {"text/csv": "csv", "application/vnd.apache.arrow.stream": "arrow"}.get(accept or "", "parquet")
    if kind == "csv":
        assert r.headers["content-type"].startswith("text/csv")
        got = pacsv.read_csv(io.BytesIO(r.content))
        assert got.num_rows == expected.num_rows
        assert got.column("close").to_pylist() == expected.column("close").to_pylist()
        assert pd.to_datetime(got.column("ts").to_pandas(), utc=True).tolist() == expected.column("ts").to_pylist()
    else:
        got = read_arrow(r.content) if kind == "arrow" else read_parquet(r.content)
        got = got.set_column(got.schema.get_field_index("provider"), "provider",
                             got.column("provider").cast(pa.string()))
        assert got.equals(expected)


def test_a_format_nobody_serves_is_406_in_the_error_shape(client: TestClient, goog: str) -> None:
    r = client.get(f"/v1/bars/{goog}", params={"timeframe": "1d"}, headers={"accept": "image/png"})
    assert_error_shape(r.json(), 406, "not_acceptable")


def test_adjustment_on_read_follows_the_adjust_parameter(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("ACME", "1d", daily_frame("2024-01-02", 10))
    vault.add_actions("ACME", [tickvault.CorporateAction.split("2024-01-09", 2.0)])
    params = {"timeframe": "1d", "start": "2024-01-01", "end": "2024-01-31"}
    raw = client.get("/v1/bars/ACME", params={**params, "adjust": "none"}).json()["bars"]
    adj = client.get("/v1/bars/ACME", params=params).json()["bars"]
    assert raw[0]["close"] == 100.0
    assert adj[0]["close"] == 50.0
    assert raw[-1]["close"] == adj[-1]["close"] == 109.0


def test_whole_series_without_a_range(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("ACME", "1d", daily_frame(periods=7))
    body = client.get("/v1/bars/acme", params={"timeframe": "1d"}).json()
    assert body["symbol"] == "ACME"
    assert body["count"] == 7


def test_crypto_pairs_are_addressed_with_their_slash(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("BTC/USDT", "1m", minute_frame(periods=30))
    r = client.get("/v1/bars/BTC/USDT", params={"timeframe": "1m", "start": "2024-03-01", "end": "2024-03-02"})
    assert r.status_code == 200
    assert r.json()["symbol"] == "BTC/USDT"
    assert r.json()["count"] == 30
    latest = client.get("/v1/bars/BTC/USDT/latest", params={"timeframe": "1m", "n": 3}).json()
    assert [b["ts"] for b in latest["bars"]] == ["2024-03-01T00:27:00.000000Z", "2024-03-01T00:28:00.000000Z",
                                                 "2024-03-01T00:29:00.000000Z"]


def test_latest_is_served_from_the_serialised_cache_until_the_series_changes(
        client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    params = {"timeframe": "1d", "n": 2}
    first = client.get("/v1/bars/ACME/latest", params=params)
    second = client.get("/v1/bars/ACME/latest", params=params)
    assert first.headers["x-cache"] == "miss"
    assert second.headers["x-cache"] == "hit"
    assert first.content == second.content
    vault.write("ACME", "1d", daily_frame("2024-01-09", 1, base=500.0))  # a new bar: the event moves the version
    third = client.get("/v1/bars/ACME/latest", params=params)
    assert third.headers["x-cache"] == "miss"
    assert third.json()["bars"][-1]["close"] == 500.0


def test_latest_cache_entries_expire(make_client: object, vault: tickvault.Vault, clock: object) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    client = make_client(latest_cache_seconds=2.0)  # type: ignore[operator]
    assert client.get("/v1/bars/ACME/latest", params={"timeframe": "1d"}).headers["x-cache"] == "miss"
    assert client.get("/v1/bars/ACME/latest", params={"timeframe": "1d"}).headers["x-cache"] == "hit"
    clock.advance(2.5)  # type: ignore[attr-defined]
    assert client.get("/v1/bars/ACME/latest", params={"timeframe": "1d"}).headers["x-cache"] == "miss"


def test_several_symbols_in_one_request(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("MSFT", "1d", daily_frame(periods=4, base=300.0))
    vault.write("AAPL", "1d", daily_frame(periods=3, base=180.0))
    params = {"symbols": "MSFT,aapl,ZZZZ", "timeframe": "1d", "start": "2024-01-01", "end": "2024-01-31"}
    body = client.get("/v1/bars", params=params).json()
    assert body["symbols"] == ["AAPL", "MSFT", "ZZZZ"]
    assert body["count"] == 7
    assert [b["symbol"] for b in body["bars"]] == ["AAPL"] * 3 + ["MSFT"] * 4
    arrow = read_arrow(client.get("/v1/bars", params={**params, "format": "arrow"}).content)
    assert arrow.column("symbol").to_pylist() == ["AAPL"] * 3 + ["MSFT"] * 4
    latest = client.get("/v1/latest", params={"symbols": "MSFT,AAPL", "timeframe": "1d", "n": 1}).json()
    assert [(b["symbol"], b["close"]) for b in latest["bars"]] == [("AAPL", 182.0), ("MSFT", 303.0)]


def test_coverage_lists_the_ledger_and_whats_missing(client: TestClient, vault: tickvault.Vault) -> None:
    vault.write("ACME", "1d", daily_frame("2024-01-02", 5))  # Jan 2-8 (business days)
    body = client.get("/v1/bars/ACME/coverage", params={"timeframe": "1d"}).json()
    assert body["missing"] is None
    assert body["intervals"]
    assert all(i["state"] == "final" for i in body["intervals"])
    body = client.get("/v1/bars/ACME/coverage",
                      params={"timeframe": "1d", "start": "2024-01-02", "end": "2024-01-12"}).json()
    # Jan 9-12 are sessions nobody asked about; the weekend of the 6th-7th is never missing.
    assert body["missing"] == [["2024-01-09T00:00:00Z", "2024-01-13T00:00:00Z"]]


def test_stats_and_status_report_bounds_rows_holes_and_quality(client: TestClient, goog: str) -> None:
    body = client.get(f"/v1/bars/{goog}/stats", params={"timeframe": "1d"}).json()
    assert body["rows"] == 2148
    assert body["first"].startswith("2004-08-19")
    assert body["last"].startswith("2013-03-01")
    assert body["holes"] >= 0
    assert 0.0 <= body["quality_score"] <= 1.0
    status = client.get("/v1/status").json()["series"]
    assert [(s["symbol"], s["timeframe"], s["rows"]) for s in status] == [("GOOG", "1d", 2148)]
    r = client.get(f"/v1/bars/{goog}/stats", params={"timeframe": "1m"})
    assert_error_shape(r.json(), 404, "not_found")


def test_quality_report_and_quarantine(client: TestClient, vault: tickvault.Vault) -> None:
    frame = daily_frame(periods=6)
    frame.iloc[2, frame.columns.get_loc("high")] = frame["low"].iloc[2] - 0.5  # high below low: a hard rule
    receipt = vault.write("ACME", "1d", frame)
    assert receipt.rows_quarantined == 1
    q = client.get("/v1/bars/ACME/quality", params={"timeframe": "1d"}).json()
    assert q["rows"] == 6
    assert q["hard_failures"] == 1
    assert q["counts"]["ohlc_consistency"] == 1
    rows = client.get("/v1/bars/ACME/quarantine", params={"timeframe": "1d"}).json()
    assert rows["count"] == 1
    assert rows["rows"][0]["rule"] == "ohlc_consistency"
    assert rows["rows"][0]["ts"] == "2024-01-04T00:00:00.000000Z"
    csv = client.get("/v1/bars/ACME/quarantine", params={"timeframe": "1d", "format": "csv"})
    assert b"ohlc_consistency" in csv.content
    assert_error_shape(client.get("/v1/bars/NONE/quality", params={"timeframe": "1d"}).json(), 404)


def test_instruments_list_page_search_and_get(client: TestClient, vault: tickvault.Vault) -> None:
    for sym, name in [("AAPL", "Apple Inc."), ("MSFT", "Microsoft"), ("BRK.B", "Berkshire Hathaway B"),
                      ("BTC/USDT", None)]:
        inst = tickvault.Instrument.guess(sym)
        vault.add_instrument(tickvault.Instrument.from_dict({**inst.to_dict(), "name": name}))
    page = client.get("/v1/instruments", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [i["symbol"] for i in page["items"]] == ["BRK.B", "BTC/USDT"]
    found = client.get("/v1/instruments", params={"q": "micro"}).json()
    assert [i["symbol"] for i in found["items"]] == ["MSFT"]
    assert [i["symbol"] for i in client.get("/v1/instruments", params={"q": "usdt"}).json()["items"]] == ["BTC/USDT"]
    one = client.get("/v1/instruments/BTC/USDT").json()
    assert one["asset_class"] == "crypto"
    assert one["calendar"] == "24/7"
    assert_error_shape(client.get("/v1/instruments/NOPE").json(), 404, "not_found")


def test_corporate_actions_are_listed(client: TestClient, vault: tickvault.Vault) -> None:
    vault.add_actions("ACME", [tickvault.CorporateAction.split("2024-01-09", 2.0),
                               tickvault.CorporateAction.dividend("2024-02-01", 0.25)])
    body = client.get("/v1/actions/ACME").json()
    assert body["count"] == 2
    assert [(a["ex_date"], a["kind"], a["value"]) for a in body["actions"]] == [
        ("2024-01-09", "split", 2.0), ("2024-02-01", "dividend", 0.25)]
    csv = client.get("/v1/actions/ACME", params={"format": "csv"}).text.splitlines()
    assert csv[0] == '"ex_date","kind","value","currency","provider"'
    assert len(csv) == 3


def test_large_responses_are_streamed_and_complete(make_client: object, vault: tickvault.Vault) -> None:
    vault.write("BTC/USDT", "1m", minute_frame(periods=2500))
    client = make_client(stream_threshold_rows=1000)  # type: ignore[operator]
    params = {"timeframe": "1m", "start": "2024-03-01", "end": "2024-03-03"}
    r = client.get("/v1/bars/BTC/USDT", params=params)
    assert "content-length" not in r.headers  # chunked
    body = json.loads(r.content)
    assert body["count"] == 2500
    assert len(body["bars"]) == 2500
    assert body["bars"][0]["ts"] == "2024-03-01T00:00:00.000000Z"
    for fmt in ("csv", "arrow"):
        r = client.get("/v1/bars/BTC/USDT", params={**params, "format": fmt})
        rows = read_arrow(r.content).num_rows if fmt == "arrow" else len(r.text.splitlines()) - 1
        assert rows == 2500
        assert "content-length" not in r.headers


def test_the_static_folder_is_served_at_the_root(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>dash</title>")
    (tmp_path / "secret.txt").write_text("outside the folder")
    client = make_client(static_dir=site)
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == "<!doctype html><title>dash</title>"
    assert_error_shape(client.get("/no/such/page").json(), 404, "not_found")
    assert_error_shape(client.get("/%2E%2E/secret.txt").json(), 404)
    assert client.get("/v1/instruments").status_code == 200  # the API still wins over the folder


def test_the_packaged_static_folder_has_an_index(client: TestClient) -> None:
    assert (STATIC_DIR / "index.html").is_file()
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")


def test_openapi_schema_lists_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/bars", "/v1/latest", "/v1/bars/{symbol}", "/v1/bars/{symbol}/latest",
                 "/v1/bars/{symbol}/coverage", "/v1/bars/{symbol}/stats", "/v1/instruments",
                 "/v1/instruments/{symbol}", "/v1/actions/{symbol}", "/v1/fetch", "/health", "/health/db",
                 "/health/cache", "/health/providers", "/metrics"):
        assert path in paths, path
