"""New-bar events: the ``EventBus`` boundary and its in-process twin.

After a write stored rows, the engine publishes one small message per (symbol,
timeframe) — ``{"symbol", "timeframe", "first_us", "last_us", "rows"}`` — for the
service and live features. With Redis configured the bus is Redis pub/sub (one channel
per series, :func:`bar_channel`), so every process sharing the namespace hears every
writer; otherwise it is :class:`MemoryBus`, which delivers synchronously in this process.

Contract
    ``publish`` never raises for transport trouble (a bus that cannot reach its server
    counts the event as dropped and still delivers it to this process's subscribers).
    Delivery is at most once and best effort: pub/sub keeps no history, so a subscriber
    that was disconnected misses what was published meanwhile and must re-read the store
    (the store, not the bus, is the truth). A subscriber's exception is logged and never
    reaches the publisher or other subscribers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["EventBus", "EventCallback", "MemoryBus", "Subscription", "bar_channel"]

_log = logging.getLogger("tickvault.cache.events")

#: A subscriber receives the published message (a plain JSON-compatible dict).
EventCallback = Callable[[dict[str, Any]], None]


def bar_channel(prefix: str, symbol: str, timeframe: str) -> str:
    """The channel of one series: ``<prefix>bars:<symbol>:<timeframe>`` (``tickvault:bars:AAPL:1m``)."""
    return f"{prefix}bars:{symbol}:{timeframe}"


@dataclass(frozen=True)
class Subscription:
    """One subscriber and its filter (``None`` matches everything)."""

    callback: EventCallback
    symbol: str | None = None
    timeframe: str | None = None

    def matches(self, message: Mapping[str, Any]) -> bool:
        """Whether ``message`` passes this subscription's filter."""
        return ((self.symbol is None or message.get("symbol") == self.symbol)
                and (self.timeframe is None or message.get("timeframe") == self.timeframe))

    def deliver(self, message: Mapping[str, Any]) -> None:
        """Call the subscriber if the filter matches; its exceptions are logged, not raised."""
        if not self.matches(message):
            return
        try:
            self.callback(dict(message))
        except Exception:
            _log.exception("event subscriber %r failed", self.callback)


@runtime_checkable
class EventBus(Protocol):
    """Publishes new-bar messages and fans them out to subscribers (see the module contract)."""

    @property
    def name(self) -> str:
        """``memory`` or ``redis``."""
        ...

    def publish(self, symbol: str, timeframe: str, message: Mapping[str, Any]) -> None:
        """Publish ``message`` on the channel of (``symbol``, ``timeframe``)."""
        ...

    def subscribe(self, callback: EventCallback, symbol: str | None = None,
                  timeframe: str | None = None) -> Callable[[], None]:
        """Call ``callback`` for matching messages; returns an unsubscribe function."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters: published, delivered, dropped, errors."""
        ...

    def close(self) -> None:
        """Stop listening and release connections. Idempotent."""
        ...


class Subscribers:
    """A thread-safe list of subscriptions (shared by the bus implementations)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._subs)

    def add(self, sub: Subscription) -> Callable[[], None]:
        """Register ``sub``; returns the function that removes it (idempotent)."""
        with self._lock:
            self._subs.append(sub)

        def _remove() -> None:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)

        return _remove

    def deliver(self, message: Mapping[str, Any]) -> None:
        """Hand ``message`` to every matching subscriber, in subscription order."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.matches(message):
                self.delivered += 1
                sub.deliver(message)


class MemoryBus:
    """In-process bus: ``publish`` calls matching subscribers synchronously, in order."""

    def __init__(self) -> None:
        self._subs = Subscribers()
        self._published = 0

    @property
    def name(self) -> str:
        """``"memory"``."""
        return "memory"

    def publish(self, symbol: str, timeframe: str, message: Mapping[str, Any]) -> None:
        """Deliver ``message`` to this process's matching subscribers."""
        self._published += 1
        self._subs.deliver(message)

    def subscribe(self, callback: EventCallback, symbol: str | None = None,
                  timeframe: str | None = None) -> Callable[[], None]:
        """Register ``callback`` (filtered by symbol and timeframe when given)."""
        return self._subs.add(Subscription(callback, symbol, timeframe))

    def stats(self) -> dict[str, Any]:
        """Published and delivered counts."""
        return {"name": self.name, "published": self._published, "delivered": self._subs.delivered,
                "dropped": 0, "errors": 0, "subscribers": len(self._subs)}

    def close(self) -> None:
        """Nothing to release."""
