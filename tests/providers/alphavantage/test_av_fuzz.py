"""Fuzz the Alpha Vantage transforms with mutated recordings: only typed provider errors, no hang."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _av_helpers import DAILY, EXTENDED_CSV, FIVE_MIN, INCOME, OVERVIEW, make, payload, us
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickvault.model import Instrument, Timeframe
from tickvault.providers.alphavantage import (
    body_error,
    income_statement,
    overview,
    parse_csv,
    parse_json,
    series_actions,
    series_bars,
)
from tickvault.providers.base import BarsQuery
from tickvault.testing.provider_conformance import assert_typed_failure, mutated_payloads
from tickvault.testing.replay import ManualClock

FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=30),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=15), kids, max_size=4),
                     max_leaves=20)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("rel", "tf", "start"), [(DAILY, "1d", "2019-06-03"), (FIVE_MIN, "5m", "2019-08-01 18:10")])
def test_series_transform_raises_only_typed_errors(shared_data: Path, rel: Path, tf: str, start: str) -> None:
    original = payload(shared_data, rel)
    timeframe = Timeframe.parse(tf)

    @FUZZ
    @given(mutated_payloads(original))
    def check(body: Any) -> None:
        def run() -> None:
            series = parse_json(body)
            series_bars(series, timeframe=timeframe, start_us=us(start))
            series_actions(series, "MSFT")

        assert_typed_failure(run)

    check()


@pytest.mark.timeout(120)
def test_csv_transform_raises_only_typed_errors(shared_data: Path) -> None:
    head = b"".join((shared_data / EXTENDED_CSV).read_bytes().splitlines(keepends=True)[:40])

    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        raw = bytearray(head)
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(raw)))
            op = data.draw(st.sampled_from(("insert", "delete", "replace", "cut")))
            chunk = data.draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b",", b"\n", b"nan", b"-", b'"']))
            if op == "insert":
                raw[pos:pos] = chunk
            elif op == "delete":
                del raw[pos:pos + len(chunk)]
            elif op == "replace":
                raw[pos:pos + len(chunk)] = chunk
            else:
                del raw[pos:]
        assert_typed_failure(lambda: series_bars(parse_csv(bytes(raw)), timeframe=Timeframe.parse("1m"), start_us=0))

    check()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rel", [OVERVIEW, INCOME])
def test_fundamentals_raise_only_typed_errors(shared_data: Path, rel: Path) -> None:
    original = json.loads((shared_data / rel).read_text())
    fn = overview if rel == OVERVIEW else income_statement

    @FUZZ
    @given(mutated_payloads(original, max_mutations=5))
    def check(body: Any) -> None:
        assert_typed_failure(lambda: fn(body))

    check()


@FUZZ
@given(_JSON)
def test_error_body_classification_never_raises(body: Any) -> None:
    found = body_error(body)
    assert found is None or isinstance(found[1], str)


@pytest.mark.timeout(120)
def test_adapter_transform_raises_only_typed_errors(shared_data: Path) -> None:
    """The whole pure half of the adapter (parse, clip, regular hours, coverage) on mutated pages."""
    original = payload(shared_data, FIVE_MIN)
    provider = make("http://127.0.0.1:9", ManualClock(us("2019-08-03")).clock)
    query = BarsQuery("MSFT", "5m", us("2019-08-01 18:10"), us("2019-08-02 20:00"), Instrument("MSFT"))
    plan = provider.plan(query, Timeframe.parse("5m"))

    @FUZZ
    @given(mutated_payloads(original))
    def check(body: Any) -> None:
        assert_typed_failure(lambda: provider.transform([("json", body)], plan))

    check()
