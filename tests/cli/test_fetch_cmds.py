"""``fetch``, ``providers``, ``fundamentals`` and ``search`` through the real app, with the real
Yahoo adapter pointed at the replay server (recorded chart and quoteSummary payloads) and
the simulator, configured the way users do: ``TICKVAULT_*`` environment variables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tickvault
from tickvault.cli import ExitCode
from tickvault.model import Instrument
from tickvault.testing.replay import Canned, Fault, ReplayServer, Route, yahoo_later_events_route, yahoo_route

from ._util import RunCli, assert_one_line_error

FOLDER = Path("provider-payloads/node-yahoo-finance2")
AAPL_CHART = "chart-AAPL-2020-08-31-to-2020-11-07.json"  # 49 daily bars
CHART_PATH = "/v8/finance/chart/AAPL"
CRUMB = "haT3oykhHqZ"  # the crumb in the recorded quoteSummary URLs
KEY = "pk-live-0123456789abcdef"  # a fake Polygon key that must never be printed


def _recorded(shared: Path, name: str) -> Any:
    return json.loads((shared / FOLDER / name).read_text())["response"]["bodyJson"]


def _routes(shared: Path) -> list[Route]:
    chart = shared / FOLDER / AAPL_CHART
    summary: dict[str, Any] = {}
    for module in ("price", "summaryDetail", "defaultKeyStatistics", "calendarEvents"):
        summary.update(_recorded(shared, f"quoteSummary-{module}-AAPL.json")["quoteSummary"]["result"][0])
    return [
        yahoo_route(chart), yahoo_later_events_route(chart),
        Route("/v8/finance/chart/MSFT", Canned.json({"chart": {"result": None, "error": None}}, status=500),
              name="msft", note="derived: a provider that answers 500 forever"),
        Route("/cookie", Canned(404, b"", {"Set-Cookie": "A3=d=replayed; Path=/"}), note="derived: fc.yahoo.com"),
        Route("/v1/test/getcrumb", Canned(200, CRUMB.encode(), {"Content-Type": "text/plain"})),
        Route("/v10/finance/quoteSummary/AAPL", Canned.json({"quoteSummary": {"result": [summary], "error": None}}),
              {"crumb": CRUMB}, name="summary", note="derived: the four recorded modules merged"),
        Route("/ws/fundamentals-timeseries/v1/finance/timeseries/AAPL",
              Canned.json(_recorded(shared, "fundamentalsTimeSeries-AAPL-financials-annual.json")), name="series"),
    ]


@pytest.fixture
def yahoo(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplayServer]:
    """The replay server, and the environment that makes the CLI's only provider a Yahoo
    adapter pointed at it (no retries, so a failing route fails at once without sleeping)."""
    with ReplayServer(_routes(shared_data)) as server:
        monkeypatch.setenv("TICKVAULT_PROVIDERS", "yahoo")
        monkeypatch.setenv("TICKVAULT_YAHOO_BASE_URL", server.base_url)
        monkeypatch.setenv("TICKVAULT_YAHOO_COOKIE_URL", "/cookie")
        monkeypatch.setenv("TICKVAULT_YAHOO_MAX_RETRIES", "0")
        monkeypatch.setenv("TICKVAULT_YAHOO_RATE_LIMIT", "0")
        yield server


def _fetch(cli: RunCli, home: Path, *symbols: str, extra: tuple[str, ...] = ()) -> Any:
    return cli("fetch", *symbols, "--timeframe", "1d", "--start", "2020-08-31", "--end", "2020-11-06", "--home", home,
               *extra)


def _row(stdout: str, series: str) -> list[str]:
    """The cells of a series' row in the Fetched table."""
    line = next(line for line in stdout.splitlines() if f" {series} " in line)
    return [c.strip() for c in line.strip("│ \n").split("│")]


# -- fetch ------------------------------------------------------------------------------------


def test_fetch_prints_the_table_and_stores_the_bars(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    result = _fetch(cli, home, "AAPL")
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stderr == ""
    # series, received, written, unchanged, quarantined, provider, calls, gaps left
    assert _row(result.stdout, "AAPL 1d") == ["AAPL 1d", "49", "49", "0", "0", "yahoo", "1", "0"]
    assert [r.route for r in yahoo.requests] == [CHART_PATH, f"{CHART_PATH}#later"]
    with tickvault.open(home) as vault:
        df = vault.bars("AAPL", "1d", fetch="never")
        assert vault.missing("AAPL", "1d", "2020-08-31", "2020-11-06") == []
    assert len(df) == 49
    assert df.index[0] == pd.Timestamp("2020-08-31", tz="UTC")
    assert set(df["provider"]) == {"yahoo"}


def test_a_repeated_fetch_makes_no_provider_call(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    assert _fetch(cli, home, "AAPL").exit_code == ExitCode.OK
    sent = len(yahoo.requests)
    result = _fetch(cli, home, "AAPL")
    assert result.exit_code == ExitCode.OK, result.output
    assert len(yahoo.requests) == sent
    assert _row(result.stdout, "AAPL 1d") == ["AAPL 1d", "0", "0", "0", "0", "—", "0", "0"]
    assert "nothing was missing" in result.stdout


def test_refresh_fetches_again_and_changes_nothing(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    assert _fetch(cli, home, "AAPL").exit_code == ExitCode.OK
    result = _fetch(cli, home, "AAPL", extra=("--refresh",))
    assert result.exit_code == ExitCode.OK, result.output
    assert _row(result.stdout, "AAPL 1d") == ["AAPL 1d", "49", "0", "49", "0", "yahoo", "1", "0"]


def test_every_provider_failing_exits_5_with_one_line(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    yahoo.fault(CHART_PATH, Fault.server_error(500, times=100))
    result = _fetch(cli, home, "AAPL")
    assert result.exit_code == ExitCode.PROVIDER, result.output
    line = assert_one_line_error(result.stderr, "every provider failed", "AAPL 1d", "yahoo", "status 500")
    assert "Traceback" not in result.output
    assert "http://" not in line  # the reason, not the request URL
    assert _row(result.stdout, "AAPL 1d")[-1] != "0"  # the gap is in the table ...
    assert "why: yahoo: server error" in result.stdout  # ... with its reason


def test_gaps_left_are_listed_with_why_and_exit_3(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    result = _fetch(cli, home, "AAPL", "MSFT")
    assert result.exit_code == ExitCode.DATA, result.output
    assert_one_line_error(result.stderr, "gaps remain in 1 of 2 series")
    assert _row(result.stdout, "AAPL 1d")[-1] == "0"
    with tickvault.open(home) as vault:
        gaps = vault.missing("MSFT", "1d", "2020-08-31", "2020-11-06")  # one run per week (weekends split them)
    assert len(gaps) == 10
    assert gaps[0] == (pd.Timestamp("2020-08-31", tz="UTC"), pd.Timestamp("2020-09-05", tz="UTC"))
    msft = _row(result.stdout, "MSFT 1d")
    assert msft[1] == "0"  # nothing received
    assert msft[-1] == "10"
    lines = result.stdout.splitlines()
    at = lines.index("MSFT 1d: 10 gap(s) left: [2020-08-31, 2020-09-05), [2020-09-08, 2020-09-12), "
                     "[2020-09-14, 2020-09-19) and 7 more")
    assert lines[at + 1].startswith("  why: yahoo: server error")
    assert "(status 500)" in lines[at + 1]


def test_failover_to_the_next_provider_is_reported(cli: RunCli, home: Path, yahoo: ReplayServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "yahoo,sim")
    yahoo.fault(CHART_PATH, Fault.server_error(503, times=100))
    result = _fetch(cli, home, "AAPL")
    assert result.exit_code == ExitCode.OK, result.output
    row = _row(result.stdout, "AAPL 1d")
    assert row[5] == "sim"
    assert row[6] == "2"
    assert row[-1] == "0"
    assert "fetched after failing over (yahoo: server error" in result.stdout


def test_fetch_only_from_the_named_provider(cli: RunCli, home: Path, yahoo: ReplayServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "yahoo,sim")
    result = _fetch(cli, home, "AAPL", extra=("--provider", "sim"))
    assert result.exit_code == ExitCode.OK, result.output
    assert _row(result.stdout, "AAPL 1d")[5] == "sim"
    assert yahoo.requests == []


def test_an_unconfigured_provider_is_a_usage_error(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    result = _fetch(cli, home, "AAPL", extra=("--provider", "polygon"))
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "'polygon' is not configured", "yahoo")
    assert yahoo.requests == []


def test_bad_symbol_or_dates_change_nothing(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    result = cli("fetch", "AAPL", "../etc", "-t", "1d", "--start", "2020-01-01", "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "invalid symbol")
    result = cli("fetch", "AAPL", "-t", "1d", "--start", "2020-02-01", "--end", "2020-01-01", "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr)
    assert not home.exists()
    assert yahoo.requests == []


def test_without_providers_fetch_says_so(cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "none")
    result = cli("fetch", "AAPL", "-t", "1d", "--start", "2020-08-31", "--end", "2020-09-30", "--home", home)
    assert result.exit_code == ExitCode.PROVIDER
    assert_one_line_error(result.stderr, "no configured provider serves this request")


def test_fetch_with_the_simulator_several_symbols(cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "sim")
    result = cli("fetch", "AAPL", "BTC/USDT", "-t", "1h", "--start", "2024-03-04", "--end", "2024-03-05",
                 "--home", home)
    assert result.exit_code == ExitCode.OK, result.output
    assert _row(result.stdout, "AAPL 1h")[5] == "sim"
    assert _row(result.stdout, "BTC/USDT 1h")[1] == "48"  # 24/7: two days of hours
    with tickvault.open(home) as vault:
        assert len(vault.bars("BTC/USDT", "1h", fetch="never")) == 48


# -- providers --------------------------------------------------------------------------------


def test_providers_lists_them_with_credentials(cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "yahoo,polygon,tiingo")
    monkeypatch.setenv("TICKVAULT_POLYGON_API_KEY", KEY)
    result = cli("providers", "--home", home)
    assert result.exit_code == ExitCode.OK, result.output
    assert KEY not in result.output
    rows = {r[0]: r for r in (_cells(line) for line in result.stdout.splitlines() if line.startswith("│"))}
    assert set(rows) == {"yahoo", "polygon", "tiingo"}
    assert rows["yahoo"][4] == "not needed"
    assert rows["polygon"][4] == "needed, set"
    assert rows["tiingo"][4] == "needed, MISSING"
    assert "fundamentals" in rows["yahoo"][1]
    assert not home.exists()  # listing providers creates no vault


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("│ \n").split("│")]


def test_providers_json(cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "sim,polygon")
    result = cli("providers", "--json", "--home", home)
    assert result.exit_code == ExitCode.OK, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["polygon"]["needs_credentials"] is True
    assert rows["polygon"]["credentials_set"] is False
    assert rows["sim"]["calls"] == 0
    assert rows["sim"]["last_ok"] is None
    assert "1d" in rows["sim"]["timeframes"]


def test_providers_when_none_is_configured(cli: RunCli, home: Path) -> None:
    result = cli("providers", "--home", home)
    assert result.exit_code == ExitCode.OK
    assert "No provider is configured" in result.stdout


# -- fundamentals -----------------------------------------------------------------------------


def test_fundamentals_shows_fields_and_sources(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    result = cli("fundamentals", "AAPL", "--home", home)
    assert result.exit_code == ExitCode.OK, result.output
    rows = {r[0]: r for r in (_cells(line) for line in result.stdout.splitlines() if line.startswith("│"))}
    assert rows["market_cap"] == ["market_cap", "3,688,676,720,640", "yahoo:quoteSummary/price"]
    assert rows["pe_ratio"] == ["pe_ratio", "38.91442", "yahoo:quoteSummary/summaryDetail"]
    assert rows["name"][1] == "Apple Inc."
    assert rows["income.revenue"] == ["income.revenue", "391,035,000,000",
                                      "yahoo:fundamentals-timeseries:annual:2024-09-30"]
    names = list(rows)
    assert names.index("pe_ratio") < names.index("income.revenue")  # profile and ratios first
    assert CRUMB not in result.output


def test_fundamentals_json_is_cached_and_refreshable(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    first = cli("fundamentals", "AAPL", "--format", "json", "--home", home)
    assert first.exit_code == ExitCode.OK, first.output
    data = json.loads(first.stdout)
    assert data["symbol"] == "AAPL"
    assert data["fields"]["shares_outstanding"] == {"value": 15022100480.0,
                                                    "source": "yahoo:quoteSummary/defaultKeyStatistics"}
    sent = len(yahoo.requests_to("summary"))
    again = cli("fundamentals", "AAPL", "-f", "json", "--home", home)
    assert json.loads(again.stdout) == data
    assert len(yahoo.requests_to("summary")) == sent  # served from the vault (TTL 7 days)
    cli("fundamentals", "AAPL", "--refresh", "--home", home)
    assert len(yahoo.requests_to("summary")) == sent + 1


def test_fundamentals_errors_are_one_line(cli: RunCli, home: Path, yahoo: ReplayServer) -> None:
    yahoo.fault("/v1/test/getcrumb", Fault.auth_failure(401))
    result = cli("fundamentals", "AAPL", "--home", home)
    assert result.exit_code == ExitCode.PROVIDER
    assert_one_line_error(result.stderr, "crumb handshake")
    bad = cli("fundamentals", "AAPL", "--format", "xml", "--home", home)
    assert bad.exit_code == ExitCode.USAGE


# -- search -----------------------------------------------------------------------------------


def test_search_finds_brk_b_from_its_yahoo_spelling(cli: RunCli, home: Path) -> None:
    with tickvault.open(home) as vault:
        vault.add_instrument(Instrument("BRK.B", exchange="XNYS", name="Berkshire Hathaway Inc. Class B",
                                        provider_symbols={"yahoo": "BRK-B"}))
        vault.add_instrument(Instrument("BRK.A", exchange="XNYS", name="Berkshire Hathaway Inc. Class A"))
        vault.add_instrument(Instrument("AAPL", exchange="XNAS", name="Apple Inc.", status="delisted"))
    result = cli("search", "brk-b", "--home", home)
    assert result.exit_code == ExitCode.OK, result.output
    rows = [_cells(line) for line in result.stdout.splitlines() if line.startswith("│")]
    assert rows[0] == ["BRK.B", "Berkshire Hathaway Inc. Class B", "equity", "XNYS", "active", "yahoo=BRK-B"]
    by_name = cli("search", "apple", "--json", "--home", home)
    assert [(i["symbol"], i["status"]) for i in json.loads(by_name.stdout)] == [("AAPL", "delisted")]
    nothing = cli("search", "zzzz", "--home", home)
    assert nothing.exit_code == ExitCode.DATA
    assert_one_line_error(nothing.stderr, "no instrument matches 'zzzz'")


# -- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["fetch", "providers", "fundamentals", "search"])
def test_every_command_has_help_with_an_example(cli: RunCli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == ExitCode.OK
    assert "Example:" in result.stdout


def test_retries_show_as_one_line_warnings_without_urls(cli: RunCli, home: Path, yahoo: ReplayServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_YAHOO_MAX_RETRIES", "1")
    yahoo.fault(CHART_PATH, Fault.server_error(502))
    result = _fetch(cli, home, "AAPL")
    assert result.exit_code == ExitCode.OK, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("warning: yahoo: server error")
    assert "retry 1/1" in lines[0]
    assert "url=" not in lines[0]
