"""The Python API contract (issue 2 point 6) on the in-memory oracle and the embedded store."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import tickvault
from tickvault.engine import BarEvent, Vault
from tickvault.errors import InvalidInput, InvalidSymbol, MissingData, SchemaError

from ._fakes import CountingProvider


def daily(start: str, end: str, price: float = 10.0) -> pd.DataFrame:
    idx = pd.bdate_range(start, end, tz="UTC", name="ts")
    idx = idx[~idx.isin(pd.to_datetime(["2024-01-01", "2024-01-15", "2024-02-19"], utc=True))]
    n = len(idx)
    return pd.DataFrame({"open": price, "high": price + 1, "low": price - 1, "close": price + 0.5,
                         "volume": 100.0 + pd.RangeIndex(n)}, index=idx)


def test_write_then_read_round_trips_in_every_format(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-31")
    receipt = vault.write("AAPL", "1d", df)
    assert receipt.rows_written == len(df)
    assert receipt.rows_quarantined == 0
    out = vault.bars("AAPL", "1d", fetch="never")
    assert isinstance(out.index, pd.DatetimeIndex)
    assert out.index.name == "ts"
    assert str(out.index.tz) == "UTC"
    pd.testing.assert_frame_equal(out[["open", "high", "low", "close", "volume"]], df, check_freq=False)
    assert out["provider"].astype(str).unique().tolist() == ["user"]
    assert isinstance(vault.bars("AAPL", "1d", fetch="never", format="polars"), pl.DataFrame)
    assert isinstance(vault.bars("AAPL", "1d", fetch="never", format="arrow"), pa.Table)


def test_identical_rewrite_writes_nothing_and_upsert_replaces(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-31")
    vault.write("AAPL", "1d", df)
    again = vault.write("AAPL", "1d", df)
    assert (again.rows_written, again.rows_unchanged, again.bytes_written) == (0, len(df), 0)
    changed = df.iloc[:3].copy()
    changed["close"] = 10.75
    r = vault.write("AAPL", "1d", changed)
    assert (r.rows_written, r.rows_unchanged) == (3, 0)
    assert vault.bars("AAPL", "1d", fetch="never")["close"].iloc[:4].tolist() == [10.75, 10.75, 10.75, 10.5]


def test_in_batch_duplicates_last_wins(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-05")
    dup = pd.concat([df, df.iloc[[1]].assign(close=10.9)])
    r = vault.write("AAPL", "1d", dup)
    assert r.rows_in == len(df) + 1
    assert vault.bars("AAPL", "1d", fetch="never")["close"].iloc[1] == 10.9


def test_daily_bars_are_keyed_by_session_date(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-05")
    df.index = df.index + pd.Timedelta(hours=14, minutes=30)  # Yahoo stamps the 09:30 ET open
    vault.write("AAPL", "1d", df)
    keys = vault.bars("AAPL", "1d", fetch="never").index
    assert (keys == keys.normalize()).all()


@pytest.mark.parametrize("symbol", ["../../etc", "", "A" * 500, "AAPL\x00", "A;DEL *"])
def test_hostile_symbols_are_rejected_everywhere(vault: Vault, symbol: str) -> None:
    df = daily("2024-01-02", "2024-01-05")
    for call in (lambda: vault.write(symbol, "1d", df), lambda: vault.bars(symbol, "1d"),
                 lambda: vault.latest(symbol, "1d"), lambda: vault.coverage(symbol, "1d"),
                 lambda: vault.actions(symbol), lambda: vault.quarantine(symbol, "1d")):
        with pytest.raises(InvalidSymbol):
            call()
    assert vault.status() == []


def test_bad_arguments_are_clear_errors(vault: Vault) -> None:
    with pytest.raises(InvalidInput):
        vault.bars("AAPL", "1d", adjust="total")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        vault.bars("AAPL", "1d", fetch="sometimes")  # type: ignore[arg-type]
    with pytest.raises(SchemaError):
        vault.write("AAPL", "1d", pd.DataFrame({"close": [1.0]}))


def test_missing_data_names_the_intervals_and_fetch_never_returns_stored(vault: Vault) -> None:
    vault.write("AAPL", "1d", daily("2024-01-02", "2024-01-12"))
    with pytest.raises(MissingData) as info:
        vault.bars("AAPL", "1d", "2024-01-02", "2024-01-19")
    assert [(a.date().isoformat(), b.date().isoformat()) for a, b in info.value.intervals] == [
        ("2024-01-16", "2024-01-20")]  # MLK day (15th) and the weekend are not gaps
    got = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-19", fetch="never")
    assert len(got) == 9
    assert vault.bars("AAPL", "1d", "2024-01-03", "2024-01-10")["close"].notna().all()


def test_weekends_and_holidays_are_not_missing(vault: Vault) -> None:
    vault.write("AAPL", "1d", daily("2024-01-02", "2024-02-29"))
    assert vault.missing("AAPL", "1d", "2024-01-01", "2024-02-29") == []


def test_quarantine_keeps_bad_rows_out_of_the_store(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-12")
    df.iloc[3, df.columns.get_loc("high")] = 1.0  # high below low: OHLC violation
    r = vault.write("AAPL", "1d", df)
    assert r.rows_quarantined == 1
    assert r.rows_written == len(df) - 1
    stored = vault.bars("AAPL", "1d", fetch="never")
    assert df.index[3] not in stored.index
    q = vault.quarantine("AAPL", "1d")
    assert len(q) == 1
    assert q["reason"].iloc[0]
    assert "ohlc" in q["rule"].iloc[0]
    report = vault.quality("AAPL", "1d")
    assert report is not None
    assert report.hard_failures == 1
    assert 0 <= report.score < 1
    # the quarantined bar is not covered, so it is reported missing
    hole = (df.index[3], df.index[3] + pd.Timedelta(days=1))
    assert vault.missing("AAPL", "1d", "2024-01-02", "2024-01-12") == [hole]


def test_adjust_on_read_and_new_actions_readjust(vault: Vault) -> None:
    vault.write("AAPL", "1d", daily("2024-01-02", "2024-01-12", price=100.0))
    assert vault.bars("AAPL", "1d", fetch="never")["close"].iloc[0] == 100.5
    vault.add_actions("AAPL", [tickvault.CorporateAction.split("2024-01-08", 2.0)])
    split = vault.bars("AAPL", "1d", fetch="never")
    assert split.loc["2024-01-05", "close"] == 50.25
    assert split.loc["2024-01-08", "close"] == 100.5
    assert split.loc["2024-01-05", "volume"] == 2 * vault.bars("AAPL", "1d", fetch="never", adjust="none").loc[
        "2024-01-05", "volume"]
    raw = vault.bars("AAPL", "1d", fetch="never", adjust="none")
    assert raw["close"].eq(100.5).all()
    vault.add_actions("AAPL", [tickvault.CorporateAction.dividend("2024-01-10", 1.005)])
    total = vault.bars("AAPL", "1d", fetch="never", adjust="all")
    assert total.loc["2024-01-09", "close"] == pytest.approx(100.5 * (1 - 1.005 / 100.5))
    acts = vault.actions("AAPL")
    assert acts["kind"].tolist() == ["split", "dividend"]


def test_latest_returns_newest_n(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-31")
    vault.write("AAPL", "1d", df)
    last = vault.latest("AAPL", "1d", n=5)
    assert list(last.index) == list(df.index[-5:])
    assert len(vault.latest("AAPL", "1d", n=0)) == 0


def test_status_and_instruments(vault: Vault) -> None:
    vault.write("AAPL", "1d", daily("2024-01-02", "2024-01-12"))
    vault.write("BTC/USDT", "1d", pd.DataFrame(
        {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.0, "volume": 3.0},
        index=pd.date_range("2024-01-01", "2024-01-07", tz="UTC", name="ts")))
    rows = {(s.symbol, s.timeframe): s for s in vault.status()}
    assert rows[("AAPL", "1d")].rows == 9
    assert rows[("AAPL", "1d")].holes == 0
    assert rows[("BTC/USDT", "1d")].rows == 7
    assert rows[("BTC/USDT", "1d")].holes == 0
    assert [i.symbol for i in vault.instruments()] == ["AAPL", "BTC/USDT"]
    assert vault.verify().ok


def test_subscribers_see_new_bars(vault: Vault) -> None:
    events: list[BarEvent] = []
    unsubscribe = vault.subscribe(events.append)
    vault.write("AAPL", "1d", daily("2024-01-02", "2024-01-05"))
    vault.write("AAPL", "1d", daily("2024-01-02", "2024-01-05"))  # unchanged: no event
    unsubscribe()
    vault.write("AAPL", "1d", daily("2024-01-08", "2024-01-09"))
    assert [(e.symbol, e.rows) for e in events] == [("AAPL", 4)]


def test_read_through_fetches_only_what_is_missing(tmp_path: object) -> None:
    stub = CountingProvider()
    with tickvault.open(":memory:", providers=[stub]) as vault:
        first = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-31")
        assert len(first) == 21
        assert len(stub.queries) == 1
        vault.bars("AAPL", "1d", "2024-01-02", "2024-01-31")
        assert len(stub.queries) == 1  # repeated request: zero provider calls
        vault.bars("AAPL", "1d", "2024-01-02", "2024-02-01")
        assert len(stub.queries) == 2
        q = stub.queries[-1]
        assert (pd.Timestamp(q.start_us * 1000, tz="UTC"), pd.Timestamp(q.end_us * 1000, tz="UTC")) == (
            pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-02-02", tz="UTC"))
        assert vault.provider_calls == {"stub": 2}
        vault.bars("AAPL", "1d", "2024-01-02", "2024-02-01", fetch="always")
        assert len(stub.queries) == 3
        vault.bars("AAPL", "1d", "2023-01-02", "2023-02-01", fetch="never")
        assert len(stub.queries) == 3


def test_read_through_fails_over_and_reports_provider_errors() -> None:
    down, up = CountingProvider("down", fail=True), CountingProvider("up")
    with tickvault.open(":memory:", providers=[down, up]) as vault:
        got = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-05")
        assert len(got) == 4
        assert set(got["provider"].astype(str)) == {"up"}
    with tickvault.open(":memory:", providers=[CountingProvider("down", fail=True)]) as vault, \
            pytest.raises(MissingData, match=r"stub is down|down"):
        vault.bars("AAPL", "1d", "2024-01-02", "2024-01-05")


def test_refetching_a_bad_bar_does_not_duplicate_the_quarantine(vault: Vault) -> None:
    df = daily("2024-01-02", "2024-01-12")
    df.iloc[3, df.columns.get_loc("high")] = 1.0
    vault.write("AAPL", "1d", df)
    vault.write("AAPL", "1d", df.iloc[[3]])
    assert len(vault.quarantine("AAPL", "1d")) == 1


def test_invalid_settings_raise_config_error(tmp_path: object) -> None:
    with pytest.raises(tickvault.errors.ConfigError, match="lock_timeout"):
        tickvault.open(":memory:", lock_timeout="soon")


def test_writing_times_pandas_cannot_represent_is_a_schema_error(vault: Vault) -> None:
    table = pa.table({"ts": pa.array([9_300_000_000_000_000], pa.int64()).cast(pa.timestamp("us", "UTC")),
                      "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]})
    with pytest.raises(SchemaError, match="2262"):
        vault.write("AAPL", "1m", table)
    assert vault.status() == []
