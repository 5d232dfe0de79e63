"""Fuzz the Polygon transforms with mutated recordings: only typed provider errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _polygon_helpers import AGGS, NOW_US, load, provider, us
from hypothesis import HealthCheck, given, settings

from tickvault.model import Timeframe
from tickvault.providers.base import BarsQuery
from tickvault.providers.polygon._provider import PolygonRaw
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import ManualClock

FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["aggs", "splits", "dividends"])
def test_transform_survives_mutated_payloads(shared_data: Path, target: str) -> None:
    p = provider("http://127.0.0.1:9", ManualClock(NOW_US).clock)
    plan = p.plan(BarsQuery("AAPL", "1d", us("2005-04-01"), us("2005-04-05")), Timeframe.parse("1d"))
    aggs = load(shared_data, AGGS)
    splits = load(shared_data, "v3_reference_splits.json")
    divs = load(shared_data, "v3_reference_dividends.json")
    # Make the reference lists about AAPL so their rows are really read.
    for row in splits["results"] + divs["results"]:
        row["ticker"] = "AAPL"
    original = {"aggs": aggs, "splits": splits, "dividends": divs}[target]

    @FUZZ
    @given(payload=mutated_payloads(original))
    def check(payload: Any) -> None:
        raw = PolygonRaw(payload if target == "aggs" else aggs, payload if target == "splits" else splits,
                         payload if target == "dividends" else divs)
        parts: dict[str, list[Any]] = {"aggs": [raw.aggs], "splits": [raw.splits], "dividends": [raw.dividends]}
        assert_typed_failure(lambda: p.transform(PolygonRaw(**parts), plan))

    check()
