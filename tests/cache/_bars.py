"""Small builders of canonical bar tables for the cache tests."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from tickvault.model import BAR_SCHEMA

MINUTE = 60_000_000


def recent_start(bars_back: int = 2_000, step: int = MINUTE) -> int:
    """A bar-aligned instant ``bars_back`` bars before now (so reads of it count as recent)."""
    now = time.time_ns() // 1000
    return (now // step) * step - bars_back * step


def bars(start_us: int, n: int, *, step: int = MINUTE, price: float = 100.0, provider: str = "user") -> pa.Table:
    """``n`` consistent OHLCV bars from ``start_us`` every ``step`` µs."""
    ts = start_us + np.arange(n, dtype=np.int64) * step
    close = price + np.arange(n, dtype=np.float64) * 0.01
    cols = [pa.array(ts, pa.int64()).cast(BAR_SCHEMA.field("ts").type), pa.array(close), pa.array(close + 1),
            pa.array(close - 1), pa.array(close + 0.5), pa.array(np.full(n, 1000.0)),
            pa.nulls(n, pa.float64()), pa.nulls(n, pa.int64()),
            pa.array([provider] * n, pa.string()).dictionary_encode().cast(BAR_SCHEMA.field("provider").type)]
    return pa.Table.from_arrays(cols, schema=BAR_SCHEMA)
