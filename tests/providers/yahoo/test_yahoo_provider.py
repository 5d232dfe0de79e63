"""The Yahoo adapter over real HTTP: request shape, paging windows and every error path."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _yahoo_helpers import CHARTS, FOLDER, body, provider, us

from tickvault.errors import (
    AuthenticationFailed,
    ProviderResponseError,
    ProviderTimeout,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.model import CoverageState, Instrument, Timeframe
from tickvault.providers.base import ActionsProvider, BarsQuery, BarsResult, DataKind, Provider
from tickvault.providers.yahoo import YahooProvider
from tickvault.testing.replay import (
    Canned,
    Fault,
    ManualClock,
    ReplayServer,
    Route,
    yahoo_later_events_route,
    yahoo_route,
)

AAPL = "chart-AAPL-2020-08-31-to-2020-11-07.json"
WEEKEND = "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json"


def served(shared: Path, name: str) -> list[Route]:
    path = shared / FOLDER / name
    return [yahoo_route(path), yahoo_later_events_route(path)]


def query(name: str) -> BarsQuery:
    inst, tf, start, end = CHARTS[name]
    return BarsQuery(inst.symbol, tf, us(start), us(end), inst)


def bars(server: ReplayServer, clock: ManualClock, q: BarsQuery, **kw: Any) -> BarsResult:
    return asyncio.run(provider(server.base_url, clock.clock, **kw).bars(q))


def test_is_a_provider_with_actions() -> None:
    p = YahooProvider()
    assert isinstance(p, Provider)
    assert isinstance(p, ActionsProvider)
    caps = p.capabilities
    assert not caps.needs_credentials
    assert DataKind.ACTIONS in caps.kinds
    assert caps.supports("1m") is not None
    assert caps.supports("1m").max_history_days == 30  # type: ignore[union-attr]
    assert caps.supports("1w") is None
    assert p.settings.base_url == "https://query2.finance.yahoo.com"


def test_request_shape(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(served(shared_data, AAPL)) as server:
        result = bars(server, clock, query(AAPL))
        main, later = server.requests
    assert main.path == "/v8/finance/chart/AAPL"
    assert main.params["interval"] == "1d"
    assert main.params["events"] == "div|split"
    assert main.params["includePrePost"] == "false"
    # padded by a day each side; the answer is clipped to the keys asked for
    assert int(main.params["period1"]) == us("2020-08-30") // 1_000_000
    assert int(main.params["period2"]) == us("2020-11-08") // 1_000_000
    assert later.params["interval"] == "1mo"
    assert int(later.params["period1"]) == int(main.params["period2"])
    assert int(later.params["period2"]) == clock.now_us() // 1_000_000
    assert result.table.num_rows == 49
    assert [(iv.state, iv.start_us, iv.end_us) for iv in result.coverage] == [
        (CoverageState.FINAL, us("2020-08-31"), us("2020-11-07"))]


def test_extended_hours_flag_is_sent(shared_data: Path, clock: ManualClock) -> None:
    routes = [Route("/v8/finance/chart/AAPL", Canned.json(body(shared_data, WEEKEND)))]
    with ReplayServer(routes) as server:
        bars(server, clock, query(WEEKEND), extended_hours=True)
        assert server.requests[0].params["includePrePost"] == "true"


def test_recent_windows_skip_the_later_events_lookup(shared_data: Path) -> None:
    clock = ManualClock(us("2025-02-02 12:00"))
    routes = [Route("/v8/finance/chart/AAPL", Canned.json(body(shared_data, WEEKEND)), {"interval": "1m"})]
    with ReplayServer(routes) as server:
        result = bars(server, clock, query(WEEKEND))
        assert len(server.requests) == 1
    assert result.table.num_rows == 0


def test_the_empty_weekend_is_confirmed_empty(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(served(shared_data, WEEKEND)) as server:
        result = bars(server, clock, query(WEEKEND))
    assert result.table.num_rows == 0
    assert [(iv.state, iv.start_us, iv.end_us) for iv in result.coverage] == [
        (CoverageState.EMPTY, us("2025-02-01"), us("2025-02-02"))]


def _two_windows(shared: Path) -> tuple[list[Route], BarsQuery]:
    """Derived: a 10-day 1m query is two Yahoo requests (7 days + 3); both answer the recorded
    empty weekend body (the meta matches AAPL)."""
    weekend = Canned.json(body(shared, WEEKEND))
    split = us("2025-02-08") // 1_000_000
    routes = [
        Route("/v8/finance/chart/AAPL", weekend, {"interval": "1m"}, lambda q: int(q["period1"]) < split, "w0"),
        Route("/v8/finance/chart/AAPL", weekend, {"interval": "1m"}, lambda q: int(q["period1"]) >= split, "w1"),
        yahoo_later_events_route(shared / FOLDER / WEEKEND),
    ]
    inst = Instrument("AAPL", exchange="XNAS")
    return routes, BarsQuery("AAPL", "1m", us("2025-02-01"), us("2025-02-11"), inst)


def test_intraday_windows_follow_yahoo_limits(shared_data: Path, clock: ManualClock) -> None:
    routes, q = _two_windows(shared_data)
    with ReplayServer(routes) as server:
        result = bars(server, clock, q)
        assert [r.route for r in server.requests] == ["w0", "w1", "/v8/finance/chart/AAPL#later"]
        w0, w1 = server.requests[:2]
    assert (int(w0.params["period2"]) - int(w0.params["period1"])) == 7 * 86_400
    assert int(w1.params["period1"]) == int(w0.params["period2"])
    assert int(w1.params["period2"]) == q.end_us // 1_000_000
    assert result.coverage[0].start_us == q.start_us


def test_timeout_mid_pagination_raises_instead_of_a_short_result(shared_data: Path, clock: ManualClock) -> None:
    routes, q = _two_windows(shared_data)
    with ReplayServer(routes) as server:
        server.fault("w1", Fault.delay(5, times=3))
        with pytest.raises(ProviderTimeout) as info:
            bars(server, clock, q, timeout=0.5, retries=1)
    assert info.value.page == 1  # type: ignore[attr-defined]


def test_timeout_mid_pagination_recovers_on_retry(shared_data: Path, clock: ManualClock) -> None:
    routes, q = _two_windows(shared_data)
    with ReplayServer(routes) as server:
        server.fault("w1", Fault.delay(5))
        result = bars(server, clock, q, timeout=1.0)
        assert [r.route for r in server.requests].count("w1") == 2
    assert result.coverage[0].end_us == q.end_us


def test_429_with_retry_after_then_success(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(served(shared_data, AAPL)) as server:
        server.fault("/v8/finance/chart/AAPL", Fault.rate_limited(7))
        result = bars(server, clock, query(AAPL))
    assert result.table.num_rows == 49
    assert clock.sleeps[0] >= 7


def test_5xx_then_success(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(served(shared_data, AAPL)) as server:
        server.fault("/v8/finance/chart/AAPL", Fault.server_error(502, times=2))
        assert bars(server, clock, query(AAPL)).table.num_rows == 49


@pytest.mark.parametrize("fault", [Fault.malformed(), Fault.truncated(0.3)])
def test_malformed_or_truncated_json_is_a_response_error(shared_data: Path, clock: ManualClock, fault: Fault) -> None:
    with ReplayServer(served(shared_data, AAPL)) as server:
        server.fault("/v8/finance/chart/AAPL", fault)
        with pytest.raises(ProviderResponseError):
            bars(server, clock, query(AAPL))


def test_auth_failure_is_definitive(shared_data: Path, clock: ManualClock) -> None:
    crumb = {"chart": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}}
    with ReplayServer(served(shared_data, AAPL)) as server:
        server.fault("/v8/finance/chart/AAPL", Fault.auth_failure(401, body=crumb))
        with pytest.raises(AuthenticationFailed, match="Invalid Crumb"):
            bars(server, clock, query(AAPL))
        assert len(server.requests) == 1


def test_unknown_symbol_is_symbol_not_found(shared_data: Path, clock: ManualClock) -> None:
    missing = {"chart": {"result": None, "error": {"code": "Not Found",
                                                   "description": "No data found, symbol may be delisted"}}}
    with ReplayServer(served(shared_data, AAPL)) as server:
        server.fault("/v8/finance/chart/AAPL", Fault.status_code(404, body=missing))
        with pytest.raises(SymbolNotFound, match="delisted"):
            bars(server, clock, query(AAPL))


def test_history_and_timeframe_limits_are_checked_before_sending(clock: ManualClock) -> None:
    with ReplayServer() as server:
        p = provider(server.base_url, clock.clock)
        with pytest.raises(UnsupportedRequest, match="30 days"):
            asyncio.run(p.bars(BarsQuery("AAPL", "1m", us("2024-01-02"), us("2024-01-03"))))
        with pytest.raises(UnsupportedRequest, match="not served natively"):
            asyncio.run(p.bars(BarsQuery("AAPL", "1w", us("2024-01-01"), us("2024-02-01"))))
        assert server.requests == []


def test_symbols_are_spelled_the_yahoo_way(clock: ManualClock) -> None:
    p = provider("http://127.0.0.1:9", clock.clock)
    tf = Timeframe.parse("1d")
    assert p.plan(BarsQuery("BRK.B", "1d", 0, 86_400_000_000), tf).vendor == "BRK-B"
    assert p.plan(BarsQuery("^GSPC", "1d", 0, 86_400_000_000), tf).vendor == "^GSPC"
    routes = [Route("/v8/finance/chart/^GSPC", Canned.json({"chart": {"result": [{"meta": {"symbol": "^GSPC"}}],
                                                                       "error": None}}))]
    with ReplayServer(routes) as server:
        result = bars(server, clock, BarsQuery("^GSPC", "1d", us("2025-02-03"), us("2025-02-04")))
        assert server.requests[0].path == "/v8/finance/chart/^GSPC"  # sent percent-encoded, decoded by the server
    assert result.table.num_rows == 0


def test_corporate_actions_endpoint(shared_data: Path, clock: ManualClock) -> None:
    """Derived route: the AAPL recording answers the interval=1mo actions request."""
    routes = [Route("/v8/finance/chart/AAPL", Canned.json(body(shared_data, AAPL)), {"interval": "1mo"})]
    with ReplayServer(routes) as server:
        p = provider(server.base_url, clock.clock)
        actions = asyncio.run(p.corporate_actions("AAPL", us("2020-08-01"), us("2020-11-01")))
        assert server.requests[0].params["period2"] == str(clock.now_us() // 1_000_000)
    assert [(str(a.kind), str(a.ex_date), a.value) for a in actions] == [("split", "2020-08-31", 4.0)]


def test_answer_for_another_symbol_is_refused(shared_data: Path, clock: ManualClock) -> None:
    other = copy.deepcopy(body(shared_data, AAPL))
    other["chart"]["result"][0]["meta"]["symbol"] = "MSFT"
    with ReplayServer([Route("/v8/finance/chart/AAPL", Canned(200, json.dumps(other).encode()))]) as server, \
            pytest.raises(ProviderResponseError, match="MSFT"):
        bars(server, clock, query(AAPL))
