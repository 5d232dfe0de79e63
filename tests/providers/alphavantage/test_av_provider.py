"""The Alpha Vantage adapter over real HTTP: conformance, request shape, paging and error paths."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _av_helpers import (
    DAILY,
    EXTENDED_CSV,
    FIVE_MIN,
    INCOME,
    KEY,
    OVERVIEW,
    expected_csv,
    expected_json,
    make,
    payload,
    route,
    us,
)

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    IncompleteData,
    ProviderResponseError,
    ProviderTimeout,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.model import AssetClass, CoverageState, Instrument
from tickvault.providers.alphavantage import AlphaVantageProvider
from tickvault.providers.base import ActionsProvider, BarsQuery, BarsResult, DataKind, Provider
from tickvault.testing.provider_conformance import ConformanceCase, ProviderConformance
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

MSFT = Instrument("MSFT", exchange="XNAS", calendar="XNYS")
DAILY_NOW = us("2019-08-05")
INTRADAY_NOW = us("2019-08-03")
CSV_NOW = us("2020-12-21")
DAILY_Q = BarsQuery("MSFT", "1d", us("2019-06-03"), us("2019-08-03"), MSFT)
FIVE_Q = BarsQuery("MSFT", "5m", us("2019-08-01 18:10"), us("2019-08-02 20:00"), MSFT)
CSV_Q = BarsQuery("MSFT", "1m", us("2020-11-23 09:00"), us("2020-12-19 01:00"), MSFT)


def _daily_expected(shared: Path) -> Any:
    exp = expected_json(payload(shared, DAILY)["Time Series (Daily)"], minutes=None, volume_field="6. volume")
    keep = [i for i, t in enumerate(exp.ts_us) if DAILY_Q.start_us <= t < DAILY_Q.end_us]
    return type(exp)(*(tuple(getattr(exp, f)[i] for i in keep) for f in ("ts_us", "open", "high", "low", "close",
                                                                          "volume")))


def _case(name: str, shared: Path) -> ConformanceCase:
    intraday = ("TIME_SERIES_INTRADAY",)
    if name == "daily-adjusted-compact":
        return ConformanceCase(name, (route(shared, DAILY, function="TIME_SERIES_DAILY_ADJUSTED"),),
                               lambda url, clock: make(url, clock), DAILY_Q, _daily_expected(shared), DAILY_NOW)
    if name == "intraday-5m-json":
        return ConformanceCase(name, (route(shared, FIVE_MIN, function=intraday[0], interval="5min"),),
                               lambda url, clock: make(url, clock), FIVE_Q,
                               expected_json(payload(shared, FIVE_MIN)["Time Series (5min)"], minutes=5), INTRADAY_NOW)
    csv_route = route(shared, EXTENDED_CSV, function=intraday[0], interval="1min", datatype="csv")
    if name == "intraday-1m-csv-extended":
        return ConformanceCase(name, (csv_route,), lambda url, clock: make(url, clock, datatype="csv",
                                                                           extended_hours=True),
                               CSV_Q, expected_csv(shared, regular_only=False), CSV_NOW, extended_hours=True)
    return ConformanceCase(name, (csv_route,), lambda url, clock: make(url, clock, datatype="csv"), CSV_Q,
                           expected_csv(shared, regular_only=True), CSV_NOW)


CASES = ["daily-adjusted-compact", "intraday-5m-json", "intraday-1m-csv-extended", "intraday-1m-csv-regular-hours"]


class TestAlphaVantageConformance(ProviderConformance):
    """The shared provider contract on every recorded Alpha Vantage series."""

    @pytest.fixture(params=CASES)
    def case(self, request: pytest.FixtureRequest, shared_data: Path) -> ConformanceCase:
        return _case(request.param, shared_data)


def _bars(server: ReplayServer, clock: ManualClock, q: BarsQuery, **kw: Any) -> BarsResult:
    return asyncio.run(make(server.base_url, clock.clock, **kw).bars(q))


def test_is_a_provider_with_actions_and_fundamentals() -> None:
    p = AlphaVantageProvider()
    assert isinstance(p, Provider)
    assert isinstance(p, ActionsProvider)
    caps = p.capabilities
    assert caps.needs_credentials
    assert {DataKind.ACTIONS, DataKind.FUNDAMENTALS} <= caps.kinds
    assert caps.supports("1h") is None  # hour bars are derived: see the module docstring
    assert caps.supports("5m") is not None
    assert p.settings.base_url == "https://www.alphavantage.co"


def test_daily_request_shape_and_actions(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    q = BarsQuery("MSFT", "1d", us("2019-05-01"), us("2019-08-03"), MSFT)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        result = _bars(server, clock, q)
        (req,) = server.requests
    assert req.path == "/query"
    assert req.params["symbol"] == "MSFT"
    assert req.params["outputsize"] == "compact"  # the window starts within the newest 90 sessions
    assert req.params["apikey"] == KEY  # sent on the wire only
    assert [(str(a.ex_date), a.value) for a in result.actions] == [("2019-05-15", 0.46)]


def test_old_daily_window_asks_for_full_history(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    q = BarsQuery("MSFT", "1d", us("2019-03-13"), us("2019-08-03"), MSFT)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        _bars(server, clock, q)
        assert server.requests[0].params["outputsize"] == "full"


def test_compact_answer_short_of_the_window_is_incomplete(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    q = BarsQuery("MSFT", "1d", us("2018-01-02"), us("2019-08-03"), MSFT)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server, \
            pytest.raises(IncompleteData, match="compact"):
        _bars(server, clock, q)  # the vendor sent a compact page to a full request


def test_intraday_pages_one_month_at_a_time(shared_data: Path) -> None:
    clock = ManualClock(CSV_NOW)
    with ReplayServer([route(shared_data, EXTENDED_CSV, function="TIME_SERIES_INTRADAY", interval="1min")]) as server:
        result = _bars(server, clock, CSV_Q, datatype="csv")
        months = [r.params["month"] for r in server.requests]
        params = server.requests[0].params
    assert months == ["2020-11", "2020-12"]
    assert params["outputsize"] == "full"
    assert params["adjusted"] == "false"  # raw intraday prices
    assert params["extended_hours"] == "false"
    assert result.table.num_rows == len(expected_csv(shared_data, regular_only=True))


def test_intraday_compact_answer_cut_before_the_window_is_incomplete(shared_data: Path) -> None:
    clock = ManualClock(INTRADAY_NOW)
    q = BarsQuery("MSFT", "5m", us("2019-08-01 13:30"), us("2019-08-02 20:00"), MSFT)
    with ReplayServer([route(shared_data, FIVE_MIN, function="TIME_SERIES_INTRADAY")]) as server, \
            pytest.raises(IncompleteData):
        _bars(server, clock, q)


def test_answer_for_another_symbol_is_a_response_error(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    q = BarsQuery("AAPL", "1d", us("2019-06-03"), us("2019-08-03"))
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server, \
            pytest.raises(ProviderResponseError, match="MSFT"):
        _bars(server, clock, q)


def test_429_with_retry_after_is_waited_then_succeeds(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        server.fault("TIME_SERIES_DAILY_ADJUSTED:" + DAILY.name, Fault.rate_limited(7))
        result = _bars(server, clock, DAILY_Q)
        assert [r.status for r in server.requests] == [429, 200]
    assert result.table.num_rows > 0
    assert clock.sleeps
    assert clock.sleeps[0] >= 7


def test_5xx_then_success(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        server.fault("TIME_SERIES_DAILY_ADJUSTED:" + DAILY.name, Fault.server_error(503, times=2))
        result = _bars(server, clock, DAILY_Q)
        assert [r.status for r in server.requests] == [503, 503, 200]
    assert result.table.num_rows > 0


def test_malformed_json_is_a_response_error(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        server.fault("TIME_SERIES_DAILY_ADJUSTED:" + DAILY.name, Fault.malformed())
        with pytest.raises(ProviderResponseError, match="malformed JSON"):
            _bars(server, clock, DAILY_Q)


@pytest.mark.parametrize(("body", "cls"), [
    ({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."},
     RateLimited),
    ({"Information": "This is a premium endpoint."}, UnsupportedRequest),
    ({"Error Message": "the parameter apikey is invalid or missing."}, AuthenticationFailed),
    ({"Error Message": "Invalid API call. Please retry or visit the documentation."}, SymbolNotFound),
])
def test_http_200_error_notes_become_typed_errors(body: dict[str, str], cls: type[Exception]) -> None:
    clock = ManualClock(DAILY_NOW)
    with ReplayServer([Route("/query", Canned.json(body))]) as server, pytest.raises(cls) as info:
        _bars(server, clock, DAILY_Q)
    assert KEY not in str(info.value)
    if cls is RateLimited:
        assert info.value.retry_after == 60.0  # type: ignore[attr-defined]


def test_rejected_key_is_authentication_failed_and_never_shown(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        server.fault("TIME_SERIES_DAILY_ADJUSTED:" + DAILY.name, Fault.auth_failure(401))
        with pytest.raises(AuthenticationFailed) as info:
            _bars(server, clock, DAILY_Q)
    assert KEY not in str(info.value)
    assert "url=http://127.0.0.1" in str(info.value)  # the key is added at the transport, never shown


def test_missing_key_fails_before_any_request(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        with pytest.raises(AuthenticationFailed):
            _bars(server, clock, DAILY_Q, key=None)
        assert server.requests == []


def test_crypto_and_hour_bars_are_unsupported() -> None:
    clock = ManualClock(DAILY_NOW)
    p = make("http://127.0.0.1:9", clock.clock)
    with pytest.raises(UnsupportedRequest):
        asyncio.run(p.bars(BarsQuery("BTC/USD", "1d", us("2020-01-01"), us("2020-01-05"),
                                     Instrument("BTC/USD", AssetClass.CRYPTO, calendar="24/7"))))
    with pytest.raises(UnsupportedRequest):
        asyncio.run(p.bars(BarsQuery("MSFT", "1h", us("2020-01-02"), us("2020-01-03"), MSFT)))


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        make("http://127.0.0.1:9", ManualClock(0).clock, label="middle")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        make("http://127.0.0.1:9", ManualClock(0).clock, datatype="xml")  # type: ignore[arg-type]


def test_from_env_reads_base_url_key_and_options() -> None:
    env = {"TICKVAULT_ALPHA_VANTAGE_BASE_URL": "http://127.0.0.1:1", "TICKVAULT_ALPHA_VANTAGE_API_KEY": "k",
           "TICKVAULT_ALPHA_VANTAGE_LABEL": "open", "TICKVAULT_ALPHA_VANTAGE_EXTENDED_HOURS": "true"}
    p = AlphaVantageProvider.from_env(env)
    assert p.settings.base_url == "http://127.0.0.1:1"
    assert p.settings.has_credentials
    assert "k" not in repr(p.settings.api_key)


def test_corporate_actions_and_fundamentals_over_http(shared_data: Path) -> None:
    clock = ManualClock(DAILY_NOW)
    routes = [route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED"),
              route(shared_data, OVERVIEW, function="OVERVIEW"),
              route(shared_data, INCOME, function="INCOME_STATEMENT")]
    with ReplayServer(routes) as server:
        p = make(server.base_url, clock.clock)
        actions = asyncio.run(p.corporate_actions("MSFT", us("2019-01-01"), us("2019-12-31"), MSFT))
        fundamentals = asyncio.run(p.fundamentals("MSFT"))
        assert server.requests[0].params["outputsize"] == "full"
    assert [(str(a.ex_date), a.value, a.provider) for a in actions] == [("2019-05-15", 0.46, "alpha_vantage")]
    assert fundamentals["market_cap"][0] == 114234572800.0
    assert fundamentals["income.revenue"][1].startswith("alpha_vantage:INCOME_STATEMENT")


def test_timeout_mid_pagination_is_a_provider_timeout(shared_data: Path) -> None:
    clock = ManualClock(CSV_NOW)
    months = ("2020-11", "2020-12")
    routes = [route(shared_data, EXTENDED_CSV, function="TIME_SERIES_INTRADAY", month=m) for m in months]
    for r, m in zip(routes, months, strict=True):
        r.name = m
    with ReplayServer(routes) as server:
        server.fault("2020-12", Fault.delay(5))
        with pytest.raises(ProviderTimeout):
            _bars(server, clock, CSV_Q, datatype="csv", retries=0, timeout=0.3)
        assert [r.params["month"] for r in server.requests] == ["2020-11", "2020-12"]


def test_empty_month_is_empty_coverage_not_an_error() -> None:
    clock = ManualClock(INTRADAY_NOW)
    body = {"Meta Data": {"2. Symbol": "MSFT", "4. Interval": "5min", "6. Time Zone": "US/Eastern"},
            "Time Series (5min)": {}}
    with ReplayServer([Route("/query", Canned.json(body), note="synthetic: empty month")]) as server:
        result = _bars(server, clock, FIVE_Q)
    assert result.table.num_rows == 0
    assert {iv.state for iv in result.coverage} <= {CoverageState.EMPTY, CoverageState.PROVISIONAL}


def test_a_vendor_echoing_the_key_is_masked() -> None:
    clock = ManualClock(DAILY_NOW)
    body = {"Error Message": f"the parameter apikey={KEY} is invalid or missing."}
    with ReplayServer([Route("/query", Canned.json(body))]) as server, pytest.raises(AuthenticationFailed) as info:
        _bars(server, clock, DAILY_Q)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.__context__)
