"""Fuzz the Yahoo transform with mutated recordings: only typed provider errors, never a hang."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _yahoo_helpers import CHARTS, FOLDER, body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickvault.calendars import get_calendar
from tickvault.model import Timeframe
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.yahoo import transform_chart
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import yahoo_later_events_route


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CHARTS))
def test_transform_survives_mutated_payloads(shared_data: Path, name: str) -> None:
    inst, tf, _, _ = CHARTS[name]
    original = body(shared_data, name)
    later = json.loads(yahoo_later_events_route(shared_data / FOLDER / name).response.body)
    vendor = vendor_symbol("yahoo", inst.symbol, inst)
    cal = get_calendar(inst.calendar)
    timeframe = Timeframe.parse(tf)

    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(payload=mutated_payloads(original), mutate_later=st.booleans(), data=st.data())
    def check(payload: Any, mutate_later: bool, data: st.DataObject) -> None:
        other = data.draw(mutated_payloads(later)) if mutate_later else later
        assert_typed_failure(lambda: transform_chart([payload], other, vendor=vendor, symbol=inst.symbol,
                                                     timeframe=timeframe, calendar=cal))

    check()
