"""A deterministic writer workload for ``kill -9`` tests of persistent stores.

Operation ``i`` of a workload seed is a pure function of ``(seed, i)``: an upsert of a
small, overlapping batch (occasionally a large one), a ``delete_range`` or a
``compact()``. :func:`run_writer` (run in a child process) applies operations in order
and appends ``"<i>\\n"`` to an acknowledgement file *after* each one returns. The parent
kills the child at a random instant, replays the acknowledged operations on an
:class:`Oracle` and checks that the store holds exactly that state, or that state plus
the one operation in flight (which may have committed just before the kill): nothing
acknowledged is lost and nothing is half applied.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tickvault.model import BAR_SCHEMA
from tickvault.store.base import BarStore

__all__ = ["SYMBOLS", "Op", "Oracle", "bars_for", "op_for", "read_acks", "run_writer"]

SYMBOLS = ("AAPL", "BTC/USDT")
TIMEFRAME = "1m"
_MINUTE = 60_000_000
_T0 = 1_703_980_800_000_000  # 2023-12-31 00:00 UTC: batches straddle a year boundary


def bars_for(ts_us: np.ndarray, versions: np.ndarray) -> pa.Table:
    """Bars whose prices encode (ts, version), so any mix-up is visible."""
    minute = (ts_us // _MINUTE) % 1000
    close = np.round(100.0 + versions + minute / 100.0, 2)
    n = ts_us.size
    return pa.Table.from_arrays(
        [
            pa.array(ts_us, pa.int64()).cast(BAR_SCHEMA.field("ts").type),
            pa.array(np.round(close - 0.01, 2)), pa.array(np.round(close + 0.02, 2)),
            pa.array(np.round(close - 0.03, 2)), pa.array(close),
            pa.array((versions * 10 + 1).astype(np.float64)),
            pa.nulls(n, pa.float64()), pa.array(versions.astype(np.int64)),
            pa.array(["crash"] * n, pa.string()).dictionary_encode().cast(BAR_SCHEMA.field("provider").type),
        ],
        schema=BAR_SCHEMA,
    )


@dataclass(frozen=True)
class Op:
    """One workload operation."""

    index: int
    kind: str  # "write" | "delete" | "compact"
    symbol: str
    ts_us: np.ndarray
    lo_us: int = 0
    hi_us: int = 0

    def apply(self, store: BarStore) -> None:
        """Run the operation against ``store``."""
        if self.kind == "write":
            versions = np.full(self.ts_us.size, self.index % 1000, dtype=np.int64)
            store.write(self.symbol, TIMEFRAME, bars_for(self.ts_us, versions))
        elif self.kind == "delete":
            store.delete_range(self.symbol, TIMEFRAME, self.lo_us, self.hi_us)
        else:
            store.compact()


def op_for(seed: int, index: int) -> Op:
    """Operation ``index`` of workload ``seed``."""
    rng = random.Random(seed * 1_000_003 + index)
    symbol = rng.choice(SYMBOLS)
    roll = rng.random()
    if roll < 0.04:
        return Op(index, "compact", symbol, np.zeros(0, dtype=np.int64))
    if roll < 0.10:
        lo = _T0 + rng.randrange(0, 3000) * _MINUTE
        return Op(index, "delete", symbol, np.zeros(0, dtype=np.int64), lo, lo + rng.randrange(1, 200) * _MINUTE)
    start = rng.randrange(0, 3000)
    count = rng.randrange(200, 2000) if rng.random() < 0.05 else rng.randrange(1, 40)
    minutes = np.unique(np.array([start + rng.randrange(0, count * 2) for _ in range(count)], dtype=np.int64))
    return Op(index, "write", symbol, _T0 + minutes * _MINUTE)


class Oracle:
    """The expected store state: (symbol, ts) -> version of the last write."""

    def __init__(self) -> None:
        self.state: dict[str, dict[int, int]] = {s: {} for s in SYMBOLS}

    def copy(self) -> Oracle:
        """An independent copy."""
        out = Oracle()
        out.state = {s: dict(v) for s, v in self.state.items()}
        return out

    def apply(self, op: Op) -> None:
        """Apply ``op`` to the expected state."""
        series = self.state[op.symbol]
        if op.kind == "write":
            for t in op.ts_us.tolist():
                series[t] = op.index % 1000
        elif op.kind == "delete":
            for t in [t for t in series if op.lo_us <= t < op.hi_us]:
                del series[t]

    def table(self, symbol: str) -> pa.Table:
        """The expected bars of ``symbol``."""
        items = sorted(self.state[symbol].items())
        ts = np.array([t for t, _ in items], dtype=np.int64)
        versions = np.array([v for _, v in items], dtype=np.int64)
        return bars_for(ts, versions)


def read_acks(path: str) -> list[int]:
    """Acknowledged operation indexes (only complete lines count)."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    return [int(line) for line in text.split("\n")[:-1] if line]


def run_writer(factory: Callable[[], BarStore], seed: int, first: int, ack_path: str) -> None:
    """Apply operations ``first, first + 1, ...`` forever, acknowledging each one.

    Meant to run in a child process that the test kills with SIGKILL.
    """
    store = factory()
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    index = first
    while True:
        op_for(seed, index).apply(store)
        os.write(fd, f"{index}\n".encode("ascii"))  # one write(2): a kill cannot split it
        index += 1
