"""A key like ``sk-TEST-SECRET-123`` never shows: not in errors, reprs, log records or URLs.

Every error path of the shared client is provoked through the real Polygon and Alpaca
adapters (key in headers) and through a client that must send its key as a query parameter
(Alpha Vantage / FMP style), with every logger captured at DEBUG (httpx's own included).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from tickvault.errors import TickvaultError
from tickvault.model import Timeframe
from tickvault.providers._http import Auth, CircuitBreaker, HttpClient, ProviderSettings
from tickvault.providers.alpaca import AlpacaProvider
from tickvault.providers.base import BarsQuery
from tickvault.providers.polygon import PolygonProvider
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

KEY = "sk-TEST-SECRET-123"
SECRET = "sk-TEST-OTHER-SECRET-456"
DAY = 86_400_000_000
START = 1_643_673_600_000_000  # 2022-02-01

POLYGON_PATH = "/v2/aggs/ticker/AAPL/range/1/day/2022-02-01/2022-02-02"
ALPACA_PATH = "/v2/stocks/bars"
GOOD_POLYGON = {"ticker": "AAPL", "status": "OK", "adjusted": False, "resultsCount": 1,
                "results": [{"t": 1_643_691_600_000, "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10}]}
GOOD_ALPACA = {"bars": {"AAPL": [{"t": "2022-02-01T05:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10}]},
               "next_page_token": None}

FAULTS: dict[str, Callable[[], list[Fault]]] = {
    "429-long-retry-after": lambda: [Fault.rate_limited(9999)],
    "429-forever": lambda: [Fault.rate_limited(1, times=9)],
    "5xx-forever": lambda: [Fault.server_error(503, times=9)],
    "timeout-forever": lambda: [Fault.delay(5, times=9)],
    "malformed-json": lambda: [Fault.malformed()],
    "truncated": lambda: [Fault.truncated(0.5)],
    "disconnect-forever": lambda: [Fault.disconnect(times=9)],
    "401": lambda: [Fault.auth_failure(401, body={"message": "invalid key"})],
    "403": lambda: [Fault.auth_failure(403, body={"message": "forbidden"})],
    "404": lambda: [Fault.status_code(404)],
    "422": lambda: [Fault.status_code(422, body={"message": "bad request"})],
    "vendor-echoes-key": lambda: [Fault.status_code(401, body={"error": f"unknown API key {KEY}"})],
    "bad-payload": lambda: [Fault.status_code(200, body={"status": "ERROR", "error": f"key {KEY} invalid",
                                                         "bars": 5, "results": "x"})],
}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # root, so httpx/httpcore records are captured too
    for name in ("httpx", "httpcore", "tickvault"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def assert_hidden(*texts: object) -> None:
    for t in texts:
        s = str(t)
        assert KEY not in s
        assert SECRET not in s
        assert "sk-TEST" not in s


def chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def check_error_and_logs(exc: TickvaultError, logs: pytest.LogCaptureFixture) -> None:
    for e in chain(exc):
        assert_hidden(str(e), repr(e), e.args)
        if isinstance(e, TickvaultError):
            assert_hidden(*e.context.values())
    for rec in logs.records:
        assert_hidden(rec.getMessage(), rec.args, rec.msg)


def polygon(base_url: str, clock: ManualClock) -> PolygonProvider:
    settings = ProviderSettings("polygon", base_url, api_key=SecretStr(KEY), timeout=0.2, max_retries=1)
    return PolygonProvider(settings, clock=clock.clock)


def alpaca(base_url: str, clock: ManualClock) -> AlpacaProvider:
    settings = ProviderSettings("alpaca", base_url, api_key=SecretStr(KEY), api_secret=SecretStr(SECRET),
                                timeout=0.2, max_retries=1)
    return AlpacaProvider(settings, clock=clock.clock, actions=False)


QUERY = BarsQuery("AAPL", "1d", START, START + 2 * DAY)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("which", ["polygon", "alpaca"])
def test_provider_errors_never_show_the_key(which: str, fault: str, clock: ManualClock,
                                            logs: pytest.LogCaptureFixture) -> None:
    path, body = (POLYGON_PATH, GOOD_POLYGON) if which == "polygon" else (ALPACA_PATH, GOOD_ALPACA)
    reference = [Route(p, Canned.json({"status": "OK", "results": []}))
                 for p in ("/v3/reference/splits", "/v3/reference/dividends")]
    with ReplayServer([Route(path, Canned.json(body)), *reference]) as server:
        server.fault(path, *FAULTS[fault]())
        provider = polygon(server.base_url, clock) if which == "polygon" else alpaca(server.base_url, clock)
        assert_hidden(repr(provider), repr(provider.settings), str(provider.settings), repr(provider.settings.api_key))
        with pytest.raises(TickvaultError) as info:
            asyncio.run(provider.bars(QUERY))
        check_error_and_logs(info.value, logs)
        if fault == "bad-payload" and which == "polygon":
            assert "Polygon status ERROR: key *** invalid" in str(info.value)  # vendor text kept, key masked
        # the key did travel, in a header only
        sent = server.requests[0]
        assert KEY in " ".join(sent.headers.values())
        assert all(KEY not in v for r in server.requests for v in r.params.values())
        assert_hidden(*(r.path for r in server.requests))


def test_alpaca_secret_echoed_by_the_vendor_is_masked(clock: ManualClock, logs: pytest.LogCaptureFixture) -> None:
    with ReplayServer([Route(ALPACA_PATH, Canned.json(GOOD_ALPACA))]) as server:
        server.fault(ALPACA_PATH, Fault.status_code(403, body={"message": f"bad pair {KEY}:{SECRET}"}))
        with pytest.raises(TickvaultError) as info:
            asyncio.run(alpaca(server.base_url, clock).bars(QUERY))
        check_error_and_logs(info.value, logs)
        assert SECRET in server.requests[0].headers["apca-api-secret-key"]


def test_connection_refused_and_open_circuit_never_show_the_key(clock: ManualClock,
                                                                logs: pytest.LogCaptureFixture) -> None:
    with ReplayServer() as srv:
        url = srv.base_url
    settings = ProviderSettings("polygon", url, api_key=SecretStr(KEY), timeout=0.2, max_retries=0)
    breaker = CircuitBreaker("polygon", threshold=1, clock=clock.clock)
    provider = PolygonProvider(settings, clock=clock.clock, breaker=breaker)
    for _ in range(2):  # refused, then circuit open
        with pytest.raises(TickvaultError) as info:
            asyncio.run(provider.bars(QUERY))
        check_error_and_logs(info.value, logs)
    assert "circuit open" in str(info.value)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_query_parameter_keys_are_masked_everywhere(fault: str, clock: ManualClock,
                                                    logs: pytest.LogCaptureFixture) -> None:
    """Vendors that only take ``apikey=`` in the URL: it is added below httpx's own logging."""
    with ReplayServer([Route("/query", Canned.json({"ok": 1}))]) as server:
        server.fault("/query", *FAULTS[fault]())
        settings = ProviderSettings("alpha_vantage", server.base_url, api_key=SecretStr(KEY), timeout=0.2,
                                    max_retries=1)
        http = HttpClient(settings, auth=Auth(params={"apikey": SecretStr(KEY)}), clock=clock.clock)
        assert_hidden(repr(http))

        async def go() -> Any:
            async with http.session() as s:
                body = await s.get_json("/query", {"function": "TIME_SERIES_DAILY"})
                raise TickvaultError("unexpected body", body=body)

        with pytest.raises(TickvaultError) as info:
            asyncio.run(go())
        if fault == "bad-payload":  # our own test error carries the body; only the logs are the library's
            check_error_and_logs(TickvaultError("placeholder"), logs)
        else:
            check_error_and_logs(info.value, logs)
        assert server.requests[0].params["apikey"] == KEY  # it did reach the server


def test_redactor_masks_url_encoded_keys_and_secret_looking_params() -> None:
    from tickvault.providers._http import Redactor

    r = Redactor([KEY, "a b/c"])
    assert r.text(f"x {KEY} y") == "x *** y"
    assert r.text("q=a%20b%2Fc") == "q=***"
    assert r.text("q=a+b%2Fc") == "q=***"
    shown = r.url("https://h/p?apiKey=zzz&token=t&symbol=AAPL")
    assert "zzz" not in shown
    assert "symbol=AAPL" in shown
    assert "apiKey=***" in shown
    assert repr(r) == "Redactor(<secrets hidden>)"


def test_timeframes_and_symbols_are_not_masked_by_accident() -> None:
    from tickvault.providers._http import Redactor

    assert Redactor([]).text("AAPL 1d") == "AAPL 1d"
    assert str(Timeframe.parse("1d")) == "1d"
