"""Yahoo fundamentals: the pure transform on every recording, the adapter over HTTP with the
cookie + crumb handshake, its error paths, and fuzzing."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _yahoo_helpers import FOLDER, provider
from hypothesis import HealthCheck, given, settings

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    ProviderResponseError,
    ProviderUnavailable,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.model import AssetClass, Instrument
from tickvault.providers._http import ProviderSettings
from tickvault.providers.base import DataKind, Fundamentals, FundamentalsProvider
from tickvault.providers.yahoo import YahooProvider, quote_summary, series_types, timeseries
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

MODULE_FILES = {m: f"quoteSummary-{m}-AAPL.json" for m in ("price", "summaryDetail", "defaultKeyStatistics",
                                                           "calendarEvents")}
SERIES_FILE = "fundamentalsTimeSeries-AAPL-financials-annual.json"
CRUMB = "haT3oykhHqZ"  # the crumb in the recorded quoteSummary URLs
SUMMARY_PATH = "/v10/finance/quoteSummary/AAPL"
SERIES_PATH = "/ws/fundamentals-timeseries/v1/finance/timeseries/AAPL"
INVALID_CRUMB = {"finance": {"result": None, "error": {"code": "Unauthorized", "description": "Invalid Crumb"}}}


def recorded(shared: Path, name: str) -> Any:
    return json.loads((shared / FOLDER / name).read_text())["response"]["bodyJson"]


def merged_summary(shared: Path) -> dict[str, Any]:
    """Derived: the four recorded one-module answers as one ``modules=a,b,c,d`` answer (Yahoo
    answers every module asked for in one ``result`` object)."""
    result: dict[str, Any] = {}
    for name in MODULE_FILES.values():
        result.update(recorded(shared, name)["quoteSummary"]["result"][0])
    return {"quoteSummary": {"result": [result], "error": None}}


def routes(shared: Path) -> list[Route]:
    """Cookie page, getcrumb, quoteSummary (crumb checked like Yahoo does) and the recorded series."""
    cookie = Canned(404, b"", {"Set-Cookie": "A3=d=replayed-session; Path=/; HttpOnly", "Content-Type": "text/html"})
    return [
        Route("/cookie", cookie, note="derived: fc.yahoo.com answers 404 with the A3 cookie"),
        Route("/v1/test/getcrumb", Canned(200, CRUMB.encode(), {"Content-Type": "text/plain"}),
              note="derived: the crumb of the recorded URLs"),
        Route(SUMMARY_PATH, Canned.json(merged_summary(shared)), {"crumb": CRUMB}, name="summary",
              note="derived: recorded modules merged"),
        Route(SUMMARY_PATH, Canned.json(INVALID_CRUMB, status=401), name="summary#no-crumb",
              note="derived: Yahoo's answer without a valid crumb"),
        Route(SERIES_PATH, Canned.json(recorded(shared, SERIES_FILE)), name="series", note=f"recorded: {SERIES_FILE}"),
    ]


def yahoo(server: ReplayServer, clock: ManualClock, **options: str) -> YahooProvider:
    p = provider(server.base_url, clock.clock)
    opts = {"cookie_url": "/cookie", **options}
    return YahooProvider(p.settings.with_changes(options=opts), clock=clock.clock)


def fetch(p: YahooProvider, symbol: str = "AAPL", instrument: Instrument | None = None) -> Fundamentals:
    return asyncio.run(p.fundamentals(symbol, instrument))


# -- the pure transform on each recording ---------------------------------------------------

PRICE = "yahoo:quoteSummary/price"
DETAIL = "yahoo:quoteSummary/summaryDetail"
STATS = "yahoo:quoteSummary/defaultKeyStatistics"
EVENTS = "yahoo:quoteSummary/calendarEvents"

#: Values read off the recordings by hand (epoch dates converted with `date -u -d @...`).
EXPECTED: dict[str, Fundamentals] = {
    "price": {"name": ("Apple Inc.", PRICE), "exchange": ("NasdaqGS", PRICE), "currency": ("USD", PRICE),
              "asset_type": ("EQUITY", PRICE), "market_cap": (3688676720640.0, PRICE)},
    "summaryDetail": {
        "market_cap": (3688676720640.0, DETAIL), "pe_ratio": (38.91442, DETAIL), "trailing_pe": (38.91442, DETAIL),
        "forward_pe": (29.548735, DETAIL), "dividend_per_share": (1.0, DETAIL), "dividend_yield": (0.0041, DETAIL),
        "payout_ratio": (0.1571, DETAIL), "beta": (1.2, DETAIL), "week52_high": (260.1, DETAIL),
        "week52_low": (164.08, DETAIL), "ps_ratio": (9.320489, DETAIL), "average_volume": (50792552.0, DETAIL),
        "ex_dividend_date": ("2025-02-10", DETAIL), "currency": ("USD", DETAIL)},
    "defaultKeyStatistics": {
        "enterprise_value": (3731694026752.0, STATS), "forward_pe": (29.80388, STATS),
        "profit_margin": (0.24295, STATS), "shares_outstanding": (15022100480.0, STATS),
        "float_shares": (14998187904.0, STATS), "book_value_per_share": (4.438, STATS), "pb_ratio": (55.328976, STATS),
        "eps": (6.31, STATS), "forward_eps": (8.31, STATS), "beta": (1.2, STATS), "ev_to_revenue": (9.429, STATS),
        "ev_to_ebitda": (27.169, STATS), "last_split_factor": ("4:1", STATS), "last_split_date": ("2020-08-31", STATS),
        "fiscal_year_end": ("September", STATS), "latest_quarter": ("2024-12-28", STATS)},
    "calendarEvents": {"ex_dividend_date": ("2025-02-10", EVENTS), "dividend_date": ("2025-02-13", EVENTS),
                       "next_earnings_date": ("2025-04-30", EVENTS)},
}


@pytest.mark.parametrize("module", sorted(MODULE_FILES))
def test_each_quote_summary_module_is_reproduced(shared_data: Path, module: str) -> None:
    assert quote_summary(recorded(shared_data, MODULE_FILES[module]), vendor="AAPL") == EXPECTED[module]


def test_merged_modules_take_the_first_module_that_has_a_field(shared_data: Path) -> None:
    out = quote_summary(merged_summary(shared_data), vendor="AAPL")
    assert out["market_cap"] == (3688676720640.0, PRICE)
    assert out["forward_pe"] == (29.548735, DETAIL)  # defaultKeyStatistics says 29.80388
    assert out["ex_dividend_date"] == ("2025-02-10", DETAIL)
    assert out["shares_outstanding"] == (15022100480.0, STATS)
    assert set(out) == set().union(*(set(e) for e in EXPECTED.values()))


def test_formatted_numbers_and_undefined_ratios(shared_data: Path) -> None:
    body = recorded(shared_data, MODULE_FILES["summaryDetail"])
    detail = body["quoteSummary"]["result"][0]["summaryDetail"]
    detail["marketCap"] = {"raw": 3688676720640, "fmt": "3.69T"}  # formatted=true spelling
    detail["trailingPE"] = "Infinity"  # Yahoo's undefined P/E
    detail["forwardPE"] = {}  # formatted=true without a value
    out = quote_summary(body)
    assert out["market_cap"] == (3688676720640.0, DETAIL)
    assert "pe_ratio" not in out
    assert "trailing_pe" not in out
    assert "forward_pe" not in out


def test_an_answer_about_another_symbol_is_garbage(shared_data: Path) -> None:
    with pytest.raises(ProviderResponseError, match="MSFT"):
        quote_summary(recorded(shared_data, MODULE_FILES["price"]), vendor="MSFT")


def test_timeseries_gives_the_newest_fiscal_year(shared_data: Path) -> None:
    body = recorded(shared_data, SERIES_FILE)
    out = timeseries(body)
    # independent expectation: every mapped annual line at its newest asOfDate, straight from the JSON
    lines = {"TotalRevenue": "revenue", "CostOfRevenue": "cost_of_revenue", "GrossProfit": "gross_profit",
             "OperatingIncome": "operating_income", "OperatingExpense": "operating_expense",
             "NetIncome": "net_income", "EBIT": "ebit", "EBITDA": "ebitda", "ResearchAndDevelopment":
             "research_development", "SellingGeneralAndAdministration": "sga", "TaxProvision": "income_tax",
             "PretaxIncome": "pretax_income", "BasicEPS": "eps", "DilutedEPS": "eps_diluted"}
    source = "yahoo:fundamentals-timeseries:annual:2024-09-30"
    expected: Fundamentals = {"income.period_end": ("2024-09-30", source), "income.currency": ("USD", source)}
    for series in body["timeseries"]["result"]:
        t = series["meta"]["type"][0]
        if t.startswith("annual") and t[6:] in lines:
            newest = [e for e in series[t] if e and e["asOfDate"] == "2024-09-30"]
            expected[f"income.{lines[t[6:]]}"] = (float(newest[0]["reportedValue"]["raw"]), source)
    assert out == expected
    assert out["income.revenue"] == (391035000000.0, source)
    assert out["income.eps_diluted"] == (6.08, source)
    # interest expense stops at fiscal 2023 in the recording: left out, not mixed into 2024
    assert "income.interest_expense" not in out


def test_timeseries_groups_and_periods_are_kept_apart() -> None:
    def series(t: str, date: str, raw: float) -> dict[str, Any]:
        return {"meta": {"symbol": ["X"], "type": [t]}, "timestamp": [0],
                t: [None, {"asOfDate": date, "periodType": "3M", "currencyCode": "EUR", "reportedValue": {"raw": raw}}]}

    body = {"timeseries": {"error": None, "result": [
        series("quarterlyTotalRevenue", "2024-12-31", 10.0), series("annualTotalAssets", "2024-06-30", 5.0),
        series("trailingEBITDA", "2024-12-31", 7.0), series("annualUnknownLine", "2024-12-31", 1.0),
        {"meta": {"symbol": ["X"], "type": ["annualTotalRevenue"]}},  # asked for, no data
    ]}}
    out = timeseries(body)
    assert out["income_q.revenue"] == (10.0, "yahoo:fundamentals-timeseries:quarterly:2024-12-31")
    assert out["income_q.currency"][0] == "EUR"
    assert out["balance.total_assets"] == (5.0, "yahoo:fundamentals-timeseries:annual:2024-06-30")
    assert out["ebitda"] == (7.0, "yahoo:fundamentals-timeseries:trailing:2024-12-31")
    assert not any(k.startswith("income.") for k in out)


def test_series_types_cover_every_period() -> None:
    types = series_types()
    assert "annualTotalRevenue" in types
    assert "quarterlyDilutedEPS" in types
    assert "trailingTotalRevenue" in types
    assert len(types) == len(set(types))


# -- the adapter over HTTP -------------------------------------------------------------------


def test_declares_and_implements_fundamentals() -> None:
    p = YahooProvider()
    assert DataKind.FUNDAMENTALS in p.capabilities.kinds
    assert isinstance(p, FundamentalsProvider)


def test_fetched_over_http_with_the_crumb_handshake(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        out = fetch(yahoo(server, clock))
        reqs = server.requests
    assert [r.route for r in reqs] == ["/cookie", "/v1/test/getcrumb", "summary", "series"]
    getcrumb, summary, series = reqs[1:]
    assert getcrumb.headers["cookie"] == "A3=d=replayed-session"
    assert summary.headers["cookie"] == "A3=d=replayed-session"
    assert summary.params["modules"] == "price,summaryDetail,defaultKeyStatistics,calendarEvents"
    assert summary.params["formatted"] == "false"
    assert series.params["type"].split(",") == series_types()
    assert int(series.params["period2"]) == clock.now_us() // 1_000_000
    assert series.params["crumb"] == CRUMB
    assert out["market_cap"] == (3688676720640.0, PRICE)
    assert out["shares_outstanding"] == (15022100480.0, STATS)
    assert out["income.revenue"] == (391035000000.0, "yahoo:fundamentals-timeseries:annual:2024-09-30")


def test_the_crumb_is_reused_and_renewed_once_when_rejected(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        p = yahoo(server, clock)
        fetch(p)
        fetch(p)  # same session: no second handshake
        assert [r.route for r in server.requests].count("/v1/test/getcrumb") == 1
        server.fault("summary", Fault.auth_failure(401, body=INVALID_CRUMB))  # the crumb expired
        out = fetch(p)
        assert [r.route for r in server.requests].count("/v1/test/getcrumb") == 2
    assert out["name"] == ("Apple Inc.", PRICE)


def test_a_crumb_rejected_twice_is_authentication_failed(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        server.fault("summary", Fault.auth_failure(401, body=INVALID_CRUMB, times=2))
        with pytest.raises(AuthenticationFailed, match="Invalid Crumb"):
            fetch(yahoo(server, clock))
        assert [r.route for r in server.requests].count("summary") == 2
        assert server.requests_to("series") == []


def test_a_refused_handshake_is_authentication_failed(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        server.fault("/v1/test/getcrumb", Fault.auth_failure(401))
        with pytest.raises(AuthenticationFailed, match="handshake") as info:
            fetch(yahoo(server, clock))
        assert server.requests_to("summary") == []
        assert server.requests_to("summary#no-crumb") == []
    assert "TICKVAULT_YAHOO_CRUMB=off" in str(info.value)


def test_getcrumb_answering_html_is_authentication_failed(shared_data: Path, clock: ManualClock) -> None:
    rs = routes(shared_data)
    rs[1] = Route("/v1/test/getcrumb", Canned(200, b"<html>Too Many Requests</html>", {"Content-Type": "text/html"}))
    with ReplayServer(rs) as server, pytest.raises(AuthenticationFailed, match="no crumb"):
        fetch(yahoo(server, clock))


def test_without_the_cookie_yahoo_rejects_the_crumb(shared_data: Path, clock: ManualClock) -> None:
    rs = routes(shared_data)
    rs[0] = Route("/cookie", Canned(404, b""))  # no Set-Cookie
    rs[1] = Route("/v1/test/getcrumb", Canned(401, b"Unauthorized", {"Content-Type": "text/plain"}))
    with ReplayServer(rs) as server:
        with pytest.raises(AuthenticationFailed, match="handshake"):
            fetch(yahoo(server, clock))
        assert "cookie" not in server.requests[1].headers


def test_crumb_off_sends_no_cookie_and_no_crumb(shared_data: Path, clock: ManualClock) -> None:
    rs = [Route(SUMMARY_PATH, Canned.json(merged_summary(shared_data)), name="summary"),
          Route(SERIES_PATH, Canned.json(recorded(shared_data, SERIES_FILE)), name="series")]
    with ReplayServer(rs) as server:
        out = fetch(yahoo(server, clock, crumb="off"))
        assert [r.route for r in server.requests] == ["summary", "series"]
        assert all("crumb" not in r.params and "cookie" not in r.headers for r in server.requests)
    assert out["pe_ratio"] == (38.91442, DETAIL)


def test_a_cookie_page_server_error_is_retryable(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        server.fault("/cookie", Fault.server_error(503))
        with pytest.raises(ProviderUnavailable, match="cookie page"):
            fetch(yahoo(server, clock))


def test_an_unreachable_cookie_page_is_unavailable(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        p = yahoo(server, clock, cookie_url="http://127.0.0.1:9/")  # discard port: refused
        with pytest.raises(ProviderUnavailable, match="unreachable"):
            fetch(p)


@pytest.mark.parametrize("route", ["summary", "series"])
def test_malformed_json_is_a_response_error(shared_data: Path, clock: ManualClock, route: str) -> None:
    with ReplayServer(routes(shared_data)) as server:
        server.fault(route, Fault.malformed())
        with pytest.raises(ProviderResponseError, match="malformed JSON"):
            fetch(yahoo(server, clock))


def test_unknown_symbol_is_symbol_not_found(shared_data: Path, clock: ManualClock) -> None:
    missing = {"quoteSummary": {"result": None, "error": {"code": "Not Found",
                                                          "description": "Quote not found for symbol: AAPL"}}}
    with ReplayServer(routes(shared_data)) as server:
        server.fault("summary", Fault.status_code(404, body=missing))
        with pytest.raises(SymbolNotFound, match="Quote not found"):
            fetch(yahoo(server, clock))


def test_an_error_body_with_status_200_is_typed_and_stops(shared_data: Path, clock: ManualClock) -> None:
    missing = {"quoteSummary": {"result": None, "error": {"code": "Not Found", "description": "No fundamentals"}}}
    rs = routes(shared_data)
    rs[2] = Route(SUMMARY_PATH, Canned.json(missing), {"crumb": CRUMB}, name="summary")
    with ReplayServer(rs) as server:
        with pytest.raises(SymbolNotFound, match="No fundamentals") as info:
            fetch(yahoo(server, clock))
        assert server.requests_to("series") == []
    assert info.value.symbol == "AAPL"  # type: ignore[attr-defined]


def test_the_crumb_never_shows_in_errors(shared_data: Path, clock: ManualClock) -> None:
    with ReplayServer(routes(shared_data)) as server:
        server.fault("series", Fault.server_error(500, times=10))
        with pytest.raises(ProviderUnavailable) as info:
            fetch(yahoo(server, clock))
    assert CRUMB not in str(info.value)
    assert "replayed-session" not in str(info.value)
    assert "crumb=%2A%2A%2A" in str(info.value) or "crumb=***" in str(info.value)


def test_vendor_spelling_and_unsupported_asset_class(shared_data: Path, clock: ManualClock) -> None:
    body = merged_summary(shared_data)
    body["quoteSummary"]["result"][0]["price"]["symbol"] = "BRK-B"
    rs = [Route("/v10/finance/quoteSummary/BRK-B", Canned.json(body)),
          Route("/ws/fundamentals-timeseries/v1/finance/timeseries/BRK-B", Canned.json({"timeseries": {
              "result": [], "error": None}}))]
    with ReplayServer(rs) as server:
        p = yahoo(server, clock, crumb="off")
        assert fetch(p, "BRK.B")["name"] == ("Apple Inc.", PRICE)  # the body is AAPL's, relabelled
        with pytest.raises(UnsupportedRequest):
            fetch(p, "WIDGET", Instrument("WIDGET", AssetClass.OTHER))
        assert len(server.requests) == 2


def test_crumb_options_are_validated() -> None:
    base = ProviderSettings("yahoo", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="TICKVAULT_YAHOO_CRUMB"):
        YahooProvider(base.with_changes(options={"crumb": "sometimes"}))
    with pytest.raises(ConfigError, match="COOKIE_URL"):
        YahooProvider(base.with_changes(options={"cookie_url": "ftp://example.com"}))
    env = {"TICKVAULT_YAHOO_BASE_URL": "http://127.0.0.1:1", "TICKVAULT_YAHOO_CRUMB": "OFF",
           "TICKVAULT_YAHOO_COOKIE_URL": "/c"}
    p = YahooProvider.from_env(env)
    assert p.settings.options == {"crumb": "OFF", "cookie_url": "/c"}
    assert "crumb=none" in repr(p._crumbs)
    assert "'off'" in repr(p._crumbs)


# -- fuzz -------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [*sorted(MODULE_FILES.values()), "merged"])
def test_quote_summary_survives_mutated_payloads(shared_data: Path, name: str) -> None:
    original = merged_summary(shared_data) if name == "merged" else recorded(shared_data, name)

    @settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(payload=mutated_payloads(original))
    def check(payload: Any) -> None:
        assert_typed_failure(lambda: quote_summary(copy.deepcopy(payload), vendor="AAPL"))

    check()


@pytest.mark.timeout(120)
def test_timeseries_survives_mutated_payloads(shared_data: Path) -> None:
    original = recorded(shared_data, SERIES_FILE)
    # keep the fuzzed document small enough to mutate the interesting parts often
    original["timeseries"]["result"] = [s for s in original["timeseries"]["result"] if len(s) > 1][:8]

    @settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(payload=mutated_payloads(original))
    def check(payload: Any) -> None:
        assert_typed_failure(lambda: timeseries(payload))

    check()
