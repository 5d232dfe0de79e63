"""Fuzz the ccxt path: mutated candles (pure) and mutated vendor answers (through ccxt over HTTP).

Pure transform: only ProviderResponseError / IncompleteData. Through the adapter, the
exchange-specific ccxt error handlers may legitimately classify a mutated body (Kraken's
``error`` array, OKX's ``code``) as another typed provider error; anything that is not a
:class:`~tickvault.errors.ProviderError` or :class:`~tickvault.errors.IncompleteData` fails
the test. Nothing may hang (pytest-timeout).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from _crypto_helpers import RECORDINGS, body, make, route, vendor_rows
from hypothesis import HealthCheck, given, settings

from tickvault.calendars import get_calendar
from tickvault.errors import IncompleteData, ProviderError
from tickvault.model import Timeframe
from tickvault.providers.crypto import ohlcv_bars, ohlcv_page
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import Canned, ManualClock, ReplayServer

FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.timeout(120)
def test_candle_transform_raises_only_typed_errors(shared_data: Path) -> None:
    rows = [[r[0] // 1000, *r[1:]] for r in vendor_rows(shared_data, RECORDINGS["kraken"])[:60]]
    cal = get_calendar("24/7")
    tf = Timeframe.parse("1m")

    @FUZZ
    @given(mutated_payloads(rows, max_mutations=4))
    def check(mutated: Any) -> None:
        assert_typed_failure(lambda: ohlcv_bars([ohlcv_page(mutated, provider="ccxt:kraken")], timeframe=tf,
                                                calendar=cal, provider="ccxt:kraken"))

    check()


def _fuzz_through_http(shared: Path, exchange: str, examples: int) -> None:
    rec = RECORDINGS[exchange]
    original = body(shared, rec)
    served = route(shared, rec)
    with ReplayServer([served]) as server:

        @settings(max_examples=examples, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(mutated_payloads(original, max_mutations=3))
        def check(mutated: Any) -> None:
            served.response = Canned(200, json.dumps(mutated).encode())
            provider = make(server.base_url, ManualClock(rec.now_us()).clock, exchange)
            try:
                asyncio.run(provider.bars(rec.query()))
            except (ProviderError, IncompleteData):
                pass

        check()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("exchange", sorted(RECORDINGS))
def test_mutated_vendor_answers_give_only_typed_errors(shared_data: Path, exchange: str) -> None:
    # Each example builds a ccxt exchange and makes a real request: a few here, many nightly.
    _fuzz_through_http(shared_data, exchange, 6)


@pytest.mark.nightly
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("exchange", sorted(RECORDINGS))
def test_mutated_vendor_answers_give_only_typed_errors_nightly(shared_data: Path, exchange: str) -> None:
    _fuzz_through_http(shared_data, exchange, 300)
