"""Fuzz the FMP transforms with mutated recordings: only typed provider errors, no hang."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fmp_helpers import PRICES, RECORDED_US, SPLITS, json_body, make, us
from hypothesis import HealthCheck, given, settings

from tickvault.model import Instrument, Timeframe
from tickvault.providers.base import BarsQuery
from tickvault.providers.fmp import FmpRaw, dividends, eod_bars, income_statement, profile, split_actions
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import ManualClock

FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Shape examples for the endpoints without a recording (field names from FMP's documentation).
DIVIDENDS_SHAPE = [{"symbol": "AAPL", "date": "2024-08-12", "recordDate": "2024-08-12", "paymentDate": "2024-08-15",
                    "declarationDate": "2024-08-01", "adjDividend": 0.25, "dividend": 0.25, "yield": 0.44,
                    "frequency": "Quarterly"}]
PROFILE_SHAPE = [{"symbol": "AAPL", "price": 232.8, "marketCap": 3.5e12, "beta": 1.24, "lastDividend": 1.0,
                  "companyName": "Apple Inc.", "currency": "USD", "exchange": "NASDAQ", "sector": "Technology",
                  "industry": "Consumer Electronics", "fullTimeEmployees": "164000", "ipoDate": "1980-12-12"}]
INCOME_SHAPE = [{"date": "2024-09-28", "symbol": "AAPL", "reportedCurrency": "USD", "revenue": 391035000000,
                 "grossProfit": 180683000000, "netIncome": 93736000000, "eps": 6.11, "epsDiluted": 6.08}]


def _recorded(name: str) -> Callable[[Path], Any]:
    return lambda shared: json_body(shared, name)


CASES: dict[str, tuple[Callable[[Path], Any], Callable[[Any], object]]] = {
    "prices": (_recorded(PRICES), lambda body: eod_bars(body, vendor="AAPL")),
    "splits": (_recorded(SPLITS), lambda body: split_actions(body, "AAPL", vendor="AAPL")),
    "dividends": (lambda _: DIVIDENDS_SHAPE, lambda body: dividends(body, "AAPL", vendor="AAPL")),
    "profile": (lambda _: PROFILE_SHAPE, lambda body: profile(body, vendor="AAPL")),
    "income": (lambda _: INCOME_SHAPE, income_statement),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_transform_raises_only_typed_errors(shared_data: Path, kind: str) -> None:
    load, fn = CASES[kind]
    original = load(shared_data)

    @FUZZ
    @given(mutated_payloads(original, max_mutations=4))
    def check(body: Any) -> None:
        assert_typed_failure(lambda: fn(body))

    check()


@pytest.mark.timeout(120)
def test_adapter_transform_raises_only_typed_errors(shared_data: Path) -> None:
    """The pure half of the adapter (prices, splits, unadjust, window checks, coverage) on mutated pages."""
    prices, splits = json_body(shared_data, PRICES), json_body(shared_data, SPLITS)
    provider = make("http://127.0.0.1:9", ManualClock(RECORDED_US).clock)
    plan = provider.plan(BarsQuery("AAPL", "1d", us("2023-01-01"), us("2023-01-11"), Instrument("AAPL")),
                         Timeframe.parse("1d"))

    @FUZZ
    @given(mutated_payloads({"prices": prices, "splits": splits, "dividends": DIVIDENDS_SHAPE}, max_mutations=4))
    def check(raw: Any) -> None:
        assert_typed_failure(lambda: provider.transform(
            FmpRaw((raw.get("prices"),), raw.get("splits"), raw.get("dividends")), plan))

    check()
