"""Indicator names, compute() over bar tables, the stacked layout and missing-value rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tickvault.transform.indicators as ind
from tickvault.errors import InvalidInput, SchemaError
from tickvault.model import conform_bars


def _ohlcv(n: int, seed: int = 0, rows: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n,) if rows is None else (rows, n)
    close = 50.0 + np.cumsum(rng.normal(0.0, 1.0, shape), axis=-1)
    return {
        "high": close + rng.uniform(0.0, 1.0, shape),
        "low": close - rng.uniform(0.0, 1.0, shape),
        "close": close,
        "volume": rng.integers(1, 500, shape).astype(np.float64),
    }


def _table(n: int, seed: int = 0) -> pa.Table:
    d = _ohlcv(n, seed)
    ts = pd.date_range("2024-01-02 14:30", periods=n, freq="1min", tz="UTC")
    return conform_bars(pd.DataFrame({"ts": ts, "open": d["close"], **d}), provider="test")


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "canonical", "columns", "warmup"),  # warmup: until every column is valid
    [
        ("rsi_14", "rsi_14", ("rsi_14",), 14),
        ("macd_12_26_9", "macd_12_26_9", ("macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist"), 33),
        ("bb_20_2", "bb_20_2", ("bb_20_2_middle", "bb_20_2_upper", "bb_20_2_lower", "bb_20_2_pctb", "bb_20_2_width"),
         19),
        ("bb_20_2.5", "bb_20_2.5", ("bb_20_2.5_middle", "bb_20_2.5_upper", "bb_20_2.5_lower", "bb_20_2.5_pctb",
                                    "bb_20_2.5_width"), 19),
        ("sma_200", "sma_200", ("sma_200",), 199),
        ("ema_50", "ema_50", ("ema_50",), 49),
        ("wma_10", "wma_10", ("wma_10",), 9),
        ("atr_14", "atr_14", ("atr_14",), 13),
        ("stoch_14_3_3", "stoch_14_3_3", ("stoch_14_3_3_k", "stoch_14_3_3_d"), 17),
        ("adx_14", "adx_14", ("adx_14", "adx_14_plus_di", "adx_14_minus_di"), 27),
        ("obv", "obv", ("obv",), 0),
        ("vwap", "vwap", ("vwap",), 0),
        ("RSI", "rsi_14", ("rsi_14",), 14),
        ("macd_8", "macd_8_26_9", ("macd_8_26_9", "macd_8_26_9_signal", "macd_8_26_9_hist"), 33),
        (" Stoch_5 ", "stoch_5_3_3", ("stoch_5_3_3_k", "stoch_5_3_3_d"), 8),
    ],
)
def test_parse_indicator(name: str, canonical: str, columns: tuple[str, ...], warmup: int) -> None:
    spec = ind.parse_indicator(name)
    assert spec.name == canonical
    assert spec.columns == columns
    assert spec.warmup == warmup


@pytest.mark.parametrize("bad", ["", "rsi_", "foo_3", "rsi_14_2", "sma_0", "sma_2.5", "macd_26_12_9", "bb_20_0",
                                 "obv_3", "rsi-14", "ema_1e3"])
def test_parse_indicator_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput):
        ind.parse_indicator(bad)


def test_parse_indicator_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput):
        ind.parse_indicator(14)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "warmups"), [
    ("rsi_5", (5,)), ("macd_3_7_4", (6, 9, 9)), ("bb_6_2", (5,) * 5), ("sma_9", (8,)), ("ema_9", (8,)),
    ("wma_9", (8,)), ("atr_6", (5,)), ("stoch_5_3_2", (6, 7)), ("adx_5", (9, 5, 5)), ("obv", (0,)), ("vwap", (0,)),
])
def test_warmup_is_the_number_of_leading_nulls(name: str, warmups: tuple[int, ...]) -> None:
    table = _table(120)
    out = ind.compute([name], table, session_ids=np.zeros(120, dtype=np.int64))
    spec = ind.parse_indicator(name)
    assert spec.warmups == warmups
    assert spec.warmup == max(warmups)
    for col, w in zip(spec.columns, warmups, strict=True):
        values = out.column(col).to_numpy(zero_copy_only=False)
        assert np.isnan(values[:w]).all(), col
        assert not np.isnan(values[w:]).any(), col


# --------------------------------------------------------------------------- compute


def test_compute_returns_ts_and_named_columns_equal_to_the_functions() -> None:
    table = _table(300, seed=4)
    d = {k: table.column(k).to_numpy() for k in ("high", "low", "close", "volume")}
    ts_us = table.column("ts").cast(pa.int64()).to_numpy()
    sessions = ts_us // 86_400_000_000
    out = ind.compute(["rsi_14", "macd", "bb_20_2", "atr_14", "stoch", "adx_14", "obv", "vwap", "rsi"], table,
                      session_ids=sessions)
    assert out.column_names[0] == "ts"
    assert out.column("ts").equals(table.column("ts"))
    assert out.num_rows == 300
    assert out.column_names.count("rsi_14") == 1
    np.testing.assert_array_equal(out.column("rsi_14").to_numpy(zero_copy_only=False), ind.rsi(d["close"], 14))
    np.testing.assert_array_equal(out.column("macd_12_26_9_hist").to_numpy(zero_copy_only=False),
                                  ind.macd(d["close"]).hist)
    np.testing.assert_array_equal(out.column("adx_14_minus_di").to_numpy(zero_copy_only=False),
                                  ind.adx(d["high"], d["low"], d["close"]).minus_di)
    np.testing.assert_array_equal(out.column("vwap").to_numpy(zero_copy_only=False),
                                  ind.vwap(d["high"], d["low"], d["close"], d["volume"], sessions))
    assert out.column("rsi_14").null_count == 14  # warm-up is null in Arrow


def test_compute_needs_sessions_for_vwap() -> None:
    with pytest.raises(InvalidInput, match="session_ids"):
        ind.compute(["vwap"], _table(10))
    with pytest.raises(InvalidInput, match="one entry per bar"):
        ind.compute(["vwap"], _table(10), session_ids=np.zeros(3))


def test_compute_reports_missing_columns() -> None:
    table = pa.table({"close": [1.0, 2.0, 3.0]})
    assert ind.compute(["sma_2"], table).column_names == ["sma_2"]
    with pytest.raises(SchemaError, match="high"):
        ind.compute(["atr_2"], table)
    with pytest.raises(SchemaError, match="float64"):
        ind.compute(["sma_2"], pa.table({"close": ["a", "b", "c"]}))


def test_compute_treats_nulls_as_missing() -> None:
    table = pa.table({"close": pa.array([1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0])})
    out = ind.compute(["sma_2"], table).column("sma_2").to_pylist()
    assert out == [None, 1.5, None, None, 4.5, 5.5, 6.5]


# --------------------------------------------------------------------------- layout and gaps


BATCH = {
    "sma": lambda d: (ind.sma(d["close"], 5),),
    "ema": lambda d: (ind.ema(d["close"], 5),),
    "wma": lambda d: (ind.wma(d["close"], 5),),
    "wma_long": lambda d: (ind.wma(d["close"], 70),),
    "sma_long": lambda d: (ind.sma(d["close"], 70),),
    "rsi": lambda d: (ind.rsi(d["close"], 5),),
    "macd": lambda d: tuple(ind.macd(d["close"], 3, 6, 4)),
    "bbands": lambda d: tuple(ind.bbands(d["close"], 5, 2.0)),
    "bbands_long": lambda d: tuple(ind.bbands(d["close"], 70, 2.0)),
    "atr": lambda d: (ind.atr(d["high"], d["low"], d["close"], 5),),
    "stoch": lambda d: tuple(ind.stoch(d["high"], d["low"], d["close"], 5, 3, 3)),
    "adx": lambda d: tuple(ind.adx(d["high"], d["low"], d["close"], 5)),
    "obv": lambda d: (ind.obv(d["close"], d["volume"]),),
}


@pytest.mark.parametrize("name", sorted(BATCH))
def test_stacked_rows_equal_separate_rows_with_their_own_start(name: str) -> None:
    # A (symbols, bars) array: each row is computed as if alone, and a row that starts late
    # (leading NaNs: a symbol listed later) warms up from its own first bar.
    d = _ohlcv(400, seed=9, rows=3)
    lead = [0, 23, 210]
    for arr in d.values():
        for r, k in enumerate(lead):
            arr[r, :k] = np.nan
    stacked = BATCH[name](d)
    for r, k in enumerate(lead):
        alone = BATCH[name]({key: v[r, k:] for key, v in d.items()})
        for s_out, a_out in zip(stacked, alone, strict=True):
            assert np.isnan(s_out[r, :k]).all()
            np.testing.assert_allclose(s_out[r, k:], a_out, rtol=1e-12, atol=1e-10, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 90), gap=st.integers(1, 89), period=st.integers(1, 8))
def test_gap_rules(n: int, gap: int, period: int) -> None:
    # Windowed averages are NaN while the gap is in the window; recursive ones from the gap on.
    # (A NaN on the first bar is not a gap: the series simply starts one bar later.)
    x = 10.0 + np.arange(n, dtype=np.float64) % 7
    gap = 1 + (gap - 1) % (n - 1)
    x[gap] = np.nan
    t = np.arange(n)
    warm = t < period - 1
    assert np.array_equal(np.isnan(ind.sma(x, period)), warm | ((t >= gap) & (t < gap + period)))
    assert np.array_equal(np.isnan(ind.wma(x, period)), warm | ((t >= gap) & (t < gap + period)))
    assert np.array_equal(np.isnan(ind.ema(x, period)), warm | (t >= gap))


def test_invalid_inputs() -> None:
    with pytest.raises(InvalidInput):
        ind.sma(np.ones((2, 2, 2)), 2)
    with pytest.raises(InvalidInput):
        ind.ema(np.ones(5), 0)
    with pytest.raises(InvalidInput):
        ind.ema(np.ones(5), 2, seed="zero")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        ind.ema(np.ones(5), 2, alpha=1.5)
    with pytest.raises(InvalidInput):
        ind.vwap(np.ones(5), np.ones(5), np.ones(5), np.ones(5), np.zeros(4))


def test_flat_market_gives_neutral_values() -> None:
    flat = np.full(40, 7.0)
    assert np.all(ind.rsi(flat, 14)[14:] == 50.0)
    assert np.all(ind.stoch(flat, flat, flat, 5, 3, 3).k[6:] == 50.0)
    bb = ind.bbands(flat, 5)
    assert np.all(bb.pctb[4:] == 0.5)
    assert np.all(bb.width[4:] == 0.0)
    assert np.all(ind.adx(flat, flat, flat, 5).adx[9:] == 0.0)


def test_vwap_resets_each_session_and_ignores_missing_bars() -> None:
    h = np.array([10.0, 12.0, 20.0, 22.0, 30.0])
    lo = h.copy()
    c = h.copy()
    v = np.array([1.0, 3.0, 1.0, np.nan, 2.0])
    sessions = np.array(["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-03", "2024-01-03"])
    out = ind.vwap(h, lo, c, v, sessions)
    np.testing.assert_allclose(out, [10.0, 11.5, 20.0, 20.0, (20.0 + 60.0) / 3.0])
    zero = ind.vwap(h, lo, c, np.zeros(5), sessions)
    assert np.isnan(zero).all()


def test_long_series_match_plain_recursion_and_convolution() -> None:
    # 100K bars: the blocked solver chains 16-bar blocks through several levels.
    rng = np.random.default_rng(0)
    x = 1000.0 + np.cumsum(rng.normal(size=100_003))
    n = 14
    a = 2.0 / (n + 1)
    ref = np.full(x.size, np.nan)
    prev = float(x[:n].mean())
    ref[n - 1] = prev
    for t, v in enumerate(x[n:].tolist(), start=n):
        prev = prev + a * (v - prev)
        ref[t] = prev
    np.testing.assert_allclose(ind.ema(x, n), ref, rtol=1e-12, equal_nan=True)
    for k in (50, 100):
        np.testing.assert_allclose(ind.sma(x, k)[k - 1:], np.convolve(x, np.ones(k) / k, mode="valid"), rtol=1e-12)
        w = np.arange(1, k + 1, dtype=np.float64)
        np.testing.assert_allclose(ind.wma(x, k)[k - 1:], np.convolve(x, w[::-1] / w.sum(), mode="valid"),
                                   rtol=1e-12)
