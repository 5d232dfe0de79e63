"""Prometheus metrics of one service instance.

Each app has its own :class:`prometheus_client.CollectorRegistry` (several apps in one process
— tests — never share counters). Request counts and latencies are recorded by the middleware
per route *template* (``/v1/bars/{symbol}``), never per raw path, so a scan of random URLs
cannot blow up the label space. Values the vault already counts (cache reads, provider calls)
are read at scrape time by :class:`_VaultCollector` rather than mirrored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tickvault import Vault

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _VaultCollector(Collector):
    """Scrape-time values: cache reads, provider calls, staleness of subscribed series."""

    def __init__(self, vault: Vault, staleness: Callable[[], list[tuple[str, str, float]]]) -> None:
        self._vault = vault
        self._staleness = staleness

    def collect(self) -> Iterator[Metric]:
        """Yield the current values (never raises: a failing source is skipped)."""
        try:
            stats: dict[str, Any] = self._vault.cache_stats()
        except Exception:  # a scrape must not fail because one source did
            stats = {}
        reads = CounterMetricFamily("tickvault_cache_reads", "Vault cache reads by outcome.", labels=["result"])
        for result, value in sorted((stats.get("reads") or {}).items()):
            if isinstance(value, int | float):
                reads.add_metric([str(result)], float(value))
        yield reads
        levels = CounterMetricFamily("tickvault_cache_level_lookups", "Cache lookups per level and outcome.",
                                     labels=["level", "result"])
        for name, level in sorted((stats.get("levels") or {}).items()):
            for result in ("hits", "misses"):
                value = level.get(result) if isinstance(level, dict) else None
                if isinstance(value, int | float):
                    levels.add_metric([str(name), result], float(value))
        yield levels
        calls = CounterMetricFamily("tickvault_provider_calls", "Provider calls made by read-through and fetches.",
                                    labels=["provider"])
        for provider, n in sorted(self._vault.provider_calls.items()):
            calls.add_metric([provider], float(n))
        yield calls
        stale = GaugeMetricFamily("tickvault_data_staleness_seconds",
                                  "Seconds since the newest stored bar of each subscribed series ended.",
                                  labels=["symbol", "timeframe"])
        for symbol, timeframe, seconds in self._staleness():
            stale.add_metric([symbol, timeframe], seconds)
        yield stale


class Metrics:
    """The metrics of one app, in their own registry.

    Parameters
    ----------
    vault
        Source of the scrape-time values.
    staleness
        Returns ``(symbol, timeframe, seconds)`` for each subscribed series.
    """

    def __init__(self, vault: Vault, staleness: Callable[[], list[tuple[str, str, float]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tickvault_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("tickvault_http_request_duration_seconds", "HTTP request latency by route.",
                                 ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("tickvault_http_requests_in_flight", "HTTP requests being served.", registry=r)
        self.response_cache = Counter("tickvault_response_cache", "Pre-serialised latest-N responses by outcome.",
                                      ["result"], registry=r)
        self.provider_errors = Counter("tickvault_provider_errors",
                                       "Provider errors seen by service requests, by provider and kind.",
                                       ["provider", "kind"], registry=r)
        self.provider_rate_limited = Counter(
            "tickvault_provider_rate_limited", "Provider answers asking to slow down (HTTP 429) seen by the service.",
            ["provider"], registry=r)
        self.ingest_rows = Counter("tickvault_ingest_rows", "Rows received by the ingest endpoint, by outcome.",
                                   ["result"], registry=r)
        self.bars_written = Counter("tickvault_bars_written", "Rows stored, from the vault's new-bar events.",
                                    ["timeframe"], registry=r)
        self.rate_limited = Counter("tickvault_rate_limited", "Requests refused by the per-key rate limit.",
                                    ["route"], registry=r)
        self.stream_clients = Gauge("tickvault_stream_clients", "Connected WebSocket stream clients.", registry=r)
        self.stream_messages = Counter("tickvault_stream_messages", "Messages sent to stream clients, by type.",
                                       ["type"], registry=r)
        self.started = Gauge("tickvault_service_start_time_seconds", "When this service instance started.",
                             registry=r)
        self.started.set(time.time())
        r.register(_VaultCollector(vault, staleness))
        # Label children per (method, route, status): looking them up is most of a metric's cost on the
        # hot path. Bounded: routes are templates ("unmatched" for the rest), statuses a few dozen.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            if len(self._children) < 10_000:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def provider_error(self, provider: str | None, kind: str) -> None:
        """Count one provider error (``kind`` is the exception class name)."""
        self.provider_errors.labels(provider or "unknown", kind).inc()
        if kind == "RateLimited":
            self.provider_rate_limited.labels(provider or "unknown").inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
