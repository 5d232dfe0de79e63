"""Statistical rules: isolated spikes against robust volatility, and stale or interpolated runs.

Both are *soft* by default: a real market does produce a 12-sigma bar now and then, and an
illiquid instrument does repeat its last bar, so these inform rather than reject.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tickvault.model import PRICE_COLUMNS
from tickvault.quality._prepare import Batch
from tickvault.quality._rule import Finding, findings, fmt_price, fmt_ts
from tickvault.quality._series import enough_history, log_levels, robust_sigma

__all__ = ["spike", "stale_run"]


def spike(batch: Batch) -> Finding:
    """A price far from the local level that the next bars do not confirm.

    The local level is the centred rolling median of log closes over ``window`` bars (default
    7, so up to three consecutive bad bars cannot move it); the yardstick is the robust
    volatility (1.4826 × MAD of log returns). A price is a spike when it is more than ``z``
    (default 12) yardsticks from the level. A persistent level shift is not a spike: the
    centred median follows it within a bar (that is the split/unit rules' business). Unit
    regimes are removed first, so a ×100 bar is reported once, as ``unit_jump``. Needs at
    least ten non-zero moves (batch plus context) to know what is normal; fewer, and it flags
    nothing.
    """
    seq = batch.seq
    if seq.size < 3 or not enough_history(batch):
        return Finding.empty()  # too few moves to know what is normal: judge nothing rather than guess
    window = int(batch.param("spike", "window", 7))
    zmax = batch.param("spike", "z", 12.0)
    logs = log_levels(batch)
    level = pd.Series(logs[3]).rolling(window, center=True, min_periods=1).median().to_numpy()
    sigma = robust_sigma(batch)
    dev = np.stack([(lp - level) / sigma for lp in logs], axis=1)
    hit = np.abs(dev) > zmax
    seq_bad = hit.any(axis=1) & (seq.row >= 0)
    at = {int(seq.row[j]): int(j) for j in np.flatnonzero(seq_bad)}
    mask = np.zeros(batch.n, dtype=bool)
    mask[list(at)] = True

    def reason(i: int) -> str:
        j = at[i]
        cols = [f"{name} {fmt_price(float(np.exp(logs[k][j])))} ({dev[j, k]:+.0f}σ)"
                for k, name in enumerate(PRICE_COLUMNS) if hit[j, k]]
        return (f"{', '.join(cols)} vs local level {fmt_price(float(np.exp(level[j])))} "
                f"(σ={sigma[j]:.3%} per bar)")

    return findings(mask, reason)


def stale_run(batch: Batch) -> Finding:
    """Runs of at least ``min_run`` (default 5) identical or linearly interpolated bars.

    Identical: every field (OHLC and volume) equals the previous bar's — a feed that froze, or
    one that fills quiet periods by repeating the last bar. Interpolated: every field moves by
    the same step as the bar before — gap-filling by interpolation, or fabricated data; no
    market produces five bars in arithmetic progression on all five fields. Every bar of the
    run is flagged (the first one too: it is the value being repeated or the ramp's anchor).
    """
    seq = batch.seq
    m = seq.size
    min_run = int(batch.param("stale_run", "min_run", 5))
    if m < max(min_run, 3) or min_run < 2:
        return Finding.empty()
    cols = (seq.o, seq.h, seq.l, seq.c, seq.v)
    deltas = [np.diff(a) for a in cols]
    # same step as the bar before, on every field (NaN volume steps count as equal)
    # (the tolerance is relative to the values themselves: float noise of 262.05 - 262.04)
    same = np.logical_and.reduce([
        (np.abs(d[1:] - d[:-1]) <= 1e-9 * np.fmax(np.abs(a[2:]), np.abs(a[1:-1])))
        | (np.isnan(d[1:]) & np.isnan(d[:-1]))
        for d, a in zip(deltas, cols, strict=True)
    ])
    # delta j (bar j -> j+1) continuing delta j-1: group equal consecutive deltas into progressions
    new_run = np.concatenate(([True], ~same))
    run_id = np.cumsum(new_run) - 1  # per delta
    n_deltas = np.bincount(run_id)
    first_delta = np.flatnonzero(new_run)
    length = n_deltas + 1  # bars in the progression
    long_runs = np.flatnonzero(length >= min_run)
    if long_runs.size == 0:
        return Finding.empty()
    in_run = np.zeros(m, dtype=bool)
    run_of = np.full(m, -1, dtype=np.int64)
    for r in long_runs.tolist():  # few runs; each is marked with one slice
        a = int(first_delta[r])
        in_run[a:a + int(length[r])] = True
        run_of[a:a + int(length[r])] = r
    seq_bad = in_run & (seq.row >= 0)
    at = {int(seq.row[j]): int(j) for j in np.flatnonzero(seq_bad)}
    mask = np.zeros(batch.n, dtype=bool)
    mask[list(at)] = True
    daily = not batch.timeframe.is_intraday

    def reason(i: int) -> str:
        j = at[i]
        r = int(run_of[j])
        a = int(first_delta[r])
        b = a + int(length[r]) - 1
        span = f"({fmt_ts(seq.ts[a], daily=daily)} .. {fmt_ts(seq.ts[b], daily=daily)})"
        if all(d[a] == 0 for d in deltas[:4]):
            vol = "n/a" if np.isnan(seq.v[j]) else f"{seq.v[j]:.6g}"
            return (f"{length[r]} identical bars in a row {span}: open {fmt_price(seq.o[j])} high "
                    f"{fmt_price(seq.h[j])} low {fmt_price(seq.l[j])} close {fmt_price(seq.c[j])} volume {vol}")
        return (f"{length[r]} bars in arithmetic progression {span}: close steps by "
                f"{deltas[3][a]:+.6g}, volume by {deltas[4][a]:+.6g} every bar (interpolated or synthetic)")

    return findings(mask, reason)
