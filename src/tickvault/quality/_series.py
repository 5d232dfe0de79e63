"""Shared arithmetic over the sequential view: session days, unit levels, robust volatility.

Several rules need the same intermediate results (the ×100 unit regimes must be removed
before spikes and split jumps are measured; every jump is judged against the same robust
volatility), so they are computed once per batch here and cached on it.

Unit levels
    Each bar contributes its four prices, in the order open, high, low, close, to one chain of
    log10 values. A step along the chain of about ±2 (±``tol``), or any step of 3 or more
    (×1000, a scale error), is a *unit step*; the running sum of unit steps gives every price a
    level offset. A step between one bar's close and the next bar's open that a known split
    on that ex-date explains is not a unit step. Which offset is right is decided by the stored
    context when there is one, else by the currency (a minor unit such as GBp means the
    vendor's error is a value in pounds: of two levels ×100 apart the upper one is right), else
    by the level holding more than half of the prices (none: ambiguous).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickvault.errors import InvalidRange
from tickvault.model import ActionKind
from tickvault.quality._prepare import Batch

__all__ = ["MINOR_UNIT_CURRENCIES", "UnitLevels", "enough_history", "log_levels", "robust_sigma", "session_days",
           "split_ratios_by_day", "unit_levels"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DAY_US = 86_400_000_000

#: Quote currencies whose prices are in the minor unit (pence, cents, agorot): a vendor
#: error there is a price in the major unit, 1/100 of the right one.
MINOR_UNIT_CURRENCIES = frozenset({"GBp", "GBX", "GBx", "ZAc", "ZAC", "ILA", "ILa", "USX", "USc"})


def session_days(batch: Batch) -> I64:
    """Session date (epoch µs at 00:00 UTC) of every bar of the sequential view."""
    cached = batch.cache.get("session_days")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    ts = batch.seq.ts
    if not batch.timeframe.is_intraday:
        out = ts.copy()
    elif batch.calendar is not None:
        try:
            out = np.asarray(batch.calendar.session_labels(ts), dtype=np.int64)
        except InvalidRange:  # an instant outside the calendar's bounds
            out = ts - ts % DAY_US
    else:
        out = ts - ts % DAY_US
    batch.cache["session_days"] = out
    return out


def split_ratios_by_day(batch: Batch) -> dict[int, list[float]]:
    """Known split ratios keyed by ex-date (epoch µs at 00:00 UTC)."""
    out: dict[int, list[float]] = {}
    for a in batch.actions:
        if a.kind == ActionKind.SPLIT:
            day = int(pd.Timestamp(a.ex_date).value // 1000)
            out.setdefault(day, []).append(float(a.value))
    return out


@dataclass(frozen=True)
class UnitLevels:
    """Unit regimes of the sequential view.

    Attributes
    ----------
    offset
        ``(m, 4)`` log10 offset of each price (open, high, low, close) from the reference.
    ambiguous
        True when no reference could be chosen (no context, no minor-unit currency, no level
        holding more than half of the prices): every bar of the batch is then reported, since
        which of its levels is right cannot be told from the prices alone.
    note
        How the reference was chosen, for reasons.
    """

    offset: F64
    ambiguous: bool
    note: str


def unit_levels(batch: Batch) -> UnitLevels:
    """Find ×100 (and larger power-of-ten or ≥×1000) unit regimes; see the module docstring."""
    cached = batch.cache.get("unit_levels")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    seq = batch.seq
    m = seq.size
    tol = batch.param("unit_jump", "tol", 0.15)
    if m == 0:
        res = UnitLevels(np.zeros((0, 4)), False, "")
        batch.cache["unit_levels"] = res
        return res
    chain = np.log10(np.stack((seq.o, seq.h, seq.l, seq.c), axis=1)).ravel()
    d = np.diff(chain)
    k = np.round(d)
    unit = ((np.abs(k) >= 2) & (np.abs(d - k) <= tol)) | (np.abs(d) >= 3)
    if unit.any():
        # a close->open step on a split's ex-date that the split explains is not a unit error
        splits = split_ratios_by_day(batch)
        if splits:
            days = session_days(batch)
            pos = np.flatnonzero(unit)
            for p in pos[(pos % 4) == 3]:
                bar = p // 4 + 1
                for ratio in splits.get(int(days[bar]), ()):
                    if abs(d[p] + np.log10(ratio)) <= 0.1:
                        unit[p] = False
    raw = np.concatenate(([0.0], np.cumsum(np.where(unit, d, 0.0)))).reshape(m, 4)
    ref, ambiguous, note = _reference(raw, seq.row < 0, batch.currency) if unit.any() else (0.0, False, "")
    res = UnitLevels(raw - ref, ambiguous, note)
    batch.cache["unit_levels"] = res
    return res


def _reference(raw: F64, in_context: npt.NDArray[np.bool_], currency: str | None) -> tuple[float, bool, str]:
    """Which unit level is right: ``(level, ambiguous, note for reasons)``."""
    if in_context.any():
        return float(raw[np.flatnonzero(in_context)[-1], 3]), False, "reference: the stored bars before the batch"
    values, counts = np.unique(np.round(raw, 1), return_counts=True)
    best = int(np.argmax(counts))
    upper = values[np.abs(values - (values[best] + 2.0)) <= 0.3]
    if currency in MINOR_UNIT_CURRENCIES and upper.size:
        # Quoted in pence (cents, agorot): the vendor's slip is a price in pounds, 1/100 of the
        # right one, so of two levels ×100 apart the upper one is right.
        return float(upper[0]), False, f"reference: the upper of two levels ×100 apart ({currency} is a minor unit)"
    share = counts[best] / raw.size
    if share <= 0.5:
        return (float(values[best]), True, f"no reference: the most common level holds only {share:.0%} of "
                "prices; pass the currency or stored context")
    return float(values[best]), False, f"reference: the level of {share:.0%} of prices"


def log_levels(batch: Batch) -> tuple[F64, F64, F64, F64]:
    """Natural-log open, high, low, close of the sequential view with unit regimes removed."""
    cached = batch.cache.get("log_levels")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    seq = batch.seq
    off = unit_levels(batch).offset * np.log(10.0)
    out = (np.log(seq.o) - off[:, 0], np.log(seq.h) - off[:, 1], np.log(seq.l) - off[:, 2],
           np.log(seq.c) - off[:, 3])
    batch.cache["log_levels"] = out
    return out


MIN_MOVES = 10


def enough_history(batch: Batch) -> bool:
    """Whether the view holds enough non-zero moves (:data:`MIN_MOVES`) to estimate volatility."""
    lc = log_levels(batch)[3]
    return int(np.count_nonzero(np.diff(lc))) >= MIN_MOVES


def robust_sigma(batch: Batch) -> F64:
    """Per-bar robust volatility of close-to-close log returns (1.4826 × rolling MAD).

    A centred window (``vol_window`` bars, default 63) so the first bars of a batch are judged
    too; the median and the MAD ignore the outliers being looked for, so a bad tick cannot
    inflate the yardstick that measures it. Zero returns are ignored (see below). Floored at
    ``vol_floor`` (default 0.1 %) so a flat, illiquid series does not turn every tick into a spike.
    """
    cached = batch.cache.get("sigma")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    _, _, _, lc = log_levels(batch)
    m = lc.size
    window = int(batch.param("spike", "vol_window", 63))
    floor = batch.param("spike", "vol_floor", 1e-3)
    if m < 3:
        out = np.full(m, max(floor, 0.02))
        batch.cache["sigma"] = out
        return out
    # Zero returns are left out: an illiquid series that repeats its last price most of the
    # time would otherwise measure a volatility of zero and call every real move a spike.
    diffs = np.diff(lc)
    r = pd.Series(np.where(diffs == 0, np.nan, diffs))
    med = r.rolling(window, center=True, min_periods=5).median()
    mad = (r - med).abs().rolling(window, center=True, min_periods=5).median()
    glob = float((r - r.median()).abs().median()) if r.notna().sum() >= 5 else floor / 1.4826
    sig = 1.4826 * mad.fillna(glob).to_numpy()
    per_bar = np.concatenate(([sig[0]], sig))  # bar i's return is r[i-1]
    out = np.asarray(np.maximum(np.nan_to_num(per_bar, nan=floor), floor), dtype=np.float64)
    batch.cache["sigma"] = out
    return out
