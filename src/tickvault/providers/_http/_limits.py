"""Client-side politeness and resilience: rate limiter, retry policy, circuit breaker.

All three are plain objects guarded by a :class:`threading.Lock` and driven by an injected
:class:`~._timing.Clock`, not by asyncio primitives: the engine runs each fetch in a fresh
event loop (``asyncio.run``), sometimes on a helper thread, and one provider's limiter and
breaker must hold across all of them.
"""

from __future__ import annotations

import email.utils
import random
import threading
from dataclasses import dataclass, field

from tickvault.errors import ProviderUnavailable
from tickvault.providers._http._timing import SYSTEM_CLOCK, Clock

__all__ = ["CircuitBreaker", "RateLimiter", "RetryPolicy", "parse_retry_after"]


class RateLimiter:
    """Spaces requests evenly to at most ``per_minute`` per minute, with a small burst.

    Each caller reserves the next free slot under a lock and then sleeps until it, so
    concurrent callers queue fairly and nobody spins.

    Parameters
    ----------
    per_minute
        Sustained request rate; ``None`` disables limiting.
    burst
        Requests allowed back to back after an idle period.
    clock
        Time source.
    """

    def __init__(self, per_minute: float | None, *, burst: int = 1, clock: Clock = SYSTEM_CLOCK) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._burst = max(1, int(burst))
        self._clock = clock
        self._lock = threading.Lock()
        self._next_free: float | None = None  # earliest monotonic time the next slot opens

    @property
    def interval(self) -> float:
        """Seconds between requests at the sustained rate (0: unlimited)."""
        return self._interval

    def reserve(self) -> float:
        """Reserve a slot; return how many seconds to wait before using it."""
        if self._interval <= 0:
            return 0.0
        with self._lock:
            now = self._clock.monotonic()
            earliest = now - (self._burst - 1) * self._interval  # credit for an idle period
            slot = max(self._next_free if self._next_free is not None else earliest, earliest)
            self._next_free = slot + self._interval
            return max(0.0, slot - now)

    async def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            await self._clock.sleep(wait)
        return wait

    def penalise(self, seconds: float) -> None:
        """Push the next free slot ``seconds`` into the future (after a 429)."""
        with self._lock:
            until = self._clock.monotonic() + max(0.0, seconds)
            if self._next_free is None or self._next_free < until:
                self._next_free = until


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Parameters
    ----------
    value
        Header value, or ``None``.
    now_s
        Current wall-clock epoch seconds (for the HTTP-date form).

    Returns
    -------
    float or None
        Non-negative seconds, or ``None`` if absent or unparseable.
    """
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    try:
        seconds = float(v)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now_s
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 86_400.0))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures.

    The delay before retry ``n`` (0-based) is ``min(max_delay, base_delay * 2**n)``,
    randomised to between half and all of it ("equal jitter"), and never shorter than the
    server's ``Retry-After``. A ``Retry-After`` longer than ``max_retry_after`` is not
    waited for: the :class:`~tickvault.errors.RateLimited` error goes to the caller (the
    engine can fail over instead of blocking).

    The number of retries comes from :attr:`ProviderSettings.max_retries`.

    Parameters
    ----------
    base_delay, max_delay
        Backoff bounds in seconds.
    max_retry_after
        Longest server-requested wait honoured in place, in seconds.
    seed
        Seed of the jitter generator (``None``: unpredictable).
    """

    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rng", random.Random(self.seed))

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based)."""
        cap = min(self.max_delay, self.base_delay * (2.0 ** max(0, attempt)))
        delay = cap / 2.0 + self._rng.uniform(0.0, cap / 2.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


class CircuitBreaker:
    """Stops calling a provider that keeps failing, then probes it again.

    ``closed`` -> (``threshold`` consecutive failures) -> ``open`` for ``reset_after``
    seconds, where every call fails fast with :class:`~tickvault.errors.ProviderUnavailable`
    -> ``half-open``: one trial call; success closes the circuit, failure re-opens it.

    Parameters
    ----------
    provider
        Name used in error messages.
    threshold
        Consecutive failures that open the circuit.
    reset_after
        Seconds the circuit stays open.
    clock
        Time source.
    """

    def __init__(self, provider: str, *, threshold: int = 5, reset_after: float = 30.0,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._provider = provider
        self._threshold = max(1, int(threshold))
        self._reset_after = float(reset_after)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self._reset_after:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        """Raise if the circuit is open (or a half-open trial is already running).

        Raises
        ------
        ProviderUnavailable
            While the circuit is open.
        """
        with self._lock:
            state = self._state_locked()
            if state == "closed":
                return
            if state == "half-open" and not self._trial_out:
                self._trial_out = True
                return
            remaining = max(0.0, self._reset_after - (self._clock.monotonic() - (self._opened_at or 0.0)))
            raise ProviderUnavailable("circuit open after repeated failures", provider=self._provider,
                                      retry_in=round(remaining, 3))

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_out = False

    def record_failure(self) -> None:
        """A call failed transiently: count it, maybe open the circuit."""
        with self._lock:
            self._failures += 1
            if self._trial_out or self._failures >= self._threshold:
                self._opened_at = self._clock.monotonic()
                self._trial_out = False
