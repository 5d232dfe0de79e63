"""Deterministic, calendar-aware random-walk bars (the ``sim`` provider's engine).

How a bar comes to be (everything vectorised over the bars of a request):

1. **Day level.** Per (seed, symbol), a random walk over *calendar days* from a fixed origin
   (1970-01-01) gives each day's close anchor ``C(d)``; the open anchor is the previous
   day's close times an overnight gap, ``O(d) = C(d-1) * exp(g(d))``. Weekends and holidays
   move the walk too, so Monday opens gap from Friday's close. Increments are quantised to
   integers, so the prefix sum at a day is exact whatever range was asked for.
2. **Intraday path.** Inside a session the log price follows a Brownian bridge from
   ``log O`` to ``log C`` over the session's expected bars (from the calendar), built from
   one hashed normal per bar. The first bar opens at ``O`` and the last closes at ``C``,
   so intraday and daily series agree on session opens and closes.
3. **Bars.** Open is the previous bar's close, high/low add hashed exponential excursions,
   prices are rounded to the symbol's tick (rounding is monotone, so OHLC stays valid),
   volume follows a U-shaped intraday profile with log-normal noise.

Every random number is a hash of (seed, symbol, timeframe, bar start, stream) — see
:mod:`._random` — so the same bar comes out of any range that contains it. Whole sessions
are generated and then clipped to the request, because the bridge needs the session's
every bar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.errors import InvalidRange
from tickvault.model import (
    BAR_SCHEMA,
    AssetClass,
    CoverageInterval,
    CoverageState,
    Instrument,
    Timeframe,
    intervals_from_mask,
)
from tickvault.providers.sim._bad_ticks import bad_ticks_metadata, inject_bad_ticks
from tickvault.providers.sim._profile import Profile, fold, profile_for
from tickvault.providers.sim._random import WALK_SCALE, hash_key, keyed, mix64, normals, quantise, uniforms

__all__ = ["DEFAULT_NO_TRADE_PROB", "PROVIDER", "simulate_bars"]

PROVIDER = "sim"
DAY_US = 86_400_000_000
MINUTE_US = 60_000_000

#: Default chance that a minute (or shorter) bar of an exchange-listed symbol has no trade.
DEFAULT_NO_TRADE_PROB = 0.002


@dataclass
class _Bars:
    """Generated bars before clipping to the request (parallel arrays)."""

    start: np.ndarray
    end: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray
    trade_count: np.ndarray

    def take(self, mask: np.ndarray) -> _Bars:
        return _Bars(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def simulate_bars(
    symbol: str,
    timeframe: str,
    start_us: int,
    end_us: int,
    *,
    seed: int = 0,
    calendar: str | None = None,
    bad_ticks: float = 0.0,
    no_trade_prob: float | None = None,
) -> tuple[pa.Table, list[CoverageInterval]]:
    """Simulated bars of ``symbol`` whose start lies in ``[start_us, end_us)``.

    Parameters
    ----------
    symbol
        Any canonical symbol (``AAPL``, ``BTC/USDT``, ``EUR/USD``); it picks the asset
        class, price level, volatility and tick size.
    timeframe
        Any intraday timeframe, ``1d``, ``1w`` or ``1mo``.
    start_us, end_us
        Half-open window on bar starts, epoch microseconds UTC.
    seed
        Different seeds give independent markets.
    calendar
        Calendar name; default from :meth:`Instrument.guess` (XNYS for tickers, ``24/7`` for
        crypto pairs, ``24/5`` for FX). Regular sessions only.
    bad_ticks
        Probability per bar of an injected bad tick (spike, 100x unit error or OHLC
        violation). Which bars are bad is a hash of the bar, so it is as deterministic as
        the bars; the table's schema metadata lists them (see :func:`injected_bad_ticks`).
    no_trade_prob
        Probability that an intraday bar has no trade: it is absent from the table and its
        interval is reported as ``empty`` coverage. Default: 0.002 for bars of one minute or
        less of exchange-listed symbols, 0 otherwise. Never applied to daily and longer bars.

    Returns
    -------
    tuple
        A :data:`~tickvault.model.BAR_SCHEMA` table (``provider="sim"``, sorted by ``ts``)
        and the coverage vouched for: ``final`` over the request (extended to the end of
        the last bar) except ``empty`` for the no-trade bars.

    Raises
    ------
    InvalidRange
        If ``start_us > end_us`` or a probability is outside ``[0, 1]``.
    InvalidSymbol, InvalidTimeframe, InvalidInput
        For a malformed symbol, a timeframe no calendar defines (``2d``), an unknown calendar.
    """
    tf = Timeframe.parse(timeframe)
    instrument = Instrument.guess(symbol)
    sym = instrument.symbol
    lo, hi = int(start_us), int(end_us)
    if lo > hi:
        raise InvalidRange(f"start {lo} is after end {hi}", symbol=sym, timeframe=str(tf))
    for name, p in (("bad_ticks", bad_ticks), ("no_trade_prob", no_trade_prob)):
        if p is not None and not 0.0 <= p <= 1.0:
            raise InvalidRange(f"{name} must be a probability in [0, 1], got {p!r}", symbol=sym)
    cal = get_calendar(calendar or instrument.calendar)
    exchange = not cal.is_24_7 and cal.name != "24/5"
    prof = profile_for(seed, sym, instrument.asset_class, gapped=exchange)
    if no_trade_prob is None:
        listed = instrument.asset_class in (AssetClass.EQUITY, AssetClass.ETF) and exchange
        no_trade_prob = DEFAULT_NO_TRADE_PROB if (listed and tf.is_intraday and tf.micros <= MINUTE_US) else 0.0
    if not tf.is_intraday:
        no_trade_prob = 0.0

    if lo == hi:
        return _table(_empty(), sym, []), []
    if tf.is_intraday:
        bars = _intraday(prof, cal, tf, lo, hi, seed, sym)
    elif tf.unit == "d":
        bars = _daily(prof, cal, tf, lo, hi, seed, sym)
    else:
        bars = _periods(prof, cal, tf, lo, hi, seed, sym)

    bars = bars.take((bars.start >= lo) & (bars.start < hi))  # whole sessions were generated
    keys = _Keys(seed, sym, str(tf))
    present = np.ones(bars.start.size, dtype=bool)
    if no_trade_prob > 0.0 and bars.start.size:
        present = uniforms(keyed(keys.counter(bars.start), keys.no_trade)) >= no_trade_prob
    coverage = _coverage(lo, hi, bars, present)
    bars = bars.take(present)  # a copy: bad ticks may be written into it
    bad: list[tuple[int, str]] = []
    if bad_ticks > 0.0 and bars.start.size:
        bad = inject_bad_ticks(bars, keyed(keys.counter(bars.start), keys.bad), bad_ticks, prof.decimals)
    return _table(bars, sym, bad if bad_ticks > 0.0 else None), coverage


class _Keys:
    """Hash keys of one (seed, symbol, timeframe): one per independent stream."""

    def __init__(self, seed: int, symbol: str, timeframe: str) -> None:
        k = (seed, symbol, timeframe)
        self.walk, self.high, self.low = hash_key(*k, "walk"), hash_key(*k, "high"), hash_key(*k, "low")
        self.volume, self.trades, self.vwap = hash_key(*k, "volume"), hash_key(*k, "trades"), hash_key(*k, "vwap")
        self.no_trade, self.bad = hash_key(*k, "no-trade"), hash_key(*k, "bad-tick")

    @staticmethod
    def counter(start_us: np.ndarray) -> np.ndarray:
        return mix64(np.asarray(start_us, dtype=np.int64).view(np.uint64))


def _day_anchors(prof: Profile, seed: int, symbol: str, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log open anchor, log close anchor and a volume factor for each epoch day in ``days``.

    The walk is summed from day 0 outwards on integers, so ``L(d)`` is exact and the same
    for any set of requested days.
    """
    lo = min(int(days.min()) - 1, 0)
    hi = max(int(days.max()), 0)
    span = np.arange(lo + 1, hi + 1, dtype=np.int64)  # increment of day k moves L(k-1) -> L(k)
    ctr = mix64(span.view(np.uint64))
    inc = quantise(normals(keyed(ctr, hash_key(seed, symbol, "day-walk"))))
    origin = -lo  # index of day 0 in the L array over lo..hi
    walk = np.zeros(hi - lo + 1, dtype=np.int64)
    walk[origin + 1 :] = np.cumsum(inc[origin:])
    if origin:
        walk[:origin] = -np.cumsum(inc[:origin][::-1])[::-1]
    level = prof.sigma_day / WALK_SCALE
    log_p0 = float(np.log(prof.p0))
    at = days - lo
    log_close = log_p0 + fold(walk[at].astype(np.float64) * level, prof.band)
    day_ctr = mix64(days.astype(np.int64).view(np.uint64))
    gap = prof.gap_sigma * normals(keyed(day_ctr, hash_key(seed, symbol, "day-gap")))
    log_open = log_p0 + fold(walk[at - 1].astype(np.float64) * level, prof.band) + gap
    vol_factor = np.exp(0.3 * normals(keyed(day_ctr, hash_key(seed, symbol, "day-volume"))) - 0.045)
    return log_open, log_close, vol_factor


def _session_arrays(cal: TradingCalendar, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch day, open and close (µs) of every session overlapping ``[lo, hi)``."""
    first = dt.date(1970, 1, 1) + dt.timedelta(days=lo // DAY_US - 1)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=(hi - 1) // DAY_US + 1)
    sched = cal.schedule(first, last)
    days = (pd.DatetimeIndex(sched.index).as_unit("s").asi8 // 86_400).astype(np.int64)
    opens = np.asarray(pd.DatetimeIndex(sched["open"]).as_unit("us").asi8, dtype=np.int64)
    closes = np.asarray(pd.DatetimeIndex(sched["close"]).as_unit("us").asi8, dtype=np.int64)
    keep = (closes > lo) & (opens < hi)
    return days[keep], opens[keep], closes[keep]


def _intraday(prof: Profile, cal: TradingCalendar, tf: Timeframe, lo: int, hi: int, seed: int,
              symbol: str) -> _Bars:
    days, opens, closes = _session_arrays(cal, lo, hi)
    if days.size == 0:
        return _empty()
    start, end = cal.bar_bounds(tf, int(opens[0]), int(closes[-1]))
    if start.size == 0:
        return _empty()
    sess = np.searchsorted(opens, start, side="right") - 1
    n_per = np.bincount(sess, minlength=days.size)
    first = np.cumsum(n_per) - n_per
    last = first + n_per - 1
    log_open, log_close, vol_day = _day_anchors(prof, seed, symbol, days)

    keys = _Keys(seed, symbol, str(tf))
    ctr = _Keys.counter(start)
    walk = np.cumsum(quantise(normals(keyed(ctr, keys.walk))))
    before = np.where(first > 0, walk[np.maximum(first - 1, 0)], 0)
    rel = walk - before[sess]  # exact per-session walk, whatever the request's range
    has_bars = n_per > 0
    w_end = np.zeros(days.size, dtype=np.int64)
    w_end[has_bars] = rel[last[has_bars]]
    length = (closes - opens).astype(np.float64)
    frac = (end - opens[sess]).astype(np.float64) / length[sess]
    sig_bar = prof.sigma_intraday / np.sqrt(np.maximum(n_per, 1).astype(np.float64))
    bridge = (rel.astype(np.float64) - frac * w_end[sess].astype(np.float64)) / WALK_SCALE
    lo_s, lc_s = log_open[sess], log_close[sess]
    lp_close = lo_s + frac * (lc_s - lo_s) + sig_bar[sess] * bridge
    lp_open = np.empty_like(lp_close)
    lp_open[1:] = lp_close[:-1]
    lp_open[first[has_bars]] = log_open[has_bars]

    mid = ((start + end) // 2 - opens[sess]).astype(np.float64) / length[sess]
    share = (end - start).astype(np.float64) / length[sess]
    shape = (1.0 + 3.0 * (2.0 * mid - 1.0) ** 2) / 2.0  # U-shaped, mean 1 over the session
    volume = prof.volume_per_session * vol_day[sess] * share * shape
    return _finish(prof, keys, ctr, start, end, lp_open, lp_close, sig_bar[sess], volume)


def _daily(prof: Profile, cal: TradingCalendar, tf: Timeframe, lo: int, hi: int, seed: int,
           symbol: str) -> _Bars:
    start, end = cal.bar_bounds(tf, lo, hi)
    if start.size == 0:
        return _empty()
    log_open, log_close, vol_day = _day_anchors(prof, seed, symbol, start // DAY_US)
    keys = _Keys(seed, symbol, str(tf))
    sig = np.full(start.size, prof.sigma_day)
    return _finish(prof, keys, _Keys.counter(start), start, end, log_open, log_close, sig,
                   prof.volume_per_session * vol_day)


def _periods(prof: Profile, cal: TradingCalendar, tf: Timeframe, lo: int, hi: int, seed: int,
             symbol: str) -> _Bars:
    """Weekly and monthly bars: the sim's own daily bars, aggregated (so the two agree)."""
    start, end = cal.bar_bounds(tf, lo, hi)
    if start.size == 0:
        return _empty()
    day = _daily(prof, cal, Timeframe(1, "d"), int(start[0]), int(end[-1]), seed, symbol)
    group = np.searchsorted(start, day.start, side="right") - 1
    cut = np.flatnonzero(np.diff(group, prepend=-1))
    volume = np.add.reduceat(day.volume, cut)
    notional = np.add.reduceat(day.vwap * day.volume, cut)
    return _Bars(
        start, end,
        day.open[cut],
        np.maximum.reduceat(day.high, cut),
        np.minimum.reduceat(day.low, cut),
        day.close[np.append(cut[1:], day.start.size) - 1],
        volume,
        notional / volume,
        np.add.reduceat(day.trade_count, cut),
    )


def _finish(prof: Profile, keys: _Keys, ctr: np.ndarray, start: np.ndarray, end: np.ndarray, lp_open: np.ndarray,
            lp_close: np.ndarray, sig: np.ndarray, volume: np.ndarray) -> _Bars:
    """Excursions, tick rounding, volume noise, vwap and trade counts."""
    scale = 10.0**prof.decimals
    tick = prof.tick
    o = np.exp(lp_open)
    c = np.exp(lp_close)
    up = -np.log1p(-uniforms(keyed(ctr, keys.high)))  # Exp(1)
    down = -np.log1p(-uniforms(keyed(ctr, keys.low)))
    h = np.maximum(o, c) * np.exp(0.5 * sig * up)
    lw = np.minimum(o, c) * np.exp(-0.5 * sig * down)
    # rint(x * 10^d) / 10^d is the double nearest the decimal price; rounding is monotone
    o, h, lw, c = (np.maximum(np.rint(x * scale) / scale, tick) for x in (o, h, lw, c))
    vscale = 10.0**prof.volume_decimals
    noise = np.exp(0.5 * normals(keyed(ctr, keys.volume)) - 0.125)
    vol = np.maximum(np.rint(volume * noise * vscale) / vscale, 1.0 / vscale)
    vwap = lw + (h - lw) * (0.25 + 0.5 * uniforms(keyed(ctr, keys.vwap)))
    # Vendors deliver vwap to a few decimals (Polygon, Alpaca: 4 for equities); two more than
    # the price tick keeps it realistic. Rounding is monotone and low/high lie on the grid,
    # so the result stays inside [low, high].
    vscale_px = 10.0 ** max(4, prof.decimals + 2)
    vwap = np.clip(np.rint(vwap * vscale_px) / vscale_px, lw, h)
    if prof.asset_class == AssetClass.FX:
        trades = vol.astype(np.int64)  # FX volume is a tick count
    else:
        raw = vol / prof.trade_size * np.exp(0.2 * normals(keyed(ctr, keys.trades)))
        trades = np.maximum(np.rint(raw), 1.0).astype(np.int64)
        if prof.volume_decimals == 0:
            trades = np.minimum(trades, vol.astype(np.int64))  # a trade is at least one share
    return _Bars(start, end, o, h, lw, c, vol, vwap, trades)


def _empty() -> _Bars:
    f = np.empty(0, dtype=np.float64)
    i = np.empty(0, dtype=np.int64)
    return _Bars(i, i, f, f, f, f, f, f, i)


def _coverage(lo: int, hi: int, bars: _Bars, present: np.ndarray) -> list[CoverageInterval]:
    """``final`` over the request (to the end of its last bar), ``empty`` where no bar traded."""
    start, end = bars.start, bars.end
    missing = ~present
    top = max(hi, int(end.max())) if end.size else hi
    out: list[CoverageInterval] = []
    cursor = lo
    for a, b in intervals_from_mask(start, end, missing):
        if a > cursor:
            out.append(CoverageInterval(cursor, a, CoverageState.FINAL, PROVIDER))
        out.append(CoverageInterval(a, b, CoverageState.EMPTY, PROVIDER))
        cursor = b
    if top > cursor:
        out.append(CoverageInterval(cursor, top, CoverageState.FINAL, PROVIDER))
    return out


def _table(bars: _Bars, symbol: str, bad: list[tuple[int, str]] | None) -> pa.Table:
    n = bars.start.size
    provider = pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([PROVIDER]))
    schema = BAR_SCHEMA if bad is None else BAR_SCHEMA.with_metadata(bad_ticks_metadata(bad))
    return pa.Table.from_arrays(
        [
            pa.array(bars.start, pa.timestamp("us", tz="UTC")),
            pa.array(bars.open, pa.float64()),
            pa.array(bars.high, pa.float64()),
            pa.array(bars.low, pa.float64()),
            pa.array(bars.close, pa.float64()),
            pa.array(bars.volume, pa.float64()),
            pa.array(bars.vwap, pa.float64()),
            pa.array(bars.trade_count, pa.int64()),
            provider,
        ],
        schema=schema,
    )
