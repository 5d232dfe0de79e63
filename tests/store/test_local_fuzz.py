"""Property-based tests of LocalStore: overlapping re-ingest against a dict, and a model-based
state machine (write / overwrite / delete / read / latest / compact / restart) against
MemoryStore. CI runs 500 fuzz examples and 30 machines; ``-m nightly`` runs 10,000 and 1,000.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tickvault.store.local import LocalStore
from tickvault.store.memory import MemoryStore
from tickvault.testing.conformance import assert_bars_equal, receipt_counts
from tickvault.testing.crash import bars_for

MINUTE_US = 60_000_000
T0_US = 1_703_980_800_000_000 - 40 * MINUTE_US  # batches straddle 2024-01-01 (two partitions)


# A batch is a list of (minute, version) rows: duplicates inside a batch are allowed and
# the last one wins; the same minute in another batch is an overwrite.
batch = st.lists(st.tuples(st.integers(0, 90), st.integers(0, 3)), min_size=1, max_size=25)


def _table(rows: list[tuple[int, int]]) -> pa.Table:
    ts = np.array([T0_US + m * MINUTE_US for m, _ in rows], dtype=np.int64)
    return bars_for(ts, np.array([v for _, v in rows], dtype=np.int64))


def _same(a: pa.Table, b: pa.Table) -> bool:
    # bars_for tables have no NaN and one provider, so Arrow equality is exact here.
    return a.schema.equals(b.schema) and a.equals(b)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    # One store for every example (a fresh symbol each): opening a store per example
    # would dominate the run time. Compaction after 2 files exercises the merge paths.
    store = LocalStore(tmp_path_factory.mktemp("fuzz"), durable=False, compact_threshold=2)
    yield store
    store.close()


_symbols = itertools.count()


batches_strategy = st.lists(batch, min_size=1, max_size=4)


@settings(max_examples=500, deadline=None)
@given(batches=batches_strategy)
def test_overlapping_reingest_matches_a_dict(shared_store: LocalStore, batches: list[list[tuple[int, int]]]) -> None:
    _reingest(shared_store, batches)


@pytest.mark.nightly
@settings(max_examples=10_000, deadline=None)
@given(batches=batches_strategy)
def test_overlapping_reingest_nightly(shared_store: LocalStore, batches: list[list[tuple[int, int]]]) -> None:
    _reingest(shared_store, batches)


def _reingest(shared_store: LocalStore, batches: list[list[tuple[int, int]]]) -> None:
    symbol = f"FZ{next(_symbols)}"
    oracle: dict[int, int] = {}
    for rows in batches:
        last = dict(rows)  # in-batch duplicates: last one wins
        new = sum(1 for m in last if m not in oracle)
        changed = sum(1 for m, v in last.items() if m in oracle and oracle[m] != v)
        receipt = shared_store.write(symbol, "1m", _table(rows))
        assert (receipt.rows_new, receipt.rows_changed, receipt.rows_unchanged) == (new, changed,
                                                                                    len(last) - new - changed)
        assert (receipt.bytes_written > 0) == (new + changed > 0)
        oracle.update(last)
        assert _same(shared_store.read(symbol, "1m"), _table(sorted(oracle.items())))
    lo, hi = T0_US + 20 * MINUTE_US, T0_US + 60 * MINUTE_US
    assert _same(shared_store.read(symbol, "1m", lo, hi),
                 _table(sorted((m, v) for m, v in oracle.items() if lo <= T0_US + m * MINUTE_US < hi)))
    assert shared_store.latest(symbol, "1m", 1_000).num_rows == len(oracle)


class LocalVersusMemory(RuleBasedStateMachine):
    """LocalStore and MemoryStore receive the same operations and must always agree."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="tv-state-"))
        self.local = LocalStore(self.root, durable=False, compact_threshold=3, cache_bytes=1 << 20)
        self.memory = MemoryStore()

    @rule(symbol=st.sampled_from(["AAPL", "BTC/USDT"]), rows=batch)
    def write(self, symbol: str, rows: list[tuple[int, int]]) -> None:
        table = _table(rows)
        assert receipt_counts(self.local.write(symbol, "1m", table)) == receipt_counts(
            self.memory.write(symbol, "1m", table))

    @rule(items=st.lists(st.tuples(st.sampled_from(["AAPL", "BTC/USDT"]), batch), max_size=4))
    def write_many(self, items: list[tuple[str, list[tuple[int, int]]]]) -> None:
        calls = [(symbol, "1m", _table(rows)) for symbol, rows in items]
        got = [receipt_counts(r) for r in self.local.write_many(calls)]
        assert got == [receipt_counts(self.memory.write(*call)) for call in calls]

    @rule(symbol=st.sampled_from(["AAPL", "BTC/USDT"]), start=st.integers(0, 90), version=st.integers(0, 3))
    def overwrite_block(self, symbol: str, start: int, version: int) -> None:
        self.write(symbol, [(m, version) for m in range(start, start + 15)])

    @rule(symbol=st.sampled_from(["AAPL", "BTC/USDT"]), a=st.integers(-5, 95), width=st.integers(0, 40))
    def delete(self, symbol: str, a: int, width: int) -> None:
        lo, hi = T0_US + a * MINUTE_US, T0_US + (a + width) * MINUTE_US
        assert self.local.delete_range(symbol, "1m", lo, hi) == self.memory.delete_range(symbol, "1m", lo, hi)

    @rule()
    def compact(self) -> None:
        self.local.compact()

    @rule()
    def restart(self) -> None:
        self.local.close()
        self.local = LocalStore(self.root, durable=False, compact_threshold=3, cache_bytes=1 << 20)

    @rule(symbol=st.sampled_from(["AAPL", "BTC/USDT"]), a=st.integers(-5, 95), width=st.integers(0, 100))
    def read_range(self, symbol: str, a: int, width: int) -> None:
        lo, hi = T0_US + a * MINUTE_US, T0_US + (a + width) * MINUTE_US
        assert_bars_equal(self.local.read(symbol, "1m", lo, hi), self.memory.read(symbol, "1m", lo, hi))

    @rule(symbol=st.sampled_from(["AAPL", "BTC/USDT"]), n=st.integers(0, 100))
    def latest(self, symbol: str, n: int) -> None:
        assert_bars_equal(self.local.latest(symbol, "1m", n), self.memory.latest(symbol, "1m", n))

    @invariant()
    def same_everything(self) -> None:
        for symbol in ("AAPL", "BTC/USDT"):
            assert _same(self.local.read(symbol, "1m"), self.memory.read(symbol, "1m"))
        assert [(s.symbol, s.rows, s.first_us, s.last_us) for s in self.local.series()] == [
            (s.symbol, s.rows, s.first_us, s.last_us) for s in self.memory.series()]

    def teardown(self) -> None:
        self.local.close()
        shutil.rmtree(self.root, ignore_errors=True)


TestLocalVersusMemory = LocalVersusMemory.TestCase
TestLocalVersusMemory.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)


class TestLocalVersusMemoryNightly(LocalVersusMemory.TestCase):  # type: ignore[name-defined,misc]
    """The same machine, a thousand runs (``-m nightly``)."""

    pytestmark = pytest.mark.nightly
    settings = settings(max_examples=1_000, stateful_step_count=30, deadline=None)
