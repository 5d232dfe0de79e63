"""Fuzz the Tiingo transforms with mutated recordings: only typed provider errors, no hang."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _tiingo_helpers import (
    DAILY,
    FUND_DAILY,
    FUND_STATEMENTS,
    IEX,
    META,
    RECORDED_US,
    body_text,
    interactions,
    json_body,
    make,
    us,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickvault.model import Instrument, Timeframe
from tickvault.providers.base import BarsQuery
from tickvault.providers.tiingo import (
    daily_actions,
    daily_bars,
    daily_csv_bars,
    daily_metrics,
    iex_bars,
    instrument_from_meta,
    statements,
)
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import ManualClock

FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _daily(body: Any) -> None:
    daily_bars(body)
    daily_actions(body, "GOOGL")


TRANSFORMS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "daily": (DAILY, _daily),
    "iex": (IEX, iex_bars),
    "metadata": (META, lambda body: instrument_from_meta("GOOGL", body, "GOOGL")),
    "fundamentals-daily": (FUND_DAILY, daily_metrics),
    "statements": (FUND_STATEMENTS, statements),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(TRANSFORMS))
def test_transform_raises_only_typed_errors(shared_data: Path, kind: str) -> None:
    name, fn = TRANSFORMS[kind]
    original = json_body(shared_data, name, 0)

    @FUZZ
    @given(mutated_payloads(original, max_mutations=4))
    def check(body: Any) -> None:
        assert_typed_failure(lambda: fn(body))

    check()


@pytest.mark.timeout(120)
def test_csv_transform_raises_only_typed_errors(shared_data: Path) -> None:
    original = body_text(interactions(shared_data, DAILY)[1]).encode()

    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        raw = bytearray(original)
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(raw)))
            chunk = data.draw(st.binary(min_size=1, max_size=6) | st.sampled_from([b",", b"\n", b"x", b"-1e999"]))
            if data.draw(st.booleans()):
                raw[pos:pos] = chunk
            else:
                del raw[pos:pos + len(chunk)]
        assert_typed_failure(lambda: daily_csv_bars(bytes(raw)))

    check()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("name", "tf", "start", "end"), [(DAILY, "1d", "2018-01-05", "2018-01-20"),
                                                           (IEX, "30m", "2018-01-02 14:30", "2018-01-02 21:00")])
def test_adapter_transform_raises_only_typed_errors(shared_data: Path, name: str, tf: str, start: str,
                                                    end: str) -> None:
    """The pure half of the adapter (parse, regular hours, clip, coverage, actions) on mutated pages."""
    original = json_body(shared_data, name, 0)
    provider = make("http://127.0.0.1:9", ManualClock(RECORDED_US).clock)
    plan = provider.plan(BarsQuery("GOOGL", tf, us(start), us(end), Instrument("GOOGL")), Timeframe.parse(tf))

    @FUZZ
    @given(mutated_payloads(original, max_mutations=4))
    def check(body: Any) -> None:
        assert_typed_failure(lambda: provider.transform([body], plan))

    check()
