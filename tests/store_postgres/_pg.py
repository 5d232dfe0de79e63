"""Helpers shared by the PostgreSQL store tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickvault.store.base import BarStore
from tickvault.store.postgres import PostgresStore
from tickvault.testing.conformance import StoreHarness, bars_to_rows
from tickvault.testing.crash import SYMBOLS, TIMEFRAME, Op, Oracle, bars_for, op_for


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
#: Crash-workload operations grouped into one ``write_many`` call.
MANY = 4


@dataclass(frozen=True)
class ManyOp:
    """Operations ``index * MANY ...`` of the crash workload as one ``write_many`` call.

    When the group's first operation is a delete or a compaction, the group is that
    operation alone; otherwise it is every write of the group (a series may repeat),
    applied by one ``write_many``: all of them or none must survive a crash.
    """

    index: int
    ops: tuple[Op, ...]

    @property
    def kind(self) -> str:
        return "many" if self.ops[0].kind == "write" else self.ops[0].kind

    def apply(self, store: BarStore) -> None:
        """Run the group against ``store``."""
        if self.kind != "many":
            self.ops[0].apply(store)
            return
        store.write_many([(op.symbol, TIMEFRAME, bars_for(op.ts_us, np.full(op.ts_us.size, op.index % 1000,
                                                                            dtype=np.int64)))
                          for op in self.ops])


def many_op_for(seed: int, index: int) -> ManyOp:
    """Group ``index`` of crash workload ``seed`` (see :class:`ManyOp`)."""
    first = op_for(seed, index * MANY)
    if first.kind != "write":
        return ManyOp(index, (first,))
    return ManyOp(index, tuple(op for op in (op_for(seed, index * MANY + m) for m in range(MANY))
                               if op.kind == "write"))


def apply_to(oracle: Oracle, op: Op | ManyOp) -> None:
    """Apply a single operation or a group to the expected state."""
    for one in (op.ops if isinstance(op, ManyOp) else (op,)):
        oracle.apply(one)


def run_many_writer(factory: Callable[[], BarStore], seed: int, first: int, ack_path: str) -> None:
    """:func:`tickvault.testing.crash.run_writer` with groups written by ``write_many``."""
    store = factory()
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    index = first
    while True:
        many_op_for(seed, index).apply(store)
        os.write(fd, f"{index}\n".encode("ascii"))  # one write(2): a kill cannot split it
        index += 1


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


def check_after_crash(store: PostgresStore, oracle: Oracle, in_flight: Op | ManyOp, trial: int) -> Oracle:
    """The store holds the acknowledged state, or it plus the in-flight op; return which.

    Also checks the bookkeeping (series row counts) and that ``verify`` repairs nothing.
    """
    got = state_of(store)
    if not matches(got, oracle):
        plus = oracle.copy()
        apply_to(plus, in_flight)
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
