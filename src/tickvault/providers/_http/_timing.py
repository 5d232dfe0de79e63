"""Injected time: every wait in the HTTP layer goes through a :class:`Clock`.

Retries, rate limiting and the circuit breaker read ``monotonic()`` and wait with
``sleep()``; coverage decisions (is this bar settled?) read ``now_us()``. Production uses
the real clocks; tests pass :class:`tickvault.testing.replay.ManualClock`, whose ``sleep``
advances time instantly and records the waits, so no test sleeps for real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Clock", "SYSTEM_CLOCK"]


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Clock:
    """The three time sources the HTTP layer uses.

    Parameters
    ----------
    monotonic
        Seconds from an arbitrary origin, never going back (rate limits, breaker, backoff).
    sleep
        Awaitable wait of the given seconds.
    now_us
        Wall-clock epoch microseconds (UTC), for provisional coverage and "now" ranges.
    """

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    now_us: Callable[[], int] = _now_us


SYSTEM_CLOCK = Clock()
"""The real clocks."""
