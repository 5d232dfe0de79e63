"""Alpha Vantage transforms on the recorded payloads: keys, raw values, actions, truncation, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _av_helpers import (
    DAILY,
    EXTENDED_CSV,
    FIVE_MIN,
    INCOME,
    ONE_MIN,
    OVERVIEW,
    expected_csv,
    expected_json,
    payload,
    us,
)

from tickvault.errors import (
    AuthenticationFailed,
    IncompleteData,
    ProviderResponseError,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.model import BAR_SCHEMA, ActionKind, Timeframe
from tickvault.providers.alphavantage import (
    body_error,
    income_statement,
    overview,
    parse_csv,
    parse_json,
    series_actions,
    series_bars,
)
from tickvault.transform import adjust

D1 = Timeframe.parse("1d")
M1 = Timeframe.parse("1m")
M5 = Timeframe.parse("5m")


def _ts(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("ts").cast(pa.int64()).to_numpy())


def test_daily_adjusted_keeps_raw_prices_keyed_by_session_date(shared_data: Path) -> None:
    body = payload(shared_data, DAILY)
    series = parse_json(body)
    table = series_bars(series, timeframe=D1, start_us=int(series.stamps_us[0]))
    exp = expected_json(body["Time Series (Daily)"], minutes=None, volume_field="6. volume")
    assert table.schema.equals(BAR_SCHEMA)
    assert table.num_rows == 100
    np.testing.assert_array_equal(_ts(table), exp.ts_us)
    np.testing.assert_array_equal(table.column("close").to_numpy(), exp.close)  # raw "4. close", not adjusted
    np.testing.assert_array_equal(table.column("volume").to_numpy(), exp.volume)
    assert series.compact
    assert series.symbol == "MSFT"


def test_daily_dividend_becomes_an_action_and_adjust_reproduces_the_adjusted_close(shared_data: Path) -> None:
    series = parse_json(payload(shared_data, DAILY))
    actions = series_actions(series, "MSFT")
    assert [(str(a.ex_date), a.kind, a.value) for a in actions] == [("2019-05-15", ActionKind.DIVIDEND, 0.46)]
    table = series_bars(series, timeframe=D1, start_us=int(series.stamps_us[0]))
    adjusted = adjust(table, actions, "all").column("close").to_numpy()
    # Alpha Vantage rounds its adjusted close to 4 decimals.
    np.testing.assert_allclose(adjusted, series.columns["adjusted_close"], rtol=1e-4)


def test_intraday_stamps_are_bar_ends_in_new_york_and_become_utc_opens(shared_data: Path) -> None:
    body = payload(shared_data, FIVE_MIN)
    series = parse_json(body)
    table = series_bars(series, timeframe=M5, start_us=us("2019-08-01 18:10"))
    exp = expected_json(body["Time Series (5min)"], minutes=5)
    np.testing.assert_array_equal(_ts(table), exp.ts_us)
    # 2019-08-01 14:15 EDT is 18:15Z; the bar it ends opened at 18:10Z. The 16:00 stamp is the 15:55 bar.
    assert _ts(table)[0] == us("2019-08-01 18:10")
    assert _ts(table)[-1] == us("2019-08-02 19:55")


def test_one_minute_series_in_winter_uses_est(shared_data: Path) -> None:
    body = payload(shared_data, ONE_MIN)
    table = series_bars(parse_json(body), timeframe=M1, start_us=us("2017-12-18 18:16"), label="end")
    assert _ts(table)[0] == us("2017-12-18 18:16")  # 13:17 EST stamp -> 13:16 open
    assert _ts(table)[-1] == us("2017-12-18 19:55")  # 14:56 EST stamp -> 14:55 open -> 19:55Z


def test_open_label_keeps_the_stamps(shared_data: Path) -> None:
    series = parse_json(payload(shared_data, FIVE_MIN))
    table = series_bars(series, timeframe=M5, start_us=int(series.stamps_us[0]), label="open")
    np.testing.assert_array_equal(_ts(table), series.stamps_us)


def test_extended_csv_slice_reads_every_row(shared_data: Path) -> None:
    series = parse_csv((shared_data / EXTENDED_CSV).read_bytes())
    table = series_bars(series, timeframe=M1, start_us=0)
    exp = expected_csv(shared_data, regular_only=False)
    assert table.num_rows == 11_190 == len(exp)
    np.testing.assert_array_equal(_ts(table), exp.ts_us)
    np.testing.assert_array_equal(table.column("open").to_numpy(), exp.open)
    assert _ts(table)[0] == us("2020-11-23 09:00")  # 04:01 EST stamp: the 04:00 bar
    local = pd.DatetimeIndex(_ts(table).astype("datetime64[us]")).tz_localize("UTC").tz_convert("America/New_York")
    assert "2020-11-26" not in {str(d) for d in local.date}  # Thanksgiving


def test_compact_answer_that_misses_the_window_start_is_incomplete(shared_data: Path) -> None:
    series = parse_json(payload(shared_data, DAILY))
    with pytest.raises(IncompleteData, match="compact"):
        series_bars(series, timeframe=D1, start_us=us("2019-01-02"))


def test_interval_and_kind_mismatches_are_response_errors(shared_data: Path) -> None:
    five = parse_json(payload(shared_data, FIVE_MIN))
    with pytest.raises(ProviderResponseError, match="5m bars for a 1m"):
        series_bars(five, timeframe=M1, start_us=us("2019-08-01"))
    with pytest.raises(ProviderResponseError, match="intraday series for a 1d"):
        series_bars(five, timeframe=D1, start_us=us("2019-08-01"))


def test_ambiguous_dst_time_is_a_response_error() -> None:
    body = {"Meta Data": {"6. Time Zone": "US/Eastern"},
            "Time Series (1min)": {"2020-11-01 01:30:00": {"1. open": "1", "2. high": "1", "3. low": "1",
                                                            "4. close": "1", "5. volume": "1"}}}
    with pytest.raises(ProviderResponseError, match="ambiguous"):
        parse_json(body)


def test_empty_series_is_an_empty_table() -> None:
    series = parse_json({"Meta Data": {}, "Time Series (Daily)": {}})
    assert series_bars(series, timeframe=D1, start_us=0).num_rows == 0


@pytest.mark.parametrize(("body", "cls", "retry_after"), [
    ({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 "
              "calls per day. Please visit https://www.alphavantage.co/premium/"}, RateLimited, 60.0),
    ({"Information": "We have detected your API key as XXX and our standard API rate limit is 25 requests per "
                     "day. Please subscribe to any of the premium plans"}, RateLimited, None),
    ({"Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of "
                     "the premium plans"}, UnsupportedRequest, None),
    ({"Information": "The **demo** API key is for demo purposes only. Please claim your free API key"},
     AuthenticationFailed, None),
    ({"Error Message": "the parameter apikey is invalid or missing. Please claim your free API key"},
     AuthenticationFailed, None),
    ({"Error Message": "Invalid API call. Please retry or visit the documentation for TIME_SERIES_DAILY."},
     SymbolNotFound, None),
])
def test_http_200_error_bodies_are_classified(body: dict[str, str], cls: type, retry_after: float | None) -> None:
    found = body_error(body)
    assert found is not None
    assert found[0] is cls
    assert found[2] == retry_after


def test_a_normal_payload_is_not_an_error_body(shared_data: Path) -> None:
    assert body_error(payload(shared_data, DAILY)) is None
    assert body_error([1, 2]) is None


def test_overview_maps_to_the_shared_vocabulary(shared_data: Path) -> None:
    got = overview(json.loads((shared_data / OVERVIEW).read_text()))
    assert got["market_cap"] == (114234572800.0, "alpha_vantage:OVERVIEW")
    assert got["pe_ratio"][0] == 14.1327
    assert got["sector"][0] == "Technology"
    assert got["last_split_date"][0] == "1999-05-27"
    assert all(isinstance(v, float | str) for v, _ in got.values())


def test_income_statement_takes_the_newest_annual_and_quarterly_report(shared_data: Path) -> None:
    got = income_statement(json.loads((shared_data / INCOME).read_text()))
    assert got["income.period_end"] == ("2019-12-31", "alpha_vantage:INCOME_STATEMENT:annual:2019-12-31")
    assert got["income.revenue"][0] == 77147000000.0
    assert got["income_q.period_end"][0] == "2020-06-30"
    assert "income.non_recurring" not in got  # "None" values are left out, not reported


def test_overview_of_an_unknown_symbol_is_a_response_error() -> None:
    with pytest.raises(ProviderResponseError):
        overview({})


def test_public_names_are_pinned() -> None:
    import tickvault.providers.alphavantage as pkg

    assert sorted(pkg.__all__) == [
        "AlphaVantagePlan", "AlphaVantageProvider", "Fundamentals", "PROVIDER", "Page", "Series", "body_error",
        "income_statement", "overview", "parse_csv", "parse_json", "series_actions", "series_bars"]
