"""The benchmark data set: sizes, symbols, and where the bars come from.

Why this module exists: every library must get *the same* bars, and the full size (500
symbols x one year of 1-minute bars, about 49 M rows) is too big to hold once per library
in memory on a shared machine. So data is produced per batch of symbols, spilled once to an
LZ4 Arrow IPC file in the work folder, and read back for later repetitions; each batch is
handed to every library in turn, then dropped.

The bars come from tickvault's ``sim`` provider (:func:`tickvault.providers.sim.simulate_bars`,
deterministic per symbol and seed) on the XNYS calendar. When that provider is not
importable (it is optional for the harness's own tests) a local generator with the same
schema, calendar and price conventions stands in, and the run records which source it used.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.model import BAR_SCHEMA

__all__ = ["SIZES", "DataSet", "Size"]

TIMEFRAME = "1m"


@dataclass(frozen=True)
class Size:
    """One benchmark size: how much data and how many repetitions.

    Parameters
    ----------
    name
        ``tiny`` (smoke test), ``quick`` (minutes) or ``full`` (the issue's 49 M rows).
    symbols
        Number of symbols.
    start, end
        Half-open date range of the bars (UTC dates).
    batch_symbols
        Symbols generated and handed to the libraries together (bounds memory).
    ingest_reps
        Full ingests per library (each into a fresh folder).
    read_symbols, read_reps
        Symbols read by the read workloads and warm reads per symbol.
    cold_reps
        Cold reads (page cache evicted, fresh handle) per library.
    """

    name: str
    symbols: int
    start: str
    end: str
    batch_symbols: int
    ingest_reps: int
    read_symbols: int
    read_reps: int
    cold_reps: int


SIZES: dict[str, Size] = {
    "tiny": Size("tiny", 2, "2023-01-03", "2023-01-10", 2, 1, 1, 1, 1),
    "quick": Size("quick", 20, "2023-01-01", "2024-01-01", 10, 3, 3, 20, 20),
    "full": Size("full", 500, "2023-01-01", "2024-01-01", 25, 3, 5, 20, 20),
}


def _us(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").value // 1000)


@cache
def _xnys_minutes(start: str, end: str) -> np.ndarray:
    """Epoch-µs open instants of every XNYS regular-session minute in ``[start, end)``."""
    import exchange_calendars as xcals

    last = (pd.Timestamp(end) - pd.Timedelta(days=1)).date().isoformat()
    with warnings.catch_warnings():
        # exchange_calendars 4.13 uses pandas APIs that pandas 3.1 deprecates; not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        cal = xcals.get_calendar("XNYS", start=start, end=last)
        sessions = cal.sessions  # the calendar was built for exactly [start, last]
    opens = cal.schedule.loc[sessions, "open"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    closes = cal.schedule.loc[sessions, "close"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    counts = (closes - opens) // 60_000_000
    base = np.repeat(opens, counts)
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.asarray(base + within * 60_000_000)


def fallback_bars(symbol: str, start: str, end: str, seed: int = 0) -> pa.Table:
    """Deterministic 1-minute bars in BAR_SCHEMA on XNYS sessions (stand-in for ``sim``).

    A geometric random walk with prices rounded to cents, integer volumes and trade counts:
    the same kind of values real minute bars have, which is what compression depends on.
    """
    ts = _xnys_minutes(start, end)
    n = ts.size
    rng = np.random.default_rng([zlib.crc32(symbol.encode()), seed])
    start_px = rng.uniform(10, 500)
    steps = rng.normal(0.0, 0.0008, n)
    close = np.round(start_px * np.exp(np.cumsum(steps)), 2)
    open_ = np.round(np.concatenate(([start_px], close[:-1])), 2)
    wiggle = np.abs(rng.normal(0.0, 0.0005, (2, n))) * close
    high = np.round(np.maximum(open_, close) + wiggle[0], 2)
    low = np.round(np.minimum(open_, close) - wiggle[1], 2)
    volume = np.floor(rng.lognormal(7.0, 1.0, n))
    vwap = np.round((open_ + high + low + close) / 4.0, 4)
    trades = np.maximum(1, (volume // 50)).astype(np.int64)
    provider = pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array(["sim"]))
    return pa.Table.from_arrays(
        [pa.array(ts, pa.timestamp("us", tz="UTC")), pa.array(open_), pa.array(high), pa.array(low),
         pa.array(close), pa.array(volume), pa.array(vwap), pa.array(trades), provider],
        schema=BAR_SCHEMA,
    )


def sim_source() -> str:
    """``"tickvault.providers.sim"`` when the sim provider imports, else ``"bench-fallback"``."""
    try:
        from tickvault.providers.sim import simulate_bars  # noqa: F401
    except ImportError:
        return "bench-fallback"
    return "tickvault.providers.sim"


def make_bars(symbol: str, start: str, end: str, source: str, seed: int = 0) -> pa.Table:
    """One symbol's bars from ``source`` (see :func:`sim_source`), in BAR_SCHEMA."""
    if source == "tickvault.providers.sim":
        from tickvault.providers.sim import simulate_bars

        table, _coverage = simulate_bars(symbol, TIMEFRAME, _us(start), _us(end), seed=seed, calendar="XNYS")
        return table.cast(BAR_SCHEMA)
    return fallback_bars(symbol, start, end, seed)


class DataSet:
    """The bars of one size, produced batch by batch and spilled to ``cache_dir``.

    Parameters
    ----------
    size
        The size to produce.
    cache_dir
        Where batches are spilled (LZ4 Arrow IPC) after the first pass.
    source
        ``"tickvault.providers.sim"`` or ``"bench-fallback"``; default: the best available.
    seed
        Simulation seed (same seed, same bars).
    """

    def __init__(self, size: Size, cache_dir: Path, source: str | None = None, seed: int = 0) -> None:
        self.size = size
        self.source = source or sim_source()
        self.seed = seed
        # Keyed by everything that changes the bars, so a reused work folder never serves stale data.
        self.cache_dir = cache_dir / (f"{self.source}-{size.symbols}x{size.batch_symbols}-{size.start}-{size.end}"
                                      f"-seed{seed}")
        self.symbols = [f"SIM{i:03d}" for i in range(size.symbols)]
        self.rows = 0
        self._rows_by_symbol: dict[str, int] = {}

    def batches(self) -> Iterator[list[tuple[str, pa.Table]]]:
        """Yield ``[(symbol, table), ...]`` per batch, generating on the first pass."""
        step = self.size.batch_symbols
        for b, i in enumerate(range(0, len(self.symbols), step)):
            names = self.symbols[i:i + step]
            path = self.cache_dir / f"batch-{b:04d}.arrow"
            if path.exists():
                # OSFile, not memory_map: the tables must own their buffers after the file closes.
                with pa.OSFile(str(path), "rb") as src:
                    whole = pa.ipc.open_file(src).read_all()
                tables = self._split(names, whole, path.with_suffix(".rows"))
            else:
                tables = [(s, make_bars(s, self.size.start, self.size.end, self.source, self.seed)) for s in names]
                self._spill(path, tables)
            for s, t in tables:
                if s not in self._rows_by_symbol:
                    self._rows_by_symbol[s] = t.num_rows
                    self.rows += t.num_rows
            yield tables

    def bars(self, symbol: str) -> pa.Table:
        """One symbol's bars (regenerated: cheap for one symbol, used for lossless checks)."""
        return make_bars(symbol, self.size.start, self.size.end, self.source, self.seed)

    def _spill(self, path: Path, tables: list[tuple[str, pa.Table]]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        opts = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, BAR_SCHEMA, options=opts) as writer:
            for _s, t in tables:
                writer.write_table(t)
        # Remember where each symbol starts (batches are re-split by row counts), then publish.
        path.with_suffix(".rows").write_text(",".join(str(t.num_rows) for _s, t in tables))
        tmp.rename(path)

    @staticmethod
    def _split(names: list[str], whole: pa.Table, rows_file: Path) -> list[tuple[str, pa.Table]]:
        counts = [int(x) for x in rows_file.read_text().split(",")]
        out: list[tuple[str, pa.Table]] = []
        offset = 0
        for s, c in zip(names, counts, strict=True):
            # combine_chunks: each library gets one contiguous table, as on the first pass.
            out.append((s, whole.slice(offset, c).combine_chunks()))
            offset += c
        return out
