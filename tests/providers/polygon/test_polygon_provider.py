"""The Polygon adapter over real HTTP: request shape, cursor paging and every error path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _polygon_helpers import AGGS, AGGS_PATH, FOLDER, KEY, load, provider, us

from tickvault.errors import (
    AuthenticationFailed,
    IncompleteData,
    ProviderResponseError,
    ProviderTimeout,
    UnsupportedRequest,
)
from tickvault.model import CoverageState
from tickvault.providers.base import ActionsProvider, BarsQuery, BarsResult, Provider
from tickvault.providers.polygon import PolygonProvider, rebase
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route, polygon_pages, polygon_route

QUERY = BarsQuery("AAPL", "1d", us("2005-04-01"), us("2005-04-05"))


def reference(shared: Path) -> list[Route]:
    return [polygon_route(shared / FOLDER / "v3_reference_splits.json"),
            polygon_route(shared / FOLDER / "v3_reference_dividends.json")]


def recorded(shared: Path) -> list[Route]:
    return [polygon_route(shared / FOLDER / AGGS), *reference(shared)]


def paged(shared: Path) -> list[Route]:
    """Derived: the recorded two bars served as two cursor pages."""
    return [*polygon_pages(AGGS_PATH, load(shared, AGGS), 1), *reference(shared)]


def bars(server: ReplayServer, clock: ManualClock, q: BarsQuery = QUERY, **kw: Any) -> BarsResult:
    return asyncio.run(provider(server.base_url, clock.clock, **kw).bars(q))


def test_is_a_provider_that_needs_a_key() -> None:
    p = PolygonProvider()
    assert isinstance(p, Provider)
    assert isinstance(p, ActionsProvider)
    assert p.capabilities.needs_credentials
    assert p.capabilities.rate_limit_per_minute == 5.0
    assert p.capabilities.supports("1h") is None  # clock-aligned hours are resampled from minutes instead


def test_request_shape_and_key_in_a_header_only(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(recorded(shared_data)) as server:
        result = bars(server, clock)
        aggs, splits, divs = server.requests
    assert aggs.path == AGGS_PATH
    assert aggs.params == {"adjusted": "false", "sort": "asc", "limit": "50000"}
    assert splits.params["ticker"] == "AAPL"
    assert splits.params["execution_date.gte"] == "2005-04-01"
    assert divs.params["ex_dividend_date.gte"] == "2005-04-01"
    for r in server.requests:
        assert r.headers["authorization"] == f"Bearer {KEY}"
        assert KEY not in str(r.params)
    assert result.table.num_rows == 2
    assert result.actions == []  # the recorded reference lists hold no AAPL rows


def test_cursor_pages_are_followed_on_our_own_base_url(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(paged(shared_data)) as server:
        result = bars(server, clock)
        routes = [r.route for r in server.requests]
    assert routes[:2] == [f"{AGGS_PATH}#page0", f"{AGGS_PATH}#page1"]
    assert server.requests[1].params == {"cursor": "replay-1"}
    assert result.table.num_rows == 2
    assert result.coverage[0].state == CoverageState.FINAL


def test_rebase_keeps_path_and_query_only() -> None:
    assert rebase("https://api.polygon.io/v2/aggs/x?cursor=abc", "http://127.0.0.1:5/") == (
        "http://127.0.0.1:5/v2/aggs/x?cursor=abc")
    assert rebase("https://evil.test/steal", "https://api.polygon.io") == "https://api.polygon.io/steal"


def test_timeout_mid_pagination_raises(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(paged(shared_data)) as server:
        server.fault(f"{AGGS_PATH}#page1", Fault.delay(5, times=3))
        with pytest.raises(ProviderTimeout):
            bars(server, clock, timeout=0.5, retries=1)


def test_timeout_mid_pagination_recovers(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(paged(shared_data)) as server:
        server.fault(f"{AGGS_PATH}#page1", Fault.delay(5))
        assert bars(server, clock, timeout=1.0).table.num_rows == 2


def test_a_cursor_loop_is_incomplete_data(shared_data: Path, clock: ManualClock) -> None:
    body = load(shared_data, AGGS)
    looping = {**body, "next_url": f"https://api.polygon.io{AGGS_PATH}?cursor=again"}
    routes = [Route(AGGS_PATH, Canned.json(looping)), *reference(shared_data)]
    with ReplayServer(routes) as server, pytest.raises(IncompleteData, match="repeated"):
        bars(server, clock)


def test_a_short_page_is_incomplete_data(shared_data: Path, clock: ManualClock) -> None:
    body = {**load(shared_data, AGGS), "resultsCount": 5}
    with ReplayServer([Route(AGGS_PATH, Canned.json(body)), *reference(shared_data)]) as server, \
            pytest.raises(IncompleteData, match="resultsCount=5"):
        bars(server, clock)


@pytest.mark.parametrize("fault", [Fault.rate_limited(3), Fault.server_error(500, times=2), Fault.disconnect()])
def test_transient_failures_then_success(shared_data: Path, clock: ManualClock, fault: Fault) -> None:
    with ReplayServer(recorded(shared_data)) as server:
        server.fault(AGGS_PATH, fault)
        assert bars(server, clock).table.num_rows == 2


def test_malformed_json(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(recorded(shared_data)) as server:
        server.fault("/v3/reference/splits", Fault.malformed())
        with pytest.raises(ProviderResponseError, match="malformed JSON"):
            bars(server, clock)


def test_auth_failure_and_plan_limits(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(recorded(shared_data)) as server:
        server.fault(AGGS_PATH, Fault.auth_failure(401, body={"status": "ERROR", "error": "Unknown API Key"}),
                     Fault.auth_failure(403, body={"status": "NOT_AUTHORIZED",
                                                   "message": "Your plan doesn't include this data timeframe."}))
        with pytest.raises(AuthenticationFailed, match="Unknown API Key"):
            bars(server, clock)
        with pytest.raises(UnsupportedRequest, match="plan"):
            bars(server, clock)


def test_a_missing_key_fails_before_sending(clock: ManualClock) -> None:
    with ReplayServer() as server:
        with pytest.raises(AuthenticationFailed, match="TICKVAULT_POLYGON_API_KEY"):
            bars(server, clock, key=None)
        assert server.requests == []


def test_an_empty_weekend_answer(shared_data: Path, clock: ManualClock) -> None:
    """Polygon's documented empty shape (no ``results``), for a Saturday-Sunday window."""
    empty = {"ticker": "AAPL", "queryCount": 0, "resultsCount": 0, "adjusted": False, "status": "OK",
             "request_id": "r"}
    path = "/v2/aggs/ticker/AAPL/range/1/day/2005-04-02/2005-04-03"
    with ReplayServer([Route(path, Canned.json(empty)), *reference(shared_data)]) as server:
        result = bars(server, clock, BarsQuery("AAPL", "1d", us("2005-04-02"), us("2005-04-04")))
    assert result.table.num_rows == 0
    assert [iv.state for iv in result.coverage] == [CoverageState.EMPTY]


def test_corporate_actions_endpoint(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(reference(shared_data)) as server:
        p = provider(server.base_url, clock.clock)
        actions = asyncio.run(p.corporate_actions("GOOGL", us("2022-01-01"), us("2023-01-01")))
        assert server.requests[0].params["execution_date.lte"] == "2022-12-31"
    assert [(str(a.kind), str(a.ex_date), a.value) for a in actions] == [("split", "2022-07-18", 20.0)]
