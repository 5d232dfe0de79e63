"""Rate limiter, retry policy, Retry-After parsing and circuit breaker, on injected time."""

from __future__ import annotations

import asyncio
import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import ProviderUnavailable
from tickvault.providers._http import CircuitBreaker, RateLimiter, RetryPolicy, parse_retry_after
from tickvault.testing.replay import ManualClock


def test_rate_limiter_spaces_requests_evenly(clock: ManualClock) -> None:
    limiter = RateLimiter(30, clock=clock.clock)  # one request every 2 s

    async def go() -> list[float]:
        return [await limiter.acquire() for _ in range(4)]

    waits = asyncio.run(go())
    assert waits == [0.0, 2.0, 2.0, 2.0]
    assert clock.sleeps == [2.0, 2.0, 2.0]


def test_rate_limiter_allows_a_burst_after_idling(clock: ManualClock) -> None:
    limiter = RateLimiter(60, burst=3, clock=clock.clock)
    clock.advance(100)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_rate_limiter_penalty_pushes_the_next_slot(clock: ManualClock) -> None:
    limiter = RateLimiter(60, clock=clock.clock)
    assert limiter.reserve() == 0.0
    limiter.penalise(10)
    assert limiter.reserve() == pytest.approx(10.0)


def test_unlimited_rate_never_waits(clock: ManualClock) -> None:
    limiter = RateLimiter(None, clock=clock.clock)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.interval == 0.0


@given(attempt=st.integers(0, 20), retry_after=st.none() | st.floats(0, 120), seed=st.integers(0, 2**32))
def test_backoff_is_jittered_within_bounds_and_honours_retry_after(attempt: int, retry_after: float | None,
                                                                   seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, seed=seed)
    delay = policy.backoff(attempt, retry_after)
    cap = min(30.0, 0.5 * 2**attempt)
    assert cap / 2 <= delay or (retry_after is not None and delay == retry_after)
    assert delay <= max(cap, retry_after or 0.0)
    if retry_after is not None:
        assert delay >= retry_after


def test_backoff_grows_exponentially_on_average() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=100.0, seed=7)
    delays = [policy.backoff(n) for n in range(5)]
    for n, d in enumerate(delays):
        assert 2**n / 2 <= d <= 2**n


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = 1_740_009_600.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    for junk in (None, "", "soon", "nan", "Thu, 99 Foo 2025"):
        assert parse_retry_after(junk, now) is None
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("1e12", now) == 86_400.0


def test_breaker_opens_after_consecutive_failures_and_probes_again(clock: ManualClock) -> None:
    breaker = CircuitBreaker("demo", threshold=3, reset_after=30, clock=clock.clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        breaker.before_call()
    clock.advance(30)
    assert breaker.state == "half-open"
    breaker.before_call()  # the single trial
    with pytest.raises(ProviderUnavailable):
        breaker.before_call()  # a second caller while the trial runs
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(30)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_a_success_resets_the_failure_count(clock: ManualClock) -> None:
    breaker = CircuitBreaker("demo", threshold=2, clock=clock.clock)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"
