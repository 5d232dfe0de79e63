"""Split and dividend adjustment of raw bars, applied on read.

The store keeps raw (as-traded) prices and a separate list of corporate actions
(DESIGN §3). This module turns raw bars into the series a user asked for:

- ``"none"``: the raw series, unchanged.
- ``"splits"``: every bar before a split's ex-date has its prices (open, high, low, close,
  vwap) divided by the split ratio and its volume multiplied by it, so prices and share
  counts are expressed in today's share basis. ``trade_count`` is a count of trades, not of
  shares, and never changes.
- ``"all"``: splits as above, and every cash dividend back-adjusted multiplicatively the way
  CRSP and Yahoo do it: each bar before the ex-date ``t`` is multiplied by ``1 - D / C_prev``,
  where ``C_prev`` is the close of the last bar before ``t``. Volume is not touched by
  dividends.

Share basis (why the dividend factor needs care): :class:`~tickvault.model.CorporateAction`
stores a dividend as paid at the time, i.e. per share *in the basis in force on its ex-date*
(after any split whose ex-date is on or before it). ``C_prev`` is a raw close, in the basis in
force on *its* day. The factor is computed with both converted to today's basis by the splits
alone: ``D / S(t)`` and ``C_prev / S(t_prev)`` with ``S(x)`` the product of the ratios of the
splits whose ex-date is after ``x``. The two agree except when a split takes effect between
the previous bar and the ex-date (same-day split and dividend, or missing bars): then the
close is first brought into the dividend's post-split basis, which is what makes the ratio a
true fraction of the share's value. Dividends never enter ``C_prev`` (the factor uses the
actual close, not an already dividend-adjusted one), which is the vendor convention and makes
the result independent of the order the actions are listed in.

Ex-date boundaries: a bar is "before" an action when its session date is before the ex-date.
Daily and longer bars are keyed at the session date 00:00 UTC, so the boundary is the ex-date
at 00:00 UTC. Intraday bars are compared with the ex-date's midnight in the exchange time zone
(``tz``), so pre- and post-market bars fall on the right session; with no ``tz`` intraday bars
use UTC midnight, which is right for 24/7 and FX series and wrong for, e.g., US post-market
bars in winter.

Everything is vectorised: the per-bar factors are suffix cumulative products over the (few)
actions, looked up with :func:`numpy.searchsorted`; no Python loop runs per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import InvalidInput, SchemaError
from tickvault.model import ActionKind, CorporateAction, Timeframe

__all__ = ["ADJUSTED_PRICE_COLUMNS", "AdjustMode", "AdjustmentFactors", "adjust", "adjustment_factors"]

AdjustMode = Literal["none", "splits", "all"]

#: Columns holding a price per share: divided by splits, multiplied by dividend factors.
ADJUSTED_PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")

_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class AdjustmentFactors:
    """Per-bar adjustment factors, aligned with the rows of the input table.

    Attributes
    ----------
    split
        Cumulative split ratio ``S`` per bar (product of the ratios of splits whose ex-date
        is after the bar). Adjusted price = raw price / ``split`` * ``dividend``; adjusted
        volume = raw volume * ``split``.
    dividend
        Cumulative dividend factor per bar (product of ``1 - D / C_prev`` over the dividends
        whose ex-date is after the bar); all ones unless the mode is ``"all"``.
    """

    split: np.ndarray
    dividend: np.ndarray

    @property
    def price(self) -> np.ndarray:
        """Multiplier applied to price columns (``dividend / split``)."""
        return np.asarray(self.dividend / self.split)


def adjust(
    table: pa.Table,
    actions: Sequence[CorporateAction],
    mode: AdjustMode = "splits",
    *,
    timeframe: str | Timeframe = "1d",
    tz: str | dt.tzinfo | None = None,
) -> pa.Table:
    """Adjust raw bars for splits and, optionally, cash dividends.

    Parameters
    ----------
    table
        Bars with :data:`~tickvault.model.BAR_SCHEMA` (at least ``ts`` and ``close``),
        raw as-traded prices. Rows need not be sorted; the output keeps the input order.
    actions
        Corporate actions of this one symbol, in any order.
    mode
        ``"none"`` (unchanged), ``"splits"`` or ``"all"`` (splits and dividends).
    timeframe
        Timeframe of the bars. It only matters together with ``tz``: intraday bars are
        compared with the ex-date's midnight in ``tz``; daily and longer bars (keyed at the
        session date 00:00 UTC) with the ex-date's midnight UTC.
    tz
        Exchange time zone for intraday bars (e.g. ``"America/New_York"``); ``None`` uses UTC.

    Returns
    -------
    pyarrow.Table
        A new table with the same schema, rows and order; prices and volumes adjusted.
        The input is never modified. Bars on or after the last action's ex-date are
        returned bit-for-bit unchanged.

    Raises
    ------
    InvalidInput
        If ``mode`` is unknown, or a dividend is not smaller than the close before its
        ex-date (the factor would be zero or negative: the dividend or the price is wrong).
    SchemaError
        If the table has no ``ts`` column, or no ``close`` column when dividends are applied.

    Examples
    --------
    >>> import pyarrow as pa, datetime as dt
    >>> from tickvault.model import CorporateAction, conform_bars
    >>> bars = conform_bars(pa.table({"ts": pa.array([dt.datetime(2020, 8, 28), dt.datetime(2020, 8, 31)],
    ...                                              pa.timestamp("us", "UTC")),
    ...                               "open": [500.0, 127.6], "high": [500.0, 131.0], "low": [490.0, 126.0],
    ...                               "close": [499.2, 129.0], "volume": [1.0, 2.0]}))
    >>> adjust(bars, [CorporateAction.split("2020-08-31", 4)], "splits").column("close").to_pylist()
    [124.8, 129.0]
    """
    _check_mode(mode)
    if mode == "none" or not actions or table.num_rows == 0:
        return table
    factors = adjustment_factors(table, actions, mode, timeframe=timeframe, tz=tz)
    touched = (factors.split != 1.0) | (factors.dividend != 1.0)
    if not bool(touched.any()):
        return table
    split = pa.chunked_array([pa.array(factors.split, pa.float64())])
    dividend = pa.chunked_array([pa.array(factors.dividend, pa.float64())])
    columns: list[Any] = []
    for name in table.column_names:
        col: Any = table.column(name)
        if name in ADJUSTED_PRICE_COLUMNS:
            # Divide (not multiply by 1/S) so a split-adjusted price is exactly raw / ratio.
            col = pc.divide(col, split)
            if mode == "all":
                col = pc.multiply(col, dividend)
            col = col.cast(table.schema.field(name).type)
        elif name == "volume":
            col = pc.multiply(col, split).cast(table.schema.field(name).type)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=table.schema)


def adjustment_factors(
    table: pa.Table,
    actions: Sequence[CorporateAction],
    mode: AdjustMode = "splits",
    *,
    timeframe: str | Timeframe = "1d",
    tz: str | dt.tzinfo | None = None,
) -> AdjustmentFactors:
    """The per-bar factors :func:`adjust` applies (same parameters, same conventions).

    Useful to adjust other per-share columns consistently, or to check a vendor's
    adjusted series against raw data.

    Raises
    ------
    InvalidInput, SchemaError
        As :func:`adjust`.
    """
    _check_mode(mode)
    ts = _ts_us(table)
    n = ts.size
    ones = np.ones(n, dtype=np.float64)
    if mode == "none" or n == 0:
        return AdjustmentFactors(ones, ones.copy())
    intraday_tz = tz if (tz is not None and Timeframe.parse(timeframe).is_intraday) else None

    splits = [a for a in actions if a.kind == ActionKind.SPLIT]
    s_bounds, s_suffix = _suffix_products(
        _boundaries_us([a.ex_date for a in splits], intraday_tz), np.array([a.value for a in splits], np.float64)
    )
    split = s_suffix[np.searchsorted(s_bounds, ts, side="right")]

    dividend = ones
    dividends = [a for a in actions if a.kind == ActionKind.DIVIDEND]
    if mode == "all" and dividends:
        d_bounds = _boundaries_us([a.ex_date for a in dividends], intraday_tz)
        amounts = np.array([a.value for a in dividends], np.float64)
        ratios = _dividend_ratios(table, ts, split, d_bounds, amounts, s_bounds, s_suffix, dividends)
        d_sorted, d_suffix = _suffix_products(d_bounds, ratios)
        dividend = d_suffix[np.searchsorted(d_sorted, ts, side="right")]
    return AdjustmentFactors(split, dividend)


def _dividend_ratios(
    table: pa.Table,
    ts: np.ndarray,
    split: np.ndarray,
    bounds: np.ndarray,
    amounts: np.ndarray,
    s_bounds: np.ndarray,
    s_suffix: np.ndarray,
    dividends: Sequence[CorporateAction],
) -> np.ndarray:
    """``1 - D / C_prev`` per dividend, both sides in today's share basis (module docstring)."""
    if "close" not in table.column_names:
        raise SchemaError("dividend adjustment needs a close column", columns=", ".join(table.column_names))
    close = table.column("close").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]
    close_adj = (close / split)[order]
    # Carry the last finite close forward so a bar with a missing close does not hide C_prev.
    finite = np.isfinite(close_adj)
    last_finite = np.maximum.accumulate(np.where(finite, np.arange(ts.size), -1))
    prev = np.searchsorted(ts_sorted, bounds, side="left") - 1
    src = last_finite[np.clip(prev, 0, None)]
    has_prev = (prev >= 0) & (src >= 0)
    c_prev = np.where(has_prev, close_adj[np.clip(src, 0, None)], np.nan)
    d_today = amounts / s_suffix[np.searchsorted(s_bounds, bounds, side="right")]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(has_prev, 1.0 - d_today / c_prev, 1.0)
    bad = ~(np.isfinite(ratios) & (ratios > 0.0))
    if bool(bad.any()):
        k = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            "dividend is not smaller than the close before its ex-date; cannot back-adjust",
            ex_date=dividends[k].ex_date.isoformat(),
            amount=float(amounts[k]),
            close=float(c_prev[k] * s_suffix[np.searchsorted(s_bounds, bounds[k], side="right")]),
        )
    return np.asarray(ratios, dtype=np.float64)


def _suffix_products(bounds: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``bounds`` and return them with ``suffix[k] = prod(values[k:])`` (``suffix[-1] = 1``).

    A bar at ``ts`` is before the boundaries from ``searchsorted(bounds, ts, "right")`` on, so
    ``suffix`` indexed by that is the cumulative factor of every action after the bar.
    """
    # Ties (two actions on one ex-date) are ordered by value so the product, and hence the
    # result, does not depend on the order the caller listed the actions in.
    order = np.lexsort((values, bounds))
    b = bounds[order]
    v = values[order]
    suffix = np.ones(b.size + 1, dtype=np.float64)
    if b.size:
        suffix[:-1] = np.cumprod(v[::-1])[::-1]
    return b, suffix


def _boundaries_us(ex_dates: Sequence[dt.date], tz: str | dt.tzinfo | None) -> np.ndarray:
    """Epoch µs of each ex-date's midnight (UTC, or local midnight in ``tz``)."""
    days = np.array(ex_dates, dtype="datetime64[D]")
    if tz is None or days.size == 0:
        return days.astype(np.int64) * _US_PER_DAY
    local = pd.DatetimeIndex(days.astype("datetime64[us]")).tz_localize(
        tz, nonexistent="shift_forward", ambiguous=np.ones(days.size, dtype=bool)
    )
    return np.asarray(local.tz_convert("UTC").as_unit("us").asi8, dtype=np.int64)


def _ts_us(table: pa.Table) -> np.ndarray:
    if "ts" not in table.column_names:
        raise SchemaError("bars have no ts column", columns=", ".join(table.column_names))
    col = table.column("ts")
    if not pa.types.is_timestamp(col.type):
        raise SchemaError(f"ts column has type {col.type}; expected a timestamp")
    if col.null_count:
        raise SchemaError(f"{col.null_count} bar(s) have no timestamp")
    if col.type.unit != "us":
        col = col.cast(pa.timestamp("us", col.type.tz))
    return np.asarray(col.cast(pa.int64()).to_numpy(), dtype=np.int64)


def _check_mode(mode: str) -> None:
    if mode not in get_args(AdjustMode):
        raise InvalidInput(f"unknown adjust mode {mode!r}; use one of none, splits, all")
