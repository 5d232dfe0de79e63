"""Differential: random interleaved writes and reads give identical answers with caches on and off.

A seeded sequence of writes (through the full write path of the cached vault), corporate
actions and reads runs over one store. Every read is asked twice: of a vault with caches
(L1, or L1 + the real Redis) and of a vault without any, over the *same* store, so any
stale cached answer shows up at the first read after the write it missed. Results must be
identical (Arrow equality, adjusted prices included) or fail with the same error.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickvault import Settings
from tickvault.engine import Vault
from tickvault.errors import StorageError, TickvaultError
from tickvault.model import CorporateAction, conform_bars, us_to_ts
from tickvault.store.base import BarStore
from tickvault.store.local import LocalStore
from tickvault.store.memory import MemoryStore

from ._bars import MINUTE, recent_start

OPS = int(os.environ.get("TICKVAULT_DIFF_OPS", "10000"))
SEED = int(os.environ.get("TICKVAULT_DIFF_SEED", "20240605"))
SERIES = [("BTC/USDT", "1m"), ("BTC/USDT", "5m"), ("AAPL", "1m"), ("ETH/USD", "1h")]
SPAN = 1_500  # bars of history each series may get
PG_URL = os.environ.get("TICKVAULT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUICK = 1_500
# (store, cache levels, operations): the default run gives every combination a short run; the
# nightly run (`make nightly`, `-m nightly`) the full 10,000 operations each.
VARIANTS = [
    *(pytest.param(store, levels, QUICK, id=f"{store}-{levels}")
      for store in ("memory", "local", "postgres") for levels in ("l1+redis", "l1")),
    *(pytest.param(store, levels, OPS, id=f"{store}-{levels}-{OPS}", marks=pytest.mark.nightly)
      for store in ("memory", "local", "postgres") for levels in ("l1+redis", "l1")),
]


@contextmanager
def _store(kind: str, path: Path) -> Iterator[BarStore]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "local":
        yield LocalStore(path, durable=False)  # fsync adds nothing to what this test compares
    else:
        import psycopg
        from psycopg import sql

        from tickvault.store.postgres import PostgresStore

        schema = f"tvcache_{uuid.uuid4().hex[:10]}"
        try:
            store = PostgresStore(PG_URL, schema=schema)
        except StorageError as exc:
            pytest.fail(f"PostgreSQL is required (TICKVAULT_TEST_DATABASE_URL, default {PG_URL}): {exc}")
        try:
            yield store
        finally:
            store.close()
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@dataclass
class Pair:
    on: Vault
    off: Vault


@pytest.fixture
def make_pair(tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[Callable[[str, str], Pair]]:
    with ExitStack() as stack:
        def _make(kind: str, caches: str) -> Pair:
            store = stack.enter_context(_store(kind, tmp_path / "vault"))
            on = Vault(store, Settings(home=tmp_path / "vault", cache_window=200, cache_prefix=redis_prefix,
                                       redis_url=redis_url if "redis" in caches else None))
            off = Vault(store, Settings(home=tmp_path / "vault", cache_enabled=False))
            stack.callback(off.close)
            stack.callback(on.close)
            return Pair(on, off)

        yield _make


def _step(tf: str) -> int:
    return {"1m": MINUTE, "5m": 5 * MINUTE, "1h": 60 * MINUTE}[tf]


def _batch(rng: random.Random, tf: str, base: int) -> pa.Table:
    n = rng.randint(1, 30)
    first = rng.randrange(0, SPAN - n)
    ts = base + (first + np.arange(n, dtype=np.int64)) * _step(tf)
    close = np.round(np.array([rng.uniform(50, 150) for _ in range(n)]), 2)
    return pa.table({"ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")), "open": close,
                     "high": close + 1, "low": close - 1, "close": close + 0.5,
                     "volume": np.full(n, float(rng.randint(1, 9) * 100))})


def _plain(table: pa.Table) -> pa.Table:
    # A dictionary column may list categories no row uses (the embedded store keeps its
    # files' dictionaries); the values, not that bookkeeping, are what must agree.
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names).combine_chunks()


def _same(a: pa.Table, b: pa.Table, what: str) -> None:
    assert a.schema == b.schema, what
    assert _plain(a).equals(_plain(b)), what


def _both(on: Callable[[], pa.Table | pd.DataFrame], off: Callable[[], pa.Table | pd.DataFrame], what: str) -> None:
    """Same table (or frame), or the same error (e.g. a dividend too large to back-adjust), from both."""
    outcomes: list[pa.Table | pd.DataFrame | str] = []
    for call in (on, off):
        try:
            outcomes.append(call())
        except TickvaultError as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
    a, b = outcomes
    if isinstance(a, pa.Table) and isinstance(b, pa.Table):
        _same(a, b, what)
    elif isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        # Categories may differ as the dictionaries do (see _plain); values may not.
        pd.testing.assert_frame_equal(a.astype({"provider": str}), b.astype({"provider": str}), obj=what)
    else:
        assert a == b, what


@pytest.mark.parametrize(("kind", "caches", "ops"), VARIANTS)
def test_caches_on_and_off_give_identical_results(make_pair: Callable[[str, str], Pair], kind: str, caches: str,
                                                   ops: int) -> None:
    pair = make_pair(kind, caches)
    rng = random.Random(SEED)
    bases = {s: recent_start(SPAN, _step(s[1])) for s in SERIES}
    history: list[tuple[str, str, pa.Table]] = []
    counts = {"write": 0, "store_write": 0, "latest": 0, "bars": 0, "actions": 0}
    for i in range(ops):
        sym, tf = rng.choice(SERIES)
        base, step = bases[(sym, tf)], _step(tf)
        op = rng.random()
        where = f"seed={SEED} op#{i} {sym} {tf}"
        if op < 0.15:
            if history and rng.random() < 0.1:
                sym, tf, table = rng.choice(history)  # an identical re-write changes nothing
            else:
                table = _batch(rng, tf, base)
                history.append((sym, tf, table))
            provider = rng.choice(["alpha", "beta"])
            if rng.random() < 0.3:
                pair.on.write(sym, tf, table, provider=provider)  # the whole write path
                counts["write"] += 1
            else:
                # Straight to the vault's store layer, which is where invalidation hooks in; it
                # skips the quality rules (their cost), so the run can afford many more writes.
                pair.on._store.write(sym, tf, conform_bars(table, provider=provider))
                counts["store_write"] += 1
        elif op < 0.45:
            n = rng.choice([1, 2, 10, 100, 199, 200, 201, 500, 1_000])
            adjust = rng.choice(["none", "splits", "all"])
            args = (sym, tf, n)
            fmt = "pandas" if i % 3 == 0 else "arrow"  # pandas answers are cached in L1 by generation too
            _both(lambda: pair.on.latest(*args, adjust=adjust, format=fmt),  # noqa: B023 - called at once
                  lambda: pair.off.latest(*args, adjust=adjust, format=fmt),  # noqa: B023
                  f"{where} latest({n}, {adjust}, {fmt})")
            counts["latest"] += 1
        elif op < 0.97:
            adjust = rng.choice(["none", "splits", "all"])
            if rng.random() < 0.05:
                start = end = None
            else:
                open_ended = rng.random() < 0.3  # end defaults to now: start must not be later
                lo = rng.randint(-50, SPAN - 1 if open_ended else SPAN + 50)
                start = us_to_ts(base + lo * step)
                end = None if open_ended else us_to_ts(base + (lo + rng.randint(1, 400)) * step)
            rng_args = (sym, tf, start, end)
            _both(lambda: pair.on.bars(*rng_args, adjust=adjust, fetch="never", format="arrow"),  # noqa: B023
                  lambda: pair.off.bars(*rng_args, adjust=adjust, fetch="never", format="arrow"),  # noqa: B023
                  f"{where} bars({start}, {end}, {adjust})")
            counts["bars"] += 1
        else:
            day = us_to_ts(base + rng.randrange(SPAN) * step).date()
            if rng.random() < 0.5:
                action = CorporateAction.split(day, rng.choice([2.0, 3.0, 0.5]), provider="test")
            else:
                action = CorporateAction.dividend(day, round(rng.uniform(0.1, 2.0), 2), provider="test")
            pair.on.add_actions(sym, [action])
            _same(pair.on.actions(sym, format="arrow"), pair.off.actions(sym, format="arrow"), f"{where} actions")
            counts["actions"] += 1
    assert min(counts.values()) > 0
    stats = pair.on.cache_stats()
    assert stats["reads"]["hits"] > 0  # the caches really served reads
    assert stats["reads"]["bypassed"] == 0
    assert pair.off.cache_stats()["enabled"] is False
