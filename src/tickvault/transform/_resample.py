"""Resampling canonical bars to a coarser timeframe, session-aware, vectorised.

Why this module exists: tickvault stores what providers deliver and derives every other
timeframe from it (DESIGN §3). Deriving correctly needs the trading calendar: an hourly bar
of a New York stock starts at 09:30, not 09:00; a daily bar is one *session* (which for CME
futures opens the evening before); a week is the sessions of an ISO week in the exchange's
own dates, so a holiday Monday does not move it. 24/7 markets (and ``calendar=None``) use
the plain UTC grid.

Conventions (docs/analytics.md has the full table):

- Every source bar is assigned to the target bar that contains its start, then buckets are
  aggregated with ``np.*.reduceat`` (no per-row Python): open = first, high = max, low = min,
  close = last, volume = sum, vwap = volume-weighted mean (null if any bar of the bucket has
  volume but no vwap, or the bucket has no volume), trade_count = sum of known counts (null
  if none is known), provider = the bucket's provider if unique else ``"derived"``.
- Exchange calendars: intraday targets follow ``cal.bar_bounds`` (aligned to each session's
  open and to the end of a lunch break, the last bar clipped at the close); source bars
  outside regular hours are dropped unless ``extended=True``. Daily = one bar per session,
  labelled with the session date at 00:00 UTC; weekly = Monday 00:00 UTC of the session
  date's ISO week; monthly = the 1st, 00:00 UTC.
- A source bar that does not sit on the source grid of its target bar (e.g. UTC-aligned
  hourly bars of a 09:30 session resampled to 2h) raises, because its bucket would be wrong.
- Resampling to the same timeframe returns the bars unchanged (apart from the rules above).
- Gap fill (on read): ``"none"`` returns only buckets that had data; ``"nan"`` adds a row of
  nulls for every expected-but-absent target bar (from ``cal.bar_bounds``); ``"ffill"``
  fills those with the previous close as open/high/low/close and volume 0 (leading gaps
  stay null). Synthetic rows have a null provider.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import InvalidInput, InvalidRange, InvalidTimeframe
from tickvault.model import BAR_SCHEMA, Timeframe, TimeLike, conform_bars, dedupe_last, to_utc

if TYPE_CHECKING:  # only for annotations: importing calendars pulls in exchange_calendars (~0.5 s)
    from tickvault.calendars import TradingCalendar

__all__ = ["FillMode", "best_source", "can_resample", "resample"]

FillMode = Literal["none", "nan", "ffill"]
DAY_US = 86_400_000_000
_WEEK_DAYS = 7
_DERIVED = "derived"
_CHECK_CHUNK = 8192  # rows per chunk of the grid check (64 KiB temporaries)


# --------------------------------------------------------------------------- planning


def can_resample(source_tf: str | Timeframe, target_tf: str | Timeframe) -> bool:
    """Whether bars of ``target_tf`` can be built exactly from bars of ``source_tf``.

    Intraday -> any coarser intraday multiple, ``1d``, ``1w`` or ``1mo``; ``1d`` -> ``1w``
    or ``1mo``; any timeframe -> itself. Multi-session targets (``2d``, ``3mo``) are not
    defined by a trading calendar and are refused.
    """
    src, tgt = Timeframe.parse(source_tf), Timeframe.parse(target_tf)
    if src == tgt:
        return True
    if not tgt.is_intraday and tgt.n != 1:
        return False
    if src.is_intraday and tgt.is_intraday:
        return tgt.nanos % src.nanos == 0 and tgt.nanos > src.nanos
    if src.is_intraday:
        return True
    return src == Timeframe(1, "d") and tgt.unit in ("w", "mo")


def best_source(available: Sequence[str | Timeframe], target_tf: str | Timeframe) -> Timeframe | None:
    """Which stored timeframe to serve ``target_tf`` from.

    The target itself wins when it is available: a vendor's official daily bar is never
    replaced by one derived from intraday bars (DESIGN §3); the vault decides whether to
    derive at all. Otherwise the coarsest available timeframe that can be resampled to the
    target (fewest rows to read), or ``None``.

    Parameters
    ----------
    available
        Timeframes stored (or deliverable) for the symbol.
    target_tf
        Timeframe asked for.
    """
    tgt = Timeframe.parse(target_tf)
    tfs = [Timeframe.parse(t) for t in available]
    if tgt in tfs:
        return tgt
    usable = [t for t in tfs if can_resample(t, tgt)]
    return max(usable) if usable else None


# --------------------------------------------------------------------------- labels


def _ts_us(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)


def _session_day_label(day_us: np.ndarray, unit: str) -> np.ndarray:
    """Daily labels (00:00 UTC of a date) -> labels of the ``d``/``w``/``mo`` bucket."""
    if unit == "d":
        return np.asarray(day_us, dtype=np.int64)
    days = day_us // DAY_US
    if unit == "w":
        return np.asarray((days - (days + 3) % _WEEK_DAYS) * DAY_US, dtype=np.int64)  # epoch day 0: Thursday
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    return np.asarray(months.astype("datetime64[D]").astype(np.int64) * DAY_US, dtype=np.int64)


def _utc_labels(ts: np.ndarray, tgt: Timeframe) -> tuple[np.ndarray, np.ndarray]:
    """UTC-grid labels (24/7 markets, no calendar) and the keep mask."""
    if tgt.is_intraday:
        return ts - np.mod(ts, tgt.micros), np.ones(ts.shape, dtype=bool)
    return _session_day_label(ts - np.mod(ts, DAY_US), tgt.unit), np.ones(ts.shape, dtype=bool)


def _schedule_us(cal: TradingCalendar, ts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Session labels, opens, closes, break starts/ends (µs; breaks -1 when none)."""
    lo = pd.Timestamp(int(ts.min()) * 1000, tz="UTC") - pd.Timedelta(days=2)
    hi = pd.Timestamp(int(ts.max()) * 1000, tz="UTC") + pd.Timedelta(days=2)
    sched = cal.schedule(lo.date(), hi.date())

    def us(col: str) -> np.ndarray:
        idx = pd.DatetimeIndex(sched[col])
        out = np.asarray(idx.as_unit("us").asi8, dtype=np.int64)
        return np.where(idx.isna(), -1, out)

    days = np.asarray(pd.DatetimeIndex(sched.index).as_unit("us").asi8, dtype=np.int64)
    return days, us("open"), us("close"), us("break_start"), us("break_end")


def _exchange_session_labels(cal: TradingCalendar, ts: np.ndarray, src: Timeframe,
                             extended: bool) -> tuple[np.ndarray, np.ndarray]:
    """Session date (µs at 00:00 UTC) of each intraday bar and the keep mask."""
    if extended and cal.has_extended_hours:
        starts, _ = cal.bar_bounds(src, int(ts.min()), int(ts.max()) + 1, extended=True)
        pos = np.clip(np.searchsorted(starts, ts), 0, max(starts.size - 1, 0))
        keep = (starts.size > 0) & (starts[pos] == ts) if starts.size else np.zeros(ts.shape, dtype=bool)
        local = pd.DatetimeIndex(ts.astype("datetime64[us]")).tz_localize("UTC").tz_convert(cal.tz).tz_localize(None)
        days = np.asarray(local.normalize().as_unit("us").asi8, dtype=np.int64)
        return days, np.asarray(keep, dtype=bool)
    days, opens, closes, b0, b1 = _schedule_us(cal, ts)
    if opens.size == 0:  # outside the calendar's bounds: no session, nothing kept
        return ts.copy(), np.zeros(ts.shape, dtype=bool)
    i = np.searchsorted(opens, ts, side="right") - 1
    ok = i >= 0
    j = np.where(ok, i, 0)
    keep = ok & (ts < closes[j]) & ~((b0[j] >= 0) & (ts >= b0[j]) & (ts < b1[j]))
    return days[j], keep


def _check_bounds(cal: TradingCalendar | None, ts: np.ndarray) -> None:
    """Refuse bars outside the calendar's sessions: they would be dropped silently."""
    if cal is None:
        return
    lo = int(cal.first_session.value // 1000) - DAY_US
    hi = int(cal.last_session.value // 1000) + 2 * DAY_US
    if int(ts.min()) < lo or int(ts.max()) >= hi:
        first, last = (pd.Timestamp(int(v) * 1000, tz="UTC") for v in (ts.min(), ts.max()))
        raise InvalidRange(
            f"bars from {first} to {last} reach outside calendar {cal.name} "
            f"({cal.first_session.date()}..{cal.last_session.date()}); build it with wider start/end bounds",
            calendar=cal.name)


def _labels(ts: np.ndarray, src: Timeframe, tgt: Timeframe, cal: TradingCalendar | None,
            extended: bool) -> tuple[np.ndarray, np.ndarray]:
    """Target label of each source bar and which bars to keep."""
    if ts.size == 0:
        return ts.copy(), np.zeros(0, dtype=bool)
    if not src.is_intraday:
        return _session_day_label(ts - np.mod(ts, DAY_US), tgt.unit), np.ones(ts.shape, dtype=bool)
    if cal is None or cal.is_24_7:
        labels, keep = _utc_labels(ts, tgt)
        _check_bounds(cal, ts)
    elif tgt.is_intraday:
        _check_bounds(cal, ts)
        starts, ends = cal.bar_bounds(tgt, int(ts.min()) - DAY_US, int(ts.max()) + 1, extended=extended)
        i = np.searchsorted(starts, ts, side="right") - 1
        ok = i >= 0
        j = np.where(ok, i, 0)
        keep = ok & (ts < ends[j]) if starts.size else np.zeros(ts.shape, dtype=bool)
        labels = starts[j] if starts.size else ts.copy()
    else:
        _check_bounds(cal, ts)
        days, keep = _exchange_session_labels(cal, ts, src, extended)
        labels = _session_day_label(days, tgt.unit)
    if tgt.is_intraday:
        off = np.mod(ts[keep] - labels[keep], src.micros)
        if off.size and bool(np.any(off != 0)):
            bad = int(ts[keep][np.argmax(off != 0)])
            raise InvalidInput(
                f"source bar at {pd.Timestamp(bad * 1000, tz='UTC')} is not on the {src} grid of its {tgt} target bar;"
                " resample from bars aligned to the session (or UTC) grid",
                timeframe=str(tgt))
    return labels, keep


# --------------------------------------------------------------------------- segments (fast path)
# The per-row labelling above costs a binary search and several gathers per *source* bar.
# For session-aligned targets the buckets are a few sorted, disjoint intervals (one per
# target bar, or per session piece), so it is cheaper to binary-search the interval bounds
# in the sorted timestamps and get each bucket as a row range: O(buckets * log rows)
# instead of O(rows * log buckets), and no per-row label array at all. Same buckets, same
# bars kept, same errors as :func:`_labels` (a differential test pins that).


@functools.lru_cache(maxsize=16)
def _session_arrays(cal: TradingCalendar) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every session of ``cal``: labels, opens, closes, break starts/ends (µs; -1: no break).

    Computed once per calendar (~2 ms for 70 years of XNYS) instead of once per call.
    """
    sched = cal.schedule(cal.first_session, cal.last_session)

    def us(col: str) -> np.ndarray:
        idx = pd.DatetimeIndex(sched[col])
        out = np.where(idx.isna(), -1, np.asarray(idx.as_unit("us").asi8, dtype=np.int64))
        out.setflags(write=False)
        return out

    days = np.asarray(pd.DatetimeIndex(sched.index).as_unit("us").asi8, dtype=np.int64)
    days.setflags(write=False)
    return days, us("open"), us("close"), us("break_start"), us("break_end")


@functools.lru_cache(maxsize=64)
def _bar_bounds(cal: TradingCalendar, tgt: Timeframe, lo: int, hi: int, extended: bool) -> tuple[np.ndarray, ...]:
    """``cal.bar_bounds`` cached on whole-day windows (a universe of symbols shares them)."""
    starts, ends = cal.bar_bounds(tgt, lo, hi, extended=extended)
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    starts.setflags(write=False)
    ends.setflags(write=False)
    return starts, ends


def _intervals(ts: np.ndarray, tgt: Timeframe, cal: TradingCalendar,
               extended: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted, disjoint ``[start, end)`` intervals that hold the target bars, and their labels."""
    if tgt.is_intraday:
        # The same window as _labels (bars starting up to a day before the first source bar),
        # widened to whole days so that symbols over the same dates share one cached grid.
        lo = (int(ts[0]) - DAY_US) // DAY_US * DAY_US
        hi = (int(ts[-1]) + DAY_US) // DAY_US * DAY_US + DAY_US
        starts, ends = _bar_bounds(cal, tgt, lo, hi, extended)
        return starts, ends, starts
    days, opens, closes, b0, b1 = _session_arrays(cal)
    i0 = max(int(np.searchsorted(opens, ts[0], side="right")) - 1, 0)
    i1 = int(np.searchsorted(opens, ts[-1], side="right"))
    days, opens, closes, b0, b1 = days[i0:i1], opens[i0:i1], closes[i0:i1], b0[i0:i1], b1[i0:i1]
    brk = b0 >= 0
    if not bool(brk.any()):
        return opens, closes, _session_day_label(days, tgt.unit)
    # A lunch break splits its session in two intervals with the same label.
    starts = np.concatenate([opens, b1[brk]])
    ends = np.concatenate([np.where(brk, b0, closes), closes[brk]])
    labels = np.concatenate([days, days[brk]])
    order = np.argsort(starts, kind="stable")
    return starts[order], ends[order], _session_day_label(labels[order], tgt.unit)


def _segments(ts: np.ndarray, src: Timeframe, tgt: Timeframe, cal: TradingCalendar | None,
              extended: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Buckets of sorted ``ts`` as row ranges: ``(labels, starts, keep)``, or ``None``.

    ``starts`` index the rows left after applying ``keep`` (``None``: every row is kept).
    ``None`` overall means "not a session-aligned case": use :func:`_labels`.
    """
    if ts.size == 0 or not src.is_intraday or cal is None or cal.is_24_7:
        return None
    if not tgt.is_intraday and extended and cal.has_extended_hours:
        return None
    _check_bounds(cal, ts)
    lo_b, hi_b, labels = _intervals(ts, tgt, cal, extended)
    a = np.searchsorted(ts, lo_b, side="left")
    b = np.searchsorted(ts, hi_b, side="left")
    nonempty = b > a
    a, b, labels, lo_b = a[nonempty], b[nonempty], labels[nonempty], lo_b[nonempty]
    counts = b - a
    n = ts.size
    keep: np.ndarray | None = None
    if int(counts.sum()) == n:
        starts = a
    else:
        marks = np.zeros(n + 1, dtype=np.int32)
        marks[a] += 1
        marks[b] -= 1
        keep = np.cumsum(marks[:n]) > 0
        starts = np.concatenate(([0], np.cumsum(counts[:-1]))).astype(np.int64) if counts.size else counts
    if tgt.is_intraday and counts.size:
        _check_grid(ts if keep is None else ts[keep], lo_b, counts, src, tgt)
    if counts.size > 1 and not tgt.is_intraday:
        first = np.r_[True, labels[1:] != labels[:-1]]  # pieces of one session / week / month
        labels, starts = labels[first], starts[first]
    return labels, starts, keep


def _check_grid(kept_ts: np.ndarray, bucket_starts: np.ndarray, counts: np.ndarray, src: Timeframe,
                tgt: Timeframe) -> None:
    """Raise like :func:`_labels` when a kept bar is off the source grid of its target bar."""
    m = src.micros
    phase = np.mod(bucket_starts, m)
    first_bad: int | None = None
    if bool(np.all(phase == phase[0])):  # the usual case: one comparison per row
        # In chunks: a row-sized int64 temporary would cost more in page faults than the check.
        for i in range(0, kept_ts.size, _CHECK_CHUNK):
            part = kept_ts[i:i + _CHECK_CHUNK]
            bad = np.mod(part, m) != phase[0]
            if bool(bad.any()):
                first_bad = int(part[int(np.argmax(bad))])
                break
    else:
        bad = np.mod(kept_ts - np.repeat(bucket_starts, counts), m) != 0
        if bool(bad.any()):
            first_bad = int(kept_ts[int(np.argmax(bad))])
    if first_bad is not None:
        raise InvalidInput(
            f"source bar at {pd.Timestamp(first_bad * 1000, tz='UTC')} is not on the {src} grid of its {tgt} "
            "target bar; resample from bars aligned to the session (or UTC) grid",
            timeframe=str(tgt))


# --------------------------------------------------------------------------- aggregation


def _floats(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name).cast(pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _aggregate(table: pa.Table, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Aggregate the rows of ``table`` in segments beginning at ``starts``."""
    n = table.num_rows
    ends = np.r_[starts[1:], n] - 1
    size = ends - starts + 1
    o, h, lo, c, v = (_floats(table, k) for k in ("open", "high", "low", "close", "volume"))
    vw = _floats(table, "vwap")
    out: dict[str, np.ndarray] = {
        "open": o[starts],
        "high": np.fmax.reduceat(h, starts),
        "low": np.fmin.reduceat(lo, starts),
        "close": c[ends],
    }
    if not bool(np.isnan(v).any()) and bool(np.isfinite(vw).all()):
        # Fast path (every volume and vwap known, the usual case): the general rules below
        # reduce to these, value for value, with a third of the passes over the rows.
        out["volume"] = wsum = np.add.reduceat(v, starts)
        # One temporary, zeroed in place where nothing traded (as the general path does):
        # every fresh multi-megabyte temporary costs page faults that dominate these passes.
        prod = np.multiply(vw, v)
        idle = v == 0.0
        if bool(idle.any()):
            prod[idle] = 0.0
        pv = np.add.reduceat(prod, starts)
        with np.errstate(divide="ignore", invalid="ignore"):
            vw_out = np.where(wsum == 0.0, np.nan, pv / wsum)
    else:
        v_known = ~np.isnan(v)
        out["volume"] = np.where(np.add.reduceat(v_known.astype(np.int64), starts) > 0,
                                 np.add.reduceat(np.where(v_known, v, 0.0), starts), np.nan)
        # VWAP: exact only when every bar that traded also reports its vwap.
        traded = ~v_known | (v != 0.0)
        unknown = np.add.reduceat((traded & np.isnan(vw)).astype(np.int64), starts) > 0
        weight = np.where(v_known & ~np.isnan(vw), v, 0.0)
        pv = np.add.reduceat(np.where(weight != 0.0, vw * weight, 0.0), starts)
        wsum = np.add.reduceat(weight, starts)
        with np.errstate(divide="ignore", invalid="ignore"):
            vw_out = np.where(unknown | (wsum == 0.0), np.nan, pv / wsum)
    out["vwap"] = np.where(size == 1, vw[starts], vw_out)
    tc = table.column("trade_count")
    if tc.null_count == 0:
        tc_vals = np.asarray(tc.to_numpy(), dtype=np.int64)
        out["trade_count"] = np.add.reduceat(tc_vals, starts)
        out["trade_count_known"] = np.ones(starts.size, dtype=bool)
        return out
    tc_known = np.asarray(tc.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    tc_vals = np.asarray(tc.fill_null(pa.scalar(0, pa.int64())).to_numpy(zero_copy_only=False), dtype=np.int64)
    out["trade_count"] = np.add.reduceat(tc_vals, starts)
    out["trade_count_known"] = np.add.reduceat(tc_known.astype(np.int64), starts) > 0
    return out


def _providers(table: pa.Table, starts: np.ndarray) -> Any:
    """Provider per segment: the unique value, else ``"derived"`` (null if all null)."""
    single = _single_provider(table.column("provider"))
    if single is not None:  # one provider, no nulls (the usual case): no string pass needed
        only = [single] if single == _DERIVED else [single, _DERIVED]
        return pa.DictionaryArray.from_arrays(np.zeros(starts.size, dtype=np.int32), pa.array(only, pa.string()))
    col = table.column("provider").cast(pa.string()).combine_chunks()
    enc = col.dictionary_encode()
    codes = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    names = enc.dictionary.to_pylist()
    lo = np.minimum.reduceat(codes, starts)
    hi = np.maximum.reduceat(codes, starts)
    if _DERIVED in names:
        derived = names.index(_DERIVED)
    else:
        derived = len(names)
        names.append(_DERIVED)
    dictionary = pa.array(names, pa.string())
    idx = np.where(lo == hi, lo, derived)
    indices = pa.array(idx, pa.int32(), mask=idx < 0)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _single_provider(col: Any) -> str | None:
    """The provider when every row has the same non-null one (dictionary columns only), else ``None``."""
    if col.null_count or not pa.types.is_dictionary(col.type) or len(col) == 0:
        return None
    arr = (col.unify_dictionaries() if col.num_chunks > 1 else col).combine_chunks()
    idx = np.asarray(arr.indices.to_numpy(zero_copy_only=False))
    if int(idx.min()) != int(idx.max()):
        return None
    value = arr.dictionary[int(idx[0])].as_py()
    return value if isinstance(value, str) else None


def _build(ts: np.ndarray, agg: dict[str, np.ndarray], providers: Any) -> pa.Table:
    cols: list[Any] = [pa.array(ts, pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
    for name in ("open", "high", "low", "close", "volume", "vwap"):
        cols.append(pa.array(agg[name], pa.float64(), from_pandas=True))
    cols.append(pa.array(agg["trade_count"], pa.int64(), mask=~agg["trade_count_known"]))
    cols.append(providers.cast(BAR_SCHEMA.field("provider").type))
    return pa.Table.from_arrays(cols, schema=BAR_SCHEMA)


# --------------------------------------------------------------------------- fill


def _expected(cal: TradingCalendar | None, tgt: Timeframe, lo: int, hi: int, extended: bool) -> np.ndarray:
    """Labels of every expected target bar starting in ``[lo, hi)`` (µs)."""
    if cal is not None and not (cal.is_24_7 and tgt.is_intraday):
        starts, _ = cal.bar_bounds(tgt, lo, hi, extended=extended)
        return np.asarray(starts, dtype=np.int64)
    if tgt.is_intraday:
        step = tgt.micros
        first = lo + (-lo) % step
        return np.arange(first, hi, step, dtype=np.int64)
    day0 = lo + (-lo) % DAY_US
    days = np.arange(day0, hi, DAY_US, dtype=np.int64)
    return np.unique(_session_day_label(days, tgt.unit)) if days.size else days


def _fill(out: pa.Table, cal: TradingCalendar | None, tgt: Timeframe, fill: str, extended: bool,
          start: TimeLike | None, end: TimeLike | None) -> pa.Table:
    have = _ts_us(out)
    if start is None and have.size == 0:
        return out
    lo = int(to_utc(start).value // 1000) if start is not None else int(have[0])
    hi = int(to_utc(end).value // 1000) if end is not None else int(have[-1]) + 1
    want = _expected(cal, tgt, lo, hi, extended) if hi > lo else np.zeros(0, dtype=np.int64)
    missing = np.setdiff1d(want, have, assume_unique=True)
    if missing.size == 0:
        return out
    all_ts = np.union1d(have, missing)
    pos_have = np.searchsorted(all_ts, have)
    n = all_ts.size
    take = np.full(n, -1, dtype=np.int64)
    take[pos_have] = np.arange(have.size)
    idx = pa.array(take, pa.int64(), mask=take < 0)
    merged = out.take(idx)
    ts_col = pa.array(all_ts, pa.int64()).cast(BAR_SCHEMA.field("ts").type)
    merged = merged.set_column(0, BAR_SCHEMA.field("ts"), ts_col)
    if fill == "nan":
        return merged
    # Forward fill: previous real close into OHLC, volume 0, trade_count 0, vwap null.
    real = take >= 0
    last_real = np.maximum.accumulate(np.where(real, np.arange(n), -1))
    close = _floats(out, "close")
    prev_close = np.where(last_real >= 0, close[take[np.maximum(last_real, 0)]], np.nan)
    synth = ~real & (last_real >= 0)
    cols = {}
    for name in ("open", "high", "low", "close"):
        vals = _floats(merged, name)
        cols[name] = np.where(synth, prev_close, vals)
    vol = _floats(merged, "volume")
    cols["volume"] = np.where(synth, 0.0, vol)
    for name, values in cols.items():
        merged = merged.set_column(BAR_SCHEMA.get_field_index(name), BAR_SCHEMA.field(name),
                                   pa.array(values, pa.float64(), from_pandas=True))
    tc = merged.column("trade_count")
    tc_fill = pc.if_else(pa.array(synth), pa.scalar(0, pa.int64()), tc)
    return merged.set_column(BAR_SCHEMA.get_field_index("trade_count"), BAR_SCHEMA.field("trade_count"), tc_fill)


# --------------------------------------------------------------------------- public


def resample(table: pa.Table, source_tf: str, target_tf: str, *, calendar: TradingCalendar | None = None,
             extended: bool = False, fill: FillMode = "none", start: TimeLike | None = None,
             end: TimeLike | None = None) -> pa.Table:
    """Aggregate bars of ``source_tf`` into bars of ``target_tf``.

    Parameters
    ----------
    table
        Bars with :data:`tickvault.model.BAR_SCHEMA` (other bar frames are conformed), any
        order; duplicate timestamps keep the last row.
    source_tf, target_tf
        Timeframes, e.g. ``"5m"`` -> ``"1h"``; see :func:`can_resample`.
    calendar
        The market's calendar. ``None`` or a 24/7 calendar: UTC-aligned buckets and UTC dates.
        Otherwise session-aligned (see the module docstring).
    extended
        Keep extended-hours bars (where the calendar defines them) instead of dropping them.
    fill
        ``"none"``, ``"nan"`` or ``"ffill"`` for expected-but-absent target bars.
    start, end
        Range over which ``fill`` looks for absent bars (default: first to last output bar).

    Returns
    -------
    pyarrow.Table
        :data:`~tickvault.model.BAR_SCHEMA`, sorted by ``ts`` (the target bar's label).

    Raises
    ------
    InvalidTimeframe
        If ``target_tf`` cannot be built from ``source_tf``.
    InvalidInput
        Bad ``fill``, or source bars off the grid of their target bars.
    InvalidRange
        Bars outside the calendar's bounds (see ``get_calendar(start=, end=)``).
    """
    src, tgt = Timeframe.parse(source_tf), Timeframe.parse(target_tf)
    if fill not in ("none", "nan", "ffill"):
        raise InvalidInput(f"fill must be 'none', 'nan' or 'ffill', got {fill!r}")
    if not can_resample(src, tgt):
        raise InvalidTimeframe(f"cannot build {tgt} bars from {src} bars", timeframe=str(tgt))
    bars = table if table.schema.equals(BAR_SCHEMA) else conform_bars(table)
    bars = dedupe_last(bars)
    if src == tgt:
        out = bars
        if src.is_intraday and calendar is not None and not calendar.is_24_7:
            _, keep = _labels(_ts_us(bars), src, tgt, calendar, extended)
            out = bars.filter(pa.array(keep))
    else:
        ts = _ts_us(bars)
        seg = _segments(ts, src, tgt, calendar, extended)
        if seg is not None:
            labels, starts, keep_rows = seg
            if keep_rows is not None:
                bars = bars.filter(pa.array(keep_rows))
            out = (BAR_SCHEMA.empty_table() if bars.num_rows == 0 else
                   _build(labels, _aggregate(bars, starts), _providers(bars, starts)))
        else:
            labels, keep = _labels(ts, src, tgt, calendar, extended)
            if not bool(keep.all()):
                bars = bars.filter(pa.array(keep))
                labels = labels[keep]
            if bars.num_rows == 0:
                out = BAR_SCHEMA.empty_table()
            else:
                if labels.size > 1 and bool(np.any(labels[1:] < labels[:-1])):
                    raise InvalidInput("bucket labels are not monotonic; is the calendar right for these bars?")
                starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
                out = _build(labels[starts], _aggregate(bars, starts), _providers(bars, starts))
    if fill == "none":
        return out
    return _fill(out, calendar, tgt, fill, extended, start, end)
