"""Pure transform of ccxt OHLCV rows to canonical bars and per-slot coverage (fuzzed).

ccxt parses each exchange's candle payload into unified rows ``[ms, open, high, low, close,
volume]``, sorted ascending and labelled by the candle's OPEN in UTC — the canonical key
(DESIGN §3) for intraday bars; daily, weekly and monthly candles open at 00:00 UTC of the
day, Monday and 1st, which is the 24/7 calendar's key. This module checks and converts them:

- every row has six numeric fields, the time is a whole millisecond inside 1900..2200 and on
  the timeframe's 24/7 grid; anything else is :class:`~tickvault.errors.ProviderResponseError`;
- **no-trade candles** — volume 0 and open = high = low = close, which Kraken (and Binance
  during halts) emit for minutes without trades, carrying the previous close — are not bars:
  they are left out of the table and their slots are reported as ``empty`` coverage, the
  coverage ledger's word for "asked, nothing traded" (DESIGN §1). The quality rules would
  otherwise see runs of identical synthetic bars, and a resampled bar would get a fake
  open/close from them;
- :func:`crypto_coverage` partitions the window into settled ``final`` slots (a bar came
  back), settled ``empty`` slots (no bar or a no-trade candle: the pages were complete, so the
  exchange confirmed nothing traded) and a ``provisional`` tail (the forming candle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.calendars import TradingCalendar
from tickvault.errors import InvalidInput, ProviderResponseError
from tickvault.model import CoverageInterval, CoverageState, Timeframe, intervals_from_mask
from tickvault.providers._http import bars_table, settled_before

__all__ = ["OhlcvPage", "crypto_coverage", "ohlcv_bars", "ohlcv_page"]

_MIN_MS = -2_208_988_800_000
_MAX_MS = 7_258_118_400_000
OhlcvPage = tuple[np.ndarray, dict[str, np.ndarray]]
"""Epoch-µs candle opens and ``open high low close volume`` float64 columns."""


def _bad(message: str, provider: str, **context: Any) -> ProviderResponseError:
    return ProviderResponseError(message, provider=provider, field="ohlcv", **context)


def ohlcv_page(rows: Any, *, provider: str) -> OhlcvPage:
    """Check and convert ccxt unified OHLCV rows (column-wise, through Arrow).

    Parameters
    ----------
    rows
        ``[[ms, open, high, low, close, volume], ...]`` as ccxt returns them.
    provider
        For error context (``ccxt:kraken``).

    Raises
    ------
    ProviderResponseError
        If ``rows`` is not a list of six-number rows with whole-millisecond times in range.
    """
    if not isinstance(rows, list):
        raise _bad(f"expected a list of candles, got {type(rows).__name__}", provider)
    if not rows:
        return np.empty(0, dtype=np.int64), {k: np.empty(0) for k in ("open", "high", "low", "close", "volume")}
    try:
        arr: Any = pa.array(rows, from_pandas=False)
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
        raise _bad(f"unreadable candles ({type(exc).__name__})", provider) from None
    if not pa.types.is_list(arr.type) or arr.null_count:
        raise _bad(f"candles are not arrays ({arr.type})", provider)
    value_type = arr.type.value_type  # type: ignore[attr-defined]
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type) or pa.types.is_null(value_type)):
        raise _bad(f"candle fields are not numbers ({value_type})", provider)
    if not pc.all(pc.greater_equal(pc.list_value_length(arr), pa.scalar(6, pa.int32()))).as_py():
        raise _bad("a candle has fewer than six fields", provider)
    cols = []
    for i in range(6):
        try:
            col = pc.list_element(arr, i).cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _bad("candle field out of range", provider) from None
        cols.append(np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64))
    ms = cols[0]
    if bool(np.any(~np.isfinite(ms) | (ms != np.floor(ms)) | (ms < _MIN_MS) | (ms > _MAX_MS))):
        raise _bad("candle time is not a whole millisecond in 1900..2200", provider)
    ts_us = ms.astype(np.int64) * 1000
    names = ("open", "high", "low", "close", "volume")
    return ts_us, dict(zip(names, cols[1:], strict=True))


def ohlcv_bars(pages: list[OhlcvPage], *, timeframe: Timeframe, calendar: TradingCalendar,
               provider: str) -> tuple[pa.Table, np.ndarray]:
    """Pages of checked candles -> (traded bars, opens of no-trade candles).

    Duplicated opens across pages keep the last page's candle (the fresher answer).

    Raises
    ------
    ProviderResponseError
        If a candle open is not on the timeframe's grid of ``calendar``.
    """
    ts = np.concatenate([p[0] for p in pages]) if pages else np.empty(0, dtype=np.int64)
    cols = {k: (np.concatenate([p[1][k] for p in pages]) if pages else np.empty(0))
            for k in ("open", "high", "low", "close", "volume")}
    if ts.size:
        # last write wins: reverse, take the first occurrence of each key, restore time order
        rev = ts[::-1]
        _, first = np.unique(rev, return_index=True)
        keep = np.sort(ts.size - 1 - first)
        ts = ts[keep]
        cols = {k: v[keep] for k, v in cols.items()}
        if not bool(_on_grid(ts, timeframe, calendar).all()):
            raise _bad(f"a candle does not open on the {timeframe} grid", provider, timeframe=str(timeframe))
    o, h, low, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))
    no_trade = (v == 0) & (o == h) & (h == low) & (low == c)
    traded = ~no_trade
    table = bars_table(ts[traded], open=o[traded], high=h[traded], low=low[traded], close=c[traded],
                       volume=v[traded], provider=provider)
    return table, ts[no_trade]


def _on_grid(ts: np.ndarray, timeframe: Timeframe, calendar: TradingCalendar) -> np.ndarray:
    """Which opens lie on the 24/7 grid of ``timeframe``.

    Fixed-length bars and days are checked arithmetically on the UTC epoch grid: laying the
    grid between a garbage early stamp and now would allocate millions of slots. Weeks and
    months are few enough to lay.
    """
    if timeframe.is_intraday or (timeframe.unit == "d" and timeframe.n == 1):
        return np.asarray(ts % timeframe.micros == 0)
    try:
        starts, _ = calendar.bar_bounds(timeframe, int(ts.min()), int(ts.max()) + 1)
    except InvalidInput:
        return np.zeros(ts.shape, dtype=bool)
    return np.isin(ts, starts)


def crypto_coverage(bar_ts_us: np.ndarray, start_us: int, end_us: int, timeframe: Timeframe, now_us: int,
                    calendar: TradingCalendar, provider: str) -> list[CoverageInterval]:
    """Disjoint, sorted coverage of a complete answer over ``[start_us, end_us)``.

    Parameters
    ----------
    bar_ts_us
        Opens of the traded bars returned (inside the window).
    start_us, end_us
        The window.
    timeframe
        Its timeframe.
    now_us
        Wall-clock now (injected).
    calendar
        The 24/7 calendar laying the slots.
    provider
        Name on the marks.

    Returns
    -------
    list of CoverageInterval
        ``final`` runs of slots with bars, ``empty`` runs without, then a ``provisional``
        tail up to ``min(end, now)`` for candles that may still change. The future is never
        covered.
    """
    top = min(end_us, now_us)
    if top <= start_us:
        return []
    boundary = max(start_us, min(top, settled_before(now_us, timeframe)))
    # Slots starting before the boundary have closed; keep those that end inside the window.
    starts, ends = calendar.bar_bounds(timeframe, start_us, boundary)
    inside = ends <= top
    starts, ends = starts[inside], ends[inside]
    out: list[CoverageInterval] = []
    if starts.size:
        has_bar = np.isin(starts, np.asarray(bar_ts_us, dtype=np.int64))
        for state, mask in ((CoverageState.FINAL, has_bar), (CoverageState.EMPTY, ~has_bar)):
            out.extend(CoverageInterval(a, b, state, provider, now_us)
                       for a, b in intervals_from_mask(starts, ends, mask))
        tail = int(ends[-1])
    else:
        tail = start_us
    if top > tail:
        out.append(CoverageInterval(tail, top, CoverageState.PROVISIONAL, provider, now_us))
    return sorted(out, key=lambda iv: iv.start_us)
