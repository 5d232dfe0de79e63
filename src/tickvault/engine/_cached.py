"""The read-through cache layer: a ``BarStore`` that answers hot reads from L1/L2 caches.

:class:`CachedStore` wraps any store and keeps the store's contract, so the engine's read
and write paths use it unchanged (``docs/cache.md``):

- **What is cached.** Per series, a *latest window*: the newest ``window`` bars (more when
  ``latest(n)`` asks for more, and grown on demand up to ``16 × window`` for recent range
  reads), flagged ``complete`` when it holds the whole series. ``latest(n)`` and
  ``read(start, end)`` are answered from it when it holds every bar they ask for; a range
  starting before it goes to the store (an answer stitched from two sources could show
  half of a concurrent atomic write). Raw, unadjusted bars are cached; adjustment runs
  after the cache, on the symbol's corporate actions, which are cached too (with the
  instrument record) under the symbol's ``meta`` series. So a new action invalidates
  what adjusted reads depend on, and no adjusted bars are ever cached in L2.
- **Decoded in L1.** L1 keeps a window as its immutable Arrow table (one chunk, already
  canonical) plus its timestamps, so a hit is a zero-copy slice: no IPC decode, no casts.
  Only L2 holds encoded (compressed IPC) bytes. The pandas answer of ``vault.latest`` is
  kept in L1 too (:meth:`CachedStore.latest_frame`), keyed by the bars' and the symbol's
  ``meta`` generations, and handed out as a copy.
- **Freshness.** Every store method that changes bars (``write``, ``delete_range``,
  ``verify`` finding damage) or metadata (``add_actions``, ``put_instrument``) moves the
  series' generation in L2 then L1 *after* the store returned and *before* this wrapper
  returns (see :mod:`tickvault.cache.base` for why that, plus generation-checked puts,
  rules out the stale-fill race).
- **Failure.** A :class:`~tickvault.errors.CacheError` (Redis down) makes the read go to
  the store without touching any cache level, and is counted; it never reaches the caller.
  While the shared L2 is down the L1 is bypassed too, since its entries are only valid
  relative to L2's generations (another process may be writing).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.cache import Cache, EventBus, MemoryBus, MemoryCache, series_key
from tickvault.cache.codec import decode_table, encode_table
from tickvault.errors import CacheError
from tickvault.model import (
    ACTIONS_SCHEMA,
    CorporateAction,
    CoverageInterval,
    Instrument,
    QualityReport,
    StoreReceipt,
    Timeframe,
    validate_symbol,
)
from tickvault.store.base import BarStore, SeriesInfo, VerifyReport

__all__ = ["META_TTL", "CacheSet", "CachedStore", "known_symbol", "known_timeframe", "ttl_for"]

#: Seconds to keep cached actions and instrument records (invalidated on change anyway).
META_TTL = 300.0
_MIN_TTL, _MAX_TTL = 1.0, 86_400.0
_GROWTH = 16
_SHORT = 32
_SLICES = 8  # slices of one window remembered (Table objects over the window's buffers)
_REPORT_EVERY = 10.0  # seconds between reports of read counts to the shared counters

_Tokens = tuple[str | None, str | None]
T = TypeVar("T")
# Estimated bytes a decoded corporate action keeps alive (the object and its fields).
_ACTION_BYTES = 256


def ttl_for(timeframe: str, overrides: Mapping[str, float] | None = None) -> float:
    """Seconds to keep a cached window of ``timeframe``.

    An explicit override wins; otherwise one bar's duration (60 s for ``1m``, 300 s for
    ``5m``, an hour for ``1h``), kept between 1 s and one day.
    """
    if overrides and timeframe in overrides:
        return float(overrides[timeframe])
    tf = Timeframe.parse(timeframe)
    seconds = tf.micros / 1e6
    return float(min(max(seconds, _MIN_TTL), _MAX_TTL))


@dataclass(frozen=True)
class CacheSet:
    """The cache levels and event bus one vault uses (built by ``tickvault._wiring``).

    Parameters
    ----------
    l1
        In-process cache, or ``None``. It keeps decoded values (latest windows as Arrow
        tables, actions as objects); only L2 holds encoded bytes.
    l2
        Shared cache (Redis), or ``None``.
    bus
        Where new-bar events go.
    ttls
        Per-timeframe TTL overrides in seconds.
    window
        Bars in a cached latest window.
    """

    l1: MemoryCache | None = None
    l2: Cache | None = None
    bus: EventBus = field(default_factory=MemoryBus)
    ttls: Mapping[str, float] = field(default_factory=dict)
    window: int = 500

    @property
    def enabled(self) -> bool:
        """Whether any cache level is configured."""
        return self.l1 is not None or self.l2 is not None


@dataclass(frozen=True, eq=False)
class _Window:
    """A decoded latest window, as L1 keeps it: immutable, canonical, compact.

    ``table`` is one chunk in canonical form (see :func:`_canonical`) holding copies of
    exactly its rows (never a view into a larger store buffer), so ``nbytes`` is what it
    keeps alive. ``tight`` says any non-empty slice is canonical as is (one provider, no
    nulls: the usual case), so a hit is a zero-copy slice with no casts. Arrow tables are
    immutable, so the whole window, and the last few slices asked for, are handed out as
    they are (a slice holds no buffers of its own: nothing more to account for).
    """

    table: pa.Table
    ts: np.ndarray  # int64 µs, ascending, read-only (a view of the table's ``ts`` buffer when possible)
    complete: bool
    tight: bool
    nbytes: int
    slices: dict[tuple[int, int], pa.Table] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, table: pa.Table, complete: bool, *, compact: bool = True) -> _Window:
        if compact and table.num_rows:
            # A store's answer may be a view into a larger buffer (a whole decoded file):
            # copy exactly these rows, so the window keeps alive only what it accounts for.
            table = table.take(np.arange(table.num_rows))
        table = _canonical(table)
        ts, extra = _timestamps(table)
        return cls(table, ts, complete, _tight(table), table.get_total_buffer_size() + extra)

    @property
    def size(self) -> int:
        return int(self.ts.size)

    def covers(self, start_us: int | None) -> bool:
        if self.complete:
            return True
        return self.ts.size > 0 and start_us is not None and start_us >= int(self.ts[0])

    def tail(self, n: int) -> pa.Table:
        size = self.ts.size
        return self._rows(max(size - n, 0), size)

    def slice(self, start_us: int | None, end_us: int | None) -> pa.Table:
        lo = 0 if start_us is None else int(np.searchsorted(self.ts, start_us, "left"))
        hi = self.ts.size if end_us is None else int(np.searchsorted(self.ts, end_us, "left"))
        return self._rows(lo, max(hi, lo))

    def _rows(self, lo: int, hi: int) -> pa.Table:
        if lo == 0 and hi == self.ts.size and hi:
            return self.table
        if not (hi > lo and self.tight):
            return _canonical(self.table.slice(lo, hi - lo))
        hit = self.slices.get((lo, hi))
        if hit is None:
            hit = self.table.slice(lo, hi - lo)  # already canonical: zero copy
            if len(self.slices) >= _SLICES:
                self.slices.clear()
            self.slices[(lo, hi)] = hit
        return hit


def _timestamps(table: pa.Table) -> tuple[np.ndarray, int]:
    """The ``ts`` column as int64 µs, and how many bytes it adds to the table's own buffers."""
    col = table.column("ts")
    if table.num_rows == 0:
        return np.empty(0, dtype=np.int64), 0
    if col.num_chunks == 1 and col.null_count == 0 and col.type.bit_width == 64:
        chunk: Any = col.chunk(0)  # an Array (the stubs say ChunkedArray)
        data = chunk.buffers()[1]
        if data is not None:  # a read-only view of the Arrow buffer: no copy, nothing to add
            return np.frombuffer(data, dtype=np.int64, count=len(chunk), offset=chunk.offset * 8), 0
    ts = np.asarray(col.cast(pa.int64()).to_numpy(), dtype=np.int64)
    ts.flags.writeable = False
    return ts, int(ts.nbytes)


def _tight(table: pa.Table) -> bool:
    """Whether every non-empty slice of the canonical ``table`` is canonical too."""
    idx = table.schema.get_field_index("provider")
    if idx < 0:
        return True
    col = table.column(idx)
    if not pa.types.is_dictionary(col.type):
        return True  # plain values: a slice holds exactly its own
    if col.num_chunks != 1:
        return False
    chunk: Any = col.chunk(0)
    values = len(chunk.dictionary)
    # One provider and no nulls; or only nulls (an empty dictionary stays empty).
    return (values == 1 and col.null_count == 0) or values == 0


def _canonical(table: pa.Table) -> pa.Table:
    """One chunk, provider dictionary holding only the values present (as the stores return)."""
    table = table.combine_chunks()
    idx = table.schema.get_field_index("provider")
    if idx < 0:
        return table
    col = table.column(idx)
    if table.num_rows and pa.types.is_dictionary(col.type) and col.num_chunks == 1 and not col.null_count:
        chunk: Any = col.chunk(0)
        if len(chunk.dictionary) == 1:
            return table  # one value, every index 0: already what the encoding below gives
    field_ = table.schema.field(idx)
    plain = table.column(idx).cast(pa.string())
    encoded = pc.dictionary_encode(plain).cast(field_.type)
    return table.set_column(idx, field_, encoded).combine_chunks()


# Canonical forms of the symbols and timeframes seen, so a hot read does not re-run the regex
# and the parser (both are pure functions of the string; the values are immutable).
_KNOWN_MAX = 4096
_SYMBOLS: dict[str, str] = {}
_TIMEFRAMES: dict[str, Timeframe] = {}


def _remembered(memo: dict[str, T], value: str, parse: Callable[[str], T]) -> T:
    """``parse(value)``, remembered in ``memo`` (cleared when it reaches ``_KNOWN_MAX``)."""
    hit = memo.get(value)
    if hit is None:
        hit = parse(value)
        if len(memo) >= _KNOWN_MAX:
            memo.clear()
        memo[value] = hit
    return hit


def known_symbol(symbol: object) -> str:
    """:func:`~tickvault.model.validate_symbol`, remembered for strings already seen."""
    if type(symbol) is str:
        return _remembered(_SYMBOLS, symbol, validate_symbol)
    return validate_symbol(symbol)


def known_timeframe(timeframe: str | Timeframe) -> Timeframe:
    """:meth:`~tickvault.model.Timeframe.parse`, remembered for strings already seen."""
    if type(timeframe) is str:
        return _remembered(_TIMEFRAMES, timeframe, Timeframe.parse)
    return Timeframe.parse(timeframe)


class CachedStore:
    """A :class:`~tickvault.store.base.BarStore` that serves hot reads from caches.

    Parameters
    ----------
    store
        The store that holds the truth.
    caches
        The levels to use (at least one of ``l1``/``l2``).
    """

    def __init__(self, store: BarStore, caches: CacheSet) -> None:
        self._store = store
        self._l1 = caches.l1
        self._l2 = caches.l2
        self._ttls = dict(caches.ttls)
        self._ttl_of: dict[str, float] = {}
        self._window = caches.window
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._reported = (0, 0)  # hits, misses already added to the shared (Redis) counters
        self._reported_at = time.monotonic()

    def __repr__(self) -> str:
        return f"CachedStore({self._store!r})"

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (``root``, maintenance helpers) stay reachable.
        if name.startswith("__") or name == "_store":
            raise AttributeError(name)
        return getattr(self._store, name)

    @property
    def inner(self) -> BarStore:
        """The wrapped store."""
        return self._store

    @property
    def levels(self) -> list[Cache]:
        """The configured cache levels, nearest first."""
        return [c for c in (self._l1, self._l2) if c is not None]

    def counts(self) -> dict[str, int]:
        """Read outcomes: ``hits``, ``misses``, ``bypassed`` (cache unavailable), ``fills``, ``cache_errors``."""
        with self._lock:
            out = {k: 0 for k in ("hits", "misses", "bypassed", "fills", "cache_errors")}
            out.update(self._counts)
            return out

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1
        if what in ("hits", "misses") and time.monotonic() - self._reported_at > _REPORT_EVERY:
            self.report_reads()

    def report_reads(self) -> None:
        """Add this process's read outcomes since the last report to L2's shared counters.

        Called every few seconds while reading and on close, so ``tickvault status`` in another
        process can show the namespace-wide hit rate. Best effort: a failure keeps the counts.
        """
        record = getattr(self._l2, "record_reads", None)
        if not callable(record):
            return
        with self._lock:
            hits, misses = self._counts["hits"], self._counts["misses"]
            done_h, done_m = self._reported
            self._reported_at = time.monotonic()
        if hits == done_h and misses == done_m:
            return
        try:
            record(hits - done_h, misses - done_m)
        except CacheError:
            self._count("cache_errors")
            return
        with self._lock:
            self._reported = (hits, misses)

    # -- generations and levels -------------------------------------------------------------
    def _tokens(self, series: str) -> _Tokens | None:
        """Read generations (L2 first); ``None`` means the caches cannot be trusted now."""
        t2 = None
        if self._l2 is not None:
            try:
                t2 = self._l2.generation(series)
            except CacheError:
                self._count("cache_errors")
                return None
        t1 = self._l1.generation(series) if self._l1 is not None else None
        return t1, t2

    def _ttl(self, timeframe: str) -> float:
        ttl = self._ttl_of.get(timeframe)
        if ttl is None:
            ttl = self._ttl_of[timeframe] = ttl_for(timeframe, self._ttls)
        return ttl

    def _tokens_of(self, series: Sequence[str]) -> list[_Tokens] | None:
        """:meth:`_tokens` of several series, with one L2 round trip when L2 can do that."""
        if len(series) == 1 or self._l2 is None or not hasattr(self._l2, "generations"):
            tokens = [self._tokens(s) for s in series]
            return None if any(t is None for t in tokens) else [t for t in tokens if t is not None]
        try:
            t2s: list[str] = self._l2.generations(list(series))
        except CacheError:
            self._count("cache_errors")
            return None
        l1 = self._l1
        return [(l1.generation(s) if l1 is not None else None, t2) for s, t2 in zip(series, t2s, strict=True)]

    def _get(self, base: str, series: str, tokens: _Tokens, ttl: float, kind: type[T],
             decode: Callable[[bytes], tuple[T, int]]) -> T | None:
        """The value under ``base`` at ``tokens``: L1 holds it decoded, L2 as bytes.

        ``decode`` turns L2's bytes into the value and its size in bytes (what L1 charges);
        a value L2 returns is decoded once and kept in L1. A damaged L2 value is a miss.
        """
        t1, t2 = tokens
        l1 = self._l1
        if l1 is not None and t1 is not None:
            value = l1.get_object(f"{base}@{t1}/{t2}")
            if isinstance(value, kind):
                return value
        if self._l2 is not None and t2 is not None:
            try:
                raw = self._l2.get(f"{base}@{t2}")
            except CacheError:
                self._count("cache_errors")
                return None
            if raw is None:
                return None
            try:
                decoded, size = decode(raw)
            except CacheError:
                self._count("cache_errors")
                return None
            if l1 is not None and t1 is not None:
                l1.put_object(f"{base}@{t1}/{t2}", decoded, size=size, ttl=ttl, series=series, generation=t1)
            return decoded
        return None

    def _put(self, base: str, series: str, tokens: _Tokens, ttl: float, value: object, size: int,
             packed: Callable[[], bytes]) -> None:
        # L1 keeps the decoded value; L2 gets bytes, encoded lazily (only when it exists).
        t1, t2 = tokens
        if self._l1 is not None and t1 is not None:
            self._l1.put_object(f"{base}@{t1}/{t2}", value, size=size, ttl=ttl, series=series, generation=t1)
        if self._l2 is not None and t2 is not None:
            try:
                self._l2.put(f"{base}@{t2}", packed(), ttl=ttl, series=series, generation=t2)
            except CacheError:
                self._count("cache_errors")

    def remember(self, base: str, series: Sequence[str], ttl: float, compute: Callable[[], bytes]) -> bytes:
        """A derived value (a snapshot row, say) cached under every series it depends on.

        The key carries the generations of the extra series and the entry lives under the
        first one, so a write to any of them makes it unreachable; a write racing with
        ``compute`` is refused by the generation check on put, as for bar windows.
        """
        tokens = self._tokens_of(series)
        if not tokens:
            return compute()
        primary = tokens[0]
        key = base + "".join(f"|{t[0]}/{t[1]}" for t in tokens[1:])
        hit = self._get(key, series[0], primary, ttl, bytes, _as_bytes)
        if hit is not None:
            return hit
        value = compute()
        self._put(key, series[0], primary, ttl, value, len(value), lambda: value)
        return value

    def latest_frame(self, symbol: str, timeframe: str, n: int, adjust: str,
                     build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The pandas answer of ``vault.latest``: ``build()``, kept in L1, a copy to each caller.

        Converting 500 bars to pandas costs ~0.5-1 ms, a deep copy ~10 µs. The frame is kept
        in L1 only (never in L2), under the bars series, with the generations of the bars
        and of the symbol's ``meta`` series (actions, instrument: what adjustment and the
        time zone depend on) in its key, as :meth:`remember` does. So a write, a new action
        or a new instrument record makes it unreachable, and a write racing with ``build``
        is refused by the generation-checked put. ``symbol`` and ``timeframe`` must be
        canonical. Callers get a deep copy: mutating it never reaches the cache.
        """
        l1 = self._l1
        if l1 is None or n <= 0:
            return build()
        bars, meta = series_key("bars", symbol, timeframe), series_key("meta", symbol)
        tokens = self._tokens_of((bars, meta))
        t1 = tokens[0][0] if tokens is not None else None
        if tokens is None or t1 is None:
            return build()
        t_bars, t_meta = tokens
        key = f"frame:{symbol}:{timeframe}:{n}:{adjust}@{t1}/{t_bars[1]}|{t_meta[0]}/{t_meta[1]}"
        frame = l1.get_object(key)
        if isinstance(frame, pd.DataFrame):
            self._count("hits")
            return frame.copy(deep=True)
        frame = build()
        size = int(frame.memory_usage(index=True, deep=True).sum())
        l1.put_object(key, frame, size=size, ttl=self._ttl(timeframe), series=bars, generation=t1)
        return frame.copy(deep=True)

    def _invalidate(self, series: str) -> None:
        # After the store acknowledged, before our caller hears of it: L2 (shared), then L1.
        if self._l2 is not None:
            try:
                self._l2.invalidate_series(series)
            except CacheError:
                # The L2 breaker is open now; its recovery renews the epoch, so nothing
                # cached before this write is ever served again.
                self._count("cache_errors")
        if self._l1 is not None:
            self._l1.invalidate_series(series)

    def clear(self) -> None:
        """Invalidate everything in every level (used after ``verify`` repaired damage)."""
        if self._l2 is not None:
            try:
                self._l2.clear()
            except CacheError:
                self._count("cache_errors")
        if self._l1 is not None:
            self._l1.clear()

    # -- windows ----------------------------------------------------------------------------
    def _cached_window(self, symbol: str, timeframe: str, series: str, tokens: _Tokens) -> _Window | None:
        return self._get(f"latest:{symbol}:{timeframe}", series, tokens, self._ttl(timeframe), _Window, _window_from)

    def _fill(self, symbol: str, timeframe: str, series: str, tokens: _Tokens, n: int) -> _Window:
        # The tokens were read before this store read: a write racing with it moves the
        # generation, and the generation-checked put below then refuses the stale window.
        size = max(n, self._window)
        table = self._store.latest(symbol, timeframe, size)
        window = _Window.of(table, table.num_rows < size)
        meta = {"complete": "1" if window.complete else "0"}
        self._put(f"latest:{symbol}:{timeframe}", series, tokens, self._ttl(timeframe), window, window.nbytes,
                  lambda: encode_table(window.table, meta, compress=True))
        self._count("fills")
        return window

    def _worth_a_fill(self, timeframe: str, start_us: int | None, end_us: int | None) -> bool:
        # Recent reads fill a window; short bounded ones (the write path's 30-bar context
        # read, which its own write invalidates at once) only use a window that exists.
        if end_us is None:
            return True
        micros = Timeframe.parse(timeframe).micros
        if start_us is not None and end_us - start_us <= _SHORT * micros:
            return False
        return end_us >= time.time_ns() // 1000 - self._window * micros

    # -- bars -------------------------------------------------------------------------------
    def latest(self, symbol: str, timeframe: str, n: int) -> pa.Table:
        """The last ``n`` bars, from the cached window when it holds them."""
        if n <= 0:
            return self._store.latest(symbol, timeframe, n)
        symbol = known_symbol(symbol)
        series = series_key("bars", symbol, timeframe)
        tokens = self._tokens(series)
        if tokens is None:
            self._count("bypassed")
            return self._store.latest(symbol, timeframe, n)
        window = self._cached_window(symbol, timeframe, series, tokens)
        if window is not None and (window.complete or window.size >= n):
            self._count("hits")
            return window.tail(n)
        self._count("misses")
        return self._fill(symbol, timeframe, series, tokens, n).tail(n)

    def read(self, symbol: str, timeframe: str, start_us: int | None = None, end_us: int | None = None,
             columns: Sequence[str] | None = None) -> pa.Table:
        """Bars in ``[start_us, end_us)``, from the cached window when it holds all of them."""
        table = self._read(known_symbol(symbol), timeframe, start_us, end_us)
        return table.select(list(columns)) if columns is not None else table

    def _read(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> pa.Table:
        series = series_key("bars", symbol, timeframe)
        tokens = self._tokens(series)
        if tokens is None:
            self._count("bypassed")
            return self._store.read(symbol, timeframe, start_us, end_us)
        window = self._cached_window(symbol, timeframe, series, tokens)
        if window is not None and window.covers(start_us):
            self._count("hits")
            return window.slice(start_us, end_us)
        if not self._worth_a_fill(timeframe, start_us, end_us):
            self._count("misses")
            return self._store.read(symbol, timeframe, start_us, end_us)
        self._count("misses")
        # A recent range the window does not hold: (re)fill it with enough bars by time to
        # reach ``start_us`` (an upper bound: sessions have gaps), capped at 16 windows.
        size = self._window
        if start_us is not None:
            size = max(size, (time.time_ns() // 1000 - start_us) // Timeframe.parse(timeframe).micros + 1)
        size = min(size, _GROWTH * self._window)
        if window is None or size > window.size:
            window = self._fill(symbol, timeframe, series, tokens, size)
            if window.covers(start_us):
                return window.slice(start_us, end_us)
        return self._store.read(symbol, timeframe, start_us, end_us)

    def write(self, symbol: str, timeframe: str, table: pa.Table) -> StoreReceipt:
        """Upsert through the store, then invalidate the series (if anything changed)."""
        receipt = self._store.write(symbol, timeframe, table)
        if receipt.rows_written or receipt.bytes_written:
            self._invalidate(series_key("bars", validate_symbol(symbol), timeframe))
        return receipt

    def write_many(self, items: Sequence[tuple[str, str, pa.Table]]) -> list[StoreReceipt]:
        """Upsert every item in one store commit, then invalidate the series that changed."""
        receipts = self._store.write_many(items)
        for (symbol, timeframe, _table), receipt in zip(items, receipts, strict=True):
            if receipt.rows_written or receipt.bytes_written:
                self._invalidate(series_key("bars", validate_symbol(symbol), timeframe))
        return receipts

    def delete_range(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> int:
        """Delete through the store, then invalidate the series."""
        try:
            return self._store.delete_range(symbol, timeframe, start_us, end_us)
        finally:
            self._invalidate(series_key("bars", validate_symbol(symbol), timeframe))

    def series(self) -> list[SeriesInfo]:
        """Passed through."""
        return self._store.series()

    # -- coverage (not cached: it is small and the planner needs it exact) ------------------
    def coverage(self, symbol: str, timeframe: str) -> list[CoverageInterval]:
        """Passed through."""
        return self._store.coverage(symbol, timeframe)

    def mark_covered(self, symbol: str, timeframe: str, intervals: Sequence[CoverageInterval]) -> None:
        """Passed through."""
        self._store.mark_covered(symbol, timeframe, intervals)

    def clear_coverage(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> None:
        """Passed through."""
        self._store.clear_coverage(symbol, timeframe, start_us, end_us)

    # -- catalog ----------------------------------------------------------------------------
    def add_actions(self, symbol: str, actions: Sequence[CorporateAction]) -> int:
        """Store actions, then invalidate the symbol's metadata (adjusted reads re-adjust)."""
        try:
            return self._store.add_actions(symbol, actions)
        finally:
            self._invalidate(series_key("meta", validate_symbol(symbol)))

    def actions(self, symbol: str) -> list[CorporateAction]:
        """The symbol's actions, cached under its ``meta`` series."""
        sym = validate_symbol(symbol)
        series = series_key("meta", sym)
        tokens = self._tokens(series)
        if tokens is None:
            return self._store.actions(sym)
        hit = self._get(f"actions:{sym}", series, tokens, META_TTL, tuple,
                        lambda raw: _sized_actions(_actions_from(sym, decode_table(raw)[0])))
        if hit is not None:
            return list(hit)
        acts = self._store.actions(sym)
        kept, size = _sized_actions(acts)
        self._put(f"actions:{sym}", series, tokens, META_TTL, kept, size,
                  lambda: encode_table(_actions_table(acts), compress=True))
        return acts

    def put_instrument(self, instrument: Instrument) -> None:
        """Store the record, then invalidate the symbol's metadata."""
        try:
            self._store.put_instrument(instrument)
        finally:
            self._invalidate(series_key("meta", instrument.symbol))

    def delete_instrument(self, symbol: str) -> bool:
        """Remove the record, then invalidate the symbol's metadata."""
        sym = validate_symbol(symbol)
        try:
            return self._store.delete_instrument(sym)
        finally:
            self._invalidate(series_key("meta", sym))

    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument record (or ``None``), cached under the symbol's ``meta`` series."""
        sym = validate_symbol(symbol)
        series = series_key("meta", sym)
        tokens = self._tokens(series)
        if tokens is None:
            return self._store.instrument(sym)
        raw = self._get(f"instrument:{sym}", series, tokens, META_TTL, bytes, _as_bytes)
        if raw is not None:
            try:
                data = json.loads(raw)
                return Instrument.from_dict(data) if data is not None else None
            except (ValueError, KeyError, TypeError):  # a damaged or foreign value: use the store
                self._count("cache_errors")
        inst = self._store.instrument(sym)
        blob = json.dumps(inst.to_dict() if inst is not None else None, separators=(",", ":")).encode()
        self._put(f"instrument:{sym}", series, tokens, META_TTL, blob, len(blob), lambda: blob)
        return inst

    def instruments(self) -> list[Instrument]:
        """Passed through."""
        return self._store.instruments()

    def get_meta(self, key: str) -> str | None:
        """Passed through (catalog values are not cached: the store already keeps them small and fast)."""
        return self._store.get_meta(key)

    def set_meta(self, key: str, value: str | None) -> None:
        """Passed through."""
        self._store.set_meta(key, value)

    def save_report(self, report: QualityReport) -> None:
        """Passed through."""
        self._store.save_report(report)

    def latest_report(self, symbol: str, timeframe: str) -> QualityReport | None:
        """Passed through."""
        return self._store.latest_report(symbol, timeframe)

    def quarantine(self, symbol: str, timeframe: str, rows: pa.Table) -> None:
        """Passed through (quarantined rows are never served as bars)."""
        self._store.quarantine(symbol, timeframe, rows)

    def quarantined(self, symbol: str, timeframe: str) -> pa.Table:
        """Passed through."""
        return self._store.quarantined(symbol, timeframe)

    # -- maintenance ------------------------------------------------------------------------
    def compact(self, symbol: str | None = None, timeframe: str | None = None) -> int:
        """Passed through (compaction does not change what a read returns)."""
        return self._store.compact(symbol, timeframe)

    def verify(self) -> VerifyReport:
        """Verify the store; if it set damaged files aside, every cached entry is dropped."""
        report = self._store.verify()
        if report.damaged or report.repaired:
            self.clear()
        return report

    def size_bytes(self) -> int:
        """Passed through."""
        return self._store.size_bytes()

    def close(self) -> None:
        """Report read counts, close the store and the cache levels. Idempotent."""
        self.report_reads()
        self._store.close()
        for level in self.levels:
            level.close()


def _as_bytes(raw: bytes) -> tuple[bytes, int]:
    return raw, len(raw)


def _window_from(raw: bytes) -> tuple[_Window, int]:
    table, meta = decode_table(raw)
    # Decoded IPC owns its buffers (L2 values are compressed: decompressed into new,
    # exactly sized ones); a plain value's buffers are views of ``raw``, which they keep alive.
    window = _Window.of(table, meta.get("complete") == "1", compact=False)
    return window, window.nbytes


def _sized_actions(actions: Sequence[CorporateAction]) -> tuple[tuple[CorporateAction, ...], int]:
    # Frozen dataclasses: L1 can share them; callers get a fresh list each time.
    return tuple(actions), 64 + _ACTION_BYTES * len(actions)


def _actions_table(actions: Sequence[CorporateAction]) -> pa.Table:
    # Kept in the store's order (not re-sorted), so a cached answer equals the store's.
    return pa.Table.from_pydict({
        "ex_date": [a.ex_date for a in actions], "kind": [str(a.kind) for a in actions],
        "value": [a.value for a in actions], "currency": [a.currency for a in actions],
        "provider": [a.provider for a in actions]}, schema=ACTIONS_SCHEMA)


def _actions_from(symbol: str, table: pa.Table) -> list[CorporateAction]:
    cols = [table.column(n).to_pylist() for n in ACTIONS_SCHEMA.names]
    return [CorporateAction(d, k, v, symbol, c, p) for d, k, v, c, p in zip(*cols, strict=True)]

