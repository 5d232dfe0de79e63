"""Properties of split/dividend adjustment (tickvault.transform.adjust) on generated bars."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import InvalidInput, SchemaError
from tickvault.model import BAR_SCHEMA, CorporateAction, conform_bars
from tickvault.transform import adjust, adjustment_factors

EPOCH = dt.date(2020, 1, 1)
DAY_US = 86_400_000_000


def make_bars(days: list[int], closes: list[float], *, spread: float = 0.01) -> pa.Table:
    """Daily bars keyed at 00:00 UTC of ``EPOCH + day``; OHLC valid around ``close``."""
    close = np.asarray(closes, dtype=np.float64)
    ts = np.array([(EPOCH + dt.timedelta(days=d)) for d in days], dtype="datetime64[us]")
    return conform_bars(
        pa.table(
            {
                "ts": pa.array(ts, pa.timestamp("us", "UTC")),
                "open": close * (1 + spread / 2),
                "high": close * (1 + spread),
                "low": close * (1 - spread),
                "close": close,
                "volume": np.round(close * 1000.0),
                "vwap": close * (1 - spread / 3),
                "trade_count": pa.array(np.arange(len(days)) + 7, pa.int64()),
            }
        ),
        provider="test",
    )


@st.composite
def bars_and_actions(draw: st.DrawFn, *, kinds: tuple[str, ...] = ("split", "dividend")) -> tuple[
    pa.Table, list[CorporateAction]
]:
    n = draw(st.integers(1, 40))
    days = sorted(draw(st.sets(st.integers(0, 400), min_size=n, max_size=n)))
    closes = draw(st.lists(st.floats(1.0, 1000.0), min_size=n, max_size=n))
    k = draw(st.integers(0, 6))
    picks = [(draw(st.integers(-5, 410)), draw(st.sampled_from(kinds))) for _ in range(k)]
    ratios = [draw(st.sampled_from([2.0, 3.0, 4.0, 7.0, 0.1, 0.5, 1.5, 20.0])) for kind in (p[1] for p in picks)
              if kind == "split"]
    # Keep every dividend below every close in any share basis the splits can produce.
    ceiling = min(closes) / math.prod(r for r in ratios if r > 1)
    actions: list[CorporateAction] = []
    it = iter(ratios)
    for day, kind in picks:
        ex = EPOCH + dt.timedelta(days=day)
        if kind == "split":
            actions.append(CorporateAction.split(ex, next(it)))
        else:
            actions.append(CorporateAction.dividend(ex, ceiling * draw(st.floats(0.001, 0.2))))
    return make_bars(days, closes), actions


def bar_dates(table: pa.Table) -> list[dt.date]:
    return [t.date() for t in table.column("ts").to_pylist()]


def manual_split_factor(day: dt.date, actions: list[CorporateAction]) -> float:
    return math.prod(a.value for a in actions if a.kind == "split" and day < a.ex_date)


def col(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


@given(bars_and_actions())
def test_mode_none_is_identity(case: tuple[pa.Table, list[CorporateAction]]) -> None:
    table, actions = case
    before = table.to_pydict()
    out = adjust(table, actions, "none")
    assert out.equals(table)
    assert table.to_pydict() == before


@given(bars_and_actions(), st.sampled_from(["none", "splits", "all"]))
def test_no_actions_is_identity(case: tuple[pa.Table, list[CorporateAction]], mode: str) -> None:
    table, _ = case
    assert adjust(table, [], mode).equals(table)  # type: ignore[arg-type]


@given(bars_and_actions(kinds=("split",)))
def test_splits_match_manual_formula(case: tuple[pa.Table, list[CorporateAction]]) -> None:
    table, actions = case
    before = table.to_pydict()
    out = adjust(table, actions, "splits")
    assert out.schema == BAR_SCHEMA
    assert table.to_pydict() == before  # input untouched
    factors = np.array([manual_split_factor(d, actions) for d in bar_dates(table)])
    for name in ("open", "high", "low", "close", "vwap"):
        np.testing.assert_allclose(col(out, name), col(table, name) / factors, rtol=1e-14)
    np.testing.assert_allclose(col(out, "volume"), col(table, "volume") * factors, rtol=1e-15)
    assert out.column("trade_count").equals(table.column("trade_count"))
    assert out.column("ts").equals(table.column("ts"))


@given(bars_and_actions())
def test_all_matches_manual_formula(case: tuple[pa.Table, list[CorporateAction]]) -> None:
    table, actions = case
    out = adjust(table, actions, "all")
    dates = bar_dates(table)
    close = col(table, "close")
    split = np.array([manual_split_factor(d, actions) for d in dates])
    div = np.ones(len(dates))
    for a in actions:
        if a.kind != "dividend":
            continue
        before = [i for i, d in enumerate(dates) if d < a.ex_date]
        if not before:
            continue
        p = before[-1]
        # dividend in the basis of its ex-date, close in the basis of its own day, both to today's
        c_prev = close[p] / manual_split_factor(dates[p], actions)
        d_today = a.value / manual_split_factor(a.ex_date, actions)
        div[before] *= 1.0 - d_today / c_prev
    np.testing.assert_allclose(col(out, "close"), close / split * div, rtol=1e-12)
    np.testing.assert_allclose(col(out, "volume"), col(table, "volume") * split, rtol=1e-15)


@given(bars_and_actions(), st.sampled_from(["splits", "all"]))
def test_bars_after_last_action_never_change(case: tuple[pa.Table, list[CorporateAction]], mode: str) -> None:
    table, actions = case
    out = adjust(table, actions, mode)  # type: ignore[arg-type]
    last = max((a.ex_date for a in actions), default=dt.date.min)
    keep = np.array([d >= last for d in bar_dates(table)])
    for name in ("open", "high", "low", "close", "volume", "vwap"):
        np.testing.assert_array_equal(col(out, name)[keep], col(table, name)[keep])


@given(bars_and_actions(), st.randoms(use_true_random=False), st.sampled_from(["splits", "all"]))
def test_action_order_does_not_matter(case: tuple[pa.Table, list[CorporateAction]], rnd: object,
                                      mode: str) -> None:
    table, actions = case
    shuffled = list(actions)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert adjust(table, shuffled, mode).equals(adjust(table, actions, mode))  # type: ignore[arg-type]


@given(bars_and_actions(kinds=("split",)), st.integers(0, 6))
def test_splits_compose(case: tuple[pa.Table, list[CorporateAction]], cut: int) -> None:
    """Adjusting for A then for B equals adjusting for A and B at once (cumulative ratios multiply)."""
    table, actions = case
    first, second = actions[:cut], actions[cut:]
    once = adjust(table, actions, "splits")
    twice = adjust(adjust(table, first, "splits"), second, "splits")
    for name in ("open", "high", "low", "close", "volume", "vwap"):
        np.testing.assert_allclose(col(twice, name), col(once, name), rtol=1e-14)


@given(bars_and_actions(), st.sampled_from(["splits", "all"]))
def test_adjusted_bars_keep_valid_ohlc(case: tuple[pa.Table, list[CorporateAction]], mode: str) -> None:
    table, actions = case
    out = adjust(table, actions, mode)  # type: ignore[arg-type]
    o, h, lo, c = (col(out, n) for n in ("open", "high", "low", "close"))
    assert np.all(lo <= np.minimum(o, c))
    assert np.all(h >= np.maximum(o, c))
    assert np.all(lo > 0)


@given(bars_and_actions())
def test_unsorted_rows_keep_their_order(case: tuple[pa.Table, list[CorporateAction]]) -> None:
    table, actions = case
    perm = np.random.default_rng(table.num_rows).permutation(table.num_rows)
    shuffled = table.take(pa.array(perm))
    out = adjust(shuffled, actions, "all")
    expected = adjust(table, actions, "all").take(pa.array(perm))
    assert out.equals(expected)


def test_split_example_by_hand() -> None:
    table = make_bars([0, 1, 2, 3], [400.0, 404.0, 101.0, 102.0])
    split = CorporateAction.split(EPOCH + dt.timedelta(days=2), 4)
    out = adjust(table, [split], "splits")
    assert col(out, "close").tolist() == [100.0, 101.0, 101.0, 102.0]
    assert col(out, "volume").tolist() == [1_600_000.0, 1_616_000.0, 101_000.0, 102_000.0]


def test_dividend_example_by_hand() -> None:
    table = make_bars([0, 1, 2], [50.0, 40.0, 39.0])
    out = adjust(table, [CorporateAction.dividend(EPOCH + dt.timedelta(days=2), 2.0)], "all")
    # every bar before the ex-date times 1 - 2/40 = 0.95
    np.testing.assert_allclose(col(out, "close"), [47.5, 38.0, 39.0], rtol=1e-15)
    assert col(out, "volume").tolist() == col(table, "volume").tolist()


def test_same_day_split_and_dividend_uses_post_split_basis() -> None:
    """A dividend on a split's ex-date is per new share: the close before is brought to that basis."""
    table = make_bars([0, 1], [200.0, 101.0])
    ex = EPOCH + dt.timedelta(days=1)
    out = adjust(table, [CorporateAction.split(ex, 2), CorporateAction.dividend(ex, 1.0)], "all")
    # pre-split close 200 = 100 per new share; factor 1 - 1/100
    np.testing.assert_allclose(col(out, "close"), [100.0 * 0.99, 101.0], rtol=1e-15)


def test_dividend_with_missing_previous_close_uses_last_known_close() -> None:
    table = make_bars([0, 1, 2], [50.0, 40.0, 39.0])
    close = table.column("close").to_pylist()
    close[1] = None
    table = table.set_column(table.schema.get_field_index("close"), "close", pa.array(close, pa.float64()))
    out = adjust(table, [CorporateAction.dividend(EPOCH + dt.timedelta(days=2), 5.0)], "all")
    assert out.column("close").to_pylist()[1] is None  # nulls stay null
    np.testing.assert_allclose(col(out, "open")[:2], col(table, "open")[:2] * 0.9, rtol=1e-15)


def test_dividend_before_first_bar_changes_nothing() -> None:
    table = make_bars([5, 6], [10.0, 11.0])
    assert adjust(table, [CorporateAction.dividend(EPOCH, 1.0)], "all").equals(table)


def test_intraday_bars_compare_with_exchange_midnight() -> None:
    """US post-market bars of the day before the ex-date are before it, even past 00:00 UTC."""
    stamps = [
        dt.datetime(2020, 11, 5, 23, 30, tzinfo=dt.UTC),  # 18:30 ET Nov 5: before the ex-date
        dt.datetime(2020, 11, 6, 0, 30, tzinfo=dt.UTC),  # 19:30 ET Nov 5 (post-market): before
        dt.datetime(2020, 11, 6, 9, 0, tzinfo=dt.UTC),  # 04:00 ET Nov 6 (pre-market): ex-date
        dt.datetime(2020, 11, 6, 14, 30, tzinfo=dt.UTC),  # 09:30 ET Nov 6
    ]
    table = conform_bars(pa.table({"ts": pa.array(stamps, pa.timestamp("us", "UTC")),
                                   "open": [8.0] * 4, "high": [8.0] * 4, "low": [8.0] * 4,
                                   "close": [8.0] * 4, "volume": [1.0] * 4}))
    split = [CorporateAction.split("2020-11-06", 2)]
    local = adjust(table, split, "splits", timeframe="1m", tz="America/New_York")
    assert col(local, "close").tolist() == [4.0, 4.0, 8.0, 8.0]
    utc = adjust(table, split, "splits", timeframe="1m")
    assert col(utc, "close").tolist() == [4.0, 8.0, 8.0, 8.0]


def test_daily_bars_ignore_tz() -> None:
    table = make_bars([0, 1], [10.0, 5.0])
    split = [CorporateAction.split(EPOCH + dt.timedelta(days=1), 2)]
    with_tz = adjust(table, split, "splits", timeframe="1d", tz="America/New_York")
    assert with_tz.equals(adjust(table, split, "splits"))
    assert col(with_tz, "close").tolist() == [5.0, 5.0]


def test_factors_expose_split_and_dividend_parts() -> None:
    table = make_bars([0, 1, 2], [100.0, 100.0, 50.0])
    ex = EPOCH + dt.timedelta(days=2)
    f = adjustment_factors(table, [CorporateAction.split(ex, 2), CorporateAction.dividend(EPOCH + dt.timedelta(1), 1)],
                           "all")
    assert f.split.tolist() == [2.0, 2.0, 1.0]
    np.testing.assert_allclose(f.dividend, [0.99, 1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(f.price, [0.495, 0.5, 1.0], rtol=1e-15)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="unknown adjust mode"):
        adjust(make_bars([0], [1.0]), [], "total")  # type: ignore[arg-type]


def test_dividend_larger_than_price_is_rejected() -> None:
    table = make_bars([0, 1], [10.0, 1.0])
    with pytest.raises(InvalidInput, match="not smaller than the close") as info:
        adjust(table, [CorporateAction.dividend(EPOCH + dt.timedelta(days=1), 12.0)], "all")
    assert info.value.context["ex_date"] == "2020-01-02"


def test_table_without_ts_is_rejected() -> None:
    with pytest.raises(SchemaError):
        adjust(pa.table({"close": [1.0]}), [CorporateAction.split("2020-01-01", 2)], "splits")


def test_multi_chunk_tables_are_adjusted_like_one_chunk() -> None:
    table = pa.concat_tables([make_bars([0, 1], [10.0, 10.0]), make_bars([2, 3, 4], [5.0, 5.0, 5.0])])
    assert table.column("close").num_chunks == 2
    actions = [CorporateAction.split(EPOCH + dt.timedelta(days=2), 2), CorporateAction.dividend(
        EPOCH + dt.timedelta(days=4), 0.5)]
    out = adjust(table, actions, "all")
    assert out.equals(adjust(table.combine_chunks(), actions, "all"))
    np.testing.assert_allclose(col(out, "close"), [4.5, 4.5, 4.5, 4.5, 5.0], rtol=1e-15)
