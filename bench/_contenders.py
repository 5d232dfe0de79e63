"""One adapter per library under test: tickvault's embedded store and its peers.

Why this module exists: each workload drives every library through the same small set of
calls (create, prepare, ingest, finish, read, latest), so the workloads never special-case a
library and a new peer is one more class here.

Fairness rules the adapters follow:

- ``prepare`` runs *outside* the timed region and only changes the input's shape to what the
  library takes natively (pandas for ArcticDB, one table with a ``symbol`` column for DuckDB).
  Every library gets the same bars.
- Ingest ends durable: tickvault acknowledges a write once it is fsync'd; ArcticDB's LMDB
  backend commits (synced) per ``write_batch``; DuckDB commits each insert (WAL) and
  ``finish`` checkpoints; Parquet files are fsync'd, renamed into place and the folder fsync'd.
- Reads return the same shape: an Arrow table sorted by ``ts``, or a pandas frame indexed by
  ``ts``. Libraries that speak Arrow convert to pandas with the same helper, except
  tickvault, which uses its product's conversion (``tickvault.engine``'s ``to_format``, what
  ``Vault.bars`` returns; it builds the same frame without pyarrow's thread pool).
"""

from __future__ import annotations

import gc
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickvault.engine._frames import to_format
from tickvault.model import BAR_SCHEMA

__all__ = ["CONTENDERS", "NOCACHE", "Contender", "TickvaultLocal", "arrow_to_pandas", "available", "lossless"]

TF = "1m"
NOCACHE = "tickvault:nocache"
_COLUMNS = BAR_SCHEMA.names
Batch = list[tuple[str, pa.Table]]


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """The pandas shape every read returns: one frame indexed by ``ts``."""
    return table.to_pandas().set_index("ts")


class Contender(ABC):
    """A library under test, bound to one store folder at a time."""

    name: str = ""
    package: str = ""

    def __init__(self) -> None:
        self.root = Path()

    @abstractmethod
    def create(self, root: Path) -> None:
        """Create an empty store in ``root`` (which does not exist yet) and open it."""

    def prepare(self, batch: Batch) -> Any:
        """Reshape ``batch`` to the library's native input (untimed)."""
        return batch

    @abstractmethod
    def ingest(self, payload: Any) -> None:
        """Store one prepared batch durably (timed)."""

    def finish(self) -> None:  # noqa: B027 - a deliberate no-op default: most libraries need nothing
        """Whatever ends a bulk load (timed with the ingest)."""

    @abstractmethod
    def open(self) -> None:
        """Open the existing store in ``self.root``."""

    @abstractmethod
    def close(self) -> None:
        """Release every handle (so the page cache can be evicted)."""

    @abstractmethod
    def read_arrow(self, symbol: str) -> pa.Table:
        """All bars of ``symbol`` as Arrow, sorted by ts."""

    def read_pandas(self, symbol: str) -> pd.DataFrame:
        """All bars of ``symbol`` as pandas indexed by ts."""
        return arrow_to_pandas(self.read_arrow(symbol))

    @abstractmethod
    def latest_arrow(self, symbol: str, n: int) -> pa.Table:
        """The last ``n`` bars as Arrow, ascending."""

    def latest_pandas(self, symbol: str, n: int) -> pd.DataFrame:
        """The last ``n`` bars as pandas indexed by ts, ascending."""
        return arrow_to_pandas(self.latest_arrow(symbol, n))


class TickvaultLocal(Contender):
    """tickvault's embedded store (:class:`tickvault.store.local.LocalStore`).

    ``cache_bytes=0`` turns off the store's in-process cache of decoded files: warm reads of
    that variant show what the files and the decoder cost without it.
    """

    name = "tickvault"
    package = "tickvault"

    def __init__(self, cache_bytes: int | None = None) -> None:
        super().__init__()
        self.store: Any = None
        self.cache_bytes = cache_bytes
        if cache_bytes == 0:
            self.name = NOCACHE

    def create(self, root: Path) -> None:
        self.root = root
        self.open()

    def open(self) -> None:
        from tickvault.store.local import LocalStore

        if self.cache_bytes is None:
            self.store = LocalStore(self.root)
        else:
            self.store = LocalStore(self.root, cache_bytes=self.cache_bytes)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def ingest(self, payload: Batch) -> None:
        # One multi-series write per batch (one commit), as ArcticDB gets write_batch.
        self.store.write_many([(symbol, TF, table) for symbol, table in payload])

    def read_arrow(self, symbol: str) -> pa.Table:
        return self.store.read(symbol, TF)  # type: ignore[no-any-return]

    def read_pandas(self, symbol: str) -> pd.DataFrame:
        # The product's own conversion (what Vault.bars returns): the same frame as
        # arrow_to_pandas, value for value (tests/store/test_local_read_frames.py).
        return to_format(self.store.read(symbol, TF), "pandas")  # type: ignore[no-any-return]

    def latest_arrow(self, symbol: str, n: int) -> pa.Table:
        return self.store.latest(symbol, TF, n)  # type: ignore[no-any-return]

    def latest_pandas(self, symbol: str, n: int) -> pd.DataFrame:
        return to_format(self.store.latest(symbol, TF, n), "pandas")  # type: ignore[no-any-return]


class ArcticLmdb(Contender):
    """ArcticDB on its LMDB backend, loaded with ``write_batch``."""

    name = "arcticdb"
    package = "arcticdb"

    def __init__(self) -> None:
        super().__init__()
        self.ac: Any = None
        self.lib: Any = None

    def create(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.open()

    def open(self) -> None:
        import arcticdb

        self.ac = arcticdb.Arctic(f"lmdb://{self.root}")
        self.lib = self.ac.get_library("bench", create_if_missing=True)

    def close(self) -> None:
        # ArcticDB has no close(); the LMDB environment closes when the last reference goes.
        self.lib = self.ac = None
        gc.collect()

    def prepare(self, batch: Batch) -> Any:
        from arcticdb import WritePayload

        out = []
        for symbol, table in batch:
            df = table.to_pandas()
            df["provider"] = df["provider"].astype(str)  # ArcticDB has no categorical columns
            out.append(WritePayload(symbol, df.set_index("ts")))
        return out

    def ingest(self, payload: Any) -> None:
        results = self.lib.write_batch(payload)
        failed = [r for r in results if not hasattr(r, "version")]
        if failed:
            raise RuntimeError(f"arcticdb write_batch failed: {failed[:3]}")

    def read_pandas(self, symbol: str) -> pd.DataFrame:
        return self.lib.read(symbol).data  # type: ignore[no-any-return]

    def read_arrow(self, symbol: str) -> pa.Table:
        return self.lib.read(symbol, output_format="PYARROW").data  # type: ignore[no-any-return]

    def latest_pandas(self, symbol: str, n: int) -> pd.DataFrame:
        return self.lib.tail(symbol, n).data  # type: ignore[no-any-return]

    def latest_arrow(self, symbol: str, n: int) -> pa.Table:
        return self.lib.tail(symbol, n, output_format="PYARROW").data  # type: ignore[no-any-return]


_SELECT = ", ".join(_COLUMNS)


class DuckDb(Contender):
    """DuckDB: one table, batches inserted ordered by (symbol, ts), checkpointed at the end.

    No primary key: an ART index over 49 M (symbol, ts) keys does not fit the memory this
    machine can spare, so DuckDB stores what it is given without upsert semantics; its reads
    rely on zone maps over the (symbol, ts) ordering.
    """

    name = "duckdb"
    package = "duckdb"

    def __init__(self) -> None:
        super().__init__()
        self.con: Any = None

    def create(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.open()
        self.con.execute(
            "CREATE TABLE bars (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, open DOUBLE, high DOUBLE, "
            "low DOUBLE, close DOUBLE, volume DOUBLE, vwap DOUBLE, trade_count BIGINT, provider VARCHAR)"
        )

    def open(self) -> None:
        import duckdb

        self.con = duckdb.connect(str(self.root / "bars.duckdb"))
        self.con.execute("SET TimeZone = 'UTC'")
        # A bound on DuckDB's buffer pool (default: 80 % of RAM) on a machine shared with others.
        self.con.execute("SET memory_limit = '4GB'")

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    def prepare(self, batch: Batch) -> Any:
        tables = [t.add_column(0, "symbol", pa.array([s] * t.num_rows, pa.string())) for s, t in batch]
        return pa.concat_tables(tables)

    def ingest(self, payload: Any) -> None:
        self.con.register("batch", payload)
        try:
            self.con.execute("INSERT INTO bars SELECT * FROM batch ORDER BY symbol, ts")
        finally:
            self.con.unregister("batch")

    def finish(self) -> None:
        self.con.execute("CHECKPOINT")

    def read_arrow(self, symbol: str) -> pa.Table:
        q = f"SELECT {_SELECT} FROM bars WHERE symbol = ? ORDER BY ts"
        return self.con.sql(q, params=[symbol]).to_arrow_table()  # type: ignore[no-any-return]

    def read_pandas(self, symbol: str) -> pd.DataFrame:
        q = f"SELECT {_SELECT} FROM bars WHERE symbol = ? ORDER BY ts"
        return self.con.sql(q, params=[symbol]).df().set_index("ts")  # type: ignore[no-any-return]

    def latest_arrow(self, symbol: str, n: int) -> pa.Table:
        q = f"SELECT * FROM (SELECT {_SELECT} FROM bars WHERE symbol = ? ORDER BY ts DESC LIMIT ?) ORDER BY ts"
        return self.con.sql(q, params=[symbol, n]).to_arrow_table()  # type: ignore[no-any-return]

    def latest_pandas(self, symbol: str, n: int) -> pd.DataFrame:
        q = f"SELECT * FROM (SELECT {_SELECT} FROM bars WHERE symbol = ? ORDER BY ts DESC LIMIT ?) ORDER BY ts"
        return self.con.sql(q, params=[symbol, n]).df().set_index("ts")  # type: ignore[no-any-return]


class ParquetFiles(Contender):
    """Plain pyarrow Parquet: one zstd file per symbol, default row groups, fsync'd."""

    name = "parquet"
    package = "pyarrow"

    def create(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def ingest(self, payload: Batch) -> None:
        for symbol, table in payload:
            final = self.root / f"{symbol}.parquet"
            tmp = final.with_suffix(".tmp")
            pq.write_table(table, tmp, compression="zstd")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(final)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def read_arrow(self, symbol: str) -> pa.Table:
        return pq.read_table(self.root / f"{symbol}.parquet")

    def latest_arrow(self, symbol: str, n: int) -> pa.Table:
        # Read only the trailing row groups that hold the last n rows.
        f = pq.ParquetFile(self.root / f"{symbol}.parquet")
        groups: list[int] = []
        rows = 0
        for g in range(f.num_row_groups - 1, -1, -1):
            groups.insert(0, g)
            rows += f.metadata.row_group(g).num_rows
            if rows >= n:
                break
        t = f.read_row_groups(groups)
        return t.slice(max(0, t.num_rows - n))


CONTENDERS: dict[str, type[Contender]] = {
    "tickvault": TickvaultLocal,
    "arcticdb": ArcticLmdb,
    "duckdb": DuckDb,
    "parquet": ParquetFiles,
}


def available(name: str) -> str | None:
    """``None`` when ``name`` can run here, else why it cannot."""
    module = {"tickvault": "tickvault.store.local", "arcticdb": "arcticdb", "duckdb": "duckdb",
              "parquet": "pyarrow.parquet"}[name]
    try:
        mod = __import__(module, fromlist=["_"])
    except ImportError as exc:
        return f"not installed ({exc})"
    if name == "tickvault" and not hasattr(mod, "LocalStore"):
        return "tickvault.store.local.LocalStore does not exist yet"
    return None


def _canonical(table: pa.Table) -> pa.Table:
    """``table`` reduced to comparable columns: ts as µs integers, provider as plain strings."""
    cols = []
    for name in _COLUMNS:
        col = table.column(name)
        if name == "ts":
            if col.type.tz is None:
                col = pc.assume_timezone(col, "UTC")  # type: ignore[assignment]
            col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        elif name == "provider":
            col = col.cast(pa.string())
        else:
            col = col.cast(BAR_SCHEMA.field(name).type)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=_COLUMNS)


def lossless(stored: pa.Table | pd.DataFrame, original: pa.Table) -> str | None:
    """``None`` when ``stored`` holds exactly ``original``'s values, else the first difference."""
    if isinstance(stored, pd.DataFrame):
        stored = pa.Table.from_pandas(stored.reset_index(), preserve_index=False)
    if stored.num_rows != original.num_rows:
        return f"{stored.num_rows} rows stored, {original.num_rows} written"
    a, b = _canonical(stored), _canonical(original)
    for name in _COLUMNS:
        if not a.column(name).equals(b.column(name)):
            return f"column {name} differs"
    return None
