"""The read path: plan what is missing from the coverage ledger and fetch only that.

``missing = requested ∩ expected bars (calendar) − covered`` (DESIGN §1). The future is
never missing. Fetching goes through the :class:`~tickvault.providers.base.Provider`
protocol only; every result runs through the write path, and the provider's own coverage
marks (``empty`` no-trade minutes, ``provisional`` recent data) are recorded with it.

Identical concurrent requests share one fetch (single-flight, per series and interval).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from tickvault.calendars import TradingCalendar, missing_intervals
from tickvault.engine._providers import ProviderHealth, rank_providers
from tickvault.errors import ProviderError, UnsupportedRequest
from tickvault.model import CoverageInterval, CoverageState, Instrument, Timeframe, WriteReceipt
from tickvault.providers.base import BarsQuery, BarsResult, DataKind, Provider
from tickvault.store.base import BarStore

__all__ = ["FetchOutcome", "Fetcher", "plan_missing", "provisional_ttl_us", "run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code, also when an event loop is already running
    in this thread (notebooks): then it runs on a short-lived helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    errors: list[BaseException] = []

    def _target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=_target, name="tickvault-sync")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


def _fresh(coverage: Sequence[CoverageInterval], now_us: int, stale_after_us: int) -> list[CoverageInterval]:
    """Coverage without the provisional intervals that are older than ``stale_after_us``."""
    return [iv for iv in coverage
            if iv.state != CoverageState.PROVISIONAL or now_us - iv.updated_us <= stale_after_us]


def provisional_ttl_us(timeframe: Timeframe) -> int:
    """How long a provisional mark stays fresh: one bar (at least a minute) intraday, 15 minutes
    for daily and longer bars."""
    return max(timeframe.micros, 60_000_000) if timeframe.is_intraday else 15 * 60_000_000


def plan_missing(store: BarStore, calendar: TradingCalendar, symbol: str, timeframe: Timeframe,
                 start_us: int, end_us: int, *, now_us: int | None = None,
                 coalesce: bool = True, stale_after_us: int | None = None) -> list[tuple[int, int]]:
    """Intervals of expected bars in ``[start_us, end_us)`` that are not covered.

    Provisional coverage older than ``stale_after_us`` (default: :func:`provisional_ttl_us`)
    counts as missing, so recent bars are refetched when stale. With ``coalesce`` (the
    default), runs separated only by non-trading time (a night, a weekend, a holiday) are
    merged, so a request spanning weekends is one provider call, not one per week. Runs
    separated by covered bars stay apart: those are never refetched.
    """
    now = now_us if now_us is not None else time.time_ns() // 1000
    end = min(end_us, now)
    if end <= start_us:
        return []
    ttl = stale_after_us if stale_after_us is not None else provisional_ttl_us(timeframe)
    coverage = _fresh(store.coverage(symbol, str(timeframe)), now, ttl)
    runs = missing_intervals(coverage, calendar, str(timeframe), start_us, end)
    if not coalesce or len(runs) < 2:
        return runs
    expected, _ = calendar.bar_bounds(str(timeframe), runs[0][0], runs[-1][1])
    gaps_from = np.array([r[1] for r in runs[:-1]], dtype=np.int64)
    gaps_to = np.array([r[0] for r in runs[1:]], dtype=np.int64)
    between = np.searchsorted(expected, gaps_to, "left") - np.searchsorted(expected, gaps_from, "left")
    merged = [runs[0]]
    for run, n in zip(runs[1:], between.tolist(), strict=True):
        if n == 0:
            merged[-1] = (merged[-1][0], run[1])
        else:
            merged.append(run)
    return merged


@dataclass
class FetchOutcome:
    """What one read-through did."""

    calls: int = 0
    receipts: list[WriteReceipt] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)
    providers: set[str] = field(default_factory=set)


class Fetcher:
    """Fetches missing intervals from providers: ranked candidates, failover, bounded concurrency.

    Parameters
    ----------
    providers
        Configured providers in the user's order.
    write
        ``write(symbol, timeframe, result, provider_name, query) -> WriteReceipt`` — the write path.
    preference
        The user's preference order per data kind (see :mod:`tickvault.engine._providers`).
    concurrency
        Chunks fetched at once per request (each provider's own limiter still applies).
    """

    def __init__(self, providers: Sequence[Provider],
                 write: Callable[[str, Timeframe, BarsResult, str, BarsQuery], WriteReceipt], *,
                 preference: Mapping[str, Sequence[str]] | None = None, concurrency: int = 4) -> None:
        self._providers = list(providers)
        self._write = write
        self._preference = dict(preference or {})
        self._concurrency = max(1, concurrency)
        self.health = ProviderHealth()
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str, int, int, str | None], Future[FetchOutcome]] = {}

    @property
    def providers(self) -> list[Provider]:
        """The configured providers in the user's order."""
        return list(self._providers)

    @property
    def calls(self) -> dict[str, int]:
        """Provider name -> calls made so far."""
        return self.health.calls()

    def candidates(self, instrument: Instrument, timeframe: Timeframe, provider: str | None = None) -> list[Provider]:
        """Providers for bars of this asset class and timeframe, best first."""
        ranked = rank_providers(self._providers, instrument, DataKind.BARS, timeframe, self._preference)
        return [p for p in ranked if provider is None or p.name == provider]

    def fetch(self, instrument: Instrument, timeframe: Timeframe, intervals: Sequence[tuple[int, int]],
              provider: str | None = None) -> FetchOutcome:
        """Fetch ``intervals`` (single-flight: identical concurrent requests share one fetch)."""
        key = (instrument.symbol, str(timeframe), intervals[0][0] if intervals else 0,
               intervals[-1][1] if intervals else 0, provider)
        with self._lock:
            fut = self._inflight.get(key)
            owner = fut is None
            if fut is None:
                fut = Future()
                self._inflight[key] = fut
        if not owner:
            return fut.result()
        try:
            outcome = run_sync(self._fetch_all(instrument, timeframe, intervals, provider))
            fut.set_result(outcome)
            return outcome
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    async def _fetch_all(self, instrument: Instrument, timeframe: Timeframe,
                         intervals: Sequence[tuple[int, int]], provider: str | None) -> FetchOutcome:
        outcome = FetchOutcome()
        cands = self.candidates(instrument, timeframe, provider)
        if not cands:
            outcome.errors.append(UnsupportedRequest(
                "no configured provider serves this request" + (f" ({provider} is not configured or cannot)"
                                                                if provider else ""),
                symbol=instrument.symbol, timeframe=str(timeframe)))
            return outcome
        chunks = [c for s, e in intervals for c in self._chunks(cands[0], timeframe, s, e)]
        gate = asyncio.Semaphore(self._concurrency)

        async def one(chunk: tuple[int, int]) -> None:
            async with gate:
                await self._fetch_chunk(instrument, timeframe, chunk, cands, outcome)

        await asyncio.gather(*(one(c) for c in chunks))
        outcome.receipts.sort(key=lambda r: r.rows_in)
        return outcome

    @staticmethod
    def _chunks(p: Provider, timeframe: Timeframe, start_us: int, end_us: int) -> list[tuple[int, int]]:
        sup = p.capabilities.supports(timeframe)
        if sup is None or sup.page_size is None:
            return [(start_us, end_us)]
        step = sup.page_size * timeframe.micros
        return [(s, min(s + step, end_us)) for s in range(start_us, end_us, step)]

    async def _fetch_chunk(self, instrument: Instrument, timeframe: Timeframe, chunk: tuple[int, int],
                           cands: Sequence[Provider], outcome: FetchOutcome) -> None:
        query = BarsQuery(instrument.symbol, str(timeframe), chunk[0], chunk[1], instrument)
        for p in cands:
            self.health.call(p.name)
            outcome.calls += 1
            try:
                result = await p.bars(query)
            except ProviderError as exc:
                self.health.error(p.name, exc)
                outcome.errors.append(exc)
                continue  # fail over to the next candidate
            self.health.ok(p.name)
            outcome.receipts.append(self._write(instrument.symbol, timeframe, result, p.name, query))
            outcome.providers.add(p.name)
            return
