"""Dividend sanity: actions that contradict themselves or the prices.

Corporate actions are few (a handful per year), so this rule walks them in Python; the
flag lands on the batch's bar of the ex-date, where the bad dividend would distort the
adjusted series. Two patterns are caught:

- a *duplicate*: the same amount twice within ``window_days`` (default 7). When enough
  history exists, the one farther from the usual payment rhythm is flagged (Yahoo repeats a
  quarterly dividend a few days early); without history both are.
- an *implausible size*: more than ``max_yield`` (default 0.25) of the previous close — as a
  rule a units mix-up (pence against pounds) or a special dividend worth a second look.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics

import numpy as np
import pandas as pd

from tickvault.model import ActionKind, CorporateAction
from tickvault.quality._prepare import Batch
from tickvault.quality._rule import Finding, findings, fmt_price
from tickvault.quality._series import session_days

__all__ = ["dividend_anomaly"]


def _duplicates(divs: list[CorporateAction], window_days: int) -> dict[dt.date, str]:
    """Ex-dates of dividends judged to be spurious repeats, with the reason."""
    out: dict[dt.date, str] = {}
    for k in range(1, len(divs)):
        a, b = divs[k - 1], divs[k]
        gap = (b.ex_date - a.ex_date).days
        if gap > window_days or abs(a.value - b.value) > 0.02 * max(a.value, b.value):
            continue
        # the payment rhythm of the regular dividends before the pair (specials excluded)
        prior = [d.ex_date for d in divs[: k - 1] if 0.5 * a.value <= d.value <= 2 * a.value]
        suspects = [a, b]
        if len(prior) >= 2:
            rhythm = statistics.median((y - x).days for x, y in itertools.pairwise(prior))
            expected = prior[-1] + dt.timedelta(days=rhythm)
            da, db = abs((a.ex_date - expected).days), abs((b.ex_date - expected).days)
            if da != db:
                suspects = [a if da > db else b]
        for s in suspects:
            other = b if s is a else a
            out[s.ex_date] = (f"dividend {s.value:g} on {s.ex_date} repeats the {other.value:g} dividend of "
                              f"{other.ex_date} ({gap} days apart)")
    return out


def dividend_anomaly(batch: Batch) -> Finding:
    """Duplicate or implausibly large dividends whose ex-date bar is in the batch."""
    divs = sorted((a for a in batch.actions if a.kind == ActionKind.DIVIDEND), key=lambda a: a.ex_date)
    seq = batch.seq
    if not divs or seq.size == 0:
        return Finding.empty()
    window = int(batch.param("dividend_anomaly", "window_days", 7))
    max_yield = batch.param("dividend_anomaly", "max_yield", 0.25)
    reasons: dict[dt.date, list[str]] = {}
    for day, why in _duplicates(divs, window).items():
        reasons.setdefault(day, []).append(why)
    days = session_days(batch)
    for d in divs:
        key = int(pd.Timestamp(d.ex_date).value // 1000)
        i = int(np.searchsorted(days, key, side="left"))
        if i < 1 or i > seq.size:
            continue
        prev_close = float(seq.c[i - 1])
        if d.value > max_yield * prev_close:
            reasons.setdefault(d.ex_date, []).append(
                f"dividend {d.value:g} on {d.ex_date} is {d.value / prev_close:.0%} of the previous close "
                f"{fmt_price(prev_close)}")
    seq_mask = np.zeros(seq.size, dtype=bool)
    why_at: dict[int, str] = {}
    for day_, whys in reasons.items():
        key = int(pd.Timestamp(day_).value // 1000)
        i = int(np.searchsorted(days, key, side="left"))
        if i < seq.size and int(days[i]) == key and seq.row[i] >= 0:
            seq_mask[i] = True
            why_at[int(seq.row[i])] = "; ".join(whys)
    mask = np.zeros(batch.n, dtype=bool)
    mask[list(why_at)] = True
    return findings(mask, lambda i: why_at[i])
