"""The replay server itself: routing, faults, loaders and derived pages."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tickvault.testing.replay import (
    Canned,
    Fault,
    ReplayServer,
    Route,
    alpaca_pages,
    alpaca_recordings,
    alpaca_route,
    polygon_pages,
    polygon_path,
    yahoo_later_events_route,
    yahoo_route,
)

PAYLOADS = Path("provider-payloads")


def test_more_specific_routes_win_and_unknown_requests_get_404(server: ReplayServer) -> None:
    server.add(Route("/a", Canned.json({"which": "any"})))
    server.add(Route("/a", Canned.json({"which": "x1"}), {"x": "1"}))
    with httpx.Client(base_url=server.base_url) as c:
        assert c.get("/a").json() == {"which": "any"}
        assert c.get("/a", params={"x": "1", "y": "2"}).json() == {"which": "x1"}
        assert c.get("/a", params={"x": "2"}).json() == {"which": "any"}
        assert c.get("/nope").status_code == 404
    assert [r.route for r in server.requests] == ["/a", "/a", "/a", None]


def test_faults_apply_in_order_then_the_recording(server: ReplayServer) -> None:
    server.add(Route("/a", Canned.json({"ok": 1})))
    server.fault("/a", Fault.server_error(500, times=2), Fault.rate_limited(3))
    with httpx.Client(base_url=server.base_url) as c:
        got = [c.get("/a") for _ in range(4)]
    assert [r.status_code for r in got] == [500, 500, 429, 200]
    assert got[2].headers["retry-after"] == "3"
    with pytest.raises(KeyError):
        server.fault("/unknown", Fault.malformed())


def test_stop_cuts_a_delayed_answer_short() -> None:
    srv = ReplayServer([Route("/slow", Canned.json({}))]).start()
    srv.fault("/slow", Fault.delay(60))
    with httpx.Client(base_url=srv.base_url, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        c.get("/slow")
    srv.stop()  # returns promptly although the handler was asked to wait a minute
    srv.stop()


def test_yahoo_route_matches_the_recorded_window_only(shared_data: Path) -> None:
    path = shared_data / PAYLOADS / "node-yahoo-finance2/chart-AAPL-2020-08-31-to-2020-11-07.json"
    route = yahoo_route(path)
    assert route.path == "/v8/finance/chart/AAPL"
    ok = {"interval": "1d", "period1": "1598745600", "period2": "1604793600"}
    assert route.matches("/v8/finance/chart/AAPL", ok)
    assert not route.matches("/v8/finance/chart/AAPL", {**ok, "period1": "1590000000"})  # wider window
    assert not route.matches("/v8/finance/chart/AAPL", {**ok, "interval": "1m"})
    later = yahoo_later_events_route(path)
    lookup = {"interval": "1mo", "period1": "1604793600", "period2": "1740009600"}
    assert later.matches("/v8/finance/chart/AAPL", lookup)
    body = json.loads(later.response.body)
    assert "timestamp" not in body["chart"]["result"][0]
    assert "derived" in later.note


def test_polygon_file_names_map_to_request_paths() -> None:
    assert polygon_path("v2_aggs_AAPL_range_1_day_2005-04-01_2005-04-04.json") == (
        "/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04")
    assert polygon_path("v3_reference_splits.json") == "/v3/reference/splits"
    with pytest.raises(ValueError, match="unknown polygon"):
        polygon_path("mystery.json")


def test_derived_pages_keep_every_row_in_order(shared_data: Path) -> None:
    body = json.loads((shared_data / PAYLOADS / "polygon-client-python/"
                       "v2_aggs_AAPL_range_1_day_2005-04-01_2005-04-04.json").read_text())
    pages = polygon_pages("/p", body, 1)
    rows = [r for p in pages for r in json.loads(p.response.body)["results"]]
    assert rows == body["results"]
    assert "next_url" in json.loads(pages[0].response.body)
    assert "next_url" not in json.loads(pages[-1].response.body)

    recs = alpaca_recordings(shared_data / PAYLOADS / "alpaca-py/test_historical_stock_data.payloads.json")
    desc = recs["test_get_bars_desc"]["response"]
    apages = alpaca_pages("/v2/stocks/bars", {"symbols": "TSLA"}, desc, 2)
    arows = [r for p in apages for r in json.loads(p.response.body)["bars"]["TSLA"]]
    assert arows == desc["bars"]["TSLA"]
    assert json.loads(apages[-1].response.body)["next_page_token"] is None


def test_alpaca_route_adds_a_derived_terminal_page_for_an_unrecorded_token(shared_data: Path) -> None:
    recs = alpaca_recordings(shared_data / PAYLOADS / "alpaca-py/test_historical_stock_data.payloads.json")
    routes = alpaca_route(recs["test_get_bars"])
    assert [r.note.split(":")[0] for r in routes] == ["recorded", "derived"]
    assert routes[0].params == {"symbols": "AAPL"}
    assert json.loads(routes[1].response.body) == {"bars": {}, "next_page_token": None}
