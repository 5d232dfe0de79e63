"""Adjustment checked against real third-party data (shared_data; see shared/data/SOURCES.md).

- zipline-reloaded daily CSVs (AAPL, MSFT 2012-2014): dividend steps, and the AAPL trap of a
  split column that the prices already include.
- Yahoo v8 chart payloads recorded by node-yahoo-finance2: Yahoo's ``close`` (split-adjusted)
  and ``adjclose`` (split- and dividend-adjusted) reproduced from raw prices and the events.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickvault.model import CorporateAction, actions_from_frame, conform_bars
from tickvault.transform import adjust, adjustment_factors

YAHOO = Path("provider-payloads/node-yahoo-finance2")
ZIPLINE = Path("ohlcv/zipline-reloaded")


def zipline_csv(shared_data: Path, symbol: str) -> tuple[pa.Table, list[CorporateAction], pd.DataFrame]:
    df = pd.read_csv(shared_data / ZIPLINE / f"{symbol}.csv.gz", parse_dates=["date"])
    bars = conform_bars(df[["date", "open", "high", "low", "close", "volume"]], provider="zipline")
    actions = actions_from_frame(symbol, df[["date", "split", "dividend"]])
    return bars, actions, df


def closes(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("close").to_numpy(), dtype=np.float64)


def dates(table: pa.Table) -> list[dt.date]:
    return [t.date() for t in table.column("ts").to_pylist()]


# --------------------------------------------------------------------------- zipline


def test_zipline_aapl_split_column_is_already_in_the_prices(shared_data: Path) -> None:
    """The trap: prices are split-adjusted, yet the split column says 7.0 on 2014-06-09.

    The raw series has no jump at the split; applying the recorded split a second time puts
    a 7x step into a series that never had one. An importer must either drop the split or
    import it with the prices flagged as already adjusted (docs/adjustment.md).
    """
    bars, actions, _ = zipline_csv(shared_data, "AAPL")
    splits = [a for a in actions if a.kind == "split"]
    assert splits == [CorporateAction.split("2014-06-09", 7.0, symbol="AAPL")]
    i = dates(bars).index(dt.date(2014, 6, 9))
    raw = closes(bars)
    assert abs(math.log(raw[i] / raw[i - 1])) < 0.05  # 92.22 -> 93.70: no split visible
    # ... and 2012 prices (~58) are far below AAPL's as-traded ~400: already divided by 7
    assert raw[0] < 60

    double = closes(adjust(bars, splits, "splits"))
    step = double[i] / double[i - 1]
    assert step == pytest.approx(7.0 * raw[i] / raw[i - 1], rel=1e-12)  # the invented 7x jump
    np.testing.assert_allclose(double[:i], raw[:i] / 7.0, rtol=1e-15)  # 2012 AAPL at ~8.4: wrong
    np.testing.assert_array_equal(double[i:], raw[i:])

    # Correct import of this file: the prices already include the split, so no split is applied.
    dividends_only = [a for a in actions if a.kind == "dividend"]
    assert adjust(bars, dividends_only, "splits").equals(bars)


def test_zipline_aapl_dividends_are_in_post_split_units(shared_data: Path) -> None:
    """0.37857 = 2.65 / 7: the file's dividends share the prices' (post-split) basis."""
    _, actions, _ = zipline_csv(shared_data, "AAPL")
    first = next(a for a in actions if a.kind == "dividend")
    assert first.ex_date == dt.date(2012, 8, 9)
    assert first.value == pytest.approx(2.65 / 7, abs=1e-5)


@pytest.mark.parametrize("symbol", ["AAPL", "MSFT"])
def test_zipline_dividends_step_the_ratio_exactly_at_each_ex_date(shared_data: Path, symbol: str) -> None:
    bars, actions, df = zipline_csv(shared_data, symbol)
    dividends = [a for a in actions if a.kind == "dividend"]
    assert len(dividends) == {"AAPL": 10, "MSFT": 12}[symbol]
    # AAPL: drop the already-applied split (see the trap test); MSFT has none.
    out = adjust(bars, dividends, "all")
    raw = closes(bars)
    ratio = closes(out) / raw
    days = dates(bars)
    ex_index = {days.index(a.ex_date): a for a in dividends}
    for i in range(1, len(days)):
        if i in ex_index:
            expected = 1.0 - ex_index[i].value / raw[i - 1]
            assert ratio[i - 1] / ratio[i] == pytest.approx(expected, rel=1e-13), days[i]
        else:
            assert ratio[i - 1] == pytest.approx(ratio[i], rel=1e-13), days[i]
    # after the last ex-date nothing changes; before the first, every factor applies
    last = max(ex_index)
    np.testing.assert_array_equal(closes(out)[last:], raw[last:])
    expected_first = math.prod(1.0 - a.value / raw[i - 1] for i, a in ex_index.items())
    assert ratio[0] == pytest.approx(expected_first, rel=1e-12)
    # volume is a share count: dividends never touch it
    assert out.column("volume").equals(bars.column("volume"))
    assert df["dividend"].gt(0).sum() == len(dividends)


# --------------------------------------------------------------------------- Yahoo v8 chart


def yahoo_chart(shared_data: Path, name: str) -> dict[str, Any]:
    payload = json.loads((shared_data / YAHOO / name).read_text())
    result: dict[str, Any] = payload["response"]["bodyJson"]["chart"]["result"][0]
    return result


def yahoo_session_dates(epoch_s: list[int], tz: str) -> list[dt.date]:
    """Yahoo stamps a daily bar at the session open; the key is the exchange-local date."""
    return [d.date() for d in pd.to_datetime(epoch_s, unit="s", utc=True).tz_convert(tz)]


def yahoo_raw_bars(result: dict[str, Any]) -> tuple[pa.Table, list[CorporateAction], np.ndarray, np.ndarray]:
    """Raw (as-traded) bars rebuilt from a chart payload, plus its actions, close and adjclose.

    Yahoo's OHLC are split-adjusted; undoing a split multiplies the bars before its
    ex-date by the ratio (and divides volume). Dividend amounts are reported in today's
    basis too, so they are brought back to the basis of their ex-date the same way.
    """
    tz = result["meta"]["exchangeTimezoneName"]
    days = yahoo_session_dates(result["timestamp"], tz)
    quote = result["indicators"]["quote"][0]
    events = result.get("events", {})
    splits = [
        (yahoo_session_dates([int(s["date"])], tz)[0], s["numerator"] / s["denominator"])
        for s in events.get("splits", {}).values()
    ]
    day_arr = np.array(days, dtype="datetime64[D]")
    undo = np.ones(len(days))
    for ex, ratio in splits:
        undo[day_arr < np.datetime64(ex)] *= ratio
    actions = [CorporateAction.split(ex, ratio, symbol=result["meta"]["symbol"]) for ex, ratio in splits]
    for d in events.get("dividends", {}).values():
        ex = yahoo_session_dates([int(d["date"])], tz)[0]
        later = math.prod(r for s_ex, r in splits if s_ex > ex)
        actions.append(CorporateAction.dividend(ex, d["amount"] * later, symbol=result["meta"]["symbol"]))
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(day_arr).tz_localize("UTC"),
            **{k: np.asarray(quote[k], dtype=np.float64) * undo for k in ("open", "high", "low", "close")},
            "volume": np.asarray(quote["volume"], dtype=np.float64) / undo,
        }
    )
    close = np.asarray(quote["close"], dtype=np.float64)
    adjclose = np.asarray(result["indicators"]["adjclose"][0]["adjclose"], dtype=np.float64)
    return conform_bars(frame, provider="yahoo"), actions, close, adjclose


YAHOO_CASES = {
    "chart-AAPL-2020-08-31-to-2020-11-07.json": (49, 1, 1),
    "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json": (252, 0, 4),
}


@pytest.mark.parametrize("name", sorted(YAHOO_CASES))
def test_yahoo_close_is_raw_adjusted_for_splits(shared_data: Path, name: str) -> None:
    result = yahoo_chart(shared_data, name)
    bars, actions, close, _ = yahoo_raw_bars(result)
    n, n_splits, n_divs = YAHOO_CASES[name]
    assert bars.num_rows == n
    assert sum(a.kind == "split" for a in actions) == n_splits
    assert sum(a.kind == "dividend" for a in actions) == n_divs
    np.testing.assert_allclose(closes(adjust(bars, actions, "splits")), close, rtol=1e-12)


def test_yahoo_aapl_split_ex_date_bar_is_already_post_split(shared_data: Path) -> None:
    """The 4:1 split is stamped 2020-08-31 13:30Z = the first bar's open: that bar is not adjusted."""
    result = yahoo_chart(shared_data, "chart-AAPL-2020-08-31-to-2020-11-07.json")
    bars, actions, close, _ = yahoo_raw_bars(result)
    assert [a for a in actions if a.kind == "split"] == [CorporateAction.split("2020-08-31", 4.0, symbol="AAPL")]
    assert dates(bars)[0] == dt.date(2020, 8, 31)
    assert closes(bars)[0] == close[0] == pytest.approx(129.04, abs=1e-4)  # as traded on the ex-date
    # Yahoo's previous close, split-adjusted, is AAPL's last pre-split close (499.23) / 4.
    assert result["meta"]["chartPreviousClose"] == pytest.approx(499.23 / 4, abs=1e-3)


@pytest.mark.parametrize("name", sorted(YAHOO_CASES))
def test_yahoo_adjclose_is_raw_adjusted_for_all(shared_data: Path, name: str) -> None:
    """adjust(raw, actions, "all") reproduces Yahoo's adjclose within 1e-6 relative.

    The payloads were recorded in February 2025, so Yahoo's adjclose also carries every
    dividend paid between the window's end and that day: one constant factor ``K`` on every
    bar of the window (no split happened in between). Our adjustment leaves the last bar
    unchanged (it is on/after the window's last ex-date), so ``K = adjclose / close`` of the
    last bar; every other bar must then match ``K * adjusted``.
    """
    result = yahoo_chart(shared_data, name)
    bars, actions, close, adjclose = yahoo_raw_bars(result)
    ours = closes(adjust(bars, actions, "all"))
    assert ours[-1] == close[-1]
    k = adjclose[-1] / close[-1]
    assert 0.95 < k < 1.0  # a few years of ~1%/yr dividends
    np.testing.assert_allclose(ours * k, adjclose, rtol=1e-6)
    # the dividend factor is Yahoo's: at each ex-date adjclose/close steps by 1 - D / C_prev
    factors = adjustment_factors(bars, actions, "all")
    yahoo_ratio = adjclose / close
    days = dates(bars)
    for a in (a for a in actions if a.kind == "dividend"):
        i = days.index(a.ex_date)
        assert yahoo_ratio[i - 1] / yahoo_ratio[i] == pytest.approx(1 - a.value / close[i - 1], rel=1e-6)
        assert factors.dividend[i - 1] / factors.dividend[i] == pytest.approx(1 - a.value / close[i - 1], rel=1e-14)
