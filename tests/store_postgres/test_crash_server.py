"""Stop the PostgreSQL server with an immediate shutdown mid-batch, restart it, check the store.

A writer thread applies the deterministic crash workload
(:mod:`tickvault.testing.crash`) and acknowledges each operation after ``write`` /
``delete_range`` returns. At a random instant the throw-away cluster is stopped with
``pg_ctl stop -m immediate`` (no checkpoint; transactions in flight are cut off), then
started again, which runs crash recovery from the WAL. The store must then hold every
acknowledged operation, no part of any other, and exactly one row per key: the
acknowledged state, or that plus the one operation whose COMMIT reached the server
before the crash but whose answer did not reach the writer.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from tickvault.errors import StorageError
from tickvault.store.postgres import PostgresStore
from tickvault.testing.crash import SYMBOLS, Op, Oracle, op_for

from ._cluster import Cluster
from ._pg import ManyOp, apply_to, check_after_crash, many_op_for, wait_until

_MINUTE = 60_000_000
_T0 = 1_703_980_800_000_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        made = Cluster()
    except RuntimeError as exc:  # CI without server binaries is a failure, not a skip
        pytest.fail(f"cannot create a throw-away PostgreSQL cluster: {exc}")
    with made:
        yield made


def big_op_for(seed: int, index: int) -> Op:
    """Large batches (tens of thousands of rows, overlapping) for the nightly run."""
    rng = random.Random(seed * 7_919 + index)
    symbol = rng.choice(SYMBOLS)
    if rng.random() < 0.1:
        lo = _T0 + rng.randrange(0, 200_000) * _MINUTE
        return Op(index, "delete", symbol, np.zeros(0, dtype=np.int64), lo, lo + rng.randrange(1, 20_000) * _MINUTE)
    start = rng.randrange(0, 200_000)
    return Op(index, "write", symbol, _T0 + (start + np.arange(rng.randrange(10_000, 60_000))) * _MINUTE)


class _Writer(threading.Thread):
    """Applies operations from ``first`` on until the server goes away."""

    def __init__(self, url: str, ops: list[Op] | list[ManyOp]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ops = ops
        self.acked: list[int] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with PostgresStore(self.url, lock_timeout=10.0, partitions_ahead=0) as store:
                for op in self.ops:
                    op.apply(store)
                    self.acked.append(op.index)
        except StorageError:
            return  # the server went away: expected
        except BaseException as exc:  # anything else is a bug, surfaced by the test
            self.failure = exc


def _crash_trials(cluster: Cluster, trials: int, seed: int, ops: int, window: float, big: bool = False,
                  many: bool = False) -> None:
    rng = random.Random(seed)
    with psycopg.connect(cluster.url, autocommit=True) as conn:  # the cluster is shared by this module's tests
        conn.execute("DROP SCHEMA IF EXISTS tickvault CASCADE")
    PostgresStore.migrate(cluster.url)
    oracle = Oracle()
    first = 0
    acked_total = 0
    for trial in range(trials):
        batch: list[Op] | list[ManyOp] = (
            [many_op_for(seed, i) for i in range(first, first + ops)] if many
            else [(big_op_for if big else op_for)(seed, i) for i in range(first, first + ops)])
        writer = _Writer(cluster.url, batch)
        writer.start()
        if rng.random() < 0.8:  # most crashes land mid-batch, not while connecting
            wait_until(lambda w=writer: bool(w.acked) or not w.is_alive(), "the writer's first acknowledgement")
        time.sleep(rng.uniform(0.0, window))  # about one to a few operations' time
        cluster.crash()
        writer.join(timeout=60)
        assert not writer.is_alive(), "the writer hung after the server died"
        assert writer.failure is None, f"trial {trial}: {writer.failure!r}"
        acked = writer.acked
        assert acked == list(range(first, first + len(acked)))
        assert len(acked) < ops, "the workload ran out before the crash; give it more operations"
        acked_total += len(acked)
        for i in acked:
            apply_to(oracle, batch[i - first])
        in_flight = batch[len(acked)]
        cluster.start()
        with PostgresStore(cluster.url, migrate=False) as store:
            oracle = check_after_crash(store, oracle, in_flight, trial)
        first += ops  # the next trial starts a fresh stretch of the workload
    assert acked_total > trials // 2  # the writer really ran between crashes


def test_immediate_shutdown_loses_no_acknowledged_batch(cluster: Cluster) -> None:
    _crash_trials(cluster, trials=50, seed=31, ops=400, window=0.04)


def test_immediate_shutdown_loses_no_acknowledged_write_many(cluster: Cluster) -> None:
    # all batches of a write_many call survive the crash, or none of them
    _crash_trials(cluster, trials=30, seed=33, ops=300, window=0.06, many=True)


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_immediate_shutdown_with_large_batches_nightly(cluster: Cluster) -> None:
    _crash_trials(cluster, trials=100, seed=32, ops=60, window=1.5, big=True)
