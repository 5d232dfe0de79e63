"""Not a test: a small measurement of LocalStore for docs/store.md (the real bench lives in bench/).

Run ``.venv/bin/python tests/store/measure_store.py [--arctic] [--monthly]``. Prints the
best and median wall time of a few repeats for: a 98K-row one-minute symbol-year (write,
identical rewrite, cold and cached read, read into pandas, ``latest``), one-bar durable
appends, and a single 5M-row write. ``--arctic`` adds ArcticDB (LMDB) on the same data for
a side-by-side on the same (shared, noisy) machine; ``--monthly`` measures monthly instead
of yearly partitions for minute bars.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from tickvault.model import BAR_SCHEMA
from tickvault.store.local import LocalStore, _layout

MINUTE_US = 60_000_000
JAN_2024_US = 1_704_067_200_000_000


def session_minutes(n: int, start_us: int) -> np.ndarray:
    """``n`` equity-like minute stamps: 390 per weekday from 14:30 UTC (98K is about a year)."""
    days = np.arange(n // 390 * 2 + 14)
    stamps = (start_us // 86_400_000_000 + days).astype("datetime64[D]")
    weekdays = stamps[np.is_busday(stamps)].astype("datetime64[us]").astype(np.int64)
    opens = weekdays + 870 * MINUTE_US  # 14:30 UTC
    grid = (opens[:, None] + np.arange(390, dtype=np.int64)[None, :] * MINUTE_US).ravel()
    return grid[:n]


def minute_bars(n: int, seed: int = 0, start_us: int = JAN_2024_US) -> pa.Table:
    """Realistic one-minute bars on equity sessions: cent prices on a random walk, share volumes."""
    rng = np.random.default_rng(seed)
    close = np.round(150 * np.exp(np.cumsum(rng.normal(0, 0.0004, n))), 2)
    open_ = np.round(np.concatenate(([150.0], close[:-1])), 2)
    spread = np.abs(rng.normal(0, 0.04, n))
    cols = {
        "ts": pa.array(session_minutes(n, start_us)).cast(BAR_SCHEMA.field("ts").type),
        "open": open_, "high": np.round(np.maximum(open_, close) + spread, 2),
        "low": np.round(np.minimum(open_, close) - spread, 2), "close": close,
        "volume": np.round(rng.lognormal(8, 1, n)),
        "vwap": pa.nulls(n, pa.float64()), "trade_count": pa.nulls(n, pa.int64()),
        "provider": pa.array(["bench"] * n).dictionary_encode().cast(BAR_SCHEMA.field("provider").type),
    }
    return pa.Table.from_pydict(cols, schema=BAR_SCHEMA)


def timed(fn: Callable[[], object], repeat: int = 7) -> str:
    """``best / median`` milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return f"{min(times) * 1e3:8.2f} / {statistics.median(times) * 1e3:8.2f} ms"


def main() -> None:
    if "--monthly" in sys.argv:
        _layout._period_unit = lambda tf: "M"  # type: ignore[assignment]
    year = minute_bars(98_000)
    tmp = Path(tempfile.mkdtemp(prefix="tv-measure-"))
    print(f"one symbol-year of one-minute bars ({year.num_rows} rows, 390 a weekday)")
    store = LocalStore(tmp / "main", cache_bytes=0)
    n = [0]

    def new_series() -> None:
        n[0] += 1
        store.write(f"S{n[0]}", "1m", year)

    print("  write a new series (durable)", timed(new_series, 7))
    receipt = store.write("AAPL", "1m", year)
    print(f"  bytes per bar               {receipt.bytes_written / year.num_rows:8.2f}"
          f"  ({len(store.files('AAPL', '1m'))} file(s))")
    print("  identical rewrite (0 bytes) ", timed(lambda: store.write("AAPL", "1m", year), 5))
    print("  read, decode each time      ", timed(lambda: store.read("AAPL", "1m"), 15))
    print("  read -> pandas              ", timed(lambda: store.read("AAPL", "1m").to_pandas(), 15))
    print("  latest(100)                 ", timed(lambda: store.latest("AAPL", "1m", 100), 15))
    cached = LocalStore(tmp / "main")
    cached.read("AAPL", "1m")
    print("  read, decoded-file cache    ", timed(lambda: cached.read("AAPL", "1m"), 15))
    day = (JAN_2024_US + 30 * 86_400_000_000, JAN_2024_US + 31 * 86_400_000_000)
    print("  read one day, cache         ", timed(lambda: cached.read("AAPL", "1m", *day), 15))
    last = int(year.column("ts")[-1].value)
    one = year.slice(0, 1)
    k = [0]

    def append() -> None:
        k[0] += 1
        ts = pa.array([last + k[0] * MINUTE_US], pa.int64()).cast(BAR_SCHEMA.field("ts").type)
        store.write("AAPL", "1m", one.set_column(0, "ts", ts))

    print("  append 1 bar (durable)      ", timed(append, 40))
    print(f"  files after 40 appends      {len(store.files('AAPL', '1m')):8d}")
    print("  read after appends          ", timed(lambda: store.read("AAPL", "1m"), 15))
    big = minute_bars(5_000_000, seed=1, start_us=946_684_800_000_000)  # 2000..2051: 51 yearly files
    t0 = time.perf_counter()
    receipt = store.write("BIG", "1m", big)
    dt = time.perf_counter() - t0
    print(f"5M-row write: {dt:.2f} s = {big.num_rows / dt / 1e6:.2f} M rows/s, "
          f"{receipt.bytes_written / big.num_rows:.2f} bytes/bar, {len(store.files('BIG', '1m'))} files")
    print("5M-row read                 ", timed(lambda: store.read("BIG", "1m"), 3))
    store.close()
    cached.close()
    if "--arctic" in sys.argv:
        import arcticdb

        lib = arcticdb.Arctic(f"lmdb://{tmp / 'arctic'}").get_library("bars", create_if_missing=True)
        df = year.to_pandas().set_index("ts")
        print("ArcticDB (LMDB) on the same 98K bars")
        print("  write                       ", timed(lambda: lib.write("AAPL", df), 5))
        print("  read -> pandas              ", timed(lambda: lib.read("AAPL").data, 15))
        bdf = big.to_pandas().set_index("ts")
        t0 = time.perf_counter()
        lib.write("BIG", bdf)
        dt = time.perf_counter() - t0
        print(f"  5M-row write: {dt:.2f} s = {big.num_rows / dt / 1e6:.2f} M rows/s")


if __name__ == "__main__":
    main()
