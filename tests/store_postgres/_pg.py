"""Helpers shared by the PostgreSQL store tests."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from tickvault.store.base import BarStore
from tickvault.store.postgres import PostgresStore
from tickvault.testing.conformance import StoreHarness, bars_to_rows
from tickvault.testing.crash import SYMBOLS, TIMEFRAME, Op, Oracle


class PostgresHarness(StoreHarness):
    """PostgresStore on one schema; a restart closes the handle (its connections) and reopens."""

    def __init__(self, url: str, schema: str, **options: object) -> None:
        super().__init__()
        self.url = url
        self.schema = schema
        self.options = options

    def _open(self) -> BarStore:
        return PostgresStore(self.url, schema=self.schema, **self.options)  # type: ignore[arg-type]


# -- crash-test helpers ------------------------------------------------------------------------
def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail the test (not time it) if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


def state_of(store: PostgresStore) -> dict[str, pa.Table]:
    """Every crash-workload series, checked for exactly one row per key."""
    out = {}
    for symbol in SYMBOLS:
        table = store.read(symbol, TIMEFRAME)
        ts = np.asarray(table.column("ts").cast("int64").to_numpy())
        assert bool(np.all(ts[1:] > ts[:-1])), f"{symbol}: duplicate or unsorted keys"
        out[symbol] = table
    return out


def matches(got: dict[str, pa.Table], oracle: Oracle) -> bool:
    """Whether the stored series equal the oracle's, value for value."""
    return all(bars_to_rows(got[s]) == bars_to_rows(oracle.table(s)) for s in SYMBOLS)


def check_after_crash(store: PostgresStore, oracle: Oracle, in_flight: Op, trial: int) -> Oracle:
    """The store holds the acknowledged state, or it plus the in-flight op; return which.

    Also checks the bookkeeping (series row counts) and that ``verify`` repairs nothing.
    """
    got = state_of(store)
    if not matches(got, oracle):
        plus = oracle.copy()
        plus.apply(in_flight)
        if not matches(got, plus):
            raise AssertionError(f"trial {trial}: the store matches neither the acknowledged state nor it "
                                 f"plus the in-flight op {in_flight.index} ({in_flight.kind})")
        oracle = plus
    counts = {s.symbol: s.rows for s in store.series()}
    assert counts == {s: len(v) for s, v in oracle.state.items() if v}, f"trial {trial}: row counts drifted"
    report = store.verify()
    assert report.ok, f"trial {trial}: {report}"
    assert report.repaired == [], f"trial {trial}: {report.repaired}"
    return oracle
