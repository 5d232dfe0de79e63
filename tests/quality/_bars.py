"""Small builders of synthetic bar tables for the quality tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.model import BAR_SCHEMA

DAY_US = 86_400_000_000


def us(text: str) -> int:
    """Epoch µs of a UTC time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def bars(ts_us: Sequence[int | None], o: Sequence[float], h: Sequence[float] | None = None,
         lo: Sequence[float] | None = None, c: Sequence[float] | None = None,
         v: Sequence[float] | None = None) -> pa.Table:
    """A BAR_SCHEMA table (``ts`` may hold None); missing high/low/close default to open."""
    n = len(ts_us)
    h = o if h is None else h
    lo = o if lo is None else lo
    c = o if c is None else c
    v = [1000.0] * n if v is None else v
    ts = pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    schema = BAR_SCHEMA if ts.null_count == 0 else pa.schema(
        [f.with_nullable(True) if f.name == "ts" else f for f in BAR_SCHEMA])
    return pa.Table.from_arrays(
        [ts, *(pa.array(list(x), pa.float64()) for x in (o, h, lo, c, v)), pa.nulls(n, pa.float64()),
         pa.nulls(n, pa.int64()), pa.array(["test"] * n, pa.string()).dictionary_encode()],
        schema=schema,
    )


def random_walk(ts_us: Sequence[int] | np.ndarray, *, seed: int, start: float = 100.0, vol: float = 0.01) -> pa.Table:
    """Clean, consistent bars following a lognormal random walk at the given instants."""
    rng = np.random.default_rng(seed)
    n = len(ts_us)
    close = start * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    opn = np.concatenate(([start], close[:-1])) * np.exp(rng.normal(0.0, vol / 4, n))
    top = np.maximum(opn, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, n)))
    bottom = np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, n)))
    volume = rng.integers(100, 10_000, n).astype(float)
    return bars(list(map(int, ts_us)), opn.tolist(), top.tolist(), bottom.tolist(), close.tolist(), volume.tolist())


def daily(start: str, n: int) -> list[int]:
    """``n`` consecutive UTC-midnight days (no calendar)."""
    first = us(start)
    return [first + k * DAY_US for k in range(n)]
