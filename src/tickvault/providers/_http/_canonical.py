"""From vendor columns to the canonical result every provider returns.

The last step of every transform is the same, so it lives here once:

- :func:`bars_table` builds a :data:`~tickvault.model.BAR_SCHEMA` table from numpy columns;
- :func:`session_keys` maps the instants vendors stamp on daily bars to session-date keys
  (00:00 UTC of the session date, DESIGN §3) with the instrument's trading calendar;
- :func:`finish` sorts, resolves duplicate keys (last wins), clips to the query and
  computes the coverage the provider vouches for (:func:`coverage_for`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.errors import InvalidInput, ProviderResponseError
from tickvault.model import (
    BAR_SCHEMA,
    CoverageInterval,
    CoverageState,
    Instrument,
    Timeframe,
    dedupe_last,
)

__all__ = [
    "DAY_US", "bars_table", "calendar_for", "coverage_for", "finish", "local_days", "regular_hours_mask",
    "session_keys", "settled_before", "unadjust",
]

DAY_US = 86_400_000_000


def calendar_for(symbol: str, instrument: Instrument | None) -> TradingCalendar:
    """The trading calendar of the query's instrument (or the guessed one for ``symbol``)."""
    inst = instrument if instrument is not None else Instrument.guess(symbol)
    return get_calendar(inst.calendar)


def bars_table(ts_us: np.ndarray, *, open: np.ndarray, high: np.ndarray, low: np.ndarray,
               close: np.ndarray, volume: np.ndarray, vwap: np.ndarray | None = None,
               trade_count: np.ndarray | None = None, provider: str) -> pa.Table:
    """A :data:`BAR_SCHEMA` table from equal-length numpy columns.

    ``trade_count`` may be float with NaN for missing; it must otherwise hold whole numbers.

    Raises
    ------
    ProviderResponseError
        If ``trade_count`` holds fractions or negative numbers.
    """
    n = int(ts_us.size)
    if trade_count is None:
        counts = pa.nulls(n, pa.int64())
    else:
        tc = np.asarray(trade_count, dtype=np.float64)
        missing = np.isnan(tc)
        given = tc[~missing]
        finite = bool(np.all(np.isfinite(given)))  # checked first: inf % 1 would warn
        if not finite or bool(np.any((given < 0) | (given > 2**53) | (np.floor(given) != given))):
            raise ProviderResponseError("trade count is not a whole non-negative number", provider=provider,
                                        field="trade_count")
        counts = pa.array(np.where(missing, 0, tc).astype(np.int64), pa.int64(), mask=missing)
    prov = pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([provider]))
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(ts_us, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC")),
            pa.array(np.asarray(open, dtype=np.float64)),
            pa.array(np.asarray(high, dtype=np.float64)),
            pa.array(np.asarray(low, dtype=np.float64)),
            pa.array(np.asarray(close, dtype=np.float64)),
            pa.array(np.asarray(volume, dtype=np.float64)),
            pa.array(np.asarray(vwap, dtype=np.float64)) if vwap is not None else pa.nulls(n, pa.float64()),
            counts,
            prov,
        ],
        schema=BAR_SCHEMA,
    )


def unadjust(columns: dict[str, np.ndarray], factor: np.ndarray, provider: str) -> dict[str, np.ndarray]:
    """Undo a vendor's split adjustment: prices (and vwap) times ``factor``, volume divided by it.

    Raises
    ------
    ProviderResponseError
        If a finite value overflows (garbage prices or ratios); nothing is silently made ``inf``.
    """
    out: dict[str, np.ndarray] = {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for name, values in columns.items():
            v = np.asarray(values, dtype=np.float64)
            if name in ("open", "high", "low", "close", "vwap"):
                out[name] = v * factor
            elif name == "volume":
                out[name] = v / factor
            else:
                out[name] = v
            if bool(np.any(np.isfinite(v) & ~np.isfinite(out[name]))):
                raise ProviderResponseError(f"{name} overflows when split adjustment is undone", provider=provider)
    return out


def session_keys(ts_us: np.ndarray, calendar: TradingCalendar, provider: str) -> np.ndarray:
    """Session-date keys (00:00 UTC) for vendor-stamped daily instants.

    Raises
    ------
    ProviderResponseError
        If an instant lies outside the calendar's sessions (the vendor's date is garbage or
        the instrument's calendar is wrong).
    """
    try:
        return np.asarray(calendar.session_labels(np.asarray(ts_us, dtype=np.int64)), dtype=np.int64)
    except InvalidInput as exc:
        raise ProviderResponseError(f"daily bar instant has no session on {calendar.name}: {exc.message}",
                                    provider=provider) from None


def local_days(ts_us: np.ndarray, timeframe: Timeframe, calendar: TradingCalendar) -> np.ndarray:
    """Each bar's exchange-local date as epoch µs at 00:00 UTC (daily keys pass through).

    Used to compare bars with ex-dates: a pre-market bar on the ex-date is already post-split.
    """
    ts = np.asarray(ts_us, dtype=np.int64)
    if not timeframe.is_intraday or ts.size == 0:
        return ts
    local = pd.DatetimeIndex(ts.astype("datetime64[us]")).tz_localize("UTC").tz_convert(calendar.tz)
    naive = np.asarray(local.tz_localize(None).as_unit("us").asi8, dtype=np.int64)
    return naive - np.mod(naive, DAY_US)


def regular_hours_mask(ts_us: np.ndarray, timeframe: Timeframe, calendar: TradingCalendar) -> np.ndarray:
    """Which intraday bar starts lie on the calendar's regular-session bar grid.

    Used by providers whose intraday feed includes pre/post-market bars when the user asked
    for regular hours only.
    """
    ts = np.asarray(ts_us, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(0, dtype=bool)
    starts, _ = calendar.bar_bounds(timeframe, int(ts.min()), int(ts.max()) + 1)
    return np.isin(ts, starts)


def regular_hours_in_window(table: pa.Table, start_us: int, end_us: int, timeframe: Timeframe,
                            calendar: TradingCalendar, provider: str) -> pa.Table:
    """Bars of ``[start_us, end_us)`` whose opens lie on the regular-session grid.

    Clipped to the window first, so the grid is laid only between the window's bars, never
    between a garbage stamp and the window (which could be decades of minutes).

    Raises
    ------
    ProviderResponseError
        When bar stamps fall outside the calendar's bounds.
    """
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    inside = (ts >= start_us) & (ts < end_us)
    table, ts = table.filter(pa.array(inside)), ts[inside]
    if not ts.size:
        return table
    try:
        mask = regular_hours_mask(ts, timeframe, calendar)
    except InvalidInput as exc:
        raise ProviderResponseError(f"bars outside the calendar: {exc.message}", provider=provider) from None
    return table.filter(pa.array(mask))


def settled_before(now_us: int, timeframe: Timeframe) -> int:
    """Bars starting before this instant have ended and are past the vendor's usual revisions.

    Intraday: the bar has closed (``start + length <= now``). Daily and longer: one more
    day of margin, because vendors publish and correct daily bars hours after the close.
    """
    margin = 0 if timeframe.is_intraday else DAY_US
    return now_us - timeframe.micros - margin


def coverage_for(start_us: int, end_us: int, timeframe: Timeframe, n_bars: int, now_us: int,
                 provider: str) -> list[CoverageInterval]:
    """What a complete answer over ``[start_us, end_us)`` vouches for.

    The future is never covered; the still-changing recent part is ``provisional``; the
    settled rest is ``final`` when bars came back, ``empty`` when the provider confirmed
    there were none (weekend, holiday, halt, not listed yet).
    """
    # Intraday: nothing after now. Daily: up to the end of today's session key.
    top = min(end_us, now_us) if timeframe.is_intraday else min(end_us, now_us - now_us % DAY_US + DAY_US)
    if top <= start_us:
        return []
    boundary = max(start_us, min(top, settled_before(now_us, timeframe)))
    out: list[CoverageInterval] = []
    if boundary > start_us:
        state = CoverageState.FINAL if n_bars else CoverageState.EMPTY
        out.append(CoverageInterval(start_us, boundary, state, provider, now_us))
    if top > boundary:
        out.append(CoverageInterval(boundary, top, CoverageState.PROVISIONAL, provider, now_us))
    return out


def finish(table: pa.Table, start_us: int, end_us: int, timeframe: Timeframe, now_us: int,
           provider: str, *, margin_us: int = 2 * DAY_US) -> tuple[pa.Table, list[CoverageInterval]]:
    """Check, sort, dedupe (last wins), clip to ``[start_us, end_us)`` and compute coverage.

    Bars a little outside the window are expected (requests are padded, vendors include
    the bar at the end bound) and dropped; a bar more than ``margin_us`` outside it means
    the payload is garbage (a unit mix-up, another request's answer) and raises rather
    than being silently clipped away.

    Parameters
    ----------
    table
        Canonical bars whose ``ts`` are already keys (bar open or session date).
    start_us, end_us
        The query window on keys.
    timeframe
        The query's timeframe.
    now_us
        Wall-clock now (injected), epoch microseconds.
    provider
        Provenance of the coverage marks.
    margin_us
        Tolerance for keys outside the window.

    Raises
    ------
    ProviderResponseError
        If a key lies more than ``margin_us`` outside the window.
    """
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    if ts.size and (int(ts.min()) < start_us - margin_us or int(ts.max()) >= end_us + margin_us):
        raise ProviderResponseError("payload holds bars far outside the requested window", provider=provider,
                                    first=pd.Timestamp(int(ts.min()) * 1000, tz="UTC").isoformat(),
                                    last=pd.Timestamp(int(ts.max()) * 1000, tz="UTC").isoformat())
    keep = (ts >= start_us) & (ts < end_us)
    if not bool(keep.all()):
        table = table.filter(pa.array(keep))
    table = dedupe_last(table)
    return table, coverage_for(start_us, end_us, timeframe, table.num_rows, now_us, provider)
