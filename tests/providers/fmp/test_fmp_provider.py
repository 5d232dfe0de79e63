"""The FMP adapter over real HTTP (recorded gzip bodies): conformance, request shape, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _fmp_helpers import (
    KEY,
    PRICES,
    PRICES_PATH,
    RECORDED_US,
    SPLITS,
    V3_SPLITS_PATH,
    expected,
    json_body,
    make,
    no_dividends_routes,
    route,
    stable_splits_route,
    us,
)

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    IncompleteData,
    ProviderResponseError,
    ProviderTimeout,
    RateLimited,
    UnsupportedRequest,
)
from tickvault.model import CoverageState, Instrument
from tickvault.providers.base import ActionsProvider, BarsQuery, BarsResult, DataKind, Provider
from tickvault.providers.fmp import FmpProvider
from tickvault.testing.provider_conformance import ConformanceCase, ProviderConformance
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

AAPL = Instrument("AAPL", exchange="XNAS", calendar="XNYS")
QUERY = BarsQuery("AAPL", "1d", us("2023-01-01"), us("2023-01-11"), AAPL)


def _routes(shared: Path, api: str = "stable") -> list[Route]:
    splits = route(shared, SPLITS) if api == "v3" else stable_splits_route(shared)
    return [route(shared, PRICES, params={"symbol": "AAPL"}), splits, *no_dividends_routes()]


def _case(api: str, shared: Path) -> ConformanceCase:
    return ConformanceCase(f"eod-{api}", tuple(_routes(shared, api)),
                           lambda url, clock: make(url, clock, api=api),  # type: ignore[arg-type]
                           QUERY, expected(json_body(shared, PRICES)), RECORDED_US)


class TestFmpConformance(ProviderConformance):
    """The shared provider contract on the recorded FMP prices (splits from either API)."""

    @pytest.fixture(params=["stable", "v3"])
    def case(self, request: pytest.FixtureRequest, shared_data: Path) -> ConformanceCase:
        return _case(request.param, shared_data)


def _bars(server: ReplayServer, q: BarsQuery = QUERY, clock: ManualClock | None = None, **kw: Any) -> BarsResult:
    clock = clock or ManualClock(RECORDED_US)
    return asyncio.run(make(server.base_url, clock.clock, **kw).bars(q))


def test_is_a_provider_with_actions_and_fundamentals() -> None:
    p = FmpProvider()
    assert isinstance(p, Provider)
    assert isinstance(p, ActionsProvider)
    assert {DataKind.ACTIONS, DataKind.FUNDAMENTALS} <= p.capabilities.kinds
    assert p.capabilities.supports("1m") is None
    with pytest.raises(ConfigError):
        FmpProvider(api="v4")  # type: ignore[arg-type]


def test_request_shape_and_key_in_query_only(shared_data: Path) -> None:
    with ReplayServer(_routes(shared_data)) as server:
        result = _bars(server)
        prices, splits, divs = server.requests
    assert (prices.path, prices.params["from"], prices.params["to"]) == (PRICES_PATH, "2023-01-01", "2023-01-10")
    assert prices.params["apikey"] == KEY
    assert (splits.path, divs.path) == ("/stable/splits", "/stable/dividends")
    assert result.table.num_rows == 6
    assert result.actions == []  # AAPL's splits are all before 2023


def test_actions_in_range_come_with_the_bars(shared_data: Path) -> None:
    q = BarsQuery("AAPL", "1d", us("2020-08-01"), us("2023-01-11"), AAPL)
    with ReplayServer(_routes(shared_data, "v3")) as server:
        result = _bars(server, q, api="v3")
        assert server.requests[1].path == V3_SPLITS_PATH
    assert [(str(a.ex_date), a.value) for a in result.actions] == [("2020-08-31", 4.0)]


def test_window_starting_long_after_its_start_is_incomplete(shared_data: Path) -> None:
    """Two windows: the older one has a bar (synthetic minimal row), the newer one (the
    recording) starts in 2023 although its window starts in 2020: a cut answer."""
    older = [{"symbol": "AAPL", "date": "2016-01-04", "open": 102.61, "high": 105.37, "low": 102.0, "close": 105.35,
              "volume": 67649400}]
    q = BarsQuery("AAPL", "1d", us("2016-01-01"), us("2023-01-11"), AAPL)
    routes = [Route(PRICES_PATH, Canned.json(older), {"symbol": "AAPL", "from": "2016-01-01"}, name="older",
                    note="synthetic: one bar"), *_routes(shared_data)]
    with ReplayServer(routes) as server:
        with pytest.raises(IncompleteData, match="cut answer"):
            _bars(server, q)
        assert [r.params.get("from") for r in server.requests[:2]] == ["2016-01-01", "2020-02-09"]


def test_limit_reach_429_is_retried_after_the_delay(shared_data: Path) -> None:
    clock = ManualClock(RECORDED_US)
    with ReplayServer(_routes(shared_data)) as server:
        server.fault(PRICES_PATH, Fault.rate_limited(3))
        result = _bars(server, clock=clock)
        assert [r.status for r in server.requests[:2]] == [429, 200]
    assert result.table.num_rows == 6
    assert clock.sleeps[0] >= 3


def test_long_retry_after_is_not_waited_for(shared_data: Path) -> None:
    clock = ManualClock(RECORDED_US)
    with ReplayServer(_routes(shared_data)) as server:
        server.fault(PRICES_PATH, Fault.rate_limited(3600))
        with pytest.raises(RateLimited) as info:
            _bars(server, clock=clock)
    assert info.value.retry_after == 3600  # type: ignore[attr-defined]
    assert clock.sleeps == []


def test_server_errors_then_success(shared_data: Path) -> None:
    with ReplayServer(_routes(shared_data)) as server:
        server.fault(PRICES_PATH, Fault.server_error(500, times=2))
        assert _bars(server).table.num_rows == 6


@pytest.mark.parametrize(("status", "body", "cls"), [
    (401, {"Error Message": "Invalid API KEY. Feel free to create a Free API Key"}, AuthenticationFailed),
    (403, {"Error Message": "Restricted Endpoint: not available under your current subscription"},
     UnsupportedRequest),
    (200, {"Error Message": "Limit Reach . Please upgrade your plan"}, RateLimited),
])
def test_error_message_bodies_become_typed_errors(shared_data: Path, status: int, body: dict[str, str],
                                                  cls: type[Exception]) -> None:
    with ReplayServer(_routes(shared_data)) as server:
        if status == 200:
            server.add(Route(PRICES_PATH, Canned.json(body), {"symbol": "AAPL", "from": "2023-01-01"}, name="err"))
        else:
            server.fault(PRICES_PATH, Fault.status_code(status, body=body))
        with pytest.raises(cls) as info:
            _bars(server, retries=0)
    assert KEY not in str(info.value)


def test_malformed_body_is_a_response_error(shared_data: Path) -> None:
    with ReplayServer(_routes(shared_data)) as server:
        server.fault(PRICES_PATH, Fault.malformed())
        with pytest.raises(ProviderResponseError):
            _bars(server)


def test_corporate_actions_and_fundamentals_over_http(shared_data: Path) -> None:
    profile = [{"symbol": "AAPL", "marketCap": 3.5e12, "companyName": "Apple Inc.", "currency": "USD"}]
    income = [{"date": "2024-09-28", "symbol": "AAPL", "revenue": 391035000000}]
    routes = [*_routes(shared_data), Route("/stable/profile", Canned.json(profile), note="synthetic shape"),
              Route("/stable/income-statement", Canned.json(income), note="synthetic shape")]
    with ReplayServer(routes) as server:
        p = make(server.base_url, ManualClock(RECORDED_US).clock)
        actions = asyncio.run(p.corporate_actions("AAPL", us("2000-01-01"), us("2015-01-01"), AAPL))
        fundamentals = asyncio.run(p.fundamentals("AAPL"))
    assert [(str(a.ex_date), a.value) for a in actions] == [("2000-06-21", 2.0), ("2005-02-28", 2.0),
                                                            ("2014-06-09", 7.0)]
    assert fundamentals["market_cap"] == (3.5e12, "fmp:profile")
    assert fundamentals["income.revenue"][0] == 391035000000.0


def test_timeout_after_the_prices_is_a_provider_timeout(shared_data: Path) -> None:
    routes = _routes(shared_data)
    with ReplayServer(routes) as server:
        server.fault(routes[1].name, Fault.delay(5))  # the splits request, after the price page
        with pytest.raises(ProviderTimeout):
            _bars(server, retries=0, timeout=0.3)
        assert [r.path for r in server.requests] == [PRICES_PATH, "/stable/splits"]


def test_empty_answer_is_empty_coverage(shared_data: Path) -> None:
    q = BarsQuery("AAPL", "1d", us("2023-01-14"), us("2023-01-16"), AAPL)  # a weekend
    routes = [Route(PRICES_PATH, Canned.json([]), note="synthetic: no sessions"), stable_splits_route(shared_data),
              *no_dividends_routes()]
    with ReplayServer(routes) as server:
        result = _bars(server, q)
    assert result.table.num_rows == 0
    assert result.coverage
    assert all(iv.state == CoverageState.EMPTY for iv in result.coverage)
