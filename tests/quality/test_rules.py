"""Each rule on a small hand-made batch: it flags the damaged row, and only that row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.model import CorporateAction, QualityReport
from tickvault.quality import check

from ._bars import DAY_US, bars, daily, random_walk, us


def rows_of(report: QualityReport, rule: str) -> list[int]:
    f = report.flags.filter(pa.compute.equal(report.flags.column("rule"), rule))
    return sorted(f.column("row").to_pylist())


def reasons_of(report: QualityReport, rule: str) -> list[str]:
    f = report.flags.filter(pa.compute.equal(report.flags.column("rule"), rule))
    return f.column("reason").to_pylist()


def xnys_days(start: str, n: int, cal: TradingCalendar) -> list[int]:
    """``n`` consecutive XNYS session labels from ``start``."""
    days = cal.sessions(start, "2030-12-31")[:n]
    return [int(d.value // 1000) for d in days]


@pytest.fixture(scope="module")
def xnys() -> TradingCalendar:
    return get_calendar("XNYS")


# -- per-bar rules -----------------------------------------------------------------------------

def test_missing_column_flags_every_row_and_stops_other_rules() -> None:
    table = bars(daily("2024-01-01", 3), [1.0, 2.0, 3.0]).drop_columns(["volume"])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "required_columns") == [0, 1, 2]
    assert "missing required column volume" in reasons_of(report, "required_columns")[0]
    assert set(report.counts) == {"required_columns"}


def test_unreadable_column_type_is_a_required_columns_failure() -> None:
    table = bars(daily("2024-01-01", 2), [1.0, 2.0])
    table = table.set_column(1, "open", pa.array(["a", "b"]))
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "required_columns") == [0, 1]


def test_null_time_or_price_is_required_columns() -> None:
    ts = daily("2024-01-01", 4)
    table = bars([ts[0], None, ts[2], ts[3]], [1.0, 1.0, 1.0, 1.0])
    table = table.set_column(4, "close", pa.array([1.0, 1.0, None, 1.0]))
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "required_columns") == [1, 2]
    assert report.flags.column("ts")[1].as_py() is None or rows_of(report, "required_columns")[0] == 1


def test_null_volume_is_accepted() -> None:
    table = bars(daily("2024-01-01", 3), [1.0, 1.1, 1.2])
    table = table.set_column(5, "volume", pa.nulls(3, pa.float64()))
    assert check(table, symbol="X", timeframe="1d").hard_failures == 0


def test_non_finite_prices() -> None:
    table = bars(daily("2024-01-01", 3), [1.0, float("nan"), 1.0], h=[1.0, 1.0, float("inf")])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "non_finite_price") == [1, 2]


def test_non_positive_prices_and_negative_volume() -> None:
    table = bars(daily("2024-01-01", 4), [1.0, 0.0, -1.0, 1.0], v=[1.0, 1.0, 1.0, -5.0])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "non_positive_price") == [1, 2]
    assert rows_of(report, "negative_volume") == [3]


def test_ohlc_consistency_with_float32_tolerance() -> None:
    ts = daily("2024-01-01", 4)
    f32 = float(np.float32(14.55))  # close stored as float32, high as float64
    table = bars(ts, [10.0, 10.0, 10.0, 14.55], h=[11.0, 9.5, 11.0, 14.55], lo=[9.0, 9.0, 12.0, 14.55],
                 c=[10.5, 10.0, 10.0, f32])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "ohlc_consistency") == [1, 2]


# -- time rules --------------------------------------------------------------------------------

def test_duplicates_flag_all_but_the_last_occurrence() -> None:
    ts = daily("2024-01-01", 3)
    table = bars([ts[0], ts[1], ts[0], ts[2], ts[0]], [1.0, 1.0, 1.0, 1.0, 1.0])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "duplicate_ts") == [0, 2]
    assert all("row 4" in r for r in reasons_of(report, "duplicate_ts"))


def test_out_of_order_flags_the_moved_block_only() -> None:
    ts = daily("2024-01-01", 10)
    order = [0, 1, 7, 8, 2, 3, 4, 5, 6, 9]  # days 7 and 8 pasted early
    table = bars([ts[k] for k in order], [1.0 + k / 100 for k in order])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "out_of_order") == [2, 3]
    assert report.hard_failures == 0


def test_newest_first_input_is_judged_in_time_order() -> None:
    table = random_walk(daily("2024-01-01", 50), seed=3)
    reversed_table = table.take(pa.array(np.arange(49, -1, -1)))
    report = check(reversed_table, symbol="X", timeframe="1d")
    assert report.counts["out_of_order"] == 49
    assert report.counts["spike"] == report.counts["unit_jump"] == 0


def test_alignment_without_calendar() -> None:
    day = us("2024-01-02")
    table = bars([day, day + 13 * 3_600_000_000 + 30 * 60_000_000], [1.0, 1.0])
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "misaligned_ts") == [1]
    assert "outside_session" not in report.counts
    assert "gap" not in report.counts
    hourly = bars([us("2024-01-02 14:30"), us("2024-01-02 14:40")], [1.0, 1.0])
    assert rows_of(check(hourly, symbol="X", timeframe="1h"), "misaligned_ts") == [1]  # 14:30 is a quarter-hour
    weekly = bars([us("2024-01-01"), us("2024-01-05")], [1.0, 1.0])  # a Monday, a Friday
    assert rows_of(check(weekly, symbol="X", timeframe="1w"), "misaligned_ts") == [1]
    monthly = bars([us("2024-01-01"), us("2024-02-02")], [1.0, 1.0])
    assert rows_of(check(monthly, symbol="X", timeframe="1mo"), "misaligned_ts") == [1]


def test_intraday_alignment_follows_the_session_open(xnys: TradingCalendar) -> None:
    # 1h bars on XNYS start at 09:30 New York (14:30Z in winter); 15:00Z is inside a bar.
    table = bars([us("2024-01-02 14:30"), us("2024-01-02 15:00"), us("2024-01-02 15:30"), us("2024-01-02 16:30")],
                 [1.0, 1.0, 1.0, 1.0])
    report = check(table, symbol="X", timeframe="1h", calendar=xnys)
    assert rows_of(report, "misaligned_ts") == [1]
    assert "inside the 1h bar starting 2024-01-02 14:30Z" in reasons_of(report, "misaligned_ts")[0]


def test_extended_hours_bars_are_inside_the_session(xnys: TradingCalendar) -> None:
    # 08:00 New York = 13:00Z: pre-market; 02:00 New York = 07:00Z: no session at all
    table = bars([us("2024-01-02 13:00"), us("2024-01-02 14:30"), us("2024-01-03 07:00")], [1.0, 1.0, 1.0])
    report = check(table, symbol="X", timeframe="15m", calendar=xnys)
    assert rows_of(report, "outside_session") == [2]
    assert rows_of(report, "misaligned_ts") == []


def test_daily_bars_on_holidays_and_weekends_are_outside_session(xnys: TradingCalendar) -> None:
    table = bars([us("2024-12-24"), us("2024-12-25"), us("2024-12-26"), us("2024-12-28")], [1.0] * 4)
    report = check(table, symbol="X", timeframe="1d", calendar=xnys)
    assert rows_of(report, "outside_session") == [1, 3]
    assert "weekend" in reasons_of(report, "outside_session")[1]
    assert report.hard_failures == 0


def test_gap_counts_missing_sessions_but_not_holidays(xnys: TradingCalendar) -> None:
    days = xnys_days("2024-12-20", 8, xnys)  # 20, 23, 24 (half day), 26, 27, 30, 31, Jan 2
    table = random_walk([days[0], days[1], days[2], days[3], days[6], days[7]], seed=1)
    report = check(table, symbol="X", timeframe="1d", calendar=xnys)
    assert rows_of(report, "gap") == [4]  # 27 and 30 missing; 25 and Jan 1 are holidays
    assert reasons_of(report, "gap")[0].startswith("2 expected 1d bar(s) missing")


def test_gap_across_the_seam_with_stored_context(xnys: TradingCalendar) -> None:
    days = xnys_days("2024-03-01", 10, xnys)
    walk = random_walk(days, seed=2)
    context, batch = walk.slice(0, 5), walk.slice(7)
    report = check(batch, symbol="X", timeframe="1d", calendar=xnys, context=context)
    assert rows_of(report, "gap") == [0]


def test_half_day_intraday_bars_stop_at_the_early_close(xnys: TradingCalendar) -> None:
    starts, _ = xnys.bar_bounds("30m", us("2024-11-29"), us("2024-11-30"))  # Black Friday, 13:00 close
    table = random_walk(starts, seed=4)
    report = check(table, symbol="X", timeframe="30m", calendar=xnys)
    assert report.flags.num_rows == 0
    assert len(starts) == 7


# -- level jumps -------------------------------------------------------------------------------

def test_single_bar_in_wrong_unit() -> None:
    table = random_walk(daily("2024-01-01", 30), seed=5)
    close = table.column("close").to_numpy().copy()
    for name in ("open", "high", "low", "close"):
        col = table.column(name).to_numpy().copy()
        col[12] = col[12] * 100
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(col))
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "unit_jump") == [12]
    assert rows_of(report, "spike") == []  # reported once, by the rule that explains it
    assert close[12] > 0


def test_unit_block_reverting_later_is_flagged_as_a_block() -> None:
    table = random_walk(daily("2024-01-01", 40), seed=6)
    for name in ("open", "high", "low", "close"):
        col = table.column(name).to_numpy().copy()
        col[10:18] = col[10:18] / 100
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(col))
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "unit_jump") == list(range(10, 18))


def test_ambiguous_unit_levels_flag_everything() -> None:
    table = random_walk(daily("2024-01-01", 20), seed=7)
    for name in ("open", "high", "low", "close"):
        col = table.column(name).to_numpy().copy()
        col[10:] = col[10:] * 100
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(col))
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "unit_jump") == list(range(20))
    assert "no reference" in reasons_of(report, "unit_jump")[0]
    low = check(table, symbol="X", timeframe="1d", currency="GBp")  # minor unit: the high level is right
    assert rows_of(low, "unit_jump") == list(range(10))


def test_reverse_split_of_100_with_its_action_is_not_a_unit_error() -> None:
    days = daily("2024-01-01", 20)
    table = random_walk(days, seed=8, start=0.5)
    for name in ("open", "high", "low", "close"):
        col = table.column(name).to_numpy().copy()
        col[10:] = col[10:] * 100
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(col))
    ex = np.datetime64(days[10], "us").astype("datetime64[D]").item()
    report = check(table, symbol="X", timeframe="1d", actions=[CorporateAction.split(ex, 0.01)])
    assert report.counts["unit_jump"] == 0
    assert report.counts["split_mismatch"] == 0


def _with_split(table: pa.Table, at: int, ratio: float) -> pa.Table:
    """Raw prices before ``at`` multiplied by ``ratio`` (as if a split happened at ``at``)."""
    for name in ("open", "high", "low", "close"):
        col = table.column(name).to_numpy().copy()
        col[:at] = col[:at] * ratio
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(col))
    return table


def test_split_like_jump_without_action_flags_the_older_side() -> None:
    days = daily("2024-01-01", 30)
    table = _with_split(random_walk(days, seed=9), 20, 4.0)
    report = check(table, symbol="X", timeframe="1d")
    assert rows_of(report, "split_jump") == list(range(20))
    assert report.hard_failures == 0  # soft by default: flagged, stored


def test_split_like_jump_explained_by_its_action() -> None:
    days = daily("2024-01-01", 30)
    table = _with_split(random_walk(days, seed=9), 20, 4.0)
    ex = np.datetime64(days[20], "us").astype("datetime64[D]").item()
    report = check(table, symbol="X", timeframe="1d", actions=[CorporateAction.split(ex, 4.0)])
    assert report.counts["split_jump"] == 0
    assert report.counts["split_mismatch"] == 0
    wrong_day = np.datetime64(days[21], "us").astype("datetime64[D]").item()
    off = check(table, symbol="X", timeframe="1d", actions=[CorporateAction.split(wrong_day, 4.0)])
    assert rows_of(off, "split_jump") == list(range(20))
    assert "nearest known split: 4" in reasons_of(off, "split_jump")[0]
    assert rows_of(off, "split_mismatch") == [21]


def test_split_jump_with_context_flags_the_new_side() -> None:
    days = daily("2024-01-01", 30)
    table = _with_split(random_walk(days, seed=9), 20, 4.0)
    report = check(table.slice(15), symbol="X", timeframe="1d", context=table.slice(0, 15))
    assert rows_of(report, "split_jump") == list(range(5, 15))


def test_ordinary_volatility_is_not_split_like() -> None:
    table = random_walk(daily("2020-01-01", 2000), seed=10, vol=0.03)
    report = check(table, symbol="X", timeframe="1d")
    assert report.counts["split_jump"] == 0
    assert report.counts["unit_jump"] == 0


# -- statistics ----------------------------------------------------------------------------------

def test_isolated_spike_is_flagged_and_a_level_shift_is_not() -> None:
    table = random_walk(daily("2024-01-01", 60), seed=11)
    close = table.column("close").to_numpy().copy()
    high = table.column("high").to_numpy().copy()
    close[30] *= 1.5
    high[30] = max(high[30], close[30])
    table = table.set_column(table.schema.get_field_index("close"), "close", pa.array(close))
    table = table.set_column(table.schema.get_field_index("high"), "high", pa.array(high))
    assert rows_of(check(table, symbol="X", timeframe="1d"), "spike") == [30]
    shifted = _with_split(random_walk(daily("2024-01-01", 60), seed=11), 30, 1.3)
    assert rows_of(check(shifted, symbol="X", timeframe="1d"), "spike") == []


def test_stale_runs_identical_and_interpolated() -> None:
    ts = daily("2024-01-01", 16)
    o = [10.0, 10.5, 9.8] + [11.0] * 5 + [10.2, 10.4, 10.6, 10.8, 11.0, 12.0, 11.7, 11.9]
    v = [100.0, 120.0, 90.0] + [50.0] * 5 + [10.0, 20.0, 30.0, 40.0, 50.0, 99.0, 77.0, 88.0]
    report = check(bars(ts, o, v=v), symbol="X", timeframe="1d")
    assert rows_of(report, "stale_run") == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    four = check(bars(ts[:7], [1.0, 2.0, 3.5, 3.5, 3.5, 3.5, 4.0]), symbol="X", timeframe="1d")
    assert four.counts["stale_run"] == 0
    custom = check(bars(ts[:7], [1.0, 2.0, 3.5, 3.5, 3.5, 3.5, 4.0]), symbol="X", timeframe="1d",
                   params={"stale_run": {"min_run": 4}})
    assert rows_of(custom, "stale_run") == [2, 3, 4, 5]


def test_dividend_duplicates_and_implausible_sizes() -> None:
    days = daily("2023-01-01", 400)
    table = random_walk(days, seed=12, start=10.0, vol=0.005)

    def day(k: int) -> object:
        return np.datetime64(days[k], "us").astype("datetime64[D]").item()

    rhythm = [CorporateAction.dividend(day(k), 0.1) for k in (10, 101, 192, 283)]
    repeat = CorporateAction.dividend(day(371), 0.1)  # quarterly date is 374: 371 is the spurious copy
    huge = CorporateAction.dividend(day(150), 5.0)
    report = check(table, symbol="X", timeframe="1d", actions=[*rhythm, repeat, CorporateAction.dividend(day(374), 0.1),
                                                                huge])
    assert rows_of(report, "dividend_anomaly") == [150, 371]
    assert report.hard_failures == 0


def test_context_rows_are_never_flagged_and_feed_the_checks() -> None:
    walk = random_walk(daily("2024-01-01", 40), seed=13)
    context = walk.slice(0, 30)
    batch = walk.slice(30)
    # a batch row repeating a stored key is an upsert, not a duplicate
    batch = pa.concat_tables([context.slice(29, 1), batch])
    report = check(batch, symbol="X", timeframe="1d", context=context)
    assert report.rows == 11
    assert report.flags.num_rows == 0
    assert int(np.max(report.flags.column("row").to_numpy(), initial=-1)) < report.rows


def test_daily_keys_are_expected_at_midnight_utc(xnys: TradingCalendar) -> None:
    # A provider that stamps the open (14:30Z) instead of the session date is caught, hard.
    days = xnys_days("2024-02-01", 5, xnys)
    table = random_walk([d + 14 * 3_600_000_000 + 30 * 60_000_000 for d in days], seed=14)
    report = check(table, symbol="X", timeframe="1d", calendar=xnys)
    assert rows_of(report, "misaligned_ts") == [0, 1, 2, 3, 4]
    assert report.counts["outside_session"] == 0
    assert DAY_US == 86_400_000_000
