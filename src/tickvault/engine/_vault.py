"""``Vault``: the one object users talk to.

It ties a :class:`~tickvault.store.base.BarStore`, the calendars, the quality policy, the
adjustment rules and (optionally) providers together, behind the contracts of DESIGN §3
and §5. It only ever sees protocols; :func:`tickvault.open` builds the concrete set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from tickvault import quality as _quality
from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.config import Settings
from tickvault.engine._analytics import Analytics, FillPolicy, fill_gaps
from tickvault.engine._cached import CachedStore, CacheSet, known_symbol, known_timeframe
from tickvault.engine._copy import CopyReport, copy_store
from tickvault.engine._frames import to_format
from tickvault.engine._health import cache_stats, health_report
from tickvault.engine._imports import ImportResult, import_file
from tickvault.engine._read import Fetcher, FetchOutcome, plan_missing
from tickvault.engine._sources import Sources
from tickvault.engine._write import BarEvent, CoverageMode, write_bars
from tickvault.errors import InvalidInput, MissingData
from tickvault.model import (
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    QualityReport,
    Timeframe,
    TimeRange,
    WriteReceipt,
    actions_from_frame,
    actions_to_table,
    conform_bars,
    ts_to_us,
    us_to_ts,
    validate_symbol,
)
from tickvault.providers.base import BarsQuery, BarsResult, Provider
from tickvault.store.base import BarStore, VerifyReport
from tickvault.transform import adjust as _adjust

__all__ = ["Adjust", "Fetch", "SeriesStatus", "Vault"]

Adjust = Literal["none", "splits", "all"]
Fetch = Literal["auto", "never", "always"]
_ADJUST = ("none", "splits", "all")
_FETCH = ("auto", "never", "always")


@dataclass(frozen=True)
class SeriesStatus:
    """One line of ``tickvault status``."""

    symbol: str
    timeframe: str
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    holes: int
    missing_bars_span: list[tuple[pd.Timestamp, pd.Timestamp]]
    quality_score: float | None
    quarantined: int
    last_update: pd.Timestamp | None


class Vault(Analytics, Sources):
    """Market data you can trust: validated storage, coverage-aware reads, adjustment.

    Build one with :func:`tickvault.open`. All methods are thread-safe as far as the store
    is; writes to one series are serialised by the store.

    Parameters
    ----------
    store
        Backend implementing the ``BarStore`` protocol.
    settings
        Configuration (quality policy, home folder, ...).
    providers
        Data sources for read-through, in preference order (may be empty).
    """

    def __init__(self, store: BarStore, settings: Settings, providers: Sequence[Provider] = (), *,
                 caches: CacheSet | None = None) -> None:
        # -- caches and event bus (docs/cache.md): built from settings unless given; reads and
        # invalidation then go through CachedStore, which keeps the BarStore contract.
        if caches is None:
            from tickvault._wiring import build_caches

            try:
                caches = build_caches(settings, store)
            except BaseException:
                store.close()
                raise
        self._caches = caches
        self._backend = store
        self._cached = CachedStore(store, caches) if caches.enabled else None
        self._store: BarStore = self._cached if self._cached is not None else store
        # -- end caches --
        self._settings = settings
        self._fetcher = Fetcher(providers, self._write_result, preference=settings.provider_preference)
        self._subscribers: list[Callable[[BarEvent], None]] = []
        self._sub_lock = threading.Lock()
        self._closed = False
        self._init_analytics()

    # -- context ----------------------------------------------------------------------
    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault(store={type(self._backend).__name__}, home={str(self._settings.home)!r})"

    @property
    def settings(self) -> Settings:
        """The settings this vault was opened with."""
        return self._settings

    @property
    def home(self) -> Path:
        """Root folder of the embedded store."""
        return self._settings.home

    @property
    def provider_calls(self) -> dict[str, int]:
        """Provider name -> number of calls made by read-through so far."""
        return self._fetcher.calls

    def close(self) -> None:
        """Close the store and providers. Idempotent."""
        if not self._closed:
            self._closed = True
            self._store.close()
            self._caches.bus.close()  # caches: stop the event listener, if any

    # -- reference data ---------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument:
        """The instrument record, or a best guess (US equity / crypto / FX) if unknown."""
        sym = validate_symbol(symbol)
        return self._store.instrument(sym) or Instrument.guess(sym)

    def add_instrument(self, instrument: Instrument) -> None:
        """Insert or replace an instrument record."""
        self._store.put_instrument(instrument)

    def copy_to(self, destination: Vault, *,
                progress: Callable[[str, str, int], None] | None = None) -> CopyReport:
        """Copy every series, its coverage, reports, quarantine, instruments and actions into
        ``destination`` (any backend). Idempotent: a second run writes nothing."""
        if destination is self:
            raise InvalidInput("cannot copy a vault into itself")
        return copy_store(self._store, destination._store, progress=progress)

    def remove_instrument(self, symbol: str) -> bool:
        """Remove an instrument record (stored bars, actions and coverage stay); whether it existed."""
        return self._store.delete_instrument(validate_symbol(symbol))

    def instruments(self) -> list[Instrument]:
        """Every known instrument, sorted by symbol."""
        return self._store.instruments()

    def calendar(self, symbol: str) -> TradingCalendar:
        """The trading calendar of ``symbol``."""
        return get_calendar(self.instrument(symbol).calendar)

    # -- write ------------------------------------------------------------------------
    def write(self, symbol: str, timeframe: str, frame: Any, provider: str = "user", *,
              coverage: CoverageMode = "bars") -> WriteReceipt:
        """Validate and store bars.

        Parameters
        ----------
        symbol
            Canonical symbol (``AAPL``, ``BRK.B``, ``BTC/USDT``).
        timeframe
            ``1m``, ``5m``, ``1h``, ``1d``, ...
        frame
            pandas (UTC ``DatetimeIndex`` or a ``ts`` column), polars or Arrow with
            ``open high low close volume`` (optional ``vwap``, ``trade_count``).
        provider
            Provenance recorded with the rows.
        coverage
            What the write marks as covered: each bar's interval (``"bars"``, default),
            the whole span first..last (``"span"``: the batch is complete, gaps are
            confirmed empty), or nothing (``"none"``).

        Returns
        -------
        WriteReceipt
            Rows written / unchanged / quarantined, bytes, and the quality report.

        Raises
        ------
        InvalidSymbol, InvalidTimeframe, SchemaError
            Bad input; nothing is written.
        """
        sym = validate_symbol(symbol)
        tf = Timeframe.parse(timeframe)
        table = conform_bars(frame, provider=provider)
        return self._write_table(sym, tf, table, coverage=coverage, provider=provider)

    def _write_table(self, sym: str, tf: Timeframe, table: pa.Table, *, coverage: CoverageMode,
                     provider: str | None, extra: Sequence[CoverageInterval] = ()) -> WriteReceipt:
        inst = self._store.instrument(sym)
        if inst is None:
            inst = Instrument.guess(sym)
            self._store.put_instrument(inst)
        return write_bars(
            self._store, sym, tf, table,
            calendar=get_calendar(inst.calendar),
            hard_rules=self._settings.hard_rules,
            actions=self._store.actions(sym),
            coverage=coverage,
            extra_coverage=extra,
            provider=provider,
            publish=self._publish,
            currency=inst.currency,
        )

    def _write_result(self, symbol: str, tf: Timeframe, result: BarsResult, provider: str,
                      query: BarsQuery) -> WriteReceipt:
        if result.actions:
            self._store.add_actions(symbol, result.actions)
        coverage: CoverageMode = "none" if result.coverage else "bars"
        receipt = self._write_table(symbol, tf, result.table, coverage=coverage, provider=provider,
                                    extra=result.coverage)
        # Recent bars may still change (open session, vendor revisions): whatever the provider
        # said, they are provisional, and the planner refetches them once stale.
        now = time.time_ns() // 1000
        window = (self._settings.revision_window_minutes * 60_000_000 if tf.is_intraday
                  else self._settings.revision_window_days * 86_400_000_000)
        lo, hi = max(query.start_us, now - window), min(query.end_us, now + tf.micros)
        if hi > lo:
            self._store.mark_covered(symbol, str(tf), [
                CoverageInterval(lo, hi, CoverageState.PROVISIONAL, provider, now)])
        return receipt

    def mark_covered(self, symbol: str, timeframe: str, start: Any, end: Any,
                     state: CoverageState | str = CoverageState.EMPTY, provider: str | None = None) -> None:
        """Record that ``[start, end)`` was asked about (e.g. confirmed to have no bars)."""
        rng = TimeRange(start, end)
        self._store.mark_covered(validate_symbol(symbol), str(Timeframe.parse(timeframe)), [
            CoverageInterval.of(rng.start, rng.end, CoverageState(state), provider, pd.Timestamp.now(tz="UTC"))])

    # -- read -------------------------------------------------------------------------
    def bars(self, symbol: str, timeframe: str, start: Any = None, end: Any = None, adjust: Adjust = "splits",
             fetch: Fetch = "auto", format: str = "pandas", *, fill: FillPolicy = "none",
             extended: bool = False) -> Any:
        """Bars of one symbol, served from the store and, where missing, from providers.

        Parameters
        ----------
        symbol, timeframe
            The series.
        start, end
            Range (UTC; a bare date as ``end`` includes that day). Without ``start`` the
            whole stored series is returned and nothing is fetched.
        adjust
            ``"splits"`` (default), ``"all"`` (splits and dividends) or ``"none"``.
        fetch
            ``"auto"``: fetch only what the coverage ledger says is missing;
            ``"never"``: stored data only; ``"always"``: refetch the range.
        format
            ``"pandas"`` (UTC ``DatetimeIndex`` named ``ts``), ``"polars"`` or ``"arrow"``.
        fill
            Gap filling on read: ``"none"`` (default), ``"nan"`` rows or ``"ffill"`` for
            expected bars that are absent (derived timeframes and stored ones alike).
        extended
            Derive intraday bars from extended hours too (regular hours by default).

        A timeframe that is not stored is derived by resampling the coarsest finer stored
        one (provenance ``derived:<source>``); a vendor's own bars always win.

        Raises
        ------
        MissingData
            ``fetch="auto"`` and part of the range is neither stored nor fetchable; the
            error lists the missing intervals.
        """
        if adjust not in _ADJUST:
            raise InvalidInput(f"adjust must be one of {', '.join(_ADJUST)}, got {adjust!r}")
        if fetch not in _FETCH:
            raise InvalidInput(f"fetch must be one of {', '.join(_FETCH)}, got {fetch!r}")
        sym = validate_symbol(symbol)
        tf = Timeframe.parse(timeframe)
        start_us: int | None = None
        end_us: int | None = None
        if fill not in ("none", "nan", "ffill"):
            raise InvalidInput(f"fill must be one of none, nan, ffill, got {fill!r}")
        if start is not None or end is not None:
            rng = TimeRange.of(start, end, default_end=pd.Timestamp.now(tz="UTC").ceil("min"))
            start_us, end_us = ts_to_us(rng.start), ts_to_us(rng.end)
        source = self._derivation_source(sym, tf)
        if source is not None:
            if start_us is not None and end_us is not None and fetch != "never":
                self._ensure(sym, source, start_us, end_us, refresh=fetch == "always")
            table = self._read_derived(sym, tf, source, start_us, end_us, extended=extended, fill=fill)
            return to_format(self._adjusted(sym, tf, table, adjust), format)
        if start is not None and start_us is not None and end_us is not None and fetch != "never":
            self._ensure(sym, tf, start_us, end_us, refresh=fetch == "always")
        table = self._store.read(sym, str(tf), start_us, end_us)
        if fill != "none":
            cal = self.calendar(sym)
            table = fill_gaps(table, tf, None if cal.is_24_7 else cal, start_us=start_us, end_us=end_us,
                              extended=extended, fill=fill)
        return to_format(self._adjusted(sym, tf, table, adjust), format)

    def _ensure(self, sym: str, tf: Timeframe, start_us: int, end_us: int, *, refresh: bool) -> None:
        inst = self.instrument(sym)
        cal = get_calendar(inst.calendar)
        if refresh:
            now_us = time.time_ns() // 1000
            todo = [(start_us, min(end_us, now_us))] if min(end_us, now_us) > start_us else []
        else:
            todo = plan_missing(self._store, cal, sym, tf, start_us, end_us)
        if not todo:
            return
        outcome: FetchOutcome | None = None
        if self._fetcher.providers:
            outcome = self._fetcher.fetch(inst, tf, todo)
            if refresh and outcome.receipts:
                return
        left = plan_missing(self._store, cal, sym, tf, start_us, end_us, coalesce=False)
        if left:
            why = "; ".join(str(e) for e in outcome.errors[:3]) if outcome and outcome.errors else (
                "no provider configured" if not self._fetcher.providers else "providers returned nothing for it")
            raise MissingData(
                f"{sym} {tf}: data missing ({why}); use fetch='never' for what is stored",
                intervals=[(us_to_ts(a), us_to_ts(b)) for a, b in left], symbol=sym, timeframe=str(tf))

    def _adjusted(self, sym: str, tf: Timeframe, table: pa.Table, adjust: Adjust) -> pa.Table:
        if adjust == "none" or table.num_rows == 0:
            return table
        acts = self._store.actions(sym)
        if not acts:
            return table
        # Intraday bars compare with the ex-date's midnight in the exchange's zone.
        return _adjust(table, acts, adjust, timeframe=tf, tz=self.calendar(sym).tz)

    def latest(self, symbol: str, timeframe: str, n: int = 500, adjust: Adjust = "splits",
               format: str = "pandas") -> Any:
        """The newest ``n`` stored bars (no fetching)."""
        if n < 0:
            raise InvalidInput(f"n must be >= 0, got {n}")
        sym = known_symbol(symbol)  # validate_symbol / Timeframe.parse, remembered: a hot read is µs
        tf = known_timeframe(timeframe)
        if format == "pandas" and self._cached is not None:  # the conversion, cached per generation
            return self._cached.latest_frame(sym, str(tf), n, adjust, lambda: to_format(
                self._adjusted(sym, tf, self._store.latest(sym, str(tf), n), adjust), format))
        table = self._store.latest(sym, str(tf), n)
        return to_format(self._adjusted(sym, tf, table, adjust), format)

    def fetch(self, symbol: str, timeframe: str, start: Any, end: Any = None, *, provider: str | None = None,
              refresh: bool = False) -> FetchOutcome:
        """Fetch what is missing in ``[start, end)`` (or everything with ``refresh``) and store it."""
        sym = validate_symbol(symbol)
        tf = Timeframe.parse(timeframe)
        rng = TimeRange.of(start, end, default_end=pd.Timestamp.now(tz="UTC").ceil("min"))
        s, e = ts_to_us(rng.start), ts_to_us(rng.end)
        inst = self.instrument(sym)
        todo = [(s, e)] if refresh else plan_missing(self._store, get_calendar(inst.calendar), sym, tf, s, e)
        if not todo:
            return FetchOutcome()
        return self._fetcher.fetch(inst, tf, todo, provider)

    def import_file(self, path: str | Path, symbol: str | None = None, timeframe: str | None = None, *,
                    tz: str | None = None, layout: str | None = None,
                    progress: Callable[[int], None] | None = None) -> ImportResult:
        """Import a CSV (plain or gzip), Parquet or Feather file through the write path.

        The layout (Yahoo, backtrader, zipline, freqtrade, Binance, ...) and the time
        format are recognised automatically; ``tz`` names the zone of naive local times.
        Split and dividend columns become corporate actions. The whole file is parsed
        before anything is written, so a malformed file changes nothing.

        Raises
        ------
        FileFormatError
            One line naming the file, the line and the problem.
        """
        spool = self.home / "tmp" if self.home.exists() else None
        return import_file(
            Path(path), symbol=validate_symbol(symbol) if symbol else None, timeframe=timeframe, tz=tz,
            layout=layout, spool_dir=spool,
            write=lambda s, tf, t: self._write_table(validate_symbol(s), tf, t, coverage="bars", provider="files"),
            add_actions=self._import_actions,
            progress=progress,
        )

    def _import_actions(self, symbol: str, actions: list[CorporateAction]) -> int:
        sym = validate_symbol(symbol)
        return self._store.add_actions(sym, actions)

    # -- coverage ---------------------------------------------------------------------
    def coverage(self, symbol: str, timeframe: str) -> list[CoverageInterval]:
        """The coverage ledger of a series."""
        return self._store.coverage(validate_symbol(symbol), str(Timeframe.parse(timeframe)))

    def missing(self, symbol: str, timeframe: str, start: Any, end: Any) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """``requested ∩ trading sessions − covered`` as UTC intervals (the future excluded)."""
        sym = validate_symbol(symbol)
        tf = Timeframe.parse(timeframe)
        rng = TimeRange.of(start, end)
        todo = plan_missing(self._store, self.calendar(sym), sym, tf, ts_to_us(rng.start), ts_to_us(rng.end),
                            coalesce=False)
        return [(us_to_ts(a), us_to_ts(b)) for a, b in todo]

    # -- corporate actions --------------------------------------------------------------
    def add_actions(self, symbol: str, frame: Any) -> int:
        """Store splits/dividends (a frame or ``CorporateAction`` list); returns how many changed."""
        sym = validate_symbol(symbol)
        return self._store.add_actions(sym, actions_from_frame(sym, frame))

    def actions(self, symbol: str, format: str = "pandas") -> Any:
        """Corporate actions of ``symbol`` (ex_date, kind, value, currency, provider)."""
        table = actions_to_table(self._store.actions(validate_symbol(symbol)))
        return to_format(table, format, index=False)

    def action_list(self, symbol: str) -> list[CorporateAction]:
        """Corporate actions as value objects."""
        return self._store.actions(validate_symbol(symbol))

    # -- quality ------------------------------------------------------------------------
    def quality(self, symbol: str, timeframe: str) -> QualityReport | None:
        """The latest quality report of a series (from its last write or validation)."""
        return self._store.latest_report(validate_symbol(symbol), str(Timeframe.parse(timeframe)))

    def validate(self, symbol: str, timeframe: str) -> QualityReport:
        """Run the quality rules over the stored series; the report becomes the latest."""
        sym = validate_symbol(symbol)
        tf = str(Timeframe.parse(timeframe))
        table = self._store.read(sym, tf)
        inst = self.instrument(sym)
        report = _quality.check(table, symbol=sym, timeframe=tf, calendar=get_calendar(inst.calendar),
                                actions=self._store.actions(sym), hard_rules=self._settings.hard_rules,
                                currency=inst.currency)
        report = QualityReport(report.symbol, report.timeframe, report.rows, report.counts, report.hard_rules,
                               report.flags, report.score, time.time_ns() // 1000)
        self._store.save_report(report)
        return report

    def quarantine(self, symbol: str, timeframe: str, format: str = "pandas") -> Any:
        """Rows held back by hard quality rules, with the rule and the reason."""
        table = self._store.quarantined(validate_symbol(symbol), str(Timeframe.parse(timeframe)))
        return to_format(table, format, index=False)

    # -- maintenance --------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Check every stored file; damaged ones are set aside and their range marked missing."""
        return self._store.verify()

    def compact(self) -> int:
        """Merge small files; returns how many series were compacted."""
        return self._store.compact()

    def status(self, symbol: str | None = None) -> list[SeriesStatus]:
        """Per stored series: bounds, rows, coverage holes inside its span, quality, last update."""
        sym = validate_symbol(symbol) if symbol is not None else None
        out = []
        for info in self._store.series():
            if sym is not None and info.symbol != sym:
                continue
            holes: list[tuple[int, int]] = []
            if info.first_us is not None and info.last_us is not None:
                tf = Timeframe.parse(info.timeframe)
                holes = plan_missing(self._store, self.calendar(info.symbol), info.symbol, tf,
                                     info.first_us, info.last_us + 1, coalesce=False)
            report = self._store.latest_report(info.symbol, info.timeframe)
            q = self._store.quarantined(info.symbol, info.timeframe).num_rows
            out.append(SeriesStatus(
                info.symbol, info.timeframe, info.rows,
                us_to_ts(info.first_us) if info.first_us is not None else None,
                us_to_ts(info.last_us) if info.last_us is not None else None,
                len(holes), [(us_to_ts(a), us_to_ts(b)) for a, b in holes[:20]],
                report.score if report else None, q,
                us_to_ts(info.last_write_us) if info.last_write_us else None))
        return out

    def size_bytes(self) -> int:
        """Bytes used by the store."""
        return self._store.size_bytes()

    # -- events -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[BarEvent], None]) -> Callable[[], None]:
        """Call ``callback`` after every write that stored rows; returns an unsubscribe function."""
        with self._sub_lock:
            self._subscribers.append(callback)

        def _unsubscribe() -> None:
            with self._sub_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return _unsubscribe

    def _publish(self, event: BarEvent) -> None:
        self._after_write(event.symbol, event.timeframe, event.first_us, event.last_us)  # analytics
        self._caches.bus.publish(event.symbol, event.timeframe, asdict(event))  # caches: new-bar event on the bus
        with self._sub_lock:
            subs = list(self._subscribers)
        for cb in subs:
            cb(event)

    # -- caches, event bus and health (docs/cache.md) ----------------------------------------
    def listen(self, callback: Callable[[BarEvent], None], symbol: str | None = None,
               timeframe: str | None = None) -> Callable[[], None]:
        """Receive new-bar events from the event bus; returns an unsubscribe function.

        With ``TICKVAULT_REDIS_URL`` the bus is Redis pub/sub (channel
        ``<cache_prefix>bars:<symbol>:<timeframe>``), so events of every process writing
        under the same prefix arrive, on a listener thread; otherwise this process's writes
        arrive synchronously. Delivery is best effort: the store is the truth.

        Parameters
        ----------
        callback
            Called with a :class:`BarEvent`; its exceptions are logged, not raised.
        symbol, timeframe
            Only events of this symbol / timeframe (default: all).
        """
        sym = validate_symbol(symbol) if symbol is not None else None
        tf = str(Timeframe.parse(timeframe)) if timeframe is not None else None

        def _deliver(message: dict[str, Any]) -> None:
            callback(BarEvent(str(message["symbol"]), str(message["timeframe"]), int(message["first_us"]),
                              int(message["last_us"]), int(message["rows"])))

        return self._caches.bus.subscribe(_deliver, sym, tf)

    def cache_stats(self) -> dict[str, Any]:
        """Cache counters: read hits/misses/bypasses, per-level stats, hit rate, Redis errors, events."""
        return cache_stats(self._cached, self._caches)

    def health(self) -> dict[str, Any]:
        """Backend kind, location, size and connectivity; cache hit rate; Redis connectivity.

        Never raises: a part that fails is reported (``status: "degraded"``).
        """
        return health_report(self._backend, self._settings, self._cached, self._caches)
