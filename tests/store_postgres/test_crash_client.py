"""kill -9 the writing client at random instants: every acknowledged batch survives, none is half there.

The child runs :func:`tickvault.testing.crash.run_writer` against PostgreSQL (upserts,
deletes and no-op compactions on two series, acknowledging each operation after it
returns). After each SIGKILL the parent waits until the server has ended the dead
client's session (so its last transaction is settled: committed if COMMIT got through,
rolled back otherwise), then checks the store holds exactly the acknowledged state or
that state plus the one operation in flight.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tickvault.store.postgres import PostgresStore
from tickvault.testing.crash import Op, Oracle, op_for, read_acks, run_writer

from ._pg import ManyOp, apply_to, check_after_crash, many_op_for, run_many_writer, wait_until


def _backends(url: str, app: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()
    return int(row[0]) if row else 0


def _gone(url: str, app: str) -> bool:
    return _backends(url, app) == 0


def _acked(ack: Path) -> bool:
    return ack.exists() and ack.stat().st_size > 0


def _kill_trials(url: str, schema: str, tmp_path: Path, trials: int, seed: int, many: bool = False,
                 window: float = 0.05) -> None:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tickvault.testing.crash", "tickvault.store.postgres"])
    PostgresStore.migrate(url, schema=schema)
    rng = random.Random(seed)
    oracle = Oracle()
    first = 0
    acked_total = 0
    for trial in range(trials):
        app = f"tv_kill_{seed}_{trial}"
        ack = tmp_path / f"ack-{trial}"
        factory = functools.partial(PostgresStore, make_conninfo(url, application_name=app), schema=schema,
                                    lock_timeout=10.0, partitions_ahead=0)
        child = ctx.Process(target=run_many_writer if many else run_writer, args=(factory, seed, first, str(ack)),
                            daemon=True)
        child.start()
        if rng.random() < 0.8:  # most kills land mid-operation, not during start-up
            wait_until(functools.partial(_acked, ack), "the writer's first acknowledgement")
        time.sleep(rng.uniform(0.0, window))
        child.kill()  # SIGKILL
        child.join()
        wait_until(functools.partial(_gone, url, app), "the server to end the killed client's session")
        acked = read_acks(str(ack))
        assert acked == list(range(first, first + len(acked)))
        acked_total += len(acked)
        op: Callable[[int, int], Op | ManyOp] = many_op_for if many else op_for
        for i in acked:
            apply_to(oracle, op(seed, i))
        in_flight = first + len(acked)
        with PostgresStore(url, schema=schema, migrate=False) as store:
            oracle = check_after_crash(store, oracle, op(seed, in_flight), trial)
        first = in_flight + 1
    assert acked_total > trials  # the writer really ran between kills


def test_killing_the_client_loses_no_acknowledged_batch(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    _kill_trials(pg_url, pg_schema, tmp_path, trials=50, seed=21)


def test_killing_a_write_many_client_loses_no_acknowledged_call(pg_url: str, pg_schema: str,
                                                                tmp_path: Path) -> None:
    # Each call writes up to four batches (a series may repeat) in one transaction:
    # after the kill all of a call's batches are there, or none.
    _kill_trials(pg_url, pg_schema, tmp_path, trials=30, seed=23, many=True, window=0.15)


@pytest.mark.nightly
def test_killing_the_client_nightly(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    _kill_trials(pg_url, pg_schema, tmp_path, trials=500, seed=22)
