"""Rules about timestamps: duplicates, order, the bar grid and the trading calendar.

Alignment follows DESIGN §3: intraday bars are labelled by their open on the grid laid from
each session's open (09:30 New York for 1h bars is aligned, 10:00 is not); daily bars by the
session date at 00:00 UTC; weekly bars by the Monday and monthly bars by the 1st, both
00:00 UTC. With a calendar the grid and the sessions come from
:meth:`tickvault.calendars.TradingCalendar.bar_bounds`, so holidays, lunch breaks and early
closes are never "missing" and a half-day's last bar is where the calendar says it is.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickvault.model import Timeframe
from tickvault.quality._prepare import Batch
from tickvault.quality._rule import Finding, findings, fmt_ts

__all__ = ["duplicate_ts", "gap", "misaligned_ts", "out_of_order", "outside_session"]

DAY_US = 86_400_000_000
_QUARTER_HOUR_US = 15 * 60 * 1_000_000
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]


def duplicate_ts(batch: Batch) -> Finding:
    """Every occurrence of a repeated timestamp except the last (the store keeps the last)."""
    idx = np.flatnonzero(batch.ts_valid)
    if idx.size < 2:
        return Finding.empty()
    order = idx[np.argsort(batch.ts[idx], kind="stable")]
    s = batch.ts[order]
    is_last = np.ones(order.size, dtype=bool)
    is_last[:-1] = s[1:] != s[:-1]
    if is_last.all():
        return Finding.empty()
    group = np.cumsum(np.concatenate(([True], s[1:] != s[:-1]))) - 1
    winner = order[is_last][group]  # row kept for each element's timestamp
    mask = np.zeros(batch.n, dtype=bool)
    mask[order[~is_last]] = True
    keep_of = np.empty(batch.n, dtype=np.int64)
    keep_of[order] = winner
    daily = not batch.timeframe.is_intraday
    return findings(mask, lambda i: f"duplicate ts {fmt_ts(batch.ts[i], daily=daily)}; "
                                    f"row {keep_of[i]} (the last occurrence) is kept")


def _longest_sorted(t: I64) -> BOOL:
    """Mask of one longest non-decreasing subsequence of ``t`` (patience sorting, O(n log n)).

    Only reached when the batch is not sorted, which is the exception: a per-element loop
    is acceptable there, and it finds the *fewest* rows that are out of place, where a
    running-maximum test would condemn everything after one early outlier.
    """
    tails: list[int] = []  # tails[k]: value ending the best subsequence of length k + 1
    tail_idx: list[int] = []
    prev = np.full(t.size, -1, dtype=np.int64)
    for i, x in enumerate(t.tolist()):
        k = bisect.bisect_right(tails, x)
        if k == len(tails):
            tails.append(x)
            tail_idx.append(i)
        else:
            tails[k] = x
            tail_idx[k] = i
        prev[i] = tail_idx[k - 1] if k else -1
    keep = np.zeros(t.size, dtype=bool)
    j = tail_idx[-1] if tail_idx else -1
    while j >= 0:
        keep[j] = True
        j = int(prev[j])
    return keep


def out_of_order(batch: Batch) -> Finding:
    """The fewest rows whose removal leaves the batch in time order (rows without a time skipped).

    A block of rows pasted in the wrong place is flagged as that block, not as everything after
    it. A batch delivered newest-first has every row but one flagged: sort it before writing.
    """
    idx = np.flatnonzero(batch.ts_valid)
    if idx.size < 2:
        return Finding.empty()
    t = batch.ts[idx]
    if bool(np.all(t[1:] >= t[:-1])):
        return Finding.empty()
    misplaced = ~_longest_sorted(t)
    mask = np.zeros(batch.n, dtype=bool)
    mask[idx[misplaced]] = True
    prev = np.zeros(batch.n, dtype=np.int64)
    prev[idx[1:]] = t[:-1]
    nxt = np.zeros(batch.n, dtype=np.int64)
    nxt[idx[:-1]] = t[1:]
    first = np.zeros(batch.n, dtype=bool)
    first[idx[0]] = True
    daily = not batch.timeframe.is_intraday

    def reason(i: int) -> str:
        here = fmt_ts(batch.ts[i], daily=daily)
        if first[i]:
            return f"ts {here} is later than the rows that follow it (next: {fmt_ts(nxt[i], daily=daily)})"
        return f"ts {here} is out of place (previous row: {fmt_ts(prev[i], daily=daily)})"

    return findings(mask, reason)


def _utc_grid_ok(ts: I64, tf: Timeframe) -> tuple[BOOL, str]:
    """Alignment that holds without a calendar, and how to describe it."""
    if tf.is_intraday:
        # Sessions open on quarter hours everywhere (NSE 09:15 IST is 03:45Z), so without a
        # calendar only the quarter-hour part of the grid can be checked.
        step = math.gcd(tf.micros, _QUARTER_HOUR_US)
        label = f"{step // 60_000_000}-minute" if step % 60_000_000 == 0 else f"{step // 1_000_000}-second"
        return np.asarray(ts % step == 0), f"not on the {label} UTC grid"
    midnight = ts % DAY_US == 0
    if tf.unit == "d":
        return np.asarray(midnight), "not at 00:00 UTC (daily bars are labelled by the session date)"
    days = ts // DAY_US
    if tf.unit == "w":
        monday = (days + 3) % 7 == 0  # epoch day 0 was a Thursday
        return np.asarray(midnight & monday), "not a Monday 00:00 UTC (weekly bars are labelled by the Monday)"
    d = days.astype("datetime64[D]")
    first_of_month = d.astype("datetime64[M]").astype("datetime64[D]") == d
    return np.asarray(midnight & first_of_month), "not the 1st of a month at 00:00 UTC"


def _within(ts: I64, starts: I64, ends: I64) -> tuple[BOOL, I64]:
    """Which instants fall inside one of the sorted bars ``[starts, ends)``, and that bar's start."""
    if starts.size == 0:
        return np.zeros(ts.size, dtype=bool), np.zeros(ts.size, dtype=np.int64)
    j = np.searchsorted(starts, ts, side="right") - 1
    jj = np.clip(j, 0, starts.size - 1)
    return np.asarray((j >= 0) & (ts < ends[jj])), np.asarray(starts[jj], dtype=np.int64)


def _sessions(batch: Batch) -> _Sessions:
    cached = batch.cache.get("sessions")
    if cached is None:
        cached = batch.cache["sessions"] = _Sessions(batch)
    return cached  # type: ignore[no-any-return]


class _Sessions:
    """Where the batch's instants sit relative to the calendar's expected bars."""

    def __init__(self, batch: Batch) -> None:
        tf = batch.timeframe
        cal = batch.calendar
        assert cal is not None  # guarded by _calendar_usable
        self.ts = batch.ts
        valid = batch.ts_valid
        lo = int(batch.ts[valid].min()) if valid.any() else 0
        hi = int(batch.ts[valid].max()) if valid.any() else 0
        self.grid_ok, self.grid_why = _utc_grid_ok(batch.ts, tf)
        if tf.is_intraday:
            starts, ends = cal.bar_bounds(tf, lo - DAY_US, hi + DAY_US + 1)
            if cal.has_extended_hours:
                x_starts, x_ends = cal.bar_bounds(tf, lo - DAY_US, hi + DAY_US + 1, extended=True)
            else:
                x_starts, x_ends = starts, ends
            in_regular, reg_bar = _within(batch.ts, starts, ends)
            in_extended, ext_bar = _within(batch.ts, x_starts, x_ends)
            self.inside = np.asarray(in_regular | in_extended)
            self.bar_of = np.where(in_regular, reg_bar, ext_bar)
            # Inside the regular session only the session-open grid counts; in the extended-only
            # hours either grid does (vendors lay pre-market bars from 04:00, regular ones from
            # 09:30); outside every session, the phase of some session grid (or the UTC grid).
            on_regular = np.isin(batch.ts, starts)
            on_any = on_regular | np.isin(batch.ts, x_starts)
            phases = np.union1d(np.asarray(starts) % tf.micros, [0])
            on_phase = np.isin(batch.ts % tf.micros, phases)
            self.misaligned = np.asarray((in_regular & ~on_regular) | (~in_regular & in_extended & ~on_any)
                                         | (~self.inside & ~on_phase))
        else:
            labels, _ = cal.bar_bounds(tf, lo, hi + 1)
            self.inside = np.isin(batch.ts, labels)
            self.bar_of = batch.ts
            self.misaligned = np.asarray(~self.grid_ok)
        self.misaligned &= valid
        self.outside = np.asarray(valid & ~self.inside & ~self.misaligned)


def _calendar_usable(batch: Batch) -> bool:
    tf = batch.timeframe
    return batch.calendar is not None and (tf.is_intraday or tf.n == 1) and bool(batch.ts_valid.any())


def misaligned_ts(batch: Batch) -> Finding:
    """Timestamps off the bar grid of the timeframe (session-aligned when a calendar is given)."""
    tf = batch.timeframe
    daily = not tf.is_intraday
    if not _calendar_usable(batch):
        ok, why = _utc_grid_ok(batch.ts, tf)
        return findings(batch.ts_valid & ~ok, lambda i: f"{fmt_ts(batch.ts[i], daily=False)} is {why}")
    s = _sessions(batch)

    def reason(i: int) -> str:
        t = fmt_ts(batch.ts[i], daily=False)
        if daily:
            return f"{t} is {s.grid_why}"
        if s.inside[i]:
            return f"{t} is inside the {tf} bar starting {fmt_ts(s.bar_of[i])}, not at a bar start"
        return f"{t} is not on the {tf} grid of the calendar's sessions"

    return findings(s.misaligned, reason)


def outside_session(batch: Batch) -> Finding | None:
    """Bars (on the grid) that fall outside every session of the calendar (holiday, weekend, night).

    Needs a calendar; intraday bars in a calendar's extended hours are inside.
    """
    if not _calendar_usable(batch):
        return None
    s = _sessions(batch)
    tf = batch.timeframe
    daily = not tf.is_intraday
    cal_name = batch.calendar.name if batch.calendar is not None else "the calendar"

    def reason(i: int) -> str:
        t = fmt_ts(batch.ts[i], daily=daily)
        if daily:
            day = pd.Timestamp(int(batch.ts[i]) * 1000, tz="UTC")
            what = "a weekend" if day.day_of_week >= 5 and tf.unit == "d" else "not a session"
            return f"{t} is {what} on {cal_name}"
        return f"{t} is outside the trading sessions of {cal_name}"

    return findings(s.outside, reason)


def gap(batch: Batch) -> Finding | None:
    """Expected bars (per the calendar) missing between the first and the last bar.

    The flag sits on the first bar after the hole; bars of the stored ``context`` count as
    present, so a batch that continues stored data is checked across the seam. Holidays,
    weekends, lunch breaks and the afternoon of early closes hold no expected bar.
    """
    if not _calendar_usable(batch):
        return None
    tf = batch.timeframe
    assert batch.calendar is not None
    present = np.unique(np.concatenate((batch.seq.ts, batch.ts[batch.ts_valid])))
    if present.size < 2:
        return Finding.empty()
    exp, _ = batch.calendar.bar_bounds(tf, int(present[0]) + 1, int(present[-1]))
    missing = exp[~np.isin(exp, present)]
    if missing.size == 0:
        return Finding.empty()
    nxt = present[np.searchsorted(present, missing, side="right")]  # first present bar after each hole
    holes_at, first_idx, counts = np.unique(nxt, return_index=True, return_counts=True)
    last_missing = missing[first_idx + counts - 1]
    first_missing = missing[first_idx]
    # the last occurrence of that timestamp in the batch carries the flag
    idx = np.flatnonzero(batch.ts_valid)
    order = idx[np.argsort(batch.ts[idx], kind="stable")]
    s_ts = batch.ts[order]
    pos = np.searchsorted(s_ts, holes_at, side="right") - 1
    hit = (pos >= 0) & (s_ts[np.clip(pos, 0, None)] == holes_at) if s_ts.size else np.zeros(0, bool)
    mask = np.zeros(batch.n, dtype=bool)
    info: dict[int, tuple[int, int, int]] = {}
    for k in np.flatnonzero(hit):
        row = int(order[pos[k]])
        mask[row] = True
        info[row] = (int(counts[k]), int(first_missing[k]), int(last_missing[k]))
    daily = not tf.is_intraday

    def reason(i: int) -> str:
        n, a, b = info[i]
        span = fmt_ts(a, daily=daily) if n == 1 else f"{fmt_ts(a, daily=daily)} .. {fmt_ts(b, daily=daily)}"
        return f"{n} expected {tf} bar(s) missing before this one ({span})"

    return findings(mask, reason)
