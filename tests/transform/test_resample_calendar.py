"""Session-aware resampling on exchange calendars, gap fill, and the planning helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickvault.calendars import get_calendar
from tickvault.errors import InvalidInput, InvalidTimeframe
from tickvault.model import Timeframe, conform_bars
from tickvault.transform import best_source, can_resample, resample


def bars_at(ts: pd.DatetimeIndex, *, seed: int = 0, provider: str | list[str] = "vendor",
            vwap: bool = True, trade_count: bool = True) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = len(ts)
    close = 100.0 + np.cumsum(rng.normal(0, 0.1, n))
    df = pd.DataFrame({
        "ts": ts, "open": close + 0.01, "high": close + 0.05, "low": close - 0.05, "close": close,
        "volume": rng.integers(1, 100, n).astype(float),
    })
    if vwap:
        df["vwap"] = close
    if trade_count:
        df["trade_count"] = rng.integers(1, 10, n)
    if isinstance(provider, list):
        df["provider"] = provider
    return conform_bars(df, provider=provider if isinstance(provider, str) else None)


def minutes(start: str, end: str) -> pd.DatetimeIndex:
    """1m bar opens in ``[start, end)`` UTC."""
    return pd.date_range(start, end, freq="1min", inclusive="left", tz="UTC")


def labels(table: pa.Table) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M") for t in table.column("ts").to_pandas()]


# --------------------------------------------------------------------------- XNYS


@pytest.fixture(scope="module")
def xnys_day() -> pa.Table:
    # 2023-11-22 (regular, EST: 14:30Z-21:00Z) and 2023-11-24 (early close 13:00 ET = 18:00Z),
    # each with every minute from 04:00 to 20:00 ET (extended hours included).
    wed = minutes("2023-11-22 09:00", "2023-11-23 01:00")
    return bars_at(wed.append(minutes("2023-11-24 09:00", "2023-11-25 01:00")))


def test_hourly_bars_align_to_the_session_open(xnys_day: pa.Table) -> None:
    cal = get_calendar("XNYS")
    out = resample(xnys_day, "1m", "1h", calendar=cal)
    got = labels(out)
    assert got[:7] == [f"2023-11-22 {h}:30" for h in range(14, 21)]
    assert got[7:] == [f"2023-11-24 {h}:30" for h in range(14, 18)]
    df = out.to_pandas().set_index("ts")
    src = xnys_day.to_pandas().set_index("ts")
    # The last bar of each session is clipped at the close: 30 minutes of bars.
    last = pd.Timestamp("2023-11-22 20:30", tz="UTC")
    assert df.loc[last, "volume"] == src.loc[last: pd.Timestamp("2023-11-22 20:59", tz="UTC"), "volume"].sum()
    early = pd.Timestamp("2023-11-24 17:30", tz="UTC")
    assert df.loc[early, "close"] == src.loc[pd.Timestamp("2023-11-24 17:59", tz="UTC"), "close"]
    regular = src[((src.index >= "2023-11-22 14:30") & (src.index < "2023-11-22 21:00"))
                  | ((src.index >= "2023-11-24 14:30") & (src.index < "2023-11-24 18:00"))]
    assert df["volume"].sum() == regular["volume"].sum()  # out-of-hours bars dropped


def test_extended_hours_are_kept_on_request(xnys_day: pa.Table) -> None:
    cal = get_calendar("XNYS")
    regular = resample(xnys_day, "1m", "1d", calendar=cal)
    extended = resample(xnys_day, "1m", "1d", calendar=cal, extended=True)
    assert labels(regular) == labels(extended) == ["2023-11-22 00:00", "2023-11-24 00:00"]
    src = xnys_day.to_pandas().set_index("ts")
    ext = extended.to_pandas().set_index("ts")
    # 04:00-20:00 ET (17:00 on the early-close day): 09:00Z-01:00Z and 09:00Z-22:00Z.
    assert ext["volume"].iloc[0] == src.loc["2023-11-22 09:00":"2023-11-23 00:59", "volume"].sum()
    assert ext["volume"].iloc[1] == src.loc["2023-11-24 09:00":"2023-11-24 21:59", "volume"].sum()
    assert (extended.column("volume").to_numpy() > regular.column("volume").to_numpy()).all()
    hourly = resample(xnys_day, "1m", "1h", calendar=cal, extended=True)
    assert labels(hourly)[0] == "2023-11-22 09:00"


def test_daily_bar_is_one_session_labelled_by_its_date(xnys_day: pa.Table) -> None:
    out = resample(xnys_day, "1m", "1d", calendar=get_calendar("XNYS")).to_pandas().set_index("ts")
    src = xnys_day.to_pandas().set_index("ts")
    session = src.loc["2023-11-22 14:30":"2023-11-22 20:59"]
    row = out.loc[pd.Timestamp("2023-11-22", tz="UTC")]
    assert row["open"] == session["open"].iloc[0]
    assert row["close"] == session["close"].iloc[-1]
    assert row["high"] == session["high"].max()
    assert row["low"] == session["low"].min()
    assert row["trade_count"] == session["trade_count"].sum()
    expected_vwap = (session["vwap"] * session["volume"]).sum() / session["volume"].sum()
    assert row["vwap"] == pytest.approx(expected_vwap, rel=1e-12)
    assert row["provider"] == "vendor"


def test_futures_session_opening_the_evening_before() -> None:
    # CME Globex: the session dated 2024-01-03 opens 2024-01-02 23:00Z.
    cal = get_calendar("CMES")
    table = bars_at(minutes("2024-01-02 23:00", "2024-01-03 02:00"))
    out = resample(table, "1m", "1d", calendar=cal)
    assert labels(out) == ["2024-01-03 00:00"]
    hourly = resample(table, "1m", "1h", calendar=cal)
    assert labels(hourly) == ["2024-01-02 23:00", "2024-01-03 00:00", "2024-01-03 01:00"]


def test_lunch_break_bars_are_dropped_and_hours_restart_after_it() -> None:
    cal = get_calendar("XTKS")
    sched = cal.schedule("2024-03-01", "2024-03-01").iloc[0]
    table = bars_at(minutes(str(sched["open"].tz_localize(None)), str(sched["close"].tz_localize(None))))
    out = resample(table, "1m", "1h", calendar=cal)
    starts = [t for t in labels(out)]
    assert starts[0] == sched["open"].strftime("%Y-%m-%d %H:%M")
    assert sched["break_end"].strftime("%Y-%m-%d %H:%M") in starts
    src = table.to_pandas().set_index("ts")
    in_break = (src.index >= sched["break_start"]) & (src.index < sched["break_end"])
    assert out.column("volume").to_numpy().sum() == src["volume"][~in_break].sum()


def test_week_is_anchored_on_monday_even_when_monday_is_a_holiday() -> None:
    cal = get_calendar("XNYS")
    days = pd.DatetimeIndex(["2023-08-31", "2023-09-01", "2023-09-05", "2023-09-06", "2023-09-08"], tz="UTC")
    daily = bars_at(days)
    weekly = resample(daily, "1d", "1w", calendar=cal)
    assert labels(weekly) == ["2023-08-28 00:00", "2023-09-04 00:00"]  # Labor Day 2023-09-04 had no session
    w = weekly.to_pandas()
    d = daily.to_pandas()
    assert w["open"].iloc[1] == d["open"].iloc[2]
    assert w["close"].iloc[1] == d["close"].iloc[4]
    monthly = resample(daily, "1d", "1mo", calendar=cal)
    assert labels(monthly) == ["2023-08-01 00:00", "2023-09-01 00:00"]


def test_intraday_weeks_use_the_exchange_session_date() -> None:
    # CME session dated Monday 2024-01-08 opens Sunday 2024-01-07 23:00Z: its bars belong to
    # the week of Monday 2024-01-08, not the week of the Sunday's UTC date.
    cal = get_calendar("CMES")
    table = bars_at(minutes("2024-01-07 23:00", "2024-01-08 01:00"))
    assert labels(resample(table, "1m", "1w", calendar=cal)) == ["2024-01-08 00:00"]
    assert labels(resample(table, "1m", "1w")) == ["2024-01-01 00:00", "2024-01-08 00:00"]  # UTC


# --------------------------------------------------------------------------- fill


def test_fill_nan_and_ffill_for_absent_session_bars() -> None:
    cal = get_calendar("XNYS")
    ts = minutes("2023-11-22 14:30", "2023-11-22 21:00")
    keep = ~((ts >= "2023-11-22 16:30") & (ts < "2023-11-22 17:30"))  # one hour has no bars
    table = bars_at(ts[keep])
    none = resample(table, "1m", "1h", calendar=cal)
    assert none.num_rows == 6
    nan = resample(table, "1m", "1h", calendar=cal, fill="nan")
    assert nan.num_rows == 7
    row = nan.to_pandas().set_index("ts").loc[pd.Timestamp("2023-11-22 16:30", tz="UTC")]
    assert np.isnan(row["open"])
    assert np.isnan(row["volume"])
    assert pd.isna(row["provider"])
    ff = resample(table, "1m", "1h", calendar=cal, fill="ffill").to_pandas().set_index("ts")
    prev_close = ff.loc[pd.Timestamp("2023-11-22 15:30", tz="UTC"), "close"]
    filled = ff.loc[pd.Timestamp("2023-11-22 16:30", tz="UTC")]
    assert [filled[c] for c in ("open", "high", "low", "close")] == [prev_close] * 4
    assert filled["volume"] == 0.0
    assert filled["trade_count"] == 0
    assert np.isnan(filled["vwap"])


def test_fill_range_covers_holidays_correctly_and_leading_gaps_stay_null() -> None:
    cal = get_calendar("XNYS")
    daily = bars_at(pd.DatetimeIndex(["2023-11-24", "2023-11-28"], tz="UTC"))
    out = resample(daily, "1d", "1d", calendar=cal, fill="ffill", start="2023-11-21", end="2023-11-29")
    # 22nd session, 23rd Thanksgiving (no session), 24th bar, 25/26 weekend, 27th filled.
    assert labels(out) == ["2023-11-21 00:00", "2023-11-22 00:00", "2023-11-24 00:00", "2023-11-27 00:00",
                           "2023-11-28 00:00"]
    close = out.column("close").to_pylist()
    assert close[0] is None
    assert close[1] is None
    assert close[3] == close[2]


def test_fill_on_the_utc_grid() -> None:
    table = bars_at(pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 03:00"], tz="UTC"))
    out = resample(table, "1h", "1h", fill="nan")
    assert labels(out) == [f"2024-01-01 0{h}:00" for h in range(4)]
    week = resample(bars_at(pd.DatetimeIndex(["2024-01-01", "2024-01-20"], tz="UTC")), "1d", "1w", fill="nan")
    assert labels(week) == ["2024-01-01 00:00", "2024-01-08 00:00", "2024-01-15 00:00"]
    days = resample(bars_at(pd.DatetimeIndex(["2024-01-05", "2024-01-08"], tz="UTC")), "1d", "1d", fill="nan",
                    calendar=get_calendar("24/7"))
    assert days.num_rows == 4  # weekends are sessions in crypto


# --------------------------------------------------------------------------- aggregation details


def test_provider_vwap_and_trade_count_rules() -> None:
    ts = minutes("2024-01-01 00:00", "2024-01-01 00:10")
    table = bars_at(ts, provider=["a"] * 5 + ["a", "b", "b", "b", "b"])
    out = resample(table, "1m", "5m").column("provider").to_pylist()
    assert out == ["a", "derived"]
    no_vwap = bars_at(ts, vwap=False, trade_count=False)
    agg = resample(no_vwap, "1m", "5m")
    assert agg.column("vwap").null_count == 2
    assert agg.column("trade_count").null_count == 2
    vw = table.column("vwap").to_numpy(zero_copy_only=False)
    partial = table.set_column(6, "vwap", pa.array(np.where(np.arange(10) == 7, np.nan, vw), from_pandas=True))
    got = resample(partial, "1m", "5m").column("vwap").to_pylist()
    assert got[0] is not None
    assert got[1] is None


def test_same_timeframe_is_identity_on_24_7_and_drops_off_hours_on_exchanges(xnys_day: pa.Table) -> None:
    table = bars_at(minutes("2024-01-01 00:00", "2024-01-01 03:00"))
    assert resample(table, "1m", "1m").equals(table)
    assert resample(table, "1m", "1m", calendar=get_calendar("24/7")).equals(table)
    regular = resample(xnys_day, "1m", "1m", calendar=get_calendar("XNYS"))
    assert regular.num_rows == 390 + 210


def test_unsorted_and_duplicate_input_is_normalised() -> None:
    table = bars_at(minutes("2024-01-01 00:00", "2024-01-01 00:10"))
    shuffled = table.take(pa.array([9, 3, 0, 1, 2, 4, 5, 6, 7, 8, 3]))
    assert resample(shuffled, "1m", "5m").equals(resample(table, "1m", "5m"))


def test_off_grid_source_bars_raise() -> None:
    cal = get_calendar("XNYS")
    hourly_utc = bars_at(pd.date_range("2023-11-22 15:00", periods=5, freq="1h", tz="UTC"))
    with pytest.raises(InvalidInput, match="not on the 1h grid"):
        resample(hourly_utc, "1h", "2h", calendar=cal)
    with pytest.raises(InvalidInput, match="grid"):
        resample(bars_at(pd.DatetimeIndex(["2024-01-01 00:02"], tz="UTC")), "5m", "15m")


@pytest.mark.parametrize(("src", "tgt"), [("1h", "5m"), ("1w", "1mo"), ("1d", "2d"), ("1mo", "1w"), ("7m", "1h"),
                                          ("1d", "1h")])
def test_impossible_targets_raise(src: str, tgt: str) -> None:
    assert not can_resample(src, tgt)
    with pytest.raises(InvalidTimeframe):
        resample(bars_at(pd.DatetimeIndex(["2024-01-01"], tz="UTC")), src, tgt)


def test_bad_fill_and_empty_input() -> None:
    table = bars_at(pd.DatetimeIndex(["2024-01-01"], tz="UTC"))
    with pytest.raises(InvalidInput):
        resample(table, "1m", "5m", fill="zero")  # type: ignore[arg-type]
    empty = table.slice(0, 0)
    assert resample(empty, "1m", "1h").num_rows == 0
    assert resample(empty, "1m", "1d", calendar=get_calendar("XNYS"), fill="nan").num_rows == 0


def test_planning_helpers() -> None:
    assert can_resample("1m", "1h")
    assert can_resample("5m", "1d")
    assert can_resample("1d", "1mo")
    assert can_resample("1d", "1d")
    assert best_source(["1m", "5m", "1d"], "1d") == Timeframe.parse("1d")  # the vendor's daily wins
    assert best_source(["1m", "5m", "15m"], "1h") == Timeframe.parse("15m")
    assert best_source(["1m", "5m"], "1w") == Timeframe.parse("5m")
    assert best_source(["1d"], "1h") is None
    assert best_source(["7m"], "1h") is None


def test_bars_outside_the_calendar_bounds_raise() -> None:
    from tickvault.errors import InvalidRange

    old = bars_at(pd.date_range("1950-01-03 15:00", periods=3, freq="1min", tz="UTC"))
    for tgt in ("1h", "1d"):
        with pytest.raises(InvalidRange, match="outside calendar XNYS"):
            resample(old, "1m", tgt, calendar=get_calendar("XNYS"))
    assert resample(old, "1m", "1h").num_rows == 1  # no calendar: plain UTC grid
