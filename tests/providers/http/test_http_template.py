"""The copy-me template works end to end, and shows how a new provider is tested.

The payloads are synthetic (the Example Bars API is imaginary); a real provider replays
its vendor's recordings instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from pydantic import SecretStr

from tickvault.errors import AuthenticationFailed
from tickvault.model import Instrument
from tickvault.providers._http import Clock, ProviderSettings
from tickvault.providers._template import TemplateProvider, transform_page
from tickvault.providers.base import BarsQuery, Provider
from tickvault.testing.provider_conformance import (
    ConformanceCase,
    ExpectedBars,
    ProviderConformance,
    assert_typed_failure,
    mutated_payloads,
)
from tickvault.testing.replay import Canned, Fault, ManualClock, ReplayServer, Route

NOW = 1_740_009_600_000_000
DAY = 86_400_000_000
# Two sessions (2025-02-03 Mon, 2025-02-04 Tue), stamped at 21:00Z (after the close), on two pages.
PAGE1 = {"symbol": "BRK.B", "bars": [{"t": 1_738_616_400, "o": 475.0, "h": 480.0, "l": 470.0, "c": 478.5,
                                      "v": 3_100_000}], "next": "p2"}
PAGE2 = {"symbol": "BRK.B", "bars": [{"t": 1_738_702_800, "o": 478.0, "h": 479.0, "l": 472.5, "c": 474.0,
                                      "v": 2_900_000}], "next": None}
PATH = "/v1/bars/BRK.B"
ROUTES = (Route(PATH, Canned.json(PAGE1)), Route(PATH, Canned.json(PAGE2), {"cursor": "p2"}))
QUERY = BarsQuery("BRK.B", "1d", 1_738_540_800_000_000, 1_738_540_800_000_000 + 2 * DAY, Instrument("BRK.B"))


def factory(base_url: str, clock: Clock) -> Provider:
    return TemplateProvider(ProviderSettings("template", base_url, api_key=SecretStr("tk")), clock=clock)


CASE = ConformanceCase(
    "template:BRK.B", ROUTES, factory, QUERY,
    ExpectedBars.of([QUERY.start_us, QUERY.start_us + DAY], [475.0, 478.0], [480.0, 479.0], [470.0, 472.5],
                    [478.5, 474.0], [3_100_000, 2_900_000]),
    NOW,
)


class TestTemplateConformance(ProviderConformance):
    @pytest.fixture
    def case(self) -> ConformanceCase:
        return CASE


@settings(max_examples=100)
@given(mutated_payloads(PAGE1))
def test_template_transform_survives_mutations(payload: Any) -> None:
    assert_typed_failure(lambda: transform_page(payload, "BRK.B"))


def test_template_errors_and_credentials() -> None:
    clock = ManualClock(NOW)
    with ReplayServer(ROUTES) as server:
        server.fault(PATH, Fault.auth_failure(401))
        with pytest.raises(AuthenticationFailed):
            asyncio.run(factory(server.base_url, clock.clock).bars(QUERY))
        assert server.requests[0].headers["x-api-key"] == "tk"
        no_key = TemplateProvider(ProviderSettings("template", server.base_url), clock=clock.clock)
        with pytest.raises(AuthenticationFailed, match="TICKVAULT_TEMPLATE_API_KEY"):
            asyncio.run(no_key.bars(QUERY))
