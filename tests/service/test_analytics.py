"""Analytics over HTTP: indicators, snapshots and screens match what the vault computes."""

from __future__ import annotations

import math

import pytest
from starlette.testclient import TestClient

import tickvault

from ._util import assert_error_shape, read_arrow
from .conftest import daily_frame


@pytest.fixture
def two_series(vault: tickvault.Vault) -> None:
    up = daily_frame(periods=300)
    down = daily_frame(periods=300, base=600.0)
    down["close"] = down["close"].to_numpy()[::-1]
    down["open"], down["high"], down["low"] = down["close"], down["close"] + 1, down["close"] - 1
    vault.write("UP", "1d", up)
    vault.write("DOWN", "1d", down)


@pytest.mark.usefixtures("two_series")
def test_indicators_match_the_vault(client: TestClient, vault: tickvault.Vault) -> None:
    params = {"timeframe": "1d", "names": "rsi_14,sma_20,macd_12_26_9", "start": "2024-06-03", "end": "2024-07-31"}
    body = client.get("/v1/indicators/UP", params=params).json()
    expected = vault.indicators("UP", "1d", ["rsi_14", "sma_20", "macd_12_26_9"], "2024-06-03", "2024-07-31")
    assert body["count"] == len(expected) > 0
    assert [r["sma_20"] for r in body["rows"]] == pytest.approx(expected["sma_20"].tolist(), rel=0, abs=0)
    assert {"ts", "rsi_14", "macd_12_26_9_signal"} <= set(body["rows"][0])
    arrow = read_arrow(client.get("/v1/indicators/UP", params={**params, "format": "arrow"}).content)
    assert arrow.column("rsi_14").to_pylist() == expected["rsi_14"].tolist()
    err = assert_error_shape(client.get("/v1/indicators/UP", params={**params, "names": "bogus_3"}).json(), 400)
    assert "unknown indicator" in err["message"]
    assert_error_shape(client.get("/v1/indicators/UP", params={**params, "names": ",".join(["sma_5"] * 21)}).json(),
                       400, "limit_exceeded")
    million = {**params, "timeframe": "1m", "start": "2020-01-01", "end": "2022-01-01"}
    assert_error_shape(client.get("/v1/indicators/UP", params=million).json(), 400, "limit_exceeded")


@pytest.mark.usefixtures("two_series")
def test_snapshot_and_screen(client: TestClient, vault: tickvault.Vault) -> None:
    snap = client.get("/v1/snapshot", params={"symbols": "UP,DOWN,NONE", "indicators": "rsi_14,sma_200"}).json()
    rows = {r["symbol"]: r for r in snap["rows"]}
    assert snap["count"] == 3
    assert set(rows) == {"UP", "DOWN", "NONE"}
    assert rows["UP"]["rsi_14"] > 70
    assert rows["DOWN"]["rsi_14"] < 30
    assert rows["NONE"]["close"] is None
    assert rows["NONE"]["ts"] is None
    expected = vault.snapshot(["UP"], "1d", ["rsi_14", "sma_200"])
    assert math.isclose(rows["UP"]["sma_200"], float(expected.loc["UP", "sma_200"]), rel_tol=0, abs_tol=0)
    hits = client.get("/v1/screen", params={"expr": "rsi_14 < 30"}).json()
    assert [r["symbol"] for r in hits["rows"]] == ["DOWN"]
    assert hits["expr"] == "rsi_14 < 30"
    some = client.get("/v1/screen", params={"expr": "close > 0", "universe": "UP"}).json()
    assert [r["symbol"] for r in some["rows"]] == ["UP"]
    bad = client.get("/v1/screen", params={"expr": "__import__('os').system('true')"})
    assert_error_shape(bad.json(), 400, "invalid_input")
    csv = client.get("/v1/screen", params={"expr": "rsi_14 > 70", "format": "csv"}).text.splitlines()
    assert len(csv) == 2
    assert csv[1].startswith('"UP"')
