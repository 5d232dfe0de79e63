"""Vault analytics (issue 6): derived timeframes, gap fill, indicators, snapshots, screens, materialisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickvault.engine import Vault
from tickvault.errors import InvalidInput
from tickvault.model import ts_to_us
from tickvault.providers.sim import simulate_bars
from tickvault.transform import resample
from tickvault.transform.indicators import compute


def _us(text: str) -> int:
    return ts_to_us(pd.Timestamp(text, tz="UTC"))


def _sim(symbol: str, tf: str, start: str, end: str, seed: int = 7) -> pa.Table:
    table, _ = simulate_bars(symbol, tf, _us(start), _us(end), seed=seed, no_trade_prob=0.0)
    return table


def test_unstored_timeframe_is_derived_from_the_finest_stored_one(vault: Vault) -> None:
    minutes = _sim("AAPL", "1m", "2024-03-04", "2024-03-09")
    vault.write("AAPL", "1m", minutes, provider="sim")
    hourly = vault.bars("AAPL", "1h", "2024-03-04", "2024-03-08", fetch="never", format="arrow")
    expected = resample(minutes, "1m", "1h", calendar=vault.calendar("AAPL"))
    assert hourly.num_rows == expected.num_rows == 5 * 7  # 09:30..15:30 session-aligned buckets
    for col in ("open", "high", "low", "close", "volume"):
        assert hourly.column(col).to_pylist() == expected.column(col).to_pylist()
    assert set(hourly.column("provider").cast(pa.string()).to_pylist()) == {"derived:1m"}
    local = pd.Series(hourly.column("ts").to_pandas()).dt.tz_convert("America/New_York")
    assert local.iloc[0].strftime("%H:%M") == "09:30"


def test_vendor_daily_wins_over_derived(vault: Vault) -> None:
    vault.write("AAPL", "1m", _sim("AAPL", "1m", "2024-03-04", "2024-03-06"), provider="sim")
    derived = vault.bars("AAPL", "1d", fetch="never")
    assert set(derived["provider"].astype(str)) == {"derived:1m"}
    assert len(derived) == 2
    vendor = _sim("AAPL", "1d", "2024-03-04", "2024-03-06", seed=99)
    vault.write("AAPL", "1d", vendor, provider="vendor")
    got = vault.bars("AAPL", "1d", fetch="never")
    assert set(got["provider"].astype(str)) == {"sim"}  # the stored vendor bars, not derived ones


def test_weekly_from_daily_is_anchored_on_sessions(vault: Vault) -> None:
    vault.write("AAPL", "1d", _sim("AAPL", "1d", "2024-01-02", "2024-03-01"))
    weekly = vault.bars("AAPL", "1w", fetch="never")
    # MLK day (Mon 15 Jan) does not move the week: it is still keyed on Monday the 15th
    assert pd.Timestamp("2024-01-15", tz="UTC") in weekly.index
    daily = vault.bars("AAPL", "1d", fetch="never")
    week = daily.loc["2024-01-16":"2024-01-19"]
    assert weekly.loc["2024-01-15", "volume"] == week["volume"].sum()
    assert weekly.loc["2024-01-15", "open"] == week["open"].iloc[0]


def test_gap_fill_policies_on_read(vault: Vault) -> None:
    daily = _sim("AAPL", "1d", "2024-01-02", "2024-01-13").to_pandas().set_index("ts")
    vault.write("AAPL", "1d", daily.drop(index=pd.Timestamp("2024-01-05", tz="UTC")))
    plain = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-12", fetch="never")
    nan = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-12", fetch="never", fill="nan")
    ffill = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-12", fetch="never", fill="ffill")
    assert len(plain) == 8
    assert len(nan) == len(ffill) == 9
    assert np.isnan(nan.loc["2024-01-05", "close"])
    prev = plain.loc["2024-01-04", "close"]
    assert ffill.loc["2024-01-05", ["open", "high", "low", "close"]].tolist() == [prev] * 4
    assert ffill.loc["2024-01-05", "volume"] == 0
    with pytest.raises(InvalidInput):
        vault.bars("AAPL", "1d", fill="zero")  # type: ignore[arg-type]


def test_indicators_are_aligned_and_match_full_history(vault: Vault) -> None:
    table = _sim("AAPL", "1d", "2019-01-02", "2024-01-01")
    vault.write("AAPL", "1d", table)
    names = ["rsi_14", "macd_12_26_9", "bb_20_2", "ema_50", "atr_14", "adx_14"]
    got = vault.indicators("AAPL", "1d", names, "2023-01-01", "2023-12-31")
    bars = vault.bars("AAPL", "1d", "2023-01-01", "2023-12-31", fetch="never")
    assert list(got.index) == list(bars.index)
    full = compute(names, table).to_pandas().set_index("ts").loc[got.index]
    for col in full.columns:
        np.testing.assert_allclose(got[col].to_numpy(), full[col].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=col)
    with pytest.raises(InvalidInput):
        vault.indicators("AAPL", "1d", ["rsi_x"])


def test_snapshot_changes_and_invalidation(vault: Vault) -> None:
    vault.write("AAPL", "1d", _sim("AAPL", "1d", "2023-01-03", "2024-03-01"))
    vault.write("MSFT", "1d", _sim("MSFT", "1d", "2023-01-03", "2024-03-01"))
    snap = vault.snapshot(["AAPL", "MSFT", "NVDA"], "1d")
    assert list(snap.index) == ["AAPL", "MSFT", "NVDA"]
    closes = vault.bars("AAPL", "1d", fetch="never")["close"]
    assert snap.loc["AAPL", "close"] == closes.iloc[-1]
    assert snap.loc["AAPL", "chg_5d"] == pytest.approx(closes.iloc[-1] / closes.iloc[-6] - 1)
    assert {"rsi_14", "sma_200", "macd_12_26_9_hist", "bb_20_2_upper"} <= set(snap.columns)
    assert pd.isna(snap.loc["NVDA", "close"])
    nxt = _sim("AAPL", "1d", "2024-03-01", "2024-03-02")
    vault.write("AAPL", "1d", nxt)
    assert vault.snapshot(["AAPL"], "1d").loc["AAPL", "close"] == nxt.column("close")[0].as_py()


def test_screen_filters_and_rejects_unknown_fields_and_code(vault: Vault) -> None:
    for i, sym in enumerate(["AAPL", "MSFT", "NVDA", "AMZN"]):
        vault.write(sym, "1d", _sim(sym, "1d", "2023-01-03", "2024-03-01", seed=i))
    snap = vault.snapshot(["AAPL", "MSFT", "NVDA", "AMZN"], "1d")
    expected = sorted(snap.index[(snap["rsi_14"] < 50) | (snap["close"] > snap["sma_200"])])
    got = vault.screen("rsi_14 < 50 or close > sma_200")
    assert sorted(got.index) == expected
    assert sorted(vault.screen("sma_100 > 0", universe=["AAPL"]).index) == ["AAPL"]  # any indicator name works
    with pytest.raises(InvalidInput, match=r"unknown field 'nope'.*known fields"):
        vault.screen("nope > 1")
    for hostile in ["__import__('os').system('true')", "close.__class__", "[c for c in close]", "close > 'x'",
                    "lambda: 1", ""]:
        with pytest.raises(InvalidInput):
            vault.screen(hostile)


def test_materialized_timeframes_follow_writes_incrementally(vault: Vault) -> None:
    vault.write("AAPL", "1m", _sim("AAPL", "1m", "2024-03-04", "2024-03-06"), provider="sim")
    written = vault.materialize("AAPL", ["5m", "1h"])
    assert written["5m"] == 2 * 78
    assert written["1h"] == 2 * 7
    vault.write("AAPL", "1m", _sim("AAPL", "1m", "2024-03-06", "2024-03-07"), provider="sim")
    stored_5m = vault.bars("AAPL", "5m", fetch="never", format="arrow")
    all_1m = vault.bars("AAPL", "1m", fetch="never", format="arrow")
    full = resample(all_1m, "1m", "5m", calendar=vault.calendar("AAPL"))
    assert stored_5m.num_rows == full.num_rows == 3 * 78
    assert stored_5m.column("close").to_pylist() == full.column("close").to_pylist()
    assert {s.timeframe for s in vault.status("AAPL")} == {"1m", "5m", "1h"}
    with pytest.raises(InvalidInput):
        vault.materialize("AAPL", ["30s"])  # nothing finer is stored


def test_materialization_survives_a_restart_and_settings_default(tmp_path: object) -> None:
    import tickvault

    home = str(tmp_path) + "/vault"  # type: ignore[operator]
    with tickvault.open(home) as vault:
        vault.write("AAPL", "1m", _sim("AAPL", "1m", "2024-03-04", "2024-03-05"), provider="sim")
        vault.materialize("AAPL", ["5m"])
    with tickvault.open(home) as vault:  # a new process would see the same: coverage says "derived:1m"
        vault.write("AAPL", "1m", _sim("AAPL", "1m", "2024-03-05", "2024-03-06"), provider="sim")
        assert vault.bars("AAPL", "5m", fetch="never", format="arrow").num_rows == 2 * 78
    with tickvault.open(":memory:", materialize={"*": ("1h",)}) as vault:
        vault.write("MSFT", "1m", _sim("MSFT", "1m", "2024-03-04", "2024-03-05"), provider="sim")
        assert {s.timeframe for s in vault.status("MSFT")} == {"1m", "1h"}


def test_snapshots_are_cached_and_invalidated_across_vaults(tmp_path: object) -> None:
    import tickvault

    home = str(tmp_path) + "/vault"  # type: ignore[operator]
    with tickvault.open(home) as writer, tickvault.open(home) as reader:
        writer.write("AAPL", "1d", _sim("AAPL", "1d", "2023-06-01", "2024-03-01"))
        first = reader.snapshot(["AAPL"], "1d")
        hits = reader.cache_stats()["levels"]["memory"]["hits"]
        again = reader.snapshot(["AAPL"], "1d")
        assert first.equals(again)
        assert reader.cache_stats()["levels"]["memory"]["hits"] > hits  # the second snapshot came from L1
        nxt = _sim("AAPL", "1d", "2024-03-01", "2024-03-02")
        writer.write("AAPL", "1d", nxt)  # another vault on the same store
        assert reader.snapshot(["AAPL"], "1d").loc["AAPL", "close"] == nxt.column("close")[0].as_py()
        writer.add_actions("AAPL", [tickvault.CorporateAction.split("2024-03-01", 2.0)])
        split = reader.snapshot(["AAPL"], "1d")
        assert split.loc["AAPL", "chg_5d"] != pytest.approx(first.loc["AAPL", "chg_5d"])
