"""A small circuit breaker for calls to a shared server (Redis).

When the server goes away every call would otherwise wait for a socket timeout; after one
failure the breaker *opens* and calls fail fast for a back-off period (doubling up to a
cap), then one call is let through as a probe. A success closes it again. The breaker
logs one warning per outage and one line on recovery (never per call), and counts errors
so they can be exported as a metric. The clock is injectable for deterministic tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Breaker"]


class Breaker:
    """Closed -> open (fail fast) -> half-open (probe) -> closed.

    Parameters
    ----------
    what
        Human-readable target for log lines (a redacted URL).
    meanwhile
        What callers get while it is down, for the warning ("serving from the store").
    logger
        Where the outage warning and the recovery line go.
    clock
        Monotonic seconds.
    base, cap
        First back-off and its ceiling, in seconds.
    """

    def __init__(self, what: str, logger: logging.Logger, *, meanwhile: str = "serving from the store",
                 clock: Callable[[], float] = time.monotonic, base: float = 0.5, cap: float = 30.0) -> None:
        self._what = what
        self._meanwhile = meanwhile
        self._log = logger
        self._clock = clock
        self._base = base
        self._cap = cap
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = base
        self.errors = 0
        self.outages = 0
        self.last_error: str | None = None

    @property
    def down(self) -> bool:
        """Whether an outage is in progress (the last call failed and none succeeded since)."""
        return self._down_since is not None

    def allow(self) -> bool:
        """Whether a call may go to the server now (always while closed; one probe per back-off)."""
        with self._lock:
            if self._down_since is None:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            # Half-open: let this caller probe; others keep failing fast until it reports.
            self._retry_at = now + self._backoff
            return True

    def failure(self, exc: BaseException) -> None:
        """Record a failed call; opens the circuit (warning logged once per outage)."""
        with self._lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            now = self._clock()
            if self._down_since is None:
                self._down_since = now
                self.outages += 1
                self._backoff = self._base
                self._log.warning("%s is unreachable (%s); %s until it returns",
                                  self._what, self.last_error, self._meanwhile)
            else:
                self._backoff = min(self._backoff * 2, self._cap)
            self._retry_at = now + self._backoff

    def success(self) -> None:
        """Record a successful call; closes the circuit after an outage."""
        if self._down_since is None:  # the common case: no lock needed to read one field
            return
        with self._lock:
            if self._down_since is None:
                return
            lasted = self._clock() - self._down_since
            self._down_since = None
            self._backoff = self._base
            self._log.info("%s is reachable again after %.1f s", self._what, lasted)
