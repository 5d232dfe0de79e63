"""The Alpaca adapter over real HTTP: request shape, token paging and every error path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _alpaca_helpers import ACTIONS_PAGE, KEY, SECRET, provider, recordings, us

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    IncompleteData,
    ProviderResponseError,
    ProviderTimeout,
    UnsupportedRequest,
)
from tickvault.model import CoverageState
from tickvault.providers.alpaca import AlpacaProvider
from tickvault.providers.base import ActionsProvider, BarsQuery, BarsResult, Provider
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route, alpaca_pages, alpaca_route

BARS = "/v2/stocks/bars"
QUERY = BarsQuery("AAPL", "1d", us("2022-02-01"), us("2022-02-03"))
TSLA = BarsQuery("TSLA", "1d", us("2023-09-25"), us("2023-09-28"))


def bars(server: ReplayServer, clock: ManualClock, q: BarsQuery = QUERY, **kw: Any) -> BarsResult:
    return asyncio.run(provider(server.base_url, clock.clock, **kw).bars(q))


def tsla_pages(shared: Path) -> list[Route]:
    """Derived: the recorded three TSLA bars (sorted desc by the recording) as three token pages."""
    return alpaca_pages(BARS, {"symbols": "TSLA"}, recordings(shared)["test_get_bars_desc"]["response"], 1)


def test_is_a_provider_for_us_stocks() -> None:
    p = AlpacaProvider()
    assert isinstance(p, Provider)
    assert isinstance(p, ActionsProvider)
    assert p.capabilities.needs_credentials
    assert {str(a) for a in p.capabilities.asset_classes} == {"equity", "etf"}
    with pytest.raises(ConfigError, match="feed"):
        AlpacaProvider(feed="nasdaq")


def test_request_shape(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(alpaca_route(recordings(shared_data)["test_get_bars"])) as server:
        result = bars(server, clock, feed="iex")
        first, cont = server.requests
    assert first.params == {"symbols": "AAPL", "timeframe": "1Day", "start": "2022-02-01T00:00:00Z",
                            "end": "2022-02-02T23:59:59Z", "limit": "10000", "adjustment": "raw", "feed": "iex",
                            "sort": "asc"}
    assert first.headers["apca-api-key-id"] == KEY
    assert first.headers["apca-api-secret-key"] == SECRET
    assert cont.params["page_token"] == recordings(shared_data)["test_get_bars"]["response"]["next_page_token"]
    assert result.table.num_rows == 2


def test_token_pages_are_followed_to_the_end(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(tsla_pages(shared_data)) as server:
        result = bars(server, clock, TSLA)
        assert [r.params.get("page_token") for r in server.requests] == [None, "replay-1", "replay-2"]
    assert result.table.column("close").to_pylist() == [246.99, 244.12, 240.5]


def test_timeout_mid_pagination_raises(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(tsla_pages(shared_data)) as server:
        server.fault(f"{BARS}#page2", Fault.delay(5, times=3))
        with pytest.raises(ProviderTimeout):
            bars(server, clock, TSLA, timeout=0.5, retries=1)


def test_timeout_mid_pagination_recovers(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(tsla_pages(shared_data)) as server:
        server.fault(f"{BARS}#page1", Fault.delay(5))
        assert bars(server, clock, TSLA, timeout=1.0).table.num_rows == 3


def test_a_token_loop_is_incomplete_data(clock: ManualClock) -> None:
    loop = {"bars": {"AAPL": []}, "next_page_token": "same"}
    with ReplayServer([Route(BARS, Canned.json(loop))]) as server, pytest.raises(IncompleteData):
        bars(server, clock)


@pytest.mark.parametrize("fault", [Fault.rate_limited(2), Fault.server_error(503, times=2)])
def test_transient_failures_then_success(shared_data: Path, clock: ManualClock, fault: Fault) -> None:
    with ReplayServer(tsla_pages(shared_data)) as server:
        server.fault(f"{BARS}#page1", fault)
        assert bars(server, clock, TSLA).table.num_rows == 3


def test_malformed_json(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(tsla_pages(shared_data)) as server:
        server.fault(f"{BARS}#page0", Fault.malformed())
        with pytest.raises(ProviderResponseError):
            bars(server, clock, TSLA)


def test_auth_failure_and_subscription_limits(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(tsla_pages(shared_data)) as server:
        server.fault(f"{BARS}#page0", Fault.auth_failure(401, body={"message": "unauthorized."}),
                     Fault.auth_failure(403, body={"message": "subscription does not permit querying recent SIP data"}))
        with pytest.raises(AuthenticationFailed):
            bars(server, clock, TSLA)
        with pytest.raises(UnsupportedRequest, match="subscription"):
            bars(server, clock, TSLA)


def test_missing_keys_fail_before_sending(clock: ManualClock) -> None:
    with ReplayServer() as server:
        with pytest.raises(AuthenticationFailed):
            bars(server, clock, key=False)
        assert server.requests == []


def test_an_empty_answer_is_confirmed_empty(shared_data: Path, clock: ManualClock) -> None:
    rec = recordings(shared_data)["test_get_bars_single_empty_response"]
    with ReplayServer(alpaca_route(rec, params={"symbols": "AAPL"})) as server:
        result = bars(server, clock, BarsQuery("AAPL", "1d", us("2022-02-05"), us("2022-02-07")))
    assert result.table.num_rows == 0
    assert [iv.state for iv in result.coverage] == [CoverageState.EMPTY]


def test_actions_are_fetched_from_the_window_start_to_today(shared_data: Path, clock: ManualClock) -> None:
    routes = [*alpaca_route(recordings(shared_data)["test_get_bars"]),
              Route("/v1beta1/corporate-actions", Canned.json(ACTIONS_PAGE))]
    with ReplayServer(routes) as server:
        result = bars(server, clock, actions=True)
        ca = server.requests[-1]
    assert ca.params["start"] == "2022-02-01"
    assert ca.params["end"] == "2025-02-20"
    assert ca.params["types"] == "forward_split,reverse_split,cash_dividend"
    assert [str(a.ex_date) for a in result.actions] == ["2020-08-31", "2020-11-06"]


def test_corporate_actions_endpoint(clock: ManualClock) -> None:
    with ReplayServer([Route("/v1beta1/corporate-actions", Canned.json(ACTIONS_PAGE))]) as server:
        p = provider(server.base_url, clock.clock)
        actions = asyncio.run(p.corporate_actions("AAPL", us("2020-09-01"), us("2021-01-01")))
        assert server.requests[0].params["end"] == "2020-12-31"
    assert [(str(a.kind), str(a.ex_date)) for a in actions] == [("dividend", "2020-11-06")]
