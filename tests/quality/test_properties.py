"""Properties of check/partition over arbitrary (messy) and clean (random-walk) batches."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.ipc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickvault.calendars import get_calendar
from tickvault.model import BAR_SCHEMA
from tickvault.quality import BAD_ROWS_SCHEMA, RULES, check, partition, score_of

from ._bars import DAY_US, bars, random_walk, us

XNYS = get_calendar("XNYS")
BASE = us("2024-03-04")
PRICE = st.one_of(
    st.floats(0.01, 1e4),
    st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e-9, 1e9, 100.0, 100.0]),
)
VOLUME = st.one_of(st.floats(0, 1e9), st.sampled_from([-1.0, float("nan"), 0.0]))


@st.composite
def messy_batches(draw: st.DrawFn) -> pa.Table:
    """Anything a vendor might send: duplicates, disorder, nulls, NaN, zeros, off-grid times."""
    n = draw(st.integers(0, 30))
    ts = [None if draw(st.integers(0, 15)) == 0 else BASE + draw(st.integers(0, 40)) * DAY_US // 4
          for _ in range(n)]
    cols = [[draw(PRICE) for _ in range(n)] for _ in range(4)]
    vol = [draw(VOLUME) for _ in range(n)]
    return bars(ts, *cols, v=vol)


def ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def row_keys(table: pa.Table) -> list[str]:
    """Rows as comparable strings (NaN-safe), sorted: a multiset of rows."""
    cols = [table.column(name).to_pylist() for name in BAR_SCHEMA.names]
    return sorted(repr(row) for row in zip(*cols, strict=True))


POLICIES = st.one_of(st.none(), st.sets(st.sampled_from(list(RULES))))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messy_batches(), POLICIES, st.booleans())
def test_check_and_partition_on_anything(table: pa.Table, policy: set[str] | None, with_calendar: bool) -> None:
    before = ipc_bytes(table)
    calendar = XNYS if with_calendar else None
    report = check(table, symbol="X", timeframe="6h", calendar=calendar, hard_rules=policy)
    assert ipc_bytes(table) == before  # rules never modify their input

    flags = report.flags.to_pylist()
    hard = set(report.hard_rules)
    assert all(f["severity"] == ("hard" if f["rule"] in hard else "soft") for f in flags)
    for rule, count in report.counts.items():
        assert count == len({f["row"] for f in flags if f["rule"] == rule})
    assert {f["rule"] for f in flags} <= set(report.counts)
    assert 0.0 <= report.score <= 1.0
    assert (report.score == 1.0) == (not flags)
    hard_rows = {f["row"] for f in flags if f["severity"] == "hard"}
    soft_only = {f["row"] for f in flags} - hard_rows
    assert report.score == score_of(report.rows, len(hard_rows), len(soft_only))

    if "required_columns" not in hard and any(t is None for t in table.column("ts").to_pylist()):
        return  # rows without a time cannot be stored: partition refuses (tested elsewhere)
    good, bad = partition(table, report)
    assert ipc_bytes(table) == before
    assert good.schema == BAR_SCHEMA
    assert bad.schema == BAD_ROWS_SCHEMA
    assert good.num_rows + bad.num_rows == table.num_rows
    assert sorted(row_keys(good) + row_keys(bad)) == row_keys(table)  # good ∪ bad == input rows
    assert bad.num_rows == len(hard_rows)
    for rules in bad.column("rule").to_pylist():
        assert set(rules.split(",")) <= hard


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(2, 400), st.sampled_from(["1d", "5m", "1h"]),
       st.floats(0.001, 0.05), st.floats(0.01, 5000.0))
def test_clean_random_walks_have_no_hard_flags(seed: int, n: int, tf: str, vol: float, start: float) -> None:
    if tf == "1d":
        starts = np.asarray([d.value // 1000 for d in XNYS.sessions("2015-01-02", "2030-01-01")[:n]])
    else:
        starts, _ = XNYS.bar_bounds(tf, us("2024-06-03"), us("2024-09-03"))
        starts = starts[:n]
    table = random_walk(starts, seed=seed, start=start, vol=vol)
    report = check(table, symbol="X", timeframe=tf, calendar=XNYS)
    assert report.hard_failures == 0, report.flags.to_pandas()
    for rule in ("gap", "outside_session", "split_jump", "stale_run", "out_of_order", "duplicate_ts"):
        assert report.counts[rule] == 0, (rule, report.flags.to_pandas())
    good, bad = partition(table, report)
    assert good.equals(table)
    assert bad.num_rows == 0
