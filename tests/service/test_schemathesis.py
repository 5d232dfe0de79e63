"""Schemathesis against the app's own OpenAPI schema: no 5xx, and every answer conforms to the
schema (status codes, content types, headers, bodies).

Requests carry an admin key, so write, fetch and admin operations run for real (over an
in-memory vault with a little data and one provider that serves fundamentals only, with a
non-finite value among its fields; bars are never fetched). Both valid (positive) and invalid
(negative) requests are generated for every operation. The run is bounded and deterministic:
``derandomize`` fixes Hypothesis' seed and ``max_examples`` keeps it well under a minute on two
cores. (Schemathesis' own pytest integration is not used: its lazy loader relies on pytest
internals that pytest 9 removed; ``as_strategy`` is its documented plain-Hypothesis API.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import tickvault
from tickvault.service import ServiceSettings, create_app

from ._util import FundamentalsStub
from .conftest import daily_frame, minute_frame

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 15  # per run: positive, negative (and a stored series) -> 30-45 per operation


@pytest.fixture
def vault() -> Iterator[tickvault.Vault]:
    fields: dict[str, tuple[float | str, str]] = {"market_cap": (1.5e9, "stub profile"), "sector": ("Retail", "stub"),
                                                  "pe_ratio": (math.nan, "stub ratios")}
    with tickvault.open(":memory:", providers=[FundamentalsStub("stub", fields)]) as v:
        yield v


def test_the_api_honours_its_own_schema(vault: tickvault.Vault, settings: ServiceSettings,
                                        keys: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="tickvault.service")
    vault.write("ACME", "1d", daily_frame(periods=20))
    vault.write("BTC/USDT", "1m", minute_frame(periods=120))
    vault.add_actions("ACME", [tickvault.CorporateAction.split("2024-01-10", 2.0)])
    app = create_app(vault, settings.replace(stream_threshold_rows=50))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"X-API-Key": keys["admin"]}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hsettings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no parameter or body to make invalid
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, report them all
                failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}")
    crashes = [str(getattr(rec, "traceback", "")) for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert not failures, "\n\n".join(failures + crashes[:3])
