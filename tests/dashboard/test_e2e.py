"""The dashboard end to end: a real server, a real vault, headless Chromium.

What issue 7 point 6 asks for, driven through the page as a user would: search a symbol, see
the chart draw the real bars the API serves, see a newly ingested bar appear over the
WebSocket; plus the indicators (checked against tickvault's own implementation), the coverage
timeline with holes and quarantined rows, the quality report, provider health and cache hit
rate, and a resampled timeframe. The page exposes its state on ``window.__tickvault``
(docs/dashboard.md); the tests read it instead of scraping pixels, and check pixels once
(``inkPixels``: candle-coloured pixels on the chart canvas).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tickvault
from tickvault.providers.sim import simulate_bars
from tickvault.service import ApiKeyEntry, Role, ServiceSettings, generate_key, hash_key
from tickvault.transform import indicators as ind

from .conftest import Dashboard, hook_state, serve, us, wait_for


def _epoch_s(iso: str) -> int:
    return int(pd.Timestamp(iso).value // 1_000_000_000)


def _assert_same_bars(drawn: list[dict[str, Any]], served: list[dict[str, Any]]) -> None:
    assert len(drawn) == len(served), (len(drawn), len(served))
    assert [b["time"] for b in drawn] == [_epoch_s(b["ts"]) for b in served]
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal([b[col] for b in drawn], [b[col] for b in served], err_msg=col)


def _search(page: Any, typed: str, symbol: str) -> None:
    """Type into the search box and pick ``symbol`` from the suggestions."""
    page.fill("#symbol", typed)
    option = page.locator(f"#suggest li[data-symbol='{symbol}']")
    option.wait_for(state="visible")
    option.click()


def test_search_draws_real_bars_and_a_new_bar_arrives_live(dashboard: Dashboard, page: Any,
                                                           artifacts: Path) -> None:
    page.goto(dashboard.url + "/")
    wait_for(page, "h.ready", "the page to start")
    _search(page, "aap", "AAPL")
    wait_for(page, "h.loads >= 1 && !h.loading && h.detailsLoads >= 1", "AAPL to load")

    # The chart holds exactly the bars the API serves for this view (1d, latest 500).
    state = hook_state(page)
    assert (state["symbol"], state["timeframe"], state["sourceTimeframe"]) == ("AAPL", "1d", "1d")
    served = dashboard.api("/v1/bars/AAPL/latest", timeframe="1d", n=500)["bars"]
    assert len(served) > 250
    _assert_same_bars(page.evaluate("() => window.__tickvault.bars()"), served)
    assert state["barsDrawn"] == len(served)  # the chart library's own count
    assert page.evaluate("() => window.__tickvault.inkPixels()") > 2_000  # candles really painted

    # A bar ingested through the API while the page is open appears without a reload.
    wait_for(page, "h.wsState === 'open' && h.subscriptions.includes('AAPL 1d splits')", "the live subscription")
    last = served[-1]
    new_bar = {"ts": "2024-03-08T00:00:00Z", "open": last["close"], "high": round(last["close"] * 1.03, 2),
               "low": round(last["close"] * 0.995, 2), "close": round(last["close"] * 1.02, 2), "volume": 1_234_567.0}
    resp = dashboard.http.post("/v1/bars/AAPL", params={"timeframe": "1d", "provider": "e2e"}, json=[new_bar],
                               headers={"X-API-Key": dashboard.write_key})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rows_written"] == 1
    wait_for(page, f"h.lastBar === '2024-03-08T00:00:00Z' && h.barsDrawn === {len(served) + 1}",
             "the ingested bar on the chart", timeout_ms=15_000)
    state = hook_state(page)
    assert state["liveBars"] >= 1
    assert state["loads"] == 1
    drawn = page.evaluate("() => window.__tickvault.bars()")
    assert drawn[-1]["close"] == new_bar["close"]
    assert drawn[-1]["volume"] == new_bar["volume"]
    _assert_same_bars(drawn, dashboard.api("/v1/bars/AAPL/latest", timeframe="1d", n=501)["bars"])

    # The side panels follow the new bar too (a debounced refresh after live bars).
    wait_for(page, "h.detailsLoads >= 2", "the panels to refresh after the live bar")
    assert "2024-03-08 00:00 UTC" in page.locator("#series-panel").inner_text()
    page.mouse.move(1300, 880)  # away from the chart: the legend shows the newest bar, no crosshair
    page.wait_for_timeout(200)
    shot = artifacts / "dashboard-live.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_indicators_match_tickvaults_own(dashboard: Dashboard, page: Any) -> None:
    names = "sma_20, ema_50, wma_10, bb_20_2, rsi_14, macd_12_26_9"
    page.goto(dashboard.url + "/#symbol=AAPL&tf=1d&range=all&ind=" + names.replace(" ", ""))
    wait_for(page, "h.loads >= 1 && !h.loading", "AAPL to load from the link")
    assert hook_state(page)["indicators"] == [n.strip() for n in names.split(",")]
    closes = np.array([b["close"] for b in page.evaluate("() => window.__tickvault.bars()")])
    assert len(closes) > 250

    def drawn(name: str, output: str = "value") -> np.ndarray:
        values = page.evaluate("([n, o]) => window.__tickvault.indicator(n, o)", [name, output])
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    bands = ind.bbands(closes, 20, 2.0)
    macd = ind.macd(closes, 12, 26, 9)
    expected = {
        ("sma_20", "value"): ind.sma(closes, 20),
        ("ema_50", "value"): ind.ema(closes, 50),
        ("wma_10", "value"): ind.wma(closes, 10),
        ("bb_20_2", "upper"): bands.upper,
        ("bb_20_2", "lower"): bands.lower,
        ("rsi_14", "value"): ind.rsi(closes, 14),
        ("macd_12_26_9", "line"): macd.line,
        ("macd_12_26_9", "signal"): macd.signal,
        ("macd_12_26_9", "hist"): macd.hist,
    }
    for (name, output), want in expected.items():
        np.testing.assert_allclose(drawn(name, output), want, rtol=1e-9, atol=1e-9, err_msg=f"{name} {output}")

    # The server's /v1/indicators agrees too (the whole series is on screen: no earlier warm-up data).
    state = hook_state(page)
    end = (pd.Timestamp(state["lastBar"]) + pd.Timedelta(days=1)).isoformat()
    rows = dashboard.api("/v1/indicators/AAPL", timeframe="1d", start=state["firstBar"], end=end,
                         names="sma_20,ema_50,bb_20_2,rsi_14,macd_12_26_9")["rows"]
    assert len(rows) == len(closes)
    for (name, output), column in {("sma_20", "value"): "sma_20", ("ema_50", "value"): "ema_50",
                                   ("bb_20_2", "upper"): "bb_20_2_upper", ("rsi_14", "value"): "rsi_14",
                                   ("macd_12_26_9", "signal"): "macd_12_26_9_signal"}.items():
        served = np.array([np.nan if r[column] is None else r[column] for r in rows], dtype=float)
        np.testing.assert_allclose(drawn(name, output), served, rtol=1e-9, atol=1e-9, err_msg=column)

    # A bad name is refused in place; the chart keeps what it had.
    page.fill("#indicators", "sma_20, nonsense_3")
    page.dispatch_event("#indicators", "change")
    wait_for(page, "h.error !== null && h.error.includes('nonsense')", "the bad indicator to be reported")
    assert page.locator("#indicators.invalid").count() == 1
    assert hook_state(page)["indicators"] == [n.strip() for n in names.split(",")]


def test_coverage_timeline_quality_and_service_health(dashboard: Dashboard, page: Any, artifacts: Path) -> None:
    page.goto(dashboard.url + "/#symbol=AAPL&tf=1m&range=all")
    wait_for(page, "h.loads >= 1 && !h.loading && h.detailsLoads >= 1 && h.opsLoads >= 1", "AAPL 1m to load")
    stats = dashboard.api("/v1/bars/AAPL/stats", timeframe="1m")
    assert stats["holes"] > 0
    assert stats["quarantined"] > 0
    assert hook_state(page)["barsDrawn"] == stats["rows"]

    end = (pd.Timestamp(stats["last"]) + pd.Timedelta(minutes=1)).isoformat()
    coverage = dashboard.api("/v1/bars/AAPL/coverage", timeframe="1m", start=stats["first"], end=end)
    quarantine = dashboard.api("/v1/bars/AAPL/quarantine", timeframe="1m")
    assert page.evaluate("() => window.__tickvault.timeline()") == {
        "ledger": len(coverage["intervals"]), "holes": len(coverage["missing"]), "quarantined": quarantine["count"]}
    assert page.locator("#timeline rect.tl-hole").count() >= 1
    assert page.locator("#timeline rect.tl-quarantine").count() >= 1
    assert page.locator("#timeline rect.tl-final").count() >= 1

    quality = dashboard.api("/v1/bars/AAPL/quality", timeframe="1m")
    panel = page.locator("#quality-panel").inner_text()
    assert f"{quality['score'] * 100:.2f}%" in panel
    assert f"Quarantined rows ({quarantine['count']})" in panel
    assert quarantine["rows"][0]["rule"] in panel

    # Service health: the store, the cache hit rate and the sim provider's calls (from the fixture's fetch).
    providers = dashboard.api("/health/providers")["providers"]
    assert [p["name"] for p in providers] == ["sim"]
    assert providers[0]["calls"] > 0
    assert hook_state(page)["providers"] == ["sim"]
    ops = page.locator("#ops-panel").inner_text()
    assert "embedded" in ops
    assert "sim" in ops
    assert re.fullmatch(r"\d+\.\d%|–", page.locator("#cache-hit-rate").inner_text())
    assert "API latest-N cache" in ops  # the service's response cache, read from /metrics
    for rate in (hook_state(page)["cacheHitRate"], hook_state(page)["responseCacheHitRate"]):
        assert rate is None or 0.0 <= rate <= 1.0
    page.screenshot(path=str(artifacts / "dashboard-coverage.png"), full_page=True)
    page.locator("#ops-panel").screenshot(path=str(artifacts / "dashboard-service.png"))


def test_a_timeframe_that_is_not_stored_is_resampled_and_followed_live(dashboard: Dashboard, page: Any) -> None:
    page.goto(dashboard.url + "/#symbol=AAPL&tf=1m")
    wait_for(page, "h.loads >= 1 && !h.loading", "AAPL 1m to load")
    page.select_option("#timeframe", "15m")
    wait_for(page, "h.loads >= 2 && !h.loading && h.timeframe === '15m'", "AAPL 15m to load")
    state = hook_state(page)
    assert state["sourceTimeframe"] == "1m"  # 15m is derived from the stored minutes on read
    drawn = page.evaluate("() => window.__tickvault.bars()")
    first, last = pd.Timestamp(state["firstBar"]), pd.Timestamp(state["lastBar"])
    served = dashboard.api("/v1/bars/AAPL", timeframe="15m", start=first.isoformat(),
                           end=(last + pd.Timedelta(minutes=15)).isoformat())["bars"]
    assert len(served) > 50
    _assert_same_bars(drawn, served)

    # New minutes (the next session's open) make a new 15-minute bar, through the 1m subscription.
    wait_for(page, "h.subscriptions.includes('AAPL 1m splits')", "the 1m subscription behind 15m")
    after = pd.Timestamp("2024-03-08T14:30:00Z")
    assert after > last
    close = drawn[-1]["close"]
    minutes = [{"ts": (after + pd.Timedelta(minutes=i)).isoformat(), "open": close, "high": close + 0.05,
                "low": close - 0.05, "close": close + 0.01 * i, "volume": 100.0} for i in range(3)]
    resp = dashboard.http.post("/v1/bars/AAPL", params={"timeframe": "1m"}, json=minutes,
                               headers={"X-API-Key": dashboard.write_key})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rows_written"] == 3
    iso = after.strftime("%Y-%m-%dT%H:%M:%SZ")
    wait_for(page, f"h.lastBar === '{iso}'", "the resampled live bar")
    new = page.evaluate("() => window.__tickvault.bars()")[-1]
    assert new["volume"] == pytest.approx(300.0)
    assert new["close"] == pytest.approx(close + 0.02)


def test_an_unknown_symbol_says_what_to_do(dashboard: Dashboard, page: Any) -> None:
    page.goto(dashboard.url + "/")
    wait_for(page, "h.ready", "the page to start")
    page.fill("#symbol", "nope")
    page.press("#symbol", "Enter")
    wait_for(page, "h.loads >= 1 && !h.loading && h.symbol === 'NOPE'", "the unknown symbol to load")
    assert hook_state(page)["barsDrawn"] == 0
    message = page.locator("#chart-message")
    assert message.is_visible()
    assert "Nothing is stored for NOPE" in message.inner_text()


def test_a_server_that_requires_keys_for_reads(page: Any, tmp_path: Path) -> None:
    reader = generate_key()
    settings = ServiceSettings(read_requires_key=True, keys_file=tmp_path / "keys.json",
                               api_keys=(ApiKeyEntry(name="viewer", role=Role.READ, sha256=hash_key(reader)),))
    with tickvault.open(":memory:") as vault:
        table, _ = simulate_bars("MSFT", "1d", us("2023-06-01"), us("2024-01-01"), seed=5)
        vault.write("MSFT", "1d", table, "sim")
        with serve(vault, settings) as url:
            page.goto(url + "/#symbol=MSFT&tf=1d")
            wait_for(page, "h.error !== null && h.error.includes('API key')", "the page to ask for a key")
            assert hook_state(page)["barsDrawn"] == 0
            # The key goes in the header of REST calls and in an "auth" message on the WebSocket.
            page.click(".key summary")
            page.fill("#api-key", reader)
            page.press("#api-key", "Enter")
            wait_for(page, "h.barsDrawn > 100 && !h.loading", "MSFT to load with the key")
            wait_for(page, "h.subscriptions.includes('MSFT 1d splits')", "the authenticated subscription")
            assert hook_state(page)["barsDrawn"] == table.num_rows
