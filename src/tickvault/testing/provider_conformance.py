"""One reusable pytest suite every data provider must pass, plus payload fuzzing.

A :class:`ConformanceCase` is a recorded exchange (replay :class:`~.replay.Route` s), a way
to build the provider against the replay server's URL with an injected clock, a query, and
the bars the payload holds (computed independently by the test from the raw recording).
:class:`ProviderConformance` then checks, through real HTTP on 127.0.0.1, that the provider
returns the canonical schema, UTC microsecond keys following the label convention
(intraday: bar open on the calendar's grid; daily: the session date at 00:00 UTC), sorted
without duplicates, inside the query, with sound coverage, and exactly the payload's bar
count and values. Subclass it and provide a (parametrised) ``case`` fixture::

    class TestYahooConformance(ProviderConformance):
        @pytest.fixture(params=CASES, ids=lambda c: c.id)
        def case(self, request):
            return request.param

:func:`mutated_payloads` is a Hypothesis strategy of corrupted copies of a recorded payload
(dropped keys, wrong types, ``"NaN"`` strings, truncated arrays, mismatched lengths) for
fuzzing pure transforms: :func:`assert_typed_failure` accepts only a result or
:class:`~tickvault.errors.ProviderResponseError` / :class:`~tickvault.errors.IncompleteData`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import strategies as st

from tickvault.calendars import TradingCalendar, get_calendar
from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.model import BAR_SCHEMA, CoverageState, Instrument, Timeframe
from tickvault.providers._http import Clock
from tickvault.providers.base import BarsQuery, BarsResult, Provider
from tickvault.testing.replay import ManualClock, ReceivedRequest, ReplayServer, Route

__all__ = [
    "JUNK_VALUES",
    "CaseOutcome",
    "ConformanceCase",
    "ExpectedBars",
    "ProviderConformance",
    "assert_typed_failure",
    "mutated_payloads",
    "run_case",
]

_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class ExpectedBars:
    """The bars a recorded payload holds, in canonical keys (computed by the test)."""

    ts_us: tuple[int, ...]
    open: tuple[float, ...]
    high: tuple[float, ...]
    low: tuple[float, ...]
    close: tuple[float, ...]
    volume: tuple[float, ...]

    @classmethod
    def of(cls, ts_us: Any, open: Any, high: Any, low: Any, close: Any, volume: Any) -> ExpectedBars:
        """Build from array-likes."""
        def f(x: Any) -> tuple[float, ...]:
            return tuple(float(v) for v in np.asarray(x, dtype=np.float64))

        return cls(tuple(int(v) for v in np.asarray(ts_us, dtype=np.int64)), f(open), f(high), f(low), f(close),
                   f(volume))

    def __len__(self) -> int:
        return len(self.ts_us)


@dataclass(frozen=True)
class ConformanceCase:
    """One recorded exchange and what the provider must make of it.

    Parameters
    ----------
    id
        Test id.
    routes
        What the replay server serves.
    make_provider
        ``make_provider(base_url, clock) -> Provider`` pointing the adapter at the server.
    query
        The bars query.
    expected
        The payload's bars in canonical keys and raw values.
    now_us
        The injected "now" (e.g. the recording date), epoch µs.
    rtol
        Relative tolerance on values (0: exact).
    extended_hours
        Whether intraday keys may lie outside the regular session grid.
    """

    id: str
    routes: tuple[Route, ...]
    make_provider: Callable[[str, Clock], Provider]
    query: BarsQuery
    expected: ExpectedBars
    now_us: int
    rtol: float = 0.0
    extended_hours: bool = False

    def calendar(self) -> TradingCalendar:
        """The calendar of the query's instrument."""
        inst = self.query.instrument or Instrument.guess(self.query.symbol)
        return get_calendar(inst.calendar)


@dataclass
class CaseOutcome:
    """What running a case produced."""

    result: BarsResult
    provider_name: str
    provider_repr: str
    requests: list[ReceivedRequest] = field(default_factory=list)


def run_case(case: ConformanceCase) -> CaseOutcome:
    """Serve the case's routes on 127.0.0.1, fetch through the real adapter, close it twice."""
    clock = ManualClock(case.now_us)
    with ReplayServer(case.routes) as server:
        provider = case.make_provider(server.base_url, clock.clock)

        async def go() -> BarsResult:
            try:
                return await provider.bars(case.query)
            finally:
                await provider.aclose()
                await provider.aclose()  # idempotent

        result = asyncio.run(go())
        return CaseOutcome(result, provider.name, repr(provider), server.requests)


class ProviderConformance:
    """The provider contract, checked on recorded payloads (see the module docstring)."""

    _outcomes: ClassVar[dict[tuple[str, str], CaseOutcome]] = {}

    @pytest.fixture
    def case(self) -> ConformanceCase:
        """Override with a (parametrised) fixture returning :class:`ConformanceCase` s."""
        raise NotImplementedError("subclasses provide a `case` fixture")

    @pytest.fixture
    def outcome(self, case: ConformanceCase) -> CaseOutcome:
        """The case's outcome, computed once per test class and case id (runs are deterministic)."""
        key = (type(self).__qualname__, case.id)
        if key not in self._outcomes:
            self._outcomes[key] = run_case(case)
        return self._outcomes[key]

    @staticmethod
    def _ts(outcome: CaseOutcome) -> np.ndarray:
        return np.asarray(outcome.result.table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)

    def test_returns_the_canonical_schema(self, outcome: CaseOutcome) -> None:
        assert outcome.result.table.schema.remove_metadata().equals(BAR_SCHEMA)

    def test_timestamps_are_utc_microseconds_without_nulls(self, outcome: CaseOutcome) -> None:
        ts = outcome.result.table.column("ts")
        assert ts.type == pa.timestamp("us", tz="UTC")
        assert ts.null_count == 0

    def test_keys_follow_the_label_convention(self, case: ConformanceCase, outcome: CaseOutcome) -> None:
        ts = self._ts(outcome)
        tf = Timeframe.parse(case.query.timeframe)
        cal = case.calendar()
        if tf.is_intraday:
            if ts.size:
                starts, _ = cal.bar_bounds(tf, int(ts.min()), int(ts.max()) + 1, extended=case.extended_hours)
                assert np.isin(ts, starts).all(), "intraday keys must be bar opens on the calendar grid"
        else:
            assert (ts % _DAY_US == 0).all(), "daily keys must be 00:00 UTC"
            days = ts.astype("datetime64[us]").astype("datetime64[D]")
            assert all(cal.is_session(str(d)) for d in days), "daily keys must be sessions"

    def test_sorted_without_duplicates(self, outcome: CaseOutcome) -> None:
        ts = self._ts(outcome)
        assert (np.diff(ts) > 0).all()

    def test_bars_lie_inside_the_query(self, case: ConformanceCase, outcome: CaseOutcome) -> None:
        ts = self._ts(outcome)
        assert ((ts >= case.query.start_us) & (ts < case.query.end_us)).all()

    def test_reproduces_the_payload_bar_count(self, case: ConformanceCase, outcome: CaseOutcome) -> None:
        assert outcome.result.table.num_rows == len(case.expected)

    def test_reproduces_the_payload_values(self, case: ConformanceCase, outcome: CaseOutcome) -> None:
        t = outcome.result.table
        exp = case.expected
        np.testing.assert_array_equal(self._ts(outcome), np.asarray(exp.ts_us, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            got = np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
            np.testing.assert_allclose(got, np.asarray(getattr(exp, name)), rtol=case.rtol, atol=0, err_msg=name)

    def test_provenance_names_the_provider(self, outcome: CaseOutcome) -> None:
        values = set(outcome.result.table.column("provider").cast(pa.string()).to_pylist())
        assert all(v is not None and v.split(":")[0] == outcome.provider_name for v in values)

    def test_coverage_is_sound(self, case: ConformanceCase, outcome: CaseOutcome) -> None:
        cov = outcome.result.coverage
        q = case.query
        for a, b in itertools.pairwise(cov):
            assert a.end_us <= b.start_us, "coverage must be sorted and non-overlapping"
        for iv in cov:
            assert q.start_us <= iv.start_us < iv.end_us <= q.end_us
            assert iv.provider == outcome.provider_name
        ts = self._ts(outcome)
        if ts.size == 0:
            assert all(iv.state != CoverageState.FINAL for iv in cov), "no bars cannot be final"
        else:
            inside = np.zeros(ts.size, dtype=bool)
            for iv in cov:
                inside |= (ts >= iv.start_us) & (ts < iv.end_us)
            assert inside.all(), "every returned bar lies in a covered interval"
        assert cov, "a settled past window is vouched for"

    def test_every_request_hit_a_recording(self, outcome: CaseOutcome) -> None:
        unanswered = [(r.path, dict(r.params)) for r in outcome.requests if r.route is None]
        assert not unanswered

    def test_actions_follow_the_conventions(self, outcome: CaseOutcome) -> None:
        for a in outcome.result.actions:
            assert a.value > 0
            assert a.provider == outcome.provider_name
        keys = [(a.ex_date, str(a.kind)) for a in outcome.result.actions]
        assert len(keys) == len(set(keys))
        assert keys == sorted(keys)


# -- fuzzing ---------------------------------------------------------------------------------

JUNK_VALUES: tuple[Any, ...] = (
    None, "NaN", "", "1.5", "nan", True, False, 0, -1, 1e308, -1e308, float("nan"), float("inf"), 2**63, 2**64 + 1,
    [], {}, [None], {"x": 1}, "2022-13-45T25:61:00Z", "garbage",
)


def _paths(obj: Any, prefix: tuple[Any, ...] = (), out: list[tuple[Any, ...]] | None = None,
           limit: int = 5000) -> list[tuple[Any, ...]]:
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            _paths(v, (*prefix, k), out, limit)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*prefix, i))
            _paths(v, (*prefix, i), out, limit)
    return out


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated_payloads(draw: st.DrawFn, payload: Any, max_mutations: int = 3) -> Any:
    """A corrupted deep copy of ``payload`` (1..``max_mutations`` mutations).

    Mutations: drop a key or array item; replace a value by junk (``None``, ``"NaN"``,
    booleans, huge or non-finite numbers, empty containers, bad dates); truncate an array
    (which makes parallel arrays mismatched); duplicate an array item; stringify a number.
    """
    data = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(data, path), path[-1]
        op = draw(st.sampled_from(("drop", "junk", "truncate", "duplicate", "stringify")))
        value = parent[key]
        if op == "drop":
            del parent[key]
        elif op == "junk":
            parent[key] = copy.deepcopy(draw(st.sampled_from(JUNK_VALUES)))
        elif op == "truncate" and isinstance(value, list) and value:
            parent[key] = value[: draw(st.integers(0, len(value) - 1))]
        elif op == "duplicate" and isinstance(value, list) and value:
            value.append(copy.deepcopy(value[draw(st.integers(0, len(value) - 1))]))
        elif op == "stringify" and isinstance(value, int | float) and not isinstance(value, bool):
            parent[key] = str(value)
        else:
            parent[key] = None
    return data


def assert_typed_failure(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a result or ProviderResponseError/IncompleteData is fine, anything else fails."""
    try:
        return fn()
    except (ProviderResponseError, IncompleteData):
        return None


def table_values(table: pa.Table, names: Sequence[str] = ("open", "high", "low", "close", "volume")) -> dict[str, Any]:
    """Columns of a bars table as float arrays (test helper)."""
    return {n: np.asarray(table.column(n).to_numpy(zero_copy_only=False), dtype=np.float64) for n in names}
