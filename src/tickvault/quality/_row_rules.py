"""Rules that judge each bar on its own: schema, missing and impossible values.

These need no neighbours, no calendar and no history, so they are exact and cheap: one
vectorised comparison per rule over the whole batch.
"""

from __future__ import annotations

import numpy as np

from tickvault.model import PRICE_COLUMNS
from tickvault.quality._prepare import Batch
from tickvault.quality._rule import Finding, findings, fmt_price

__all__ = ["negative_volume", "non_finite_price", "non_positive_price", "ohlc_consistency", "required_columns"]


def required_columns(batch: Batch) -> Finding:
    """Structural problems flag every row; otherwise rows lacking ``ts`` or a price.

    A null volume is accepted (indices and some FX feeds have none); a null price or time is not.
    """
    if batch.problems:
        why = "; ".join(batch.problems)
        return findings(np.ones(batch.n, dtype=bool), lambda _i: why)
    table = batch.table
    nulls = {name: np.asarray(table.column(name).is_null().to_numpy(zero_copy_only=False), dtype=bool)
             for name in ("ts", *PRICE_COLUMNS)}
    mask = np.logical_or.reduce(list(nulls.values()))

    def reason(i: int) -> str:
        missing = [name for name, m in nulls.items() if m[i]]
        return "missing " + ", ".join(missing)

    return findings(mask, reason)


def non_finite_price(batch: Batch) -> Finding:
    """NaN or infinite open/high/low/close (a null is ``required_columns``' business)."""
    table = batch.table
    bad = []
    for name, arr in zip(PRICE_COLUMNS, batch.prices, strict=True):
        valid = np.asarray(table.column(name).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        bad.append(valid & ~np.isfinite(arr))
    mask = np.logical_or.reduce(bad)

    def reason(i: int) -> str:
        cols = [f"{name}={batch.prices[k][i]}" for k, name in enumerate(PRICE_COLUMNS) if bad[k][i]]
        return "non-finite " + ", ".join(cols)

    return findings(mask, reason)


def non_positive_price(batch: Batch) -> Finding:
    """A price of zero or below (most feeds write 0 for "no data"; equities cannot go negative)."""
    bad = [arr <= 0 for arr in batch.prices]  # NaN compares False: not this rule's business
    mask = np.logical_or.reduce(bad)

    def reason(i: int) -> str:
        if all(b[i] for b in bad):
            vals = {fmt_price(float(p[i])) for p in batch.prices}
            if len(vals) == 1:
                return f"all prices are {vals.pop()}"
        cols = [f"{name} {fmt_price(float(batch.prices[k][i]))}" for k, name in enumerate(PRICE_COLUMNS) if bad[k][i]]
        return ", ".join(cols) + " ≤ 0"

    return findings(mask, reason)


def negative_volume(batch: Batch) -> Finding:
    """Volume below zero or infinite (a null/NaN volume means "unknown" and is accepted)."""
    v = batch.v
    mask = (v < 0) | np.isinf(v)
    return findings(mask, lambda i: f"volume {v[i]:.6g} is {'negative' if v[i] < 0 else 'infinite'}")


def ohlc_consistency(batch: Batch) -> Finding:
    """High must be the highest price and low the lowest: ``low ≤ min(o, c) ≤ max(o, c) ≤ high``.

    Parameter ``rtol`` (default 1e-6) forgives float32 round-trips (many vendors store float32,
    so ``close`` can exceed ``high`` by one unit in the last place).
    """
    rtol = batch.param("ohlc_consistency", "rtol", 1e-6)
    o, h, lo, c = batch.prices
    top = np.fmax(o, c)
    bottom = np.fmin(o, c)
    with np.errstate(invalid="ignore"):
        slack_h = rtol * np.abs(top)
        slack_l = rtol * np.abs(bottom)
        high_bad = h < top - slack_h
        low_bad = lo > bottom + slack_l
        inverted = lo > h + rtol * np.abs(h)
    mask = high_bad | low_bad | inverted

    def reason(i: int) -> str:
        parts = []
        if high_bad[i]:
            parts.append(f"high {fmt_price(h[i])} < max(open, close) {fmt_price(top[i])}")
        if low_bad[i]:
            parts.append(f"low {fmt_price(lo[i])} > min(open, close) {fmt_price(bottom[i])}")
        if inverted[i] and not (high_bad[i] or low_bad[i]):
            parts.append(f"low {fmt_price(lo[i])} > high {fmt_price(h[i])}")
        return "; ".join(parts)

    return findings(mask, reason)
