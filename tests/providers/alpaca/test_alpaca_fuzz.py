"""Fuzz the Alpaca transforms with mutated recordings: only typed provider errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _alpaca_helpers import ACTIONS_PAGE, NOW_US, provider, recordings, us
from hypothesis import HealthCheck, given, settings

from tickvault.model import Timeframe
from tickvault.providers.base import BarsQuery
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import ManualClock

FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("test", ["test_get_bars", "test_get_bars_desc", "test_multisymbol_get_bars", "actions"])
def test_transform_survives_mutated_payloads(shared_data: Path, test: str) -> None:
    p = provider("http://127.0.0.1:9", ManualClock(NOW_US).clock)
    rec = recordings(shared_data)
    symbol = "TSLA" if test == "test_get_bars_desc" else "AAPL"
    plan = p.plan(BarsQuery(symbol, "1d", us("2022-01-01"), us("2023-12-31")), Timeframe.parse("1d"))
    bars = rec["test_get_bars"]["response"] if test == "actions" else rec[test]["response"]
    original = ACTIONS_PAGE if test == "actions" else bars

    @FUZZ
    @given(payload=mutated_payloads(original))
    def check(payload: Any) -> None:
        raw = ([bars], [payload]) if test == "actions" else ([payload], [ACTIONS_PAGE])
        assert_typed_failure(lambda: p.transform(raw, plan))

    check()
