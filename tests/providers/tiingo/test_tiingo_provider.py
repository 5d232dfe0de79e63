"""The Tiingo adapter over real HTTP: conformance, request shape, paging windows and error paths."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _tiingo_helpers import (
    DAILY,
    FUND_DAILY,
    FUND_STATEMENTS,
    IEX,
    KEY,
    META,
    RECORDED_US,
    expected,
    json_body,
    make,
    route,
    us,
)

from tickvault.errors import (
    AuthenticationFailed,
    ProviderResponseError,
    ProviderTimeout,
    RateLimited,
    SymbolNotFound,
)
from tickvault.model import CoverageState, Instrument
from tickvault.providers.base import ActionsProvider, BarsQuery, BarsResult, DataKind, Provider
from tickvault.providers.tiingo import TiingoProvider
from tickvault.testing.provider_conformance import ConformanceCase, ProviderConformance
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

GOOGL = Instrument("GOOGL", exchange="XNAS", calendar="XNYS")
DAILY_Q = BarsQuery("GOOGL", "1d", us("2018-01-05"), us("2018-01-20"), GOOGL)
IEX_Q = BarsQuery("GOOGL", "30m", us("2018-01-02 14:30"), us("2018-01-02 21:00"), GOOGL)
DAILY_PATH = "/tiingo/daily/GOOGL/prices"


def _daily_route(shared: Path) -> Route:
    return route(shared, DAILY, 0, params={"format": "json", "resampleFreq": "daily"})


def _case(name: str, shared: Path) -> ConformanceCase:
    if name == "end-of-day":
        return ConformanceCase(name, (_daily_route(shared),), lambda url, clock: make(url, clock), DAILY_Q,
                               expected(json_body(shared, DAILY, 0)), RECORDED_US)
    # Our request spells resampleFreq "30min"; the recording's client sent "30Min" (Tiingo ignores case).
    return ConformanceCase(name, (route(shared, IEX, 0, params={"resampleFreq": "30min"}),),
                           lambda url, clock: make(url, clock), IEX_Q,
                           expected(json_body(shared, IEX, 0), volume=False), RECORDED_US)


class TestTiingoConformance(ProviderConformance):
    """The shared provider contract on the recorded Tiingo prices."""

    @pytest.fixture(params=["end-of-day", "iex-30m"])
    def case(self, request: pytest.FixtureRequest, shared_data: Path) -> ConformanceCase:
        return _case(request.param, shared_data)


def _bars(server: ReplayServer, q: BarsQuery, **kw: Any) -> BarsResult:
    return asyncio.run(make(server.base_url, ManualClock(RECORDED_US).clock, **kw).bars(q))


def test_is_a_provider_with_actions_and_fundamentals() -> None:
    p = TiingoProvider()
    assert isinstance(p, Provider)
    assert isinstance(p, ActionsProvider)
    assert {DataKind.ACTIONS, DataKind.FUNDAMENTALS} <= p.capabilities.kinds
    assert p.capabilities.supports("1h") is None
    assert p.settings.base_url == "https://api.tiingo.com"


def test_daily_request_shape_and_token_header(shared_data: Path) -> None:
    with ReplayServer([_daily_route(shared_data)]) as server:
        result = _bars(server, DAILY_Q)
        (req,) = server.requests
    assert req.path == DAILY_PATH
    assert (req.params["startDate"], req.params["endDate"]) == ("2018-01-05", "2018-01-19")
    assert req.headers["authorization"] == f"Token {KEY}"
    assert "token" not in req.params
    assert result.table.num_rows == 10
    assert result.actions == []


def test_share_class_symbols_use_tiingo_spelling(shared_data: Path) -> None:
    with ReplayServer([route(shared_data, DAILY, 0, path="/tiingo/daily/BRK-B/prices")]) as server:
        _bars(server, BarsQuery("BRK.B", "1d", us("2018-01-05"), us("2018-01-20")))
        assert server.requests[0].path == "/tiingo/daily/BRK-B/prices"


def test_intraday_windows_stay_under_the_row_cap(shared_data: Path) -> None:
    q = BarsQuery("GOOGL", "1m", us("2018-01-02 14:30"), us("2018-02-16 21:00"), GOOGL)
    with ReplayServer([route(shared_data, IEX, 0)]) as server:
        _bars(server, q)
        windows = [(r.params["startDate"], r.params["endDate"]) for r in server.requests]
        assert server.requests[0].params["columns"] == "open,high,low,close,volume"
    assert windows == [("2018-01-02", "2018-01-21"), ("2018-01-22", "2018-02-10"), ("2018-02-11", "2018-02-16")]


def test_404_detail_is_symbol_not_found(shared_data: Path) -> None:
    body = {"detail": "Error: Ticker 'NOPE' not found"}
    with ReplayServer([Route("/tiingo/daily/NOPE/prices", Canned.json(body, status=404))]) as server, \
            pytest.raises(SymbolNotFound, match="NOPE"):
        _bars(server, BarsQuery("NOPE", "1d", us("2018-01-05"), us("2018-01-20")))


def test_bad_token_is_authentication_failed_without_the_key(shared_data: Path) -> None:
    with ReplayServer([_daily_route(shared_data)]) as server:
        server.fault(f"{DAILY_PATH}#0", Fault.auth_failure(401, body={"detail": "Invalid token."}))
        with pytest.raises(AuthenticationFailed) as info:
            _bars(server, DAILY_Q)
    assert KEY not in str(info.value)


def test_http_200_detail_is_a_typed_error() -> None:
    body = {"detail": "Error: You have run over your 500 requests per hour allocation."}
    with ReplayServer([Route(DAILY_PATH, Canned.json(body))]) as server, pytest.raises(RateLimited):
        _bars(server, DAILY_Q)


def test_429_then_success_honours_retry_after(shared_data: Path) -> None:
    clock = ManualClock(RECORDED_US)
    with ReplayServer([_daily_route(shared_data)]) as server:
        server.fault(f"{DAILY_PATH}#0", Fault.rate_limited(5))
        result = asyncio.run(make(server.base_url, clock.clock).bars(DAILY_Q))
        assert [r.status for r in server.requests] == [429, 200]
    assert result.table.num_rows == 10
    assert clock.sleeps[0] >= 5


def test_5xx_then_success(shared_data: Path) -> None:
    with ReplayServer([_daily_route(shared_data)]) as server:
        server.fault(f"{DAILY_PATH}#0", Fault.server_error(502))
        assert _bars(server, DAILY_Q).table.num_rows == 10
        assert [r.status for r in server.requests] == [502, 200]


def test_malformed_and_truncated_bodies_are_response_errors(shared_data: Path) -> None:
    with ReplayServer([_daily_route(shared_data)]) as server:
        server.fault(f"{DAILY_PATH}#0", Fault.malformed(), Fault.truncated(0.5))
        for _ in range(2):
            with pytest.raises(ProviderResponseError):
                _bars(server, DAILY_Q)


def test_actions_metadata_and_fundamentals_over_http(shared_data: Path) -> None:
    routes = [_daily_route(shared_data), route(shared_data, META, 0),
              route(shared_data, FUND_DAILY, 0), route(shared_data, FUND_STATEMENTS, 0)]
    with ReplayServer(routes) as server:
        p = make(server.base_url, ManualClock(RECORDED_US).clock)
        actions = asyncio.run(p.corporate_actions("GOOGL", us("2018-01-05"), us("2018-01-20"), GOOGL))
        inst = asyncio.run(p.instrument("GOOGL"))
        fundamentals = asyncio.run(p.fundamentals("GOOGL"))
    assert actions == []
    assert inst.listed is not None
    assert inst.name is not None
    assert fundamentals["market_cap"][1] == "tiingo:fundamentals/daily:2020-04-01"
    assert fundamentals["income.revenue"][0] == 161857000000.0


def test_timeout_mid_pagination_is_a_provider_timeout(shared_data: Path) -> None:
    q = BarsQuery("GOOGL", "1m", us("2018-01-02 14:30"), us("2018-02-16 21:00"), GOOGL)
    first = route(shared_data, IEX, 0, params={"startDate": "2018-01-02"})
    second = route(shared_data, IEX, 0, params={"startDate": "2018-01-22"})
    second.name = "second-window"
    with ReplayServer([first, second]) as server:
        server.fault("second-window", Fault.delay(5))
        with pytest.raises(ProviderTimeout):
            _bars(server, q, retries=0, timeout=0.3)
        assert [r.params["startDate"] for r in server.requests] == ["2018-01-02", "2018-01-22"]


def test_empty_answer_is_empty_coverage() -> None:
    q = BarsQuery("GOOGL", "1d", us("2018-01-13"), us("2018-01-15"), GOOGL)  # a weekend
    with ReplayServer([Route(DAILY_PATH, Canned.json([]), note="synthetic: no sessions")]) as server:
        result = _bars(server, q)
    assert result.table.num_rows == 0
    assert result.coverage
    assert all(iv.state == CoverageState.EMPTY for iv in result.coverage)
