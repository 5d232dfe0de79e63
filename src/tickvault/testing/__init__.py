"""tickvault.testing (see docs/architecture.md)."""

__all__: list[str] = []

# Provider test kit: replay server, manual clock, provider conformance suite, payload fuzzing.
from tickvault.testing.provider_conformance import (
    CaseOutcome,
    ConformanceCase,
    ExpectedBars,
    ProviderConformance,
    assert_typed_failure,
    mutated_payloads,
    run_case,
)
from tickvault.testing.replay import Canned, Fault, ManualClock, ReceivedRequest, ReplayServer, Route

__all__ += [
    "CaseOutcome",
    "Canned",
    "ConformanceCase",
    "ExpectedBars",
    "Fault",
    "ManualClock",
    "ProviderConformance",
    "ReceivedRequest",
    "ReplayServer",
    "Route",
    "assert_typed_failure",
    "mutated_payloads",
    "run_case",
]

# Store test kit: the BarStore conformance suite and file-system fault injection.
from tickvault.testing.conformance import (  # noqa: E402 - grouped by kit, after the provider kit
    BarStoreConformance,
    MemoryHarness,
    StoreHarness,
    assert_bars_equal,
    make_bars,
)
from tickvault.testing.faults import PowerLossFS, SimulatedCrash  # noqa: E402

__all__ += [
    "BarStoreConformance",
    "MemoryHarness",
    "PowerLossFS",
    "SimulatedCrash",
    "StoreHarness",
    "assert_bars_equal",
    "make_bars",
]
