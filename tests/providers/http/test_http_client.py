"""The shared HTTP client against a real local server: every outcome of the retry table."""

from __future__ import annotations

import asyncio
import email.utils
from typing import Any

import pytest
from pydantic import SecretStr

from tickvault.errors import (
    AuthenticationFailed,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.providers._http import Auth, CircuitBreaker, HttpClient, ProviderSettings, RetryPolicy
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

BODY = {"ok": True, "rows": [1, 2, 3]}


def client(server: ReplayServer, clock: ManualClock, *, retries: int = 2, timeout: float = 5.0,
           **kw: Any) -> HttpClient:
    settings = ProviderSettings("demo", server.base_url, timeout=timeout, max_retries=retries)
    return HttpClient(settings, clock=clock.clock, retry=RetryPolicy(seed=1), **kw)


def get(http: HttpClient, path: str = "/data", params: dict[str, Any] | None = None) -> Any:
    async def go() -> Any:
        async with http.session() as s:
            return await s.get_json(path, params)

    return asyncio.run(go())


@pytest.fixture
def data_route(server: ReplayServer) -> Route:
    return server.add(Route("/data", Canned.json(BODY)))


def test_success_decodes_json_and_sends_params(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    assert get(client(server, clock), params={"a": 1, "skip": None}) == BODY
    (req,) = server.requests
    assert req.params == {"a": "1"}
    assert clock.sleeps == []


def test_429_is_retried_after_retry_after(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.rate_limited(7))
    assert get(client(server, clock)) == BODY
    assert len(server.requests) == 2
    assert clock.sleeps
    assert clock.sleeps[0] >= 7.0


def test_429_with_an_http_date_retry_after(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    when = email.utils.formatdate(clock.now_us() / 1e6 + 12, usegmt=True)
    server.fault("/data", Fault.rate_limited(when))
    assert get(client(server, clock)) == BODY
    assert clock.sleeps[0] >= 11.0


def test_429_asking_for_too_long_a_wait_is_handed_to_the_caller(server: ReplayServer, clock: ManualClock,
                                                                 data_route: Route) -> None:
    server.fault("/data", Fault.rate_limited(3600))
    with pytest.raises(RateLimited) as info:
        get(client(server, clock))
    assert info.value.retry_after == 3600.0  # type: ignore[attr-defined]
    assert len(server.requests) == 1
    assert clock.sleeps == []


def test_persistent_429_exhausts_the_retries(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.rate_limited(1, times=10))
    with pytest.raises(RateLimited):
        get(client(server, clock, retries=2))
    assert len(server.requests) == 3


def test_5xx_then_success(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.server_error(503, times=2))
    assert get(client(server, clock)) == BODY
    assert [r.status for r in server.requests] == [503, 503, 200]
    assert len(clock.sleeps) == 2
    assert clock.sleeps[1] >= 0.5  # exponential: second wait at least the first cap


def test_5xx_forever_is_provider_unavailable(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.server_error(502, times=10))
    with pytest.raises(ProviderUnavailable) as info:
        get(client(server, clock, retries=1))
    assert info.value.status == 502  # type: ignore[attr-defined]
    assert len(server.requests) == 2


def test_timeout_then_success(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.delay(30.0))
    assert get(client(server, clock, timeout=1.0)) == BODY
    assert len(clock.sleeps) == 1


def test_timeout_forever_is_provider_timeout(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.delay(30.0, times=3))
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.25s"):
        get(client(server, clock, retries=1, timeout=0.25))


def test_malformed_json_is_a_response_error_not_retried(server: ReplayServer, clock: ManualClock,
                                                        data_route: Route) -> None:
    server.fault("/data", Fault.malformed())
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        get(client(server, clock))
    assert len(server.requests) == 1


def test_truncated_body_is_a_response_error(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.truncated(0.6))
    with pytest.raises(ProviderResponseError):
        get(client(server, clock))


def test_dropped_connection_is_retried(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.disconnect())
    assert get(client(server, clock)) == BODY
    assert len(server.requests) == 2


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationFailed), (403, AuthenticationFailed),
                                               (404, SymbolNotFound), (400, UnsupportedRequest),
                                               (422, UnsupportedRequest)])
def test_definitive_answers_are_not_retried(server: ReplayServer, clock: ManualClock, data_route: Route,
                                            status: int, error: type[Exception]) -> None:
    server.fault("/data", Fault.status_code(status, body={"message": "nope"}))
    with pytest.raises(error, match="nope"):
        get(client(server, clock))
    assert len(server.requests) == 1


def test_unexpected_redirects_are_not_followed(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.status_code(302, headers={"Location": "http://evil.test/"}))
    with pytest.raises(ProviderResponseError, match="redirect"):
        get(client(server, clock))


def test_connection_refused_is_unavailable(clock: ManualClock) -> None:
    with ReplayServer() as srv:
        url = srv.base_url
    http = HttpClient(ProviderSettings("demo", url, timeout=0.5, max_retries=1), clock=clock.clock)
    with pytest.raises(ProviderUnavailable, match="connection failed"):
        get(http)


def test_the_breaker_opens_and_fails_fast(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    server.fault("/data", Fault.server_error(500, times=100))
    breaker = CircuitBreaker("demo", threshold=3, reset_after=60, clock=clock.clock)
    http = client(server, clock, retries=0, breaker=breaker)
    for _ in range(3):
        with pytest.raises(ProviderUnavailable, match="server error"):
            get(http)
    sent = len(server.requests)
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        get(http)
    assert len(server.requests) == sent  # failed fast, nothing sent
    clock.advance(61)
    with pytest.raises(ProviderUnavailable, match="server error"):
        get(http)  # the half-open trial goes out, fails, re-opens
    assert breaker.state == "open"


def test_client_side_rate_limit_spaces_requests(server: ReplayServer, clock: ManualClock, data_route: Route) -> None:
    settings = ProviderSettings("demo", server.base_url, rate_limit_per_minute=6)
    http = HttpClient(settings, clock=clock.clock)

    async def go() -> None:
        async with http.session() as s:
            for _ in range(3):
                await s.get_json("/data")

    asyncio.run(go())
    assert clock.sleeps == [10.0, 10.0]


def test_absolute_urls_must_stay_on_the_configured_origin(server: ReplayServer, clock: ManualClock,
                                                          data_route: Route) -> None:
    http = client(server, clock)
    assert get(http, server.base_url + "/data") == BODY
    with pytest.raises(ProviderResponseError, match="another host"):
        get(http, "http://example.invalid/data")


def test_credentials_reach_the_server_but_not_the_visible_request(server: ReplayServer, clock: ManualClock,
                                                                  data_route: Route) -> None:
    auth = Auth(headers={"X-Key": SecretStr("hdr-secret")}, params={"apikey": SecretStr("qs-secret")})
    http = client(server, clock, auth=auth)

    async def go() -> str:
        async with http.session() as s:
            reply = await s.get("/data", {"a": "1"})
            return reply.url

    shown = asyncio.run(go())
    (req,) = server.requests
    assert req.headers["x-key"] == "hdr-secret"
    assert req.params == {"a": "1", "apikey": "qs-secret"}
    assert "secret" not in shown
    assert "credentials=set" in repr(http)
