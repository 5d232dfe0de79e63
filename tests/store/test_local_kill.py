"""kill -9 a writer process at random instants: nothing acknowledged is ever lost.

The child runs :func:`tickvault.testing.crash.run_writer` (upserts, deletes, compactions
on two series, acknowledging each operation after it returns). After every kill the
parent opens the store (which cleans up after the dead writer), verifies it, and checks
that it holds exactly the acknowledged state, or that state plus the one operation that
was in flight: never a lost acknowledged bar, never half an operation, never a duplicate.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import sqlite3
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tickvault.store.local import LocalStore
from tickvault.testing.crash import SYMBOLS, Oracle, op_for, read_acks, run_writer


def _state_of(store: LocalStore) -> dict[str, pa.Table]:
    out = {}
    for symbol in SYMBOLS:
        table = store.read(symbol, "1m")
        ts = np.asarray(table.column("ts").cast("int64").to_numpy())
        assert np.all(ts[1:] > ts[:-1]), f"{symbol}: duplicate or unsorted keys"
        out[symbol] = table
    return out


def _matches(got: dict[str, pa.Table], oracle: Oracle) -> bool:
    # Both sides are built by bars_for (no NaN, one provider), so Arrow equality is exact.
    return all(got[symbol].equals(oracle.table(symbol)) for symbol in SYMBOLS)


def _no_orphans(store: LocalStore) -> None:
    listed = {p for symbol in SYMBOLS for p in store.files(symbol, "1m")}
    on_disk = {p for p in (store.root / "bars").rglob("*") if p.is_file()}
    assert on_disk == listed, f"orphans left after open: {sorted(on_disk - listed)}"
    # Inline deltas: a BLOB for every inline manifest row and none without one.
    con = sqlite3.connect(store.root / "catalog.sqlite")
    try:
        inline = {r[0] for r in con.execute("SELECT path FROM segments WHERE path LIKE '%.inline'")}
        blobs = {r[0] for r in con.execute(
            "SELECT g.path FROM segments g JOIN packs p ON p.id = g.pack UNION ALL SELECT path FROM deltas")}
        unused = [r[0] for r in con.execute(
            "SELECT id FROM packs WHERE id NOT IN (SELECT pack FROM segments WHERE pack IS NOT NULL)")]
    finally:
        con.close()
    assert inline == blobs, f"inline deltas and manifest rows disagree: {sorted(inline ^ blobs)}"
    assert not unused, f"packs no manifest row uses: {unused}"


def _wait_for_first_ack(ack: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ack.exists() and ack.stat().st_size:
            return
        time.sleep(0.002)


def _kill_trials(tmp_path: Path, trials: int, seed: int) -> None:
    ctx = multiprocessing.get_context("forkserver")
    # The fork server imports the store once; each trial then forks a writer in ms.
    ctx.set_forkserver_preload(["tickvault.testing.crash", "tickvault.store.local"])
    root = tmp_path / "store"
    rng = random.Random(seed)
    oracle = Oracle()
    first = 0
    acked_total = 0
    for trial in range(trials):
        ack = tmp_path / f"ack-{trial}"
        # fsync only matters for power loss (covered by test_local_powerloss); skipping it
        # in most trials lets the writer get through many more operations per kill.
        factory = functools.partial(LocalStore, root, lock_timeout=10.0, durable=trial % 4 == 0)
        child = ctx.Process(target=run_writer, args=(factory, seed, first, str(ack)), daemon=True)
        child.start()
        if rng.random() < 0.7:
            _wait_for_first_ack(ack)  # most kills land mid-operation, not during start-up
        time.sleep(rng.uniform(0.0, 0.03))
        child.kill()  # SIGKILL
        child.join()
        acked = read_acks(str(ack))
        assert acked == list(range(first, first + len(acked)))
        acked_total += len(acked)
        for i in acked:
            oracle.apply(op_for(seed, i))
        in_flight = first + len(acked)
        plus = oracle.copy()
        plus.apply(op_for(seed, in_flight))
        with LocalStore(root) as store:
            report = store.verify()
            assert report.ok, f"trial {trial}: {report}"
            got = _state_of(store)
            _no_orphans(store)
            counts = {s.symbol: s.rows for s in store.series()}
        if _matches(got, oracle):
            pass
        elif _matches(got, plus):
            oracle = plus  # the in-flight operation committed just before the kill
        else:
            pytest.fail(f"trial {trial}: store matches neither the acknowledged state nor it plus op {in_flight}")
        assert counts == {s: len(v) for s, v in oracle.state.items() if v}, f"trial {trial}: row counts drifted"
        first = in_flight + 1
    assert acked_total > trials // 2  # the writer really ran between kills


def test_kill_minus_9_loses_no_acknowledged_bar(tmp_path: Path) -> None:
    _kill_trials(tmp_path, trials=100, seed=11)


@pytest.mark.nightly
def test_kill_minus_9_nightly(tmp_path: Path) -> None:
    _kill_trials(tmp_path, trials=1000, seed=12)
