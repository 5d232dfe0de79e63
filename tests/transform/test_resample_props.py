"""Hypothesis properties of resampling on the UTC grid (24/7 markets, no calendar)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.calendars import get_calendar
from tickvault.model import conform_bars
from tickvault.transform import resample

MINUTE_US = 60_000_000


@st.composite
def minute_bars(draw: st.DrawFn) -> pa.Table:
    """Random 1m bars on the UTC grid: a random subset of minutes over up to two days."""
    span = draw(st.integers(1, 2 * 24 * 60))
    offset = draw(st.integers(0, 24 * 60 * 30))
    picks = draw(st.lists(st.integers(0, span - 1), min_size=1, max_size=400, unique=True))
    minutes_ = np.sort(np.array(picks, dtype=np.int64)) + offset
    n = minutes_.size
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    open_ = rng.uniform(1.0, 100.0, n)
    close = rng.uniform(1.0, 100.0, n)
    high = np.maximum(open_, close) + rng.uniform(0.0, 5.0, n)
    low = np.minimum(open_, close) - rng.uniform(0.0, 0.9, n)
    ts = pd.DatetimeIndex(((1_704_067_200 + minutes_ * 60) * 1_000_000_000).astype("datetime64[ns]"), tz="UTC")
    df = pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                       "volume": rng.integers(0, 1000, n).astype(np.float64),
                       "vwap": (high + low) / 2.0, "trade_count": rng.integers(0, 50, n),
                       "provider": rng.choice(["a", "b"], n, p=[0.9, 0.1])})
    return conform_bars(df)


TARGETS = st.sampled_from(["1m", "2m", "5m", "15m", "1h", "4h", "1d", "1w", "1mo"])


def _bucket(ts_us: np.ndarray, target: str) -> np.ndarray:
    t = pd.DatetimeIndex(ts_us.astype("datetime64[us]"))
    if target == "1w":
        return np.asarray(t.normalize() - pd.to_timedelta(t.day_of_week, unit="D"))
    if target == "1mo":
        return np.asarray(t.to_period("M").to_timestamp())
    if target == "1d":
        return np.asarray(t.normalize())
    return np.asarray(t.floor(target.replace("m", "min")))


@settings(max_examples=150, deadline=None)
@given(bars=minute_bars(), target=TARGETS)
def test_resample_aggregates_each_bucket(bars: pa.Table, target: str) -> None:
    out = resample(bars, "1m", target)
    src = bars.to_pandas()
    src["bucket"] = _bucket(bars.column("ts").cast(pa.int64()).to_numpy(), target)
    g = src.groupby("bucket", sort=True)
    got = out.to_pandas()
    assert len(got) == g.ngroups
    np.testing.assert_array_equal(got["ts"].dt.tz_localize(None).to_numpy(dtype="datetime64[us]"),
                                  np.asarray(g.size().index, dtype="datetime64[us]"))
    np.testing.assert_array_equal(got["open"], g["open"].first())
    np.testing.assert_array_equal(got["close"], g["close"].last())
    np.testing.assert_array_equal(got["high"], g["high"].max())  # >= every source high
    np.testing.assert_array_equal(got["low"], g["low"].min())
    np.testing.assert_allclose(got["volume"], g["volume"].sum(), rtol=1e-12)
    assert np.isclose(got["volume"].sum(), src["volume"].sum(), rtol=1e-12)  # volume conserved
    np.testing.assert_array_equal(got["trade_count"], g["trade_count"].sum())
    provider = g["provider"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "derived")
    np.testing.assert_array_equal(got["provider"].astype(str), provider.astype(str))
    vol = g["volume"].sum().to_numpy()
    pv = (src["vwap"] * src["volume"]).groupby(src["bucket"]).sum().to_numpy()
    single = g.size().to_numpy() == 1
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_vwap = np.where(single, g["vwap"].first().to_numpy(), np.where(vol > 0, pv / vol, np.nan))
    np.testing.assert_allclose(got["vwap"].to_numpy(dtype=np.float64), expected_vwap, rtol=1e-12, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(bars=minute_bars())
def test_same_timeframe_is_identity(bars: pa.Table) -> None:
    assert resample(bars, "1m", "1m").equals(bars)
    daily = resample(bars, "1m", "1d")
    assert resample(daily, "1d", "1d").equals(daily)


@settings(max_examples=60, deadline=None)
@given(bars=minute_bars())
def test_resampling_composes(bars: pa.Table) -> None:
    direct = resample(bars, "1m", "1h")
    staged = resample(resample(bars, "1m", "5m"), "5m", "15m")
    staged = resample(staged, "15m", "1h")
    for col in ("ts", "open", "high", "low", "close", "trade_count"):
        assert direct.column(col).equals(staged.column(col)), col
    assert direct.column("provider").to_pylist() == staged.column("provider").to_pylist()
    np.testing.assert_allclose(direct.column("volume").to_numpy(), staged.column("volume").to_numpy(), rtol=1e-12)
    weekly = resample(bars, "1m", "1w")
    via_days = resample(resample(bars, "1m", "1d"), "1d", "1w")
    assert weekly.column("ts").equals(via_days.column("ts"))
    assert weekly.column("high").equals(via_days.column("high"))


@settings(max_examples=30, deadline=None)
@given(bars=minute_bars(), target=TARGETS)
def test_crypto_calendar_equals_utc_grid(bars: pa.Table, target: str) -> None:
    assert resample(bars, "1m", target, calendar=get_calendar("24/7")).equals(resample(bars, "1m", target))


@settings(max_examples=40, deadline=None)
@given(bars=minute_bars(), target=st.sampled_from(["5m", "1h", "1d"]), mode=st.sampled_from(["nan", "ffill"]))
def test_fill_adds_exactly_the_absent_bars(bars: pa.Table, target: str, mode: str) -> None:
    plain = resample(bars, "1m", target)
    filled = resample(bars, "1m", target, fill=mode)  # type: ignore[arg-type]
    ts = filled.column("ts").cast(pa.int64()).to_numpy()
    step = {"5m": 5, "1h": 60, "1d": 1440}[target] * MINUTE_US
    assert np.all(np.diff(ts) == step)  # a complete grid from the first to the last bar
    assert filled.num_rows - plain.num_rows == filled.column("provider").null_count
    real = np.isin(ts, plain.column("ts").cast(pa.int64()).to_numpy())
    assert filled.filter(pa.array(real)).equals(plain)
    if mode == "ffill":
        assert filled.column("close").null_count == 0
        vol = filled.column("volume").to_numpy()
        assert np.all(vol[~real] == 0.0)
