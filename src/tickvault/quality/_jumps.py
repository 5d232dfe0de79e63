"""Level jumps: ×100 unit errors, split-like jumps, and splits the prices do not show.

These are the errors that survive every per-bar check (each bar is self-consistent; only its
level is wrong) and that do the most damage downstream: a pence/pounds switch turns a 1 %
move into -99 %, an unapplied split looks like a crash, and a split applied twice halves
history. All three work on the sequential view (time order, stored context first) and on
natural-log prices, so a ratio is a difference.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickvault.model import PRICE_COLUMNS
from tickvault.quality._prepare import Batch
from tickvault.quality._rule import Finding, findings, fmt_price, fmt_ts
from tickvault.quality._series import log_levels, robust_sigma, session_days, split_ratios_by_day, unit_levels

__all__ = ["COMMON_SPLIT_RATIOS", "split_jump", "split_mismatch", "unit_jump"]

#: Ratios (new shares per old) that splits and consolidations commonly use; their inverses
#: are tried too. 100 is left out on purpose: that is the unit-error signature.
COMMON_SPLIT_RATIOS = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0)

F64 = npt.NDArray[np.float64]


def _seq_mask_to_rows(batch: Batch, seq_mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], dict[int, int]]:
    """Batch-row mask from a mask over the sequential view, and row -> view index."""
    rows = batch.seq.row
    hit = np.flatnonzero(seq_mask & (rows >= 0))
    mask = np.zeros(batch.n, dtype=bool)
    mask[rows[hit]] = True
    return mask, {int(rows[j]): int(j) for j in hit}


def _factor(log10_off: float) -> str:
    k = round(log10_off)
    if abs(log10_off - k) <= 0.15 and abs(k) >= 2:
        return f"×{10 ** k:g}" if k > 0 else f"×1/{10 ** -k:g}"
    return f"×{10 ** log10_off:.3g}"


def unit_jump(batch: Batch) -> Finding:
    """Bars whose prices (all or some) sit ~100× (or ≥1000×) off the reference level.

    Catches pence/pounds and cents/dollars switches, whether one bar, one column of one bar
    or a block of bars, and whether or not the level reverts. Parameter ``tol`` (default 0.15,
    in log10) is how far from an exact power of ten a step may be.
    """
    seq = batch.seq
    if seq.size == 0:
        return Finding.empty()
    lv = unit_levels(batch)
    off = lv.offset
    off_cols = np.abs(off) >= 1.0
    bar_bad = np.asarray(off_cols.any(axis=1), dtype=bool)
    if lv.ambiguous:
        bar_bad = np.ones(seq.size, dtype=bool)
    mask, at = _seq_mask_to_rows(batch, bar_bad)

    def reason(i: int) -> str:
        j = at[i]
        cols = [name for k, name in enumerate(PRICE_COLUMNS) if off_cols[j, k]]
        if not cols:
            return f"bar is on one of several price levels ×100 apart; {lv.note}"
        factors = {_factor(float(off[j, k])) for k, name in enumerate(PRICE_COLUMNS) if off_cols[j, k]}
        what = "prices are" if len(cols) == 4 else ", ".join(cols) + (" are" if len(cols) > 1 else " is")
        vals = ", ".join(fmt_price(float(p[j])) for p, on in zip((seq.o, seq.h, seq.l, seq.c), off_cols[j], strict=True)
                         if on)
        return (f"{what} {'/'.join(sorted(factors))} the reference level ({vals}): unit error "
                f"(pence/pounds, cents/dollars)?; {lv.note}")

    return findings(mask, reason)


def _split_jumps(batch: Batch) -> tuple[npt.NDArray[np.intp], F64]:
    """View indices of unexplained split-like close->open jumps, and each jump's log ratio."""
    seq = batch.seq
    m = seq.size
    if m < 2:
        return np.empty(0, dtype=np.intp), np.empty(0)
    lo, _, _, lc = log_levels(batch)
    g = lo[1:] - lc[:-1]
    sigma = robust_sigma(batch)[1:]
    rtol = batch.param("split_jump", "rtol", 0.03)
    zmin = batch.param("split_jump", "z", 6.0)
    splits = split_ratios_by_day(batch)
    ratios = list(COMMON_SPLIT_RATIOS) + [r for rs in splits.values() for r in rs if abs(math.log(r)) > 0.01]
    ln_c = np.log(np.asarray(ratios, dtype=np.float64))
    ln_c = np.concatenate((ln_c, -ln_c))
    dist = np.abs(g[:, None] - ln_c[None, :])
    nearest = ln_c[np.argmin(dist, axis=1)]
    close_enough = dist.min(axis=1) <= math.log1p(rtol)
    s = pd.Series(lc)
    before = s.rolling(3, min_periods=1).median().shift(1).to_numpy()[1:]
    after = s[::-1].rolling(3, min_periods=1).median()[::-1].to_numpy()[1:]
    persists = np.abs((after - before) - nearest) <= math.log(1.15)
    cand = close_enough & persists & (np.abs(g) / sigma >= zmin)
    idx = np.flatnonzero(cand) + 1  # view index of the bar after the jump
    if idx.size and splits:
        days = session_days(batch)
        explained = np.array([any(abs(g[i - 1] + math.log(r)) <= math.log(1.15) for r in splits.get(int(days[i]), ()))
                              for i in idx], dtype=bool)
        idx = idx[~explained]
    return idx, g[idx - 1]


def split_jump(batch: Batch) -> Finding:
    """Bars on the wrong side of a split-like jump no known split explains.

    A close->open jump near a common split ratio (2, 3, 4, 5, 7, 10, 3/2, ... or the ratio of a
    known split, and their inverses), that persists (the level three bars later agrees) and is
    large against the robust volatility (``z``, default 6), is a split-like jump unless a split
    with that ratio has its ex-date on that session. The reference level is the stored context
    when given, else the most recent bars (vendors back-adjust history, so the latest prices
    are in today's share basis); bars on another level are flagged.
    """
    seq = batch.seq
    idx, g = _split_jumps(batch)
    if idx.size == 0:
        return Finding.empty()
    step = np.zeros(seq.size)
    step[idx] = g
    level = np.cumsum(step)
    ctx = np.flatnonzero(seq.row < 0)
    ref_at = int(ctx[-1]) if ctx.size else seq.size - 1
    ref = level[ref_at]
    off = level - ref
    mask, at = _seq_mask_to_rows(batch, np.abs(off) > 0.05)
    days = session_days(batch)
    daily = not batch.timeframe.is_intraday
    splits = sorted((int(pd.Timestamp(a.ex_date).value // 1000), a.value) for a in batch.actions
                    if a.kind == "split")

    def reason(i: int) -> str:
        j = at[i]
        k = int(np.searchsorted(idx, j, side="right")) if j < ref_at else int(np.searchsorted(idx, j, side="right")) - 1
        k = min(max(k, 0), idx.size - 1)
        b = int(idx[k])
        day = int(days[b])
        hint = ""
        if splits:
            near = min(splits, key=lambda s: abs(s[0] - day))
            hint = f"; nearest known split: {near[1]:g} on {fmt_ts(near[0], daily=True)}"
        where = "the stored level" if ctx.size else "the latest level"
        return (f"price level is ×{math.exp(off[j]):.4g} {where}: split-like jump ×{math.exp(g[k]):.4g} on "
                f"{fmt_ts(seq.ts[b], daily=daily)} (close {fmt_price(seq.c[b - 1])} -> open {fmt_price(seq.o[b])}) "
                f"with no split on that ex-date{hint}")

    return findings(mask, reason)


def split_mismatch(batch: Batch) -> Finding:
    """The bar on a known split's ex-date when the prices do not jump by the split ratio.

    Typical cause: the vendor's prices are already split-adjusted (adjusting them again on
    read would divide history twice), or the ex-date is off by a session. Needs the bar
    before the ex-date (in the batch or the stored context). Parameter ``rtol`` (default
    0.15) is how far the observed jump may differ from the ratio.
    """
    seq = batch.seq
    splits = split_ratios_by_day(batch)
    if seq.size < 2 or not splits:
        return Finding.empty()
    lo, _, _, lc = log_levels(batch)
    days = session_days(batch)
    tol = math.log1p(batch.param("split_mismatch", "rtol", 0.15))
    seq_mask = np.zeros(seq.size, dtype=bool)
    why: dict[int, str] = {}
    for day, ratios in splits.items():
        i = int(np.searchsorted(days, day, side="left"))
        if i < 1 or i >= seq.size or int(days[i]) != day or seq.row[i] < 0:
            continue
        g = float(lo[i] - lc[i - 1])
        for r in ratios:
            if abs(math.log(r)) > 0.01 and abs(g + math.log(r)) > tol:
                seq_mask[i] = True
                why[i] = (f"split {r:g} on {fmt_ts(day, daily=True)} but prices move ×{math.exp(g):.3g} there "
                          f"(expected ×{1 / r:.3g}): already split-adjusted, or a wrong ex-date?")
    mask, at = _seq_mask_to_rows(batch, seq_mask)
    return findings(mask, lambda i: why[at[i]])
