"""The sim provider's generator: determinism, validity, calendar alignment, coverage, bad ticks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.calendars import get_calendar
from tickvault.errors import InvalidRange, InvalidSymbol, InvalidTimeframe
from tickvault.model import BAR_SCHEMA, CoverageInterval, CoverageState, Timeframe, apply_marks
from tickvault.providers.sim import DEFAULT_NO_TRADE_PROB, injected_bad_ticks, simulate_bars

DAY_US = 86_400_000_000
MIN_US = 60_000_000


def us(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def ts_us(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)


def f64(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64)


def drop_meta(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


JAN, FEB, MAR = us("2024-01-01"), us("2024-02-01"), us("2024-03-01")

CASES = [
    ("AAPL", "1m"), ("AAPL", "5m"), ("AAPL", "1h"), ("AAPL", "1d"), ("AAPL", "1w"), ("AAPL", "1mo"),
    ("BTC/USDT", "1m"), ("BTC/USDT", "4h"), ("BTC/USDT", "1d"), ("EUR/USD", "15m"), ("EUR/USD", "1d"),
]


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(("symbol", "timeframe"), CASES)
def test_jan_then_feb_equals_jan_to_feb(symbol: str, timeframe: str) -> None:
    jan, cov_jan = simulate_bars(symbol, timeframe, JAN, FEB, seed=7)
    feb, cov_feb = simulate_bars(symbol, timeframe, FEB, MAR, seed=7)
    both, cov_both = simulate_bars(symbol, timeframe, JAN, MAR, seed=7)
    assert pa.concat_tables([jan, feb]).equals(both)
    assert jan.num_rows > 0
    assert feb.num_rows > 0
    assert apply_marks([], [*cov_jan, *cov_feb]) == apply_marks([], cov_both)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 7 * 24 * 3600 - 1), st.sampled_from(["AAPL", "BTC/USDT", "EUR/USD"]),
       st.sampled_from(["1m", "5m", "1h"]), st.integers(0, 3))
def test_any_split_point_gives_the_same_bars(offset_s: int, symbol: str, timeframe: str, seed: int) -> None:
    lo, hi = us("2024-03-04"), us("2024-03-11")
    cut = lo + offset_s * 1_000_000
    a, _ = simulate_bars(symbol, timeframe, lo, cut, seed=seed)
    b, _ = simulate_bars(symbol, timeframe, cut, hi, seed=seed)
    whole, _ = simulate_bars(symbol, timeframe, lo, hi, seed=seed)
    assert pa.concat_tables([a, b]).equals(whole)


def test_same_call_twice_is_identical_and_seeds_differ() -> None:
    a, ca = simulate_bars("MSFT", "1m", JAN, FEB, seed=1)
    b, cb = simulate_bars("MSFT", "1m", JAN, FEB, seed=1)
    assert a.equals(b)
    assert ca == cb
    c, _ = simulate_bars("MSFT", "1m", JAN, FEB, seed=2)
    d, _ = simulate_bars("AAPL", "1m", JAN, FEB, seed=1)
    assert f64(a, "close")[:100].tolist() != f64(c, "close")[:100].tolist()
    assert f64(a, "close")[:100].tolist() != f64(d, "close")[:100].tolist()


def test_intraday_sessions_open_and_close_on_the_daily_bar() -> None:
    """The bridge runs from the day's open anchor to its close anchor, shared by all timeframes."""
    minutes, _ = simulate_bars("AAPL", "1m", JAN, FEB, seed=3, no_trade_prob=0.0)
    daily, _ = simulate_bars("AAPL", "1d", JAN, FEB, seed=3)
    frame = minutes.to_pandas()
    frame["day"] = frame["ts"].dt.tz_convert("America/New_York").dt.date
    per_day = frame.groupby("day").agg(open=("open", "first"), close=("close", "last"))
    assert per_day["open"].tolist() == f64(daily, "open").tolist()
    assert per_day["close"].tolist() == f64(daily, "close").tolist()


def test_weekly_and_monthly_bars_aggregate_the_daily_bars() -> None:
    daily, _ = simulate_bars("AAPL", "1d", JAN, us("2024-04-01"), seed=5)
    monthly, _ = simulate_bars("AAPL", "1mo", JAN, us("2024-04-01"), seed=5)
    frame = daily.to_pandas()
    frame["month"] = frame["ts"].dt.strftime("%Y-%m")
    agg = frame.groupby("month").agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                                     close=("close", "last"), volume=("volume", "sum"))
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(f64(monthly, name), agg[name].to_numpy(), rtol=1e-12)
    assert [t.day for t in monthly.column("ts").to_pylist()] == [1, 1, 1]


# --------------------------------------------------------------------------- validity


def check_valid(table: pa.Table, decimals: int) -> None:
    assert table.schema.equals(BAR_SCHEMA)
    o, h, lo, c, v, vw = (f64(table, n) for n in ("open", "high", "low", "close", "volume", "vwap"))
    assert np.all(lo > 0)
    assert np.all(lo <= np.minimum(o, c))
    assert np.all(h >= np.maximum(o, c))
    assert np.all((vw >= lo) & (vw <= h))
    assert np.all(v > 0)
    scale = 10.0**decimals
    for x in (o, h, lo, c):
        np.testing.assert_allclose(np.rint(x * scale) / scale, x, rtol=0, atol=1e-12 * max(1.0, float(x.max())))
    n = np.asarray(table.column("trade_count").to_numpy())
    assert np.all(n >= 1)
    t = ts_us(table)
    assert np.all(np.diff(t) > 0)
    assert set(table.column("provider").to_pylist()) == {"sim"}


@pytest.mark.parametrize(("symbol", "timeframe"), CASES)
def test_bars_are_valid(symbol: str, timeframe: str) -> None:
    table, _ = simulate_bars(symbol, timeframe, JAN, MAR, seed=11)
    decimals = {"AAPL": 2, "EUR/USD": 5}.get(symbol)
    if decimals is None:  # crypto: the tick follows the price level (at least 2 decimals)
        decimals = 8
    check_valid(table, decimals)


def test_equity_prices_are_whole_cents_and_shares_whole() -> None:
    table, _ = simulate_bars("XOM", "1m", JAN, FEB, seed=4)
    cents = f64(table, "close") * 100
    assert np.all(np.abs(cents - np.rint(cents)) < 1e-6)
    v = f64(table, "volume")
    assert np.all(v == np.rint(v))
    assert np.all(np.asarray(table.column("trade_count").to_numpy()) <= v)


def test_crypto_prices_have_more_decimals_than_cents() -> None:
    # price levels are drawn per (seed, symbol) over 0.05..50,000: find a seed giving a cheap coin
    cheap = next(seed for seed in range(100) if f64(simulate_bars("SHIB/USDT", "1d", JAN, FEB, seed=seed)[0],
                                                    "close").max() < 1.0)
    table, _ = simulate_bars("SHIB/USDT", "1h", JAN, FEB, seed=cheap)
    close = f64(table, "close")
    assert np.any(np.abs(close * 100 - np.rint(close * 100)) > 1e-6)  # quoted below a cent
    check_valid(table, 8)


def test_volume_is_u_shaped_within_the_session() -> None:
    table, _ = simulate_bars("AAPL", "1m", JAN, us("2024-07-01"), seed=9, no_trade_prob=0.0)
    frame = table.to_pandas()
    local = frame["ts"].dt.tz_convert("America/New_York")
    minute = (local.dt.hour * 60 + local.dt.minute) - (9 * 60 + 30)
    by_minute = frame.groupby(minute)["volume"].mean()
    edges = (by_minute.loc[0:29].mean() + by_minute.loc[360:389].mean()) / 2
    middle = by_minute.loc[165:224].mean()
    assert edges > 2.0 * middle


def test_sessions_gap_overnight_but_crypto_days_are_continuous() -> None:
    eq, _ = simulate_bars("AAPL", "1d", JAN, us("2024-07-01"), seed=2)
    gaps = f64(eq, "open")[1:] != f64(eq, "close")[:-1]
    assert gaps.mean() > 0.9
    btc, _ = simulate_bars("BTC/USDT", "1d", JAN, us("2024-07-01"), seed=2)
    np.testing.assert_array_equal(f64(btc, "open")[1:], f64(btc, "close")[:-1])


# --------------------------------------------------------------------------- calendar alignment and coverage


@pytest.mark.parametrize(("symbol", "timeframe", "calendar"), [
    ("AAPL", "1m", "XNYS"), ("AAPL", "30m", "XNYS"), ("7203", "5m", "XTKS"), ("BTC/USDT", "1m", "24/7"),
    ("EUR/USD", "1m", "24/5"),
])
def test_bars_and_empty_coverage_match_the_calendar_exactly(symbol: str, timeframe: str, calendar: str) -> None:
    lo, hi = us("2024-03-01"), us("2024-04-01") + 17 * MIN_US  # end mid-session on purpose
    table, coverage = simulate_bars(symbol, timeframe, lo, hi, seed=1, calendar=calendar, no_trade_prob=0.01)
    cal = get_calendar(calendar)
    starts, ends = cal.bar_bounds(timeframe, lo, hi)
    got = ts_us(table)
    present = np.isin(starts, got)
    assert np.all(np.isin(got, starts))  # every bar is an expected bar: no bar outside sessions
    assert 0 < (~present).sum() < 0.05 * starts.size
    empties = [(c.start_us, c.end_us) for c in coverage if c.state == CoverageState.EMPTY]
    expected: list[tuple[int, int]] = []
    for s, e in zip(starts[~present], ends[~present], strict=True):
        if expected and expected[-1][1] == s:
            expected[-1] = (expected[-1][0], int(e))
        else:
            expected.append((int(s), int(e)))
    assert empties == expected
    # coverage is contiguous from the request's start to the end of its last bar
    assert coverage[0].start_us == lo
    assert all(a.end_us == b.start_us for a, b in itertools.pairwise(coverage))
    assert coverage[-1].end_us == max(hi, int(ends[-1]))
    assert {c.state for c in coverage} <= {CoverageState.FINAL, CoverageState.EMPTY}
    assert all(c.provider == "sim" for c in coverage)


def test_no_weekend_or_holiday_bars_on_xnys() -> None:
    table, _ = simulate_bars("AAPL", "1m", JAN, us("2024-12-31"), seed=0)
    local = table.to_pandas()["ts"].dt.tz_convert("America/New_York")
    assert local.dt.day_of_week.max() <= 4
    days = set(local.dt.date)
    for holiday in ("2024-01-01", "2024-07-04", "2024-12-25", "2024-03-29"):
        assert pd.Timestamp(holiday).date() not in days
    assert local.dt.strftime("%H:%M").min() == "09:30"
    assert local.dt.strftime("%H:%M").max() == "15:59"
    early = local[local.dt.date == pd.Timestamp("2024-11-29").date()]  # day after Thanksgiving
    assert early.dt.strftime("%H:%M").max() == "12:59"


def test_daily_bars_are_keyed_by_session_date() -> None:
    table, coverage = simulate_bars("AAPL", "1d", us("2023-01-01"), us("2024-01-01"), seed=0)
    t = ts_us(table)
    assert np.all(t % DAY_US == 0)
    sessions = get_calendar("XNYS").sessions("2023-01-01", "2023-12-31")
    assert [pd.Timestamp(x, unit="us").date() for x in t] == [s.date() for s in sessions]
    assert coverage == [CoverageInterval(us("2023-01-01"), us("2024-01-01"), CoverageState.FINAL, "sim")]


def test_daily_bars_for_a_long_range() -> None:
    table, _ = simulate_bars("KO", "1d", us("1975-01-01"), us("2035-01-01"), seed=0)
    assert table.num_rows == get_calendar("XNYS").sessions("1975-01-01", "2034-12-31").size
    check_valid(table, 2)


def test_default_no_trade_minutes_only_for_listed_minute_bars() -> None:
    def empties(symbol: str, timeframe: str) -> int:
        _, cov = simulate_bars(symbol, timeframe, JAN, FEB, seed=0)
        return sum(c.state == CoverageState.EMPTY for c in cov)

    n = empties("AAPL", "1m")
    expected = DEFAULT_NO_TRADE_PROB * 21 * 390
    assert 0.3 * expected < n < 3 * expected
    assert empties("AAPL", "5m") == 0
    assert empties("BTC/USDT", "1m") == 0
    assert empties("EUR/USD", "1m") == 0


def test_weekend_only_range_has_no_bars_but_full_coverage() -> None:
    lo, hi = us("2024-01-06"), us("2024-01-08")
    table, coverage = simulate_bars("AAPL", "1m", lo, hi)
    assert table.num_rows == 0
    assert table.schema.equals(BAR_SCHEMA)
    assert coverage == [CoverageInterval(lo, hi, CoverageState.FINAL, "sim")]
    empty, none = simulate_bars("AAPL", "1m", lo, lo)
    assert empty.num_rows == 0
    assert none == []


# --------------------------------------------------------------------------- bad ticks


def test_bad_ticks_are_reported_exactly_and_are_bad() -> None:
    rate = 0.01
    clean, _ = simulate_bars("AAPL", "1m", JAN, us("2024-07-01"), seed=3)
    dirty, _ = simulate_bars("AAPL", "1m", JAN, us("2024-07-01"), seed=3, bad_ticks=rate)
    reported = injected_bad_ticks(dirty)
    n = clean.num_rows
    assert abs(len(reported) - rate * n) < 5 * math.sqrt(rate * n)  # Binomial(n, rate) around rate * n
    assert np.array_equal(ts_us(clean), ts_us(dirty))
    cols = ("open", "high", "low", "close", "vwap")
    changed = np.zeros(n, dtype=bool)
    for name in cols:
        changed |= f64(clean, name) != f64(dirty, name)
    t = ts_us(dirty)
    assert t[changed].tolist() == [ts for ts, _ in reported]
    kinds = dict(reported)
    assert set(kinds.values()) == {"spike", "unit", "ohlc"}
    row = {int(x): i for i, x in enumerate(t)}
    c0, c1 = f64(clean, "close"), f64(dirty, "close")
    h1, l1, o1 = f64(dirty, "high"), f64(dirty, "low"), f64(dirty, "open")
    for ts, kind in reported:
        i = row[ts]
        if kind == "ohlc":
            assert h1[i] < l1[i]
        elif kind == "unit":
            assert c1[i] / c0[i] == pytest.approx(100.0) or c1[i] / c0[i] == pytest.approx(0.01)
        else:
            jump = c1[i] / c0[i]
            assert 1.45 < max(jump, 1 / jump) < 3.05
            assert l1[i] <= min(o1[i], c1[i])
            assert h1[i] >= max(o1[i], c1[i])
    # as deterministic as the bars: a split range reports the same rows
    a, _ = simulate_bars("AAPL", "1m", JAN, us("2024-03-01"), seed=3, bad_ticks=rate)
    b, _ = simulate_bars("AAPL", "1m", us("2024-03-01"), us("2024-07-01"), seed=3, bad_ticks=rate)
    assert injected_bad_ticks(a) + injected_bad_ticks(b) == reported
    assert pa.concat_tables([drop_meta(a), drop_meta(b)]).equals(drop_meta(dirty))


def test_no_bad_ticks_means_no_metadata() -> None:
    table, _ = simulate_bars("AAPL", "1d", JAN, FEB)
    assert injected_bad_ticks(table) == []
    assert table.schema.metadata is None


# --------------------------------------------------------------------------- errors


def test_invalid_requests_are_rejected() -> None:
    with pytest.raises(InvalidRange):
        simulate_bars("AAPL", "1m", FEB, JAN)
    with pytest.raises(InvalidRange):
        simulate_bars("AAPL", "1m", JAN, FEB, bad_ticks=1.5)
    with pytest.raises(InvalidRange):
        simulate_bars("AAPL", "1m", JAN, FEB, no_trade_prob=-0.1)
    with pytest.raises(InvalidSymbol):
        simulate_bars("../etc", "1m", JAN, FEB)
    with pytest.raises(InvalidTimeframe):
        simulate_bars("AAPL", "2d", JAN, FEB)
    assert Timeframe.parse("1mo").unit == "mo"


def test_quality_rules_find_exactly_the_injected_bad_ticks() -> None:
    """End to end with tickvault.quality: each injected kind is caught by its rule, nothing else is."""
    from tickvault.quality import check

    table, _ = simulate_bars("AAPL", "1m", JAN, FEB, seed=3, bad_ticks=0.005)
    report = check(table, symbol="AAPL", timeframe="1m", calendar=get_calendar("XNYS"))
    flags = report.flags.to_pandas()
    t = ts_us(table)
    injected: dict[str, set[int]] = {"spike": set(), "unit": set(), "ohlc": set()}
    for ts, kind in injected_bad_ticks(table):
        injected[kind].add(int(np.searchsorted(t, ts)))
    assert all(injected.values())
    for kind, rule in (("ohlc", "ohlc_consistency"), ("unit", "unit_jump"), ("spike", "spike")):
        assert set(flags.loc[flags["rule"] == rule, "row"]) == injected[kind], rule
    hard = set(flags.loc[flags["severity"] == "hard", "row"])
    assert hard == injected["ohlc"] | injected["unit"]
