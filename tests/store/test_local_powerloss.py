"""Simulated power loss at every step of every publishing protocol of LocalStore.

For each scenario the operation is first run once to record its file-system steps
(``write_new``, ``fsync_file``, ``rename``, ``fsync_dir``, ``point:before_commit`` ...).
Then, for every step N, a fresh store is set up, the operation is crashed just before
step N, everything not yet synced is dropped (:class:`~tickvault.testing.faults.PowerLossFS`),
and the store is reopened. It must verify, hold either the complete old or the complete
new state (the new one as soon as the commit returned), and keep no stray files and no
inline delta without its manifest row (or the other way round).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tickvault.store.base import BarStore
from tickvault.store.local import LocalStore
from tickvault.store.memory import MemoryStore
from tickvault.testing.conformance import MINUTE_US, T0_US, bars_to_rows, make_bars
from tickvault.testing.faults import PowerLossFS, SimulatedCrash

YEAR_2024_US = 1_704_067_200_000_000
Step = Callable[[BarStore], object]


def _minutes(start: int, count: int, first: int = T0_US) -> list[int]:
    return [first + (start + i) * MINUTE_US for i in range(count)]


def _nothing(store: BarStore) -> None:
    return None


def _base(store: BarStore) -> None:
    store.write("AAPL", "1m", make_bars(_minutes(0, 50)))


def _deltas(store: BarStore) -> None:
    for i in range(4):
        store.write("AAPL", "1m", make_bars(_minutes(10 * i, 15), version=i))


SCENARIOS: dict[str, tuple[Step, Step, dict[str, int]]] = {
    "first_write": (_nothing, lambda s: s.write("AAPL", "1m", make_bars(_minutes(0, 50))), {}),
    "upsert_delta": (_base, lambda s: s.write("AAPL", "1m", make_bars(_minutes(25, 50), version=1)), {}),
    "two_partitions": (_base, lambda s: s.write("BTC/USDT", "1m", make_bars(_minutes(-20, 40, YEAR_2024_US))), {}),
    "compact": (_deltas, lambda s: s.compact(), {}),
    "auto_compact": (_deltas, lambda s: s.write("AAPL", "1m", make_bars(_minutes(30, 30), version=9)),
                     {"compact_threshold": 4, "background_compaction": False}),
    "delete_range": (_deltas, lambda s: s.delete_range("AAPL", "1m", _minutes(5, 1)[0], _minutes(22, 1)[0]), {}),
    # Several series in one commit: a delta upsert of AAPL, a new BTC/USDT over two partitions.
    "write_many": (_base, lambda s: s.write_many([
        ("AAPL", "1m", make_bars(_minutes(25, 50), version=1)),
        ("BTC/USDT", "1m", make_bars(_minutes(-20, 40, YEAR_2024_US))),
        ("AAPL", "1m", make_bars(_minutes(70, 10), version=2))]), {}),
    # ... and the compaction of both series that the call triggers (one more commit).
    "write_many_compacting": (_deltas, lambda s: s.write_many([
        ("BTC/USDT", "1m", make_bars(_minutes(0, 5))),
        ("AAPL", "1m", make_bars(_minutes(30, 30), version=9))]),
        {"compact_threshold": 4, "background_compaction": False}),
}


# Scenarios whose only new data is an inline delta: no file is written at all.
INLINE_ONLY = {"upsert_delta"}


def _inline_rows(root: Path) -> tuple[list[str], list[str]]:
    """(manifest paths of inline deltas, paths whose pack or BLOB is in the catalog), sorted.

    A pack no manifest row uses shows up in the second list as ``pack:<id>``.
    """
    con = sqlite3.connect(root / "catalog.sqlite")
    try:
        listed = sorted(r[0] for r in con.execute("SELECT path FROM segments WHERE path LIKE '%.inline'"))
        blobs = sorted([r[0] for r in con.execute(
            "SELECT g.path FROM segments g JOIN packs p ON p.id = g.pack UNION ALL SELECT path FROM deltas")]
            + [f"pack:{r[0]}" for r in con.execute(
                "SELECT id FROM packs WHERE id NOT IN (SELECT pack FROM segments WHERE pack IS NOT NULL)")])
    finally:
        con.close()
    return listed, blobs


def _state(store: BarStore) -> dict[str, list[tuple[object, ...]]]:
    return {sym: bars_to_rows(store.read(sym, "1m")) for sym in ("AAPL", "BTC/USDT")}


def _run(root: Path, setup: Step, action: Step, options: dict[str, int],
         crash_at: int | None) -> tuple[PowerLossFS, bool, list[str]]:
    """Set up, arm, run the action; return the fs, whether it crashed and the action's steps."""
    fs = PowerLossFS()
    store = LocalStore(root, fs=fs, cache_bytes=0, **options)  # type: ignore[arg-type]
    try:
        setup(store)
        fs.arm(crash_at=crash_at)
        try:
            action(store)
        except SimulatedCrash:
            return fs, True, list(fs.trace)
        return fs, False, list(fs.trace)
    finally:
        with contextlib.suppress(SimulatedCrash):
            store.close()  # after a crash its file-system calls fail: only the handles go


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_power_loss_at_every_step_leaves_old_or_new(tmp_path: Path, name: str) -> None:
    setup, action, options = SCENARIOS[name]
    oracle = MemoryStore()
    setup(oracle)
    old = _state(oracle)
    action(oracle)
    new = _state(oracle)
    assert old != new or name == "compact"

    _, crashed, steps = _run(tmp_path / "dry", setup, action, options, crash_at=None)
    assert not crashed
    file_steps = ("write_new", "fsync_file", "rename", "fsync_dir")
    for kind in ("point:before_commit", "point:after_commit", *(() if name in INLINE_ONLY else file_steps)):
        assert kind in steps, f"{name}: the protocol never did {kind}"
    if name in INLINE_ONLY:  # the delta goes into the catalog with the commit
        assert not set(file_steps) & set(steps), f"{name}: an inline delta wrote a file"
    committed_at = steps.index("point:after_commit")

    # n == len(steps): the operation returned, then the power went.
    for n in range(len(steps) + 1):
        root = tmp_path / f"crash-{n}"
        fs, crashed, _ = _run(root, setup, action, options, crash_at=n if n < len(steps) else None)
        assert crashed == (n < len(steps))
        where = f"before step {n} ({steps[n]})" if n < len(steps) else "after the last step"
        fs.power_loss()
        with LocalStore(root) as store:
            report = store.verify()
            assert report.ok, f"{name}: crash {where}: {report}"
            state = _state(store)
            if n >= committed_at:  # the commit had returned: the new state must survive
                assert state == new, f"{name}: committed write lost by a crash {where}"
            else:
                assert state in (old, new), f"{name}: crash {where} left a mixed state"
            listed = {p for sym in ("AAPL", "BTC/USDT") for p in store.files(sym, "1m")}
            on_disk = {p for p in (root / "bars").rglob("*") if p.is_file()}
            assert on_disk == listed, f"{name}: stray files after a crash {where}: {on_disk - listed}"
        inline, blobs = _inline_rows(root)
        assert inline == blobs, f"{name}: inline deltas and their manifest rows disagree after a crash {where}"
