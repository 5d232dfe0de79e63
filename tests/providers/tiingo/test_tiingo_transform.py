"""Tiingo transforms on the recorded cassettes: keys, raw values, actions, fundamentals, metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from _tiingo_helpers import (
    DAILY,
    FUND_DAILY,
    FUND_STATEMENTS,
    IEX,
    META,
    body_text,
    expected,
    interactions,
    json_body,
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
from tickvault.model import BAR_SCHEMA, ActionKind
from tickvault.providers.tiingo import (
    IEX_ROW_CAP,
    daily_actions,
    daily_bars,
    daily_csv_bars,
    daily_metrics,
    detail_error,
    iex_bars,
    instrument_from_meta,
    statements,
)


def _ts(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("ts").cast(pa.int64()).to_numpy())


def test_end_of_day_bars_are_raw_and_keyed_by_session_date(shared_data: Path) -> None:
    rows = json_body(shared_data, DAILY, 0)
    table = daily_bars(rows)
    exp = expected(rows)
    assert table.schema.equals(BAR_SCHEMA)
    assert table.num_rows == 10
    np.testing.assert_array_equal(_ts(table), exp.ts_us)
    np.testing.assert_array_equal(table.column("close").to_numpy(), exp.close)
    assert us("2018-01-15") not in set(_ts(table))  # MLK day


def test_csv_spelling_reads_to_the_same_bars(shared_data: Path) -> None:
    csv = body_text(interactions(shared_data, DAILY)[1]).encode()
    assert daily_csv_bars(csv).equals(daily_bars(json_body(shared_data, DAILY, 0)))


def test_div_cash_and_split_factor_become_actions() -> None:
    rows = [{"date": "2020-08-31T00:00:00.000Z", "open": 127.58, "high": 131.0, "low": 126.0, "close": 129.04,
             "volume": 225702700, "divCash": 0.0, "splitFactor": 4.0},
            {"date": "2020-11-06T00:00:00.000Z", "open": 118.32, "high": 119.2, "low": 116.13, "close": 118.69,
             "volume": 114457922, "divCash": 0.205, "splitFactor": 1.0}]
    actions = daily_actions(rows, "AAPL")
    assert [(str(a.ex_date), a.kind, a.value) for a in actions] == [
        ("2020-08-31", ActionKind.SPLIT, 4.0), ("2020-11-06", ActionKind.DIVIDEND, 0.205)]
    assert all(a.provider == "tiingo" for a in actions)


def test_recorded_window_has_no_actions(shared_data: Path) -> None:
    assert daily_actions(json_body(shared_data, DAILY, 0), "GOOGL") == []


def test_non_midnight_daily_date_is_a_response_error() -> None:
    with pytest.raises(ProviderResponseError, match="00:00 UTC"):
        daily_bars([{"date": "2018-01-05T14:30:00.000Z", "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}])


def test_negative_split_factor_is_a_response_error() -> None:
    with pytest.raises(ProviderResponseError, match="splitFactor"):
        daily_actions([{"date": "2018-01-05T00:00:00.000Z", "splitFactor": -2.0, "divCash": 0.0}], "GOOGL")


def test_iex_bars_are_keyed_by_their_open_without_volume(shared_data: Path) -> None:
    rows = json_body(shared_data, IEX, 0)
    table = iex_bars(rows)
    exp = expected(rows, volume=False)
    np.testing.assert_array_equal(_ts(table), exp.ts_us)
    assert _ts(table)[0] == us("2018-01-02 14:30")  # the 09:30 New York bar
    assert table.column("volume").null_count == table.num_rows  # unknown, never 0


def test_iex_answer_at_the_row_cap_is_incomplete() -> None:
    start = us("2018-01-02 14:30") // 1_000_000
    rows = [{"date": f"{np.datetime64(start + 60 * i, 's')}Z", "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}
            for i in range(IEX_ROW_CAP)]
    with pytest.raises(IncompleteData, match="cap"):
        iex_bars(rows)


@pytest.mark.parametrize(("detail", "status", "cls"), [
    ("Error: Ticker 'NOPE' not found", 404, SymbolNotFound),
    ("Invalid token.", 401, AuthenticationFailed),
    ("Error: You have run over your 500 requests per hour allocation.", 200, RateLimited),
    ("Error: resampleFreq must be one of ...", 400, UnsupportedRequest),
    ("something odd", 200, ProviderResponseError),
])
def test_detail_texts_are_classified(detail: str, status: int, cls: type) -> None:
    assert detail_error(detail, status)[0] is cls


def test_metadata_becomes_an_instrument(shared_data: Path) -> None:
    inst = instrument_from_meta("GOOGL", json_body(shared_data, META, 0), "GOOGL")
    assert inst.exchange == "XNAS"
    assert str(inst.listed) == "2004-08-19"
    assert inst.provider_symbols == {"tiingo": "GOOGL"}
    with pytest.raises(ProviderResponseError):
        instrument_from_meta("AAPL", json_body(shared_data, META, 0), "AAPL")


def test_daily_fundamentals_take_the_newest_row(shared_data: Path) -> None:
    got = daily_metrics(json_body(shared_data, FUND_DAILY, 0))
    assert got["market_cap"] == (757457999789.0, "tiingo:fundamentals/daily:2020-04-01")
    assert set(got) == {"market_cap", "enterprise_value", "pe_ratio", "pb_ratio", "peg_ratio"}


def test_statements_split_fiscal_years_from_quarters(shared_data: Path) -> None:
    got = statements(json_body(shared_data, FUND_STATEMENTS, 0))
    assert got["income.period_end"] == ("2019-12-31", "tiingo:fundamentals/statements:2019-12-31:FY")
    assert got["income.revenue"][0] == 161857000000.0
    assert got["income_q.period_end"][0] == "2020-03-31"
    assert got["income_q.revenue"][0] == 41159000000.0
    assert got["return_on_equity"][1].endswith(":Q1")


def test_public_names_are_pinned() -> None:
    import tickvault.providers.tiingo as pkg

    assert sorted(pkg.__all__) == [
        "Fundamentals", "IEX_ROW_CAP", "PROVIDER", "TiingoPlan", "TiingoProvider", "daily_actions", "daily_bars",
        "daily_csv_bars", "daily_metrics", "detail_error", "iex_bars", "instrument_from_meta", "statements"]
