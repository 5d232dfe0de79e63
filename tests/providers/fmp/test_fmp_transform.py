"""FMP transforms on the recorded cassettes: raw daily bars, splits, dividends, unadjustment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from _fmp_helpers import PRICES, SPLITS, expected, json_body, us
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.errors import (
    AuthenticationFailed,
    ProviderResponseError,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.model import BAR_SCHEMA, ActionKind, CorporateAction
from tickvault.providers._http import bars_table
from tickvault.providers.fmp import (
    dividends,
    eod_bars,
    income_statement,
    message_error,
    profile,
    split_actions,
    unadjust,
    vendor_symbol,
)
from tickvault.transform import adjust


def _ts(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("ts").cast(pa.int64()).to_numpy())


def test_eod_prices_are_keyed_by_session_date(shared_data: Path) -> None:
    rows = json_body(shared_data, PRICES)
    table = eod_bars(rows, vendor="AAPL")
    exp = expected(rows)
    assert table.schema.equals(BAR_SCHEMA)
    order = np.argsort(_ts(table))
    np.testing.assert_array_equal(_ts(table)[order], exp.ts_us)
    np.testing.assert_array_equal(table.column("close").to_numpy()[order], exp.close)
    assert table.column("vwap").null_count == table.num_rows  # FMP's "vwap" is (O+H+L+C)/4: not stored


def test_rows_for_another_symbol_are_a_response_error(shared_data: Path) -> None:
    with pytest.raises(ProviderResponseError, match="another symbol"):
        eod_bars(json_body(shared_data, PRICES), vendor="MSFT")


def test_recorded_split_history_becomes_actions(shared_data: Path) -> None:
    actions = split_actions(json_body(shared_data, SPLITS), "AAPL", vendor="AAPL")
    assert [(str(a.ex_date), a.value) for a in actions] == [
        ("1987-06-16", 2.0), ("2000-06-21", 2.0), ("2005-02-28", 2.0), ("2014-06-09", 7.0), ("2020-08-31", 4.0)]
    assert all(a.kind == ActionKind.SPLIT and a.provider == "fmp" for a in actions)


def test_stable_and_v3_split_shapes_read_the_same(shared_data: Path) -> None:
    v3 = json_body(shared_data, SPLITS)
    stable = [{"symbol": "AAPL", **{k: r[k] for k in ("date", "numerator", "denominator")}} for r in v3["historical"]]
    assert split_actions(stable, "AAPL", vendor="AAPL") == split_actions(v3, "AAPL", vendor="AAPL")


def test_no_split_after_the_window_leaves_prices_unchanged(shared_data: Path) -> None:
    table = eod_bars(json_body(shared_data, PRICES))
    assert unadjust(table, split_actions(json_body(shared_data, SPLITS), "AAPL")).equals(table)


def test_unadjust_restores_pre_split_prices_and_volume() -> None:
    table = bars_table(np.array([us("2020-08-28"), us("2020-08-31")]), open=np.array([124.0, 127.58]),
                       high=np.array([125.0, 131.0]), low=np.array([123.0, 126.0]), close=np.array([124.81, 129.04]),
                       volume=np.array([187_630_000.0, 225_702_700.0]), provider="fmp")
    raw = unadjust(table, [CorporateAction.split("2020-08-31", 4.0)])
    assert raw.column("close").to_pylist() == [124.81 * 4, 129.04]  # AAPL traded near $499 before the split
    assert raw.column("volume").to_pylist() == [187_630_000.0 / 4, 225_702_700.0]


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 60), st.sampled_from([0.1, 0.5, 2.0, 3.0, 4.0, 7.0])), max_size=4),
       st.lists(st.floats(1.0, 1000.0), min_size=1, max_size=40))
def test_adjusting_the_unadjusted_gives_the_vendor_numbers_back(splits: list[tuple[int, float]],
                                                                closes: list[float]) -> None:
    day0 = dt.date(2020, 1, 1)
    ts = np.array([us(str(day0 + dt.timedelta(days=i))) for i in range(len(closes))])
    arr = np.array(closes)
    table = bars_table(ts, open=arr, high=arr, low=arr, close=arr, volume=arr * 10, provider="fmp")
    actions = [CorporateAction.split(day0 + dt.timedelta(days=d), r) for d, r in dict(splits).items()]
    back = adjust(unadjust(table, actions), actions, "splits")
    np.testing.assert_allclose(back.column("close").to_numpy(), arr, rtol=1e-12)
    np.testing.assert_allclose(back.column("volume").to_numpy(), arr * 10, rtol=1e-12)


def test_dividends_use_the_amount_paid_at_the_time() -> None:
    rows = [{"symbol": "AAPL", "date": "2020-08-07", "adjDividend": 0.205, "dividend": 0.82, "recordDate": "2020-08-10",
             "paymentDate": "2020-08-13", "declarationDate": "2020-07-30"},
            {"symbol": "AAPL", "date": "2020-11-06", "adjDividend": 0.205, "dividend": 0.205}]
    got = dividends(rows, "AAPL", vendor="AAPL")
    assert [(str(a.ex_date), a.value) for a in got] == [("2020-08-07", 0.82), ("2020-11-06", 0.205)]
    assert dividends({}, "AAPL") == []


def test_zero_denominator_is_a_response_error() -> None:
    with pytest.raises(ProviderResponseError, match="ratio"):
        split_actions([{"date": "2020-08-31", "numerator": 4, "denominator": 0}], "AAPL")


@pytest.mark.parametrize(("text", "status", "cls"), [
    ("Invalid API KEY. Feel free to create a Free API Key", 401, AuthenticationFailed),
    ("Limit Reach . Please upgrade your plan", 429, RateLimited),
    ("Restricted Endpoint: This endpoint is not available under your current subscription", 403, UnsupportedRequest),
    ("Premium Query Parameter", 402, UnsupportedRequest),
    ("Symbol not found", 404, SymbolNotFound),
])
def test_error_messages_are_classified(text: str, status: int, cls: type) -> None:
    assert message_error(text, status)[0] is cls


def test_symbols_use_dashes_for_share_classes() -> None:
    assert vendor_symbol("BRK.B") == "BRK-B"
    assert vendor_symbol("AAPL") == "AAPL"


def test_profile_reads_stable_and_v3_spellings() -> None:
    stable = [{"symbol": "AAPL", "marketCap": 3.5e12, "beta": 1.2, "lastDividend": 1.0, "companyName": "Apple Inc.",
               "currency": "USD", "exchange": "NASDAQ", "sector": "Technology", "fullTimeEmployees": "164000"}]
    v3 = [{"symbol": "AAPL", "mktCap": 3.5e12, "lastDiv": 1.0, "companyName": "Apple Inc."}]
    got = profile(stable, vendor="AAPL")
    assert got["market_cap"] == (3.5e12, "fmp:profile")
    assert got["employees"][0] == 164000.0
    assert profile(v3)["market_cap"] == got["market_cap"]
    with pytest.raises(ProviderResponseError):
        profile(stable, vendor="MSFT")


def test_income_statement_takes_the_newest_period() -> None:
    rows = [{"date": "2024-09-28", "symbol": "AAPL", "reportedCurrency": "USD", "revenue": 391035000000,
             "netIncome": 93736000000, "epsDiluted": 6.08},
            {"date": "2023-09-30", "symbol": "AAPL", "revenue": 383285000000}]
    got = income_statement(rows)
    assert got["income.period_end"] == ("2024-09-28", "fmp:income-statement:annual:2024-09-28")
    assert got["income.revenue"][0] == 391035000000.0
    assert got["income.eps_diluted"][0] == 6.08


def test_public_names_are_pinned() -> None:
    import tickvault.providers.fmp as pkg

    assert sorted(pkg.__all__) == [
        "FmpPlan", "FmpProvider", "FmpRaw", "Fundamentals", "LATE_START_DAYS", "PROVIDER", "WINDOW_DAYS", "dividends",
        "eod_bars", "income_statement", "message_error", "profile", "split_actions", "unadjust", "vendor_symbol"]
