"""Analytics on the vault: derived timeframes, indicators, snapshots, screens, materialisation.

The pure work lives in :mod:`tickvault.transform`; this module decides *what* to read and
keeps derived results consistent with the store:

- A timeframe that is not stored is derived from the coarsest finer one that is
  (``best_source``); a vendor's own bars always win (DESIGN §3), and derived bars say so
  in their provenance (``provider = "derived:<source>"``).
- Indicators are computed on adjusted bars over the requested range plus a look-back of
  ten times the longest period (at least 250 bars), so recursive indicators (EMA, RSI,
  MACD, ATR, ADX) have converged to ~1e-9 of their full-history value.
- Snapshots are memoised per series and dropped on every write and every new corporate
  action for the symbol, so they are never older than the last acknowledged write.
- Materialised timeframes are kept stored and updated on every write to their source, by
  recomputing only the buckets the write touched.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.cache.base import series_key
from tickvault.calendars import TradingCalendar
from tickvault.engine._cached import ttl_for
from tickvault.engine._frames import to_format
from tickvault.engine._screen import evaluate, expression_fields
from tickvault.errors import InvalidInput
from tickvault.model import BAR_SCHEMA, Timeframe, ts_to_us, validate_symbol
from tickvault.transform import best_source, resample
from tickvault.transform.indicators import compute, parse_indicator

if TYPE_CHECKING:
    from tickvault.config import Settings
    from tickvault.engine._cached import CachedStore
    from tickvault.engine._write import CoverageMode
    from tickvault.model import WriteReceipt
    from tickvault.store.base import BarStore

__all__ = ["DEFAULT_SNAPSHOT", "Analytics", "FillPolicy", "derive_bars", "fill_gaps"]

FillPolicy = Literal["none", "nan", "ffill"]
DEFAULT_SNAPSHOT: tuple[str, ...] = ("rsi_14", "sma_20", "sma_50", "sma_200", "ema_20", "macd_12_26_9", "bb_20_2",
                                     "atr_14")
_WINDOWS_DAILY = {"chg_1d": 1, "chg_5d": 5, "chg_21d": 21, "chg_63d": 63, "chg_252d": 252}
_WINDOWS_INTRADAY = {"chg_1": 1, "chg_5": 5, "chg_15": 15, "chg_60": 60}
_MAX_UNIVERSE = 5000


def _pad_us(tf: Timeframe) -> int:
    day = 86_400_000_000
    if tf.unit == "mo":
        return 32 * day * tf.n
    return max(tf.micros, day if not tf.is_intraday else tf.micros)


def derive_bars(source: pa.Table, source_tf: Timeframe, target: Timeframe, calendar: TradingCalendar | None, *,
                start_us: int | None, end_us: int | None, extended: bool, fill: FillPolicy) -> pa.Table:
    """Resample ``source`` to ``target`` and keep buckets starting in ``[start_us, end_us)``."""
    start = pd.Timestamp(start_us * 1000, tz="UTC") if start_us is not None and fill != "none" else None
    end = pd.Timestamp(end_us * 1000, tz="UTC") if end_us is not None and fill != "none" else None
    out = resample(source, str(source_tf), str(target), calendar=calendar, extended=extended, fill=fill,
                   start=start, end=end)
    if out.num_rows:
        ts = out.column("ts").cast(pa.int64())
        mask = None
        if start_us is not None:
            mask = pc.greater_equal(ts, pa.scalar(start_us, pa.int64()))
        if end_us is not None:
            m2 = pc.less(ts, pa.scalar(end_us, pa.int64()))
            mask = m2 if mask is None else pc.and_(mask, m2)
        if mask is not None:
            out = out.filter(mask)
    label = pa.array([f"derived:{source_tf}"] * out.num_rows, pa.string()).dictionary_encode()
    return out.set_column(out.schema.get_field_index("provider"), "provider",
                          label.cast(BAR_SCHEMA.field("provider").type))


def fill_gaps(table: pa.Table, tf: Timeframe, calendar: TradingCalendar | None, *, start_us: int | None,
              end_us: int | None, extended: bool, fill: FillPolicy) -> pa.Table:
    """Add rows for expected-but-absent bars of a stored timeframe (``nan`` or ``ffill``)."""
    if table.num_rows == 0 and (start_us is None or end_us is None):
        return table
    start = pd.Timestamp(start_us * 1000, tz="UTC") if start_us is not None else None
    end = pd.Timestamp(end_us * 1000, tz="UTC") if end_us is not None else None
    return resample(table, str(tf), str(tf), calendar=calendar, extended=extended, fill=fill, start=start, end=end)


class Analytics:
    """Mixin giving :class:`~tickvault.engine.Vault` its analytics methods."""

    if TYPE_CHECKING:  # provided by Vault
        _store: BarStore
        _cached: CachedStore | None
        _settings: Settings

        def calendar(self, symbol: str) -> TradingCalendar: ...

        def bars(self, symbol: str, timeframe: str, start: Any = None, end: Any = None,
                 adjust: Literal["none", "splits", "all"] = "splits",
                 fetch: Literal["auto", "never", "always"] = "auto", format: str = "pandas", *,
                 fill: FillPolicy = "none", extended: bool = False) -> Any: ...

        def latest(self, symbol: str, timeframe: str, n: int = 500,
                   adjust: Literal["none", "splits", "all"] = "splits", format: str = "pandas") -> Any: ...

        def _write_table(self, sym: str, tf: Timeframe, table: pa.Table, *, coverage: CoverageMode,
                         provider: str | None, extra: Sequence[Any] = ()) -> WriteReceipt: ...

    def _init_analytics(self) -> None:
        self._materialized: dict[str, set[str]] = {}

    # -- derived timeframes -----------------------------------------------------------
    def _stored_timeframes(self, symbol: str) -> list[str]:
        return [s.timeframe for s in self._store.series() if s.symbol == symbol]

    def _derivation_source(self, symbol: str, target: Timeframe) -> Timeframe | None:
        """The stored timeframe to derive ``target`` from, or ``None`` to serve it natively."""
        if self._store.coverage(symbol, str(target)):  # cheap, and true for every fetched or written series
            return None
        stored = self._stored_timeframes(symbol)
        if str(target) in stored:
            return None
        src = best_source(stored, target)
        return None if src is None or src == target else src

    def _read_derived(self, symbol: str, target: Timeframe, source_tf: Timeframe, start_us: int | None,
                      end_us: int | None, *, extended: bool, fill: FillPolicy) -> pa.Table:
        pad = _pad_us(target)
        raw = self._store.read(symbol, str(source_tf), None if start_us is None else start_us - pad,
                               None if end_us is None else end_us + pad)
        cal = None if self.calendar(symbol).is_24_7 else self.calendar(symbol)
        return derive_bars(raw, source_tf, target, cal, start_us=start_us, end_us=end_us, extended=extended,
                           fill=fill)

    # -- indicators ---------------------------------------------------------------------
    def indicators(self, symbol: str, timeframe: str, names: Sequence[str], start: Any = None, end: Any = None,
                   *, adjust: Literal["none", "splits", "all"] = "splits", fetch: Literal["auto", "never", "always"]
                   = "never", format: str = "pandas") -> Any:
        """Indicator values aligned with the bars of ``[start, end)``.

        Parameters
        ----------
        symbol, timeframe
            The series (derived timeframes work too).
        names
            e.g. ``["rsi_14", "macd_12_26_9", "bb_20_2"]`` (see ``docs/analytics.md``).
        start, end
            Range of the returned rows; history before ``start`` is read as look-back.
        adjust
            Adjustment of the bars the indicators are computed on.
        fetch
            As in :meth:`Vault.bars` (default ``"never"``: compute on what is stored).
        format
            ``"pandas"``, ``"polars"`` or ``"arrow"``.

        Raises
        ------
        InvalidInput
            Unknown indicator name.
        """
        sym = validate_symbol(symbol)
        tf = Timeframe.parse(timeframe)
        specs = [parse_indicator(n) for n in names]
        if not specs:
            raise InvalidInput("name at least one indicator, e.g. rsi_14")
        lookback = max(250, 10 * max(max(s.params, default=1) for s in specs))
        padded_start = None
        if start is not None:
            s_us = ts_to_us(pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None
                            else pd.Timestamp(start).tz_convert("UTC"))
            padded_start = self._lookback_start(sym, tf, s_us, int(lookback))
        bars = self.bars(sym, str(tf), padded_start, end, adjust=adjust, fetch=fetch, format="arrow")
        if padded_start is not None and bars.num_rows == 0:
            bars = self.bars(sym, str(tf), start, end, adjust=adjust, fetch=fetch, format="arrow")
        sessions = None
        if any(s.needs_sessions for s in specs) and bars.num_rows:
            ts_us = bars.column("ts").cast(pa.int64()).to_numpy()
            sessions = self.calendar(sym).session_labels(ts_us) if tf.is_intraday else ts_us
        table = compute([s.name for s in specs], bars, session_ids=sessions)
        if start is not None and table.num_rows:
            first = ts_to_us(pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None
                             else pd.Timestamp(start).tz_convert("UTC"))
            table = table.filter(pc.greater_equal(table.column("ts").cast(pa.int64()), pa.scalar(first, pa.int64())))
        return to_format(table, format)

    def _lookback_start(self, symbol: str, tf: Timeframe, start_us: int, bars: int) -> pd.Timestamp:
        cal = self.calendar(symbol)
        span = bars * (tf.micros if tf.is_intraday else 86_400_000_000 * (7 if tf.unit == "w" else 31 if
                                                                             tf.unit == "mo" else 1))
        for factor in (2, 6, 20):
            lo = start_us - span * factor
            if tf.is_intraday or tf.unit == "d":
                n = len(cal.bar_bounds(str(tf), max(lo, ts_to_us(cal.first_session)), start_us)[0])
                if n >= bars:
                    break
            else:
                break
        return pd.Timestamp(max(lo, ts_to_us(cal.first_session)) * 1000, tz="UTC")

    # -- snapshots and screens ------------------------------------------------------------
    def snapshot(self, symbols: Sequence[str] | str, timeframe: str = "1d",
                 indicators: Sequence[str] = DEFAULT_SNAPSHOT, *, adjust: Literal["none", "splits", "all"] = "splits",
                 format: str = "pandas") -> Any:
        """Per symbol: the latest bar, change over common windows and latest indicator values.

        Symbols with no stored bars are listed with empty values. Rows are kept in the
        vault's caches (L1, and Redis when configured) under the generations of the symbol's
        bars and corporate actions, so any write or new action makes them unreachable.
        """
        syms = [symbols] if isinstance(symbols, str) else list(symbols)
        if len(syms) > _MAX_UNIVERSE:
            raise InvalidInput(f"at most {_MAX_UNIVERSE} symbols per snapshot, got {len(syms)}")
        tf = Timeframe.parse(timeframe)
        names = tuple(dict.fromkeys(parse_indicator(n).name for n in indicators))
        rows = [self._snapshot_row(validate_symbol(s), tf, names, adjust) for s in syms]
        frame = pd.DataFrame(rows)
        if frame.empty:
            frame = pd.DataFrame(columns=["symbol"])
        frame = frame.set_index("symbol")
        if format == "pandas":
            return frame
        return to_format(pa.Table.from_pandas(frame.reset_index(), preserve_index=False), format, index=False)

    def _snapshot_row(self, sym: str, tf: Timeframe, names: tuple[str, ...], adjust: str) -> dict[str, Any]:
        cached = self._cached
        if cached is None:
            return self._compute_snapshot_row(sym, tf, names, adjust)
        blob = cached.remember(
            f"snapshot:{sym}:{tf}:{adjust}:{','.join(names)}",
            [series_key("bars", sym, str(tf)), series_key("meta", sym)],
            ttl_for(str(tf)),
            lambda: json.dumps(self._compute_snapshot_row(sym, tf, names, adjust), default=_iso).encode())
        row: dict[str, Any] = json.loads(blob)
        if row.get("ts") is not None:
            row["ts"] = pd.Timestamp(row["ts"])
        else:
            row["ts"] = pd.NaT
        return row

    def _compute_snapshot_row(self, sym: str, tf: Timeframe, names: tuple[str, ...], adjust: str) -> dict[str, Any]:
        windows = _WINDOWS_INTRADAY if tf.is_intraday else _WINDOWS_DAILY
        specs = [parse_indicator(n) for n in names]
        need = max([253, *(10 * int(max(s.params, default=1)) for s in specs)])
        bars = self.latest(sym, str(tf), n=need, adjust=adjust, format="arrow")  # type: ignore[arg-type]
        row: dict[str, Any] = {"symbol": sym, "timeframe": str(tf), "ts": pd.NaT}
        if bars.num_rows:
            last = bars.slice(bars.num_rows - 1).to_pylist()[0]
            row.update({k: last[k] for k in ("ts", "open", "high", "low", "close", "volume")})
            close = bars.column("close").to_numpy(zero_copy_only=False)
            for col, w in windows.items():
                row[col] = float(close[-1] / close[-1 - w] - 1.0) if close.size > w else np.nan
            sessions = None
            if any(s.needs_sessions for s in specs):
                ts_us = bars.column("ts").cast(pa.int64()).to_numpy()
                sessions = self.calendar(sym).session_labels(ts_us) if tf.is_intraday else ts_us
            ind = compute(list(names), bars, session_ids=sessions)
            for col in ind.column_names:
                if col != "ts":
                    row[col] = ind.column(col)[-1].as_py()
        return row

    def screen(self, expression: str, universe: Sequence[str] | None = None, timeframe: str = "1d", *,
               adjust: Literal["none", "splits", "all"] = "splits") -> pd.DataFrame:
        """Symbols whose snapshot satisfies ``expression`` (e.g. ``rsi_14 < 30 and close > sma_200``).

        Fields are the snapshot columns: ``open high low close volume``, the change windows
        (``chg_1d chg_5d chg_21d chg_63d chg_252d``, intraday ``chg_1 chg_5 ...``) and any
        indicator output column (``rsi_14``, ``sma_200``, ``macd_12_26_9_hist`` ...).

        Raises
        ------
        InvalidInput
            Unknown field (the message lists the known ones) or a disallowed expression.
        """
        tf = Timeframe.parse(timeframe)
        fields = expression_fields(expression)
        wanted = list(DEFAULT_SNAPSHOT)
        for f in fields:
            name = _indicator_for_field(f)
            if name is not None and name not in wanted:
                wanted.append(name)
        syms = list(universe) if universe is not None else sorted(
            {s.symbol for s in self._store.series() if s.timeframe == str(tf)})
        snap = self.snapshot(syms, str(tf), wanted, adjust=adjust)
        known = list(snap.columns)
        if snap.empty:
            evaluate(expression, pd.DataFrame(columns=known), known)
            return pd.DataFrame(snap)
        return pd.DataFrame(snap[evaluate(expression, snap, known)])

    # -- materialised timeframes ----------------------------------------------------------
    def materialize(self, symbol: str, timeframes: Sequence[str]) -> dict[str, int]:
        """Keep coarser ``timeframes`` of ``symbol`` stored and updated on every write.

        Builds each target from the finest stored timeframe now, then recomputes only the
        touched buckets after each later write to that source. Returns rows written per
        target.

        Raises
        ------
        InvalidInput
            A target that cannot be built from the stored timeframes.
        """
        sym = validate_symbol(symbol)
        stored = [Timeframe.parse(t) for t in self._stored_timeframes(sym)]
        out: dict[str, int] = {}
        for t in timeframes:
            target = Timeframe.parse(t)
            finer = [s for s in stored if s < target and s.divides(target)]
            if not finer:
                raise InvalidInput(f"{sym} {target} cannot be built from stored timeframes "
                                   f"{', '.join(map(str, stored)) or '(none)'}")
            self._materialized_targets(sym)
            self._materialized[sym].add(str(target))
            source = min(finer)
            out[str(target)] = self._refresh_materialized(sym, source, target, None, None)
        return out

    def _refresh_materialized(self, sym: str, source: Timeframe, target: Timeframe, first_us: int | None,
                              last_us: int | None) -> int:
        pad = _pad_us(target)
        lo = None if first_us is None else first_us - pad
        hi = None if last_us is None else last_us + pad
        raw = self._store.read(sym, str(source), lo, hi)
        if raw.num_rows == 0:
            return 0
        cal = None if self.calendar(sym).is_24_7 else self.calendar(sym)
        derived = derive_bars(raw, source, target, cal, start_us=None, end_us=None, extended=False, fill="none")
        if first_us is not None and derived.num_rows:
            # keep only whole buckets the write touched: a bucket at the padded edges may be partial
            ts = derived.column("ts").cast(pa.int64())
            keep = pc.and_(pc.greater_equal(ts, pa.scalar(first_us - pad + 1, pa.int64())),
                           pc.less_equal(ts, pa.scalar(last_us, pa.int64())))
            derived = derived.filter(keep)
        receipt = self._write_table(sym, target, derived, coverage="bars", provider=f"derived:{source}")
        return receipt.rows_written

    def _materialized_targets(self, symbol: str) -> set[str]:
        """Registered targets, the settings default, and stored series that say they are derived.

        A materialised series marks its coverage with provider ``derived:<source>``, so the
        registration survives a restart without any extra state.
        """
        known = self._materialized.get(symbol)
        if known is None:
            known = set()
            for info in self._store.series():
                if info.symbol == symbol and any((iv.provider or "").startswith("derived:")
                                                 for iv in self._store.coverage(symbol, info.timeframe)):
                    known.add(info.timeframe)
            self._materialized[symbol] = known
        defaults = self._settings.materialize
        return known | set(defaults.get(symbol, ())) | set(defaults.get("*", ()))

    def _after_write(self, symbol: str, timeframe: str, first_us: int, last_us: int) -> None:
        targets = self._materialized_targets(symbol)
        if not targets or timeframe in targets:
            return
        source = Timeframe.parse(timeframe)
        for t in sorted(targets, key=lambda x: Timeframe.parse(x)):
            target = Timeframe.parse(t)
            if source < target and source.divides(target):
                self._refresh_materialized(symbol, source, target, first_us, last_us)


def _iso(value: Any) -> Any:
    """JSON for timestamps in a cached snapshot row."""
    if isinstance(value, dt.datetime | np.datetime64):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if value is pd.NaT:
        return None
    raise TypeError(f"cannot cache {type(value).__name__} in a snapshot row")


def _indicator_for_field(field: str) -> str | None:
    """The indicator name that produces a snapshot column (``macd_12_26_9_hist`` -> ``macd_12_26_9``)."""
    parts = field.split("_")
    for cut in range(len(parts), 0, -1):
        candidate = "_".join(parts[:cut])
        try:
            spec = parse_indicator(candidate)
        except InvalidInput:
            continue
        if field in spec.columns:
            return spec.name
    return None
