"""The ccxt provider over real HTTP: conformance on four exchanges, paging and error paths."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from _crypto_helpers import RECORDINGS, Recording, expected, make, route, us, vendor_rows

from tickvault.errors import (
    AuthenticationFailed,
    ConfigError,
    IncompleteData,
    ProviderError,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UnsupportedRequest,
)
from tickvault.model import AssetClass, CoverageState, Instrument
from tickvault.providers._http import ProviderSettings
from tickvault.providers.base import BarsQuery, BarsResult, Provider
from tickvault.providers.crypto import CcxtProvider
from tickvault.testing.provider_conformance import ConformanceCase, ProviderConformance
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

MIN = 60_000_000


def _case(exchange: str, shared: Path) -> ConformanceCase:
    rec = RECORDINGS[exchange]
    return ConformanceCase(f"ccxt-{exchange}", (route(shared, rec),),
                           lambda url, clock: make(url, clock, exchange), rec.query(), expected(shared, rec),
                           rec.now_us())


class TestCcxtConformance(ProviderConformance):
    """The shared provider contract on the four recorded exchanges."""

    @pytest.fixture(params=sorted(RECORDINGS))
    def case(self, request: pytest.FixtureRequest, shared_data: Path) -> ConformanceCase:
        return _case(request.param, shared_data)


def _bars(server: ReplayServer, rec: Recording, q: BarsQuery | None = None, clock: ManualClock | None = None,
          **options: str) -> BarsResult:
    clock = clock or ManualClock(rec.now_us())
    return asyncio.run(make(server.base_url, clock.clock, rec.exchange, **options).bars(q or rec.query()))


def test_is_a_crypto_provider_named_ccxt() -> None:
    p = CcxtProvider(["kraken", "binance"], markets="static")
    assert isinstance(p, Provider)
    assert p.name == "ccxt"
    assert p.exchanges == ("kraken", "binance")
    assert p.capabilities.asset_classes == frozenset({AssetClass.CRYPTO})
    assert p.capabilities.supports("1w") is not None  # Binance has it (Kraken does not)


def test_request_shapes_per_exchange(shared_data: Path) -> None:
    seen = {}
    for exchange, rec in RECORDINGS.items():
        with ReplayServer([route(shared_data, rec)]) as server:
            _bars(server, rec)
            seen[exchange] = [dict(r.params) for r in server.requests]
    assert seen["binance"] == [{"symbol": "LTCBTC", "interval": "1w", "limit": "1000", "startTime": "1499040000000"}]
    assert seen["kraken"] == [{"pair": "XBTUSDT", "interval": "1", "since": str(us("2025-11-10 12:16") // 10**6)}]
    assert seen["okx"][0]["instId"] == "BTC-USDT"
    assert seen["coinbase"][0]["granularity"] == "ONE_HOUR"


def test_kraken_no_trade_minutes_are_empty_coverage(shared_data: Path) -> None:
    rec = RECORDINGS["kraken"]
    with ReplayServer([route(shared_data, rec)]) as server:
        result = _bars(server, rec)
    empty_minutes = sum((iv.end_us - iv.start_us) // MIN for iv in result.coverage if iv.state == CoverageState.EMPTY)
    final_minutes = sum((iv.end_us - iv.start_us) // MIN for iv in result.coverage if iv.state == CoverageState.FINAL)
    assert result.table.num_rows == 505
    # 216 flat zero-volume rows: 215 settled minutes are empty; the 00:17 one is still forming,
    # so it stays provisional (a trade may yet land in it).
    assert empty_minutes == 215
    assert final_minutes + empty_minutes == 720  # 12:17 .. 00:16 settled
    assert result.coverage[-1].state == CoverageState.PROVISIONAL
    assert set(result.table.column("provider").cast(pa.string()).to_pylist()) == {"ccxt:kraken"}


def test_kraken_window_older_than_its_history_is_refused_up_front(shared_data: Path) -> None:
    rec = RECORDINGS["kraken"]
    q = BarsQuery(rec.symbol, "1m", us("2025-11-09"), us("2025-11-10"), rec.instrument())
    with ReplayServer([route(shared_data, rec)]) as server:
        with pytest.raises(UnsupportedRequest, match="720"):
            _bars(server, rec, q)
        assert server.requests == []


def _klines(rows: list[tuple[int, float, float, float, float, float]]) -> list[list[Any]]:
    """Derived: Kraken's recorded minutes re-spelled as Binance klines (values unchanged)."""
    return [[r[0] // 1000, str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[0] // 1000 + 59_999, "0", 0,
             "0", "0", "0"] for r in rows]


def _paged_routes(rows: list[Any], cuts: list[int]) -> list[Route]:
    """One route per page, matched by the ``startTime`` the adapter must send for it."""
    routes = []
    bounds = [0, *cuts, len(rows)]
    for a, b in itertools.pairwise(bounds):
        routes.append(Route("/api/v3/klines", Canned.json(_klines(rows[a:b])), {"startTime": str(rows[a][0] // 1000)},
                            name=f"page@{a}", note="derived: recorded Kraken minutes as klines"))
    return routes


def test_binance_pages_by_since_and_limit_to_the_complete_range(shared_data: Path) -> None:
    rows = vendor_rows(shared_data, RECORDINGS["kraken"])[:720]
    inst = Instrument("BTC/USDT", AssetClass.CRYPTO, exchange="binance", calendar="24/7")
    q = BarsQuery("BTC/USDT", "1m", rows[0][0], rows[-1][0] + MIN, inst)
    rec = RECORDINGS["binance"]
    clock = ManualClock(us("2025-11-12"))
    with ReplayServer(_paged_routes(rows, [200, 400, 600])) as server:
        result = _bars(server, rec, q, clock, page_limit="200")
        assert [r.params["limit"] for r in server.requests] == ["200"] * 4
        assert all(r.route is not None for r in server.requests)
    traded = [r for r in rows if not (r[5] == 0 and r[1] == r[2] == r[3] == r[4])]
    assert result.table.num_rows == len(traded)  # no-trade rows are empty coverage, not bars
    covered = sum(iv.end_us - iv.start_us for iv in result.coverage)
    assert covered == 720 * MIN


def test_a_short_page_costs_one_more_request_never_a_short_range(shared_data: Path) -> None:
    rows = vendor_rows(shared_data, RECORDINGS["kraken"])[:720]
    inst = Instrument("BTC/USDT", AssetClass.CRYPTO, exchange="binance", calendar="24/7")
    q = BarsQuery("BTC/USDT", "1m", rows[0][0], rows[-1][0] + MIN, inst)
    clock = ManualClock(us("2025-11-12"))
    # page 1 stops after 150 of the 200 candles asked for (a truncated page)
    with ReplayServer(_paged_routes(rows, [150, 350, 550])) as server:
        result = _bars(server, RECORDINGS["binance"], q, clock, page_limit="200")
        starts = [int(r.params["startTime"]) * 1000 for r in server.requests]
    assert starts == [rows[0][0], rows[150][0], rows[350][0], rows[550][0]]
    ts = np.asarray(result.table.column("ts").cast(pa.int64()).to_numpy())
    traded = [r[0] for r in rows if not (r[5] == 0 and r[1] == r[2] == r[3] == r[4])]
    np.testing.assert_array_equal(ts, traded)


def test_an_exchange_that_ignores_since_is_incomplete(shared_data: Path) -> None:
    rows = vendor_rows(shared_data, RECORDINGS["kraken"])[:720]
    inst = Instrument("BTC/USDT", AssetClass.CRYPTO, exchange="binance", calendar="24/7")
    q = BarsQuery("BTC/USDT", "1m", rows[0][0], rows[-1][0] + MIN, inst)
    stale = Route("/api/v3/klines", Canned.json(_klines(rows[:200])), note="derived: first page for every request")
    with ReplayServer([stale]) as server, pytest.raises(IncompleteData, match="before the requested start"):
        _bars(server, RECORDINGS["binance"], q, ManualClock(us("2025-11-12")), page_limit="200")


def test_429_with_retry_after_then_success(shared_data: Path) -> None:
    rec = RECORDINGS["binance"]
    clock = ManualClock(rec.now_us())
    with ReplayServer([route(shared_data, rec)]) as server:
        server.fault("binance", Fault.rate_limited(4))
        result = _bars(server, rec, clock=clock)
        assert [r.status for r in server.requests] == [429, 200]
    assert result.table.num_rows == 1
    assert clock.sleeps[0] >= 4


def test_5xx_then_success(shared_data: Path) -> None:
    rec = RECORDINGS["okx"]
    with ReplayServer([route(shared_data, rec)]) as server:
        server.fault("okx", Fault.server_error(503, times=2))
        assert _bars(server, rec).table.num_rows == 2
        assert [r.status for r in server.requests] == [503, 503, 200]


def test_persistent_5xx_is_unavailable(shared_data: Path) -> None:
    rec = RECORDINGS["coinbase"]
    with ReplayServer([route(shared_data, rec)]) as server:
        server.fault("coinbase", Fault.server_error(502, times=10))
        with pytest.raises(ProviderUnavailable):
            _bars(server, rec)
        assert len(server.requests) == 3  # max_retries=2


@pytest.mark.parametrize("exchange", sorted(RECORDINGS))
def test_malformed_and_truncated_bodies_are_typed_errors(shared_data: Path, exchange: str) -> None:
    rec = RECORDINGS[exchange]
    with ReplayServer([route(shared_data, rec)]) as server:
        server.fault(exchange, Fault.malformed(), Fault.truncated(0.5))
        for _ in range(2):
            with pytest.raises((ProviderResponseError, IncompleteData)):
                _bars(server, rec)


def test_rejected_credentials_are_authentication_failed(shared_data: Path) -> None:
    rec = RECORDINGS["kraken"]
    with ReplayServer([route(shared_data, rec)]) as server:
        server.fault("kraken", Fault.auth_failure(401))
        with pytest.raises(AuthenticationFailed):
            _bars(server, rec)


def test_kraken_error_array_is_typed(shared_data: Path) -> None:
    rec = RECORDINGS["kraken"]
    with ReplayServer([route(shared_data, rec, {"error": ["EQuery:Unknown asset pair"]})]) as server, \
            pytest.raises(ProviderError) as info:
        _bars(server, rec)
    assert not isinstance(info.value, RateLimited)


def test_query_goes_to_the_instruments_exchange(shared_data: Path) -> None:
    rec = RECORDINGS["okx"]
    with ReplayServer([route(shared_data, rec)]) as server:
        settings = {e: ProviderSettings(f"ccxt_{e}", server.base_url, rate_limit_per_minute=None)
                    for e in ("binance", "okx")}
        p = CcxtProvider(["binance", "okx"], settings=settings, markets="static",
                         clock=ManualClock(rec.now_us()).clock)
        result = asyncio.run(p.bars(rec.query()))
        assert result.table.column("provider").cast(pa.string()).to_pylist() == ["ccxt:okx"] * 2
        other = BarsQuery(rec.symbol, "1m", rec.query().start_us, rec.query().end_us,
                          Instrument(rec.symbol, AssetClass.CRYPTO, exchange="kraken", calendar="24/7"))
        with pytest.raises(UnsupportedRequest, match="not configured"):
            asyncio.run(p.bars(other))


def test_unsupported_requests_send_nothing() -> None:
    p = CcxtProvider(["kraken"], markets="static", clock=ManualClock(us("2025-01-01")).clock)
    with pytest.raises(UnsupportedRequest, match="native 1w"):
        asyncio.run(p.bars(BarsQuery("BTC/USD", "1w", us("2024-12-02"), us("2024-12-09"))))
    with pytest.raises(UnsupportedRequest, match="crypto"):
        asyncio.run(p.bars(BarsQuery("AAPL", "1d", us("2024-12-02"), us("2024-12-09"))))


def test_market_download_failure_is_typed(shared_data: Path) -> None:
    rec = RECORDINGS["binance"]
    with ReplayServer([route(shared_data, rec)]) as server:  # no exchangeInfo recorded: 404
        settings = {"binance": ProviderSettings("ccxt_binance", server.base_url, max_retries=0,
                                                rate_limit_per_minute=None)}
        p = CcxtProvider(["binance"], settings=settings, markets="exchange", clock=ManualClock(rec.now_us()).clock)
        with pytest.raises(ProviderError):
            asyncio.run(p.bars(rec.query()))
        assert server.requests[0].path.endswith("/exchangeInfo")


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        CcxtProvider([], markets="static")
    with pytest.raises(ConfigError):
        CcxtProvider(["binance"], markets="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        CcxtProvider(["binance"], settings={"binance": ProviderSettings("ccxt_binance", "http://127.0.0.1:1",
                                                                        options={"page_limit": "5000"})})


def test_from_env_reads_per_exchange_settings() -> None:
    env = {"TICKVAULT_CCXT_KRAKEN_BASE_URL": "http://127.0.0.1:5", "TICKVAULT_CCXT_KRAKEN_PAGE_LIMIT": "100"}
    p = CcxtProvider.from_env(env, ["kraken", "okx"], markets="static")
    assert p.exchanges == ("kraken", "okx")
    assert "kraken" in repr(p)


def test_recorded_payloads_are_what_the_helpers_read(shared_data: Path) -> None:
    data = json.loads((shared_data / "provider-payloads/nautilus_trader/kraken_spot_http_ohlc.json").read_text())
    assert len(data["result"]["XBTUSDT"]) == 721


def test_timeout_mid_pagination_is_a_provider_timeout(shared_data: Path) -> None:
    rows = vendor_rows(shared_data, RECORDINGS["kraken"])[:720]
    inst = Instrument("BTC/USDT", AssetClass.CRYPTO, exchange="binance", calendar="24/7")
    q = BarsQuery("BTC/USDT", "1m", rows[0][0], rows[-1][0] + MIN, inst)
    routes = _paged_routes(rows, [200, 400, 600])
    with ReplayServer(routes) as server:
        server.fault(routes[1].name, Fault.delay(5))
        settings = {"binance": ProviderSettings("ccxt_binance", server.base_url, timeout=0.3, max_retries=0,
                                                rate_limit_per_minute=None, options={"page_limit": "200"})}
        p = CcxtProvider(["binance"], settings=settings, markets="static", clock=ManualClock(us("2025-11-12")).clock)
        with pytest.raises(ProviderTimeout):
            asyncio.run(p.bars(q))
        assert len(server.requests) == 2


def test_empty_answer_is_empty_coverage(shared_data: Path) -> None:
    rec = RECORDINGS["binance"]
    with ReplayServer([Route(rec.path, Canned.json([]), name="binance", note="synthetic: no candles")]) as server:
        result = _bars(server, rec)
    assert result.table.num_rows == 0
    assert [iv.state for iv in result.coverage] == [CoverageState.EMPTY]
