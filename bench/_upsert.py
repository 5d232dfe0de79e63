"""The daily upsert: bars of the latest sessions, part new and part revising stored bars.

Why this module exists: the most common write after the first backfill is the daily
update — today's bars arrive and the vendor has revised some already stored — and every
library must turn it into a durable upsert. Two shapes are measured on consecutive
sessions, over every symbol:

- **daily** (the issue's "195 K rows across 500 symbols, half overlapping"): today's ~390
  bars per symbol, whose morning half an earlier intraday update stored (untimed) and
  which the vendor has since revised, so ~195 bars are changed and ~195 new;
- **2 sessions**: yesterday revised (all ~390 bars change: prices +0.01, volume +1) plus
  today's ~390 new bars, ~390 K rows over 500 symbols.

Setup (untimed): each library is loaded with the same history — every session of the data
set before the upsert sessions (``HISTORY_SESSIONS`` can cut it to the last few; no size
does now: a DuckDB primary key over the full size's 46 M keys peaks at ~2.2 GB of memory).
Timed, per library, for all symbols:

- tickvault: one ``LocalStore.write_many`` of every symbol's ``(symbol, "1m", table)`` (per
  symbol: sort, dedup, diff with the stored span, a delta file; then one catalog commit);
- tickvault:postgres: one ``PostgresStore.write_many`` (not a peer: tickvault's other store);
- tickvault:year-history (only with a cut history): the same LocalStore writes into a store
  holding the whole year, because a write reads the stored span it overlaps (not a peer);
- DuckDB: ``INSERT OR REPLACE INTO bars SELECT * FROM batch`` (primary key (symbol, ts));
- ArcticDB: ``update_batch`` of every symbol's frame (LMDB);
- PostgreSQL: COPY into a temporary staging table, then
  ``INSERT … SELECT … ON CONFLICT (symbol, ts) DO UPDATE``, one transaction.

After the last repetition one symbol is read back from every library and compared with
what was written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench._contenders import lossless
from bench._extra import ExtraOptions, maybe_profile, record
from bench._goals import UPSERT_TARGET as TARGET_NAME
from bench._goals import UPSERT_VARIANT, UPSERT_VARIANT_2DAYS
from bench._harness import Samples, timed
from bench._server_tier import csv_payload, postgres_problem, throwaway_database
from bench._workloads import Context

__all__ = ["run_upsert", "split_days"]

DAY_US = 86_400_000_000
UPSERT_REPS = {"tiny": 1, "quick": 3, "full": 5}
#: Sessions of history before the upsert days (None: all of the data set's).
HISTORY_SESSIONS: dict[str, int | None] = {"tiny": None, "quick": None, "full": None}
_PRICES = ("open", "high", "low", "close", "vwap")


def split_days(table: pa.Table, upsert_days: int, history: int | None) -> tuple[pa.Table, list[pa.Table]]:
    """``(history, [day, ...])``: the last ``upsert_days`` UTC days of ``table`` and what precedes them."""
    day = np.asarray(table.column("ts").cast(pa.int64()).to_numpy()) // DAY_US
    days = np.unique(day)
    cut = days[-upsert_days]
    first = days[max(0, days.size - upsert_days - history)] if history is not None else days[0]
    hist = table.filter(pa.array((day >= first) & (day < cut)))
    return hist, [table.filter(pa.array(day == d)) for d in days[-upsert_days:]]


def _changed(day: pa.Table) -> pa.Table:
    """The vendor's revision of a stored session: every row's prices and volume change."""
    out = day
    for name in _PRICES:
        i = out.schema.get_field_index(name)
        out = out.set_column(i, name, pc.round(pc.add(out.column(name), 0.01), 4))
    i = out.schema.get_field_index("volume")
    return out.set_column(i, "volume", pc.add(out.column("volume"), 1.0))


def _with_symbol(batch: list[tuple[str, pa.Table]]) -> pa.Table:
    return pa.concat_tables([t.add_column(0, "symbol", pa.array([s] * t.num_rows, pa.string()))
                             for s, t in batch])


class _Lib:
    """One library under test: load history, upsert a day, read a symbol back."""

    name = ""

    def load(self, batch: list[tuple[str, pa.Table]]) -> None:
        """Store a batch of history (untimed)."""
        raise NotImplementedError

    def finish_load(self) -> None:
        """After the history load (untimed)."""

    def prepare(self, day: list[tuple[str, pa.Table]]) -> Any:
        """Reshape the update to the library's native input (untimed)."""
        return day

    def upsert(self, payload: Any) -> None:
        """Apply one prepared update durably (timed)."""
        raise NotImplementedError

    def settle(self) -> None:
        """After a timed update (untimed): finish background work so it steals no time from the next library."""

    def read(self, symbol: str) -> pa.Table:
        """Every stored bar of ``symbol``, sorted (for the read-back check)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release handles."""


class _Tickvault(_Lib):
    def __init__(self, root: Path, name: str = "tickvault") -> None:
        from tickvault.store.local import LocalStore

        self.name = name
        self.store: Any = LocalStore(root)

    def load(self, batch: list[tuple[str, pa.Table]]) -> None:
        self.store.write_many([(s, "1m", t) for s, t in batch])

    def upsert(self, payload: list[tuple[str, pa.Table]]) -> None:
        # One multi-series write (one durable commit), as DuckDB gets one transaction.
        self.store.write_many([(s, "1m", t) for s, t in payload])

    def settle(self) -> None:
        # LocalStore compacts crowded partitions on a background thread (after the commit,
        # off the write's latency); wait for it here, untimed, like a checkpoint.
        wait = getattr(self.store, "wait_for_compaction", None)
        if wait is not None:
            wait()

    def read(self, symbol: str) -> pa.Table:
        return self.store.read(symbol, "1m")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.store.close()


class _TickvaultPg(_Tickvault):
    def __init__(self, url: str) -> None:  # same interface, the PostgreSQL store
        from tickvault.store.postgres import PostgresStore

        self.name = "tickvault:postgres"
        self.store = PostgresStore(url, schema="tv_upsert")
        self._url = url

    def settle(self) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True) as conn:
            _checkpoint(conn)


class _DuckDb(_Lib):
    name = "duckdb"

    def __init__(self, root: Path) -> None:
        import duckdb

        root.mkdir(parents=True)
        self.con = duckdb.connect(str(root / "bars.duckdb"))
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET memory_limit = '4GB'")
        self.con.execute(
            "CREATE TABLE bars (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, open DOUBLE, high DOUBLE, "
            "low DOUBLE, close DOUBLE, volume DOUBLE, vwap DOUBLE, trade_count BIGINT, provider VARCHAR, "
            "PRIMARY KEY (symbol, ts))")

    def load(self, batch: list[tuple[str, pa.Table]]) -> None:
        self._insert("INSERT INTO bars SELECT * FROM batch ORDER BY symbol, ts", _with_symbol(batch))

    def finish_load(self) -> None:
        self.con.execute("CHECKPOINT")

    def prepare(self, day: list[tuple[str, pa.Table]]) -> Any:
        return _with_symbol(day)

    def upsert(self, payload: pa.Table) -> None:
        self._insert("INSERT OR REPLACE INTO bars SELECT * FROM batch", payload)

    def _insert(self, statement: str, table: pa.Table) -> None:
        self.con.register("batch", table)
        try:
            self.con.execute(statement)
        finally:
            self.con.unregister("batch")

    def read(self, symbol: str) -> pa.Table:
        cols = "ts, open, high, low, close, volume, vwap, trade_count, provider"
        return self.con.sql(f"SELECT {cols} FROM bars WHERE symbol = ? ORDER BY ts",  # type: ignore[no-any-return]
                            params=[symbol]).to_arrow_table()

    def close(self) -> None:
        self.con.close()


class _Arctic(_Lib):
    name = "arcticdb"

    def __init__(self, root: Path) -> None:
        import arcticdb

        root.mkdir(parents=True)
        self.ac = arcticdb.Arctic(f"lmdb://{root}")
        self.lib = self.ac.get_library("upsert", create_if_missing=True)

    @staticmethod
    def _frame(table: pa.Table) -> Any:
        df = table.to_pandas()
        df["provider"] = df["provider"].astype(str)  # ArcticDB has no categorical columns
        return df.set_index("ts")

    def load(self, batch: list[tuple[str, pa.Table]]) -> None:
        from arcticdb import WritePayload

        self._check(self.lib.write_batch([WritePayload(s, self._frame(t)) for s, t in batch]))

    def prepare(self, day: list[tuple[str, pa.Table]]) -> Any:
        from arcticdb import UpdatePayload

        return [UpdatePayload(s, self._frame(t)) for s, t in day]

    def upsert(self, payload: Any) -> None:
        self._check(self.lib.update_batch(payload))

    @staticmethod
    def _check(results: list[Any]) -> None:
        failed = [r for r in results if not hasattr(r, "version")]
        if failed:
            raise RuntimeError(f"arcticdb batch failed: {failed[:3]}")

    def read(self, symbol: str) -> pa.Table:
        return self.lib.read(symbol, output_format="PYARROW").data  # type: ignore[no-any-return]

    def close(self) -> None:
        self.lib = self.ac = None


class _Postgres(_Lib):
    name = "postgresql"
    _COLS = "open, high, low, close, volume, vwap, trade_count, provider"

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(
            "CREATE TABLE bars (symbol text NOT NULL, ts timestamptz NOT NULL, open float8, high float8, "
            "low float8, close float8, volume float8, vwap float8, trade_count int8, provider text, "
            "PRIMARY KEY (symbol, ts))")

    def load(self, batch: list[tuple[str, pa.Table]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(
                "COPY bars FROM STDIN (FORMAT csv)") as cp:
            for s, t in batch:
                cp.write(csv_payload(s, t))

    def finish_load(self) -> None:
        self.conn.execute("VACUUM ANALYZE bars")

    def prepare(self, day: list[tuple[str, pa.Table]]) -> Any:
        return b"".join(csv_payload(s, t) for s, t in day)

    def upsert(self, payload: bytes) -> None:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in self._COLS.split(", "))
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE staging (LIKE bars) ON COMMIT DROP")
            with cur.copy("COPY staging FROM STDIN (FORMAT csv)") as cp:
                cp.write(payload)
            cur.execute(f"INSERT INTO bars SELECT * FROM staging ON CONFLICT (symbol, ts) DO UPDATE SET {sets}")

    def settle(self) -> None:
        _checkpoint(self.conn)

    def read(self, symbol: str) -> pa.Table:
        from bench._server_tier import copy_to_pandas

        return pa.Table.from_pandas(copy_to_pandas(self.conn, symbol).reset_index(), preserve_index=False)

    def close(self) -> None:
        self.conn.close()


def _checkpoint(conn: Any) -> None:
    """A PostgreSQL ``CHECKPOINT`` (untimed settle): the server writes its dirty pages now.

    Otherwise its spread checkpoint keeps writing for minutes after an upsert of ~400 K
    rows, and the next library's fsyncs queue behind those writes on the same disk (the
    ``os.sync()`` before each timed upsert cannot flush what PostgreSQL has not written
    yet). Needs a superuser or ``pg_checkpoint``; without one it is skipped.
    """
    import psycopg

    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass


def run_upsert(ctx: Context, opts: ExtraOptions) -> None:
    """The daily upsert for every library (see the module docstring)."""
    pg = postgres_problem(opts.database_url)
    if pg is not None:
        opts.skipped["postgresql"] = pg
        ctx.log(f"upsert: PostgreSQL not run: {pg}")
        _run(ctx, opts, None)
        return
    with throwaway_database(opts.database_url) as url:
        _run(ctx, opts, url)


def _run(ctx: Context, opts: ExtraOptions, url: str | None) -> None:
    size = ctx.data.size.name
    reps = UPSERT_REPS.get(size, 3)
    history = HISTORY_SESSIONS.get(size)
    base = ctx.workdir / "upsert"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    libs: list[_Lib] = [_Tickvault(base / "tickvault")]
    if url is not None:
        libs.append(_TickvaultPg(url))
    if opts.wants("duckdb", "duckdb"):
        libs.append(_DuckDb(base / "duckdb"))
    if opts.wants("arcticdb", "arcticdb"):
        libs.append(_Arctic(base / "arcticdb"))
    if url is not None:
        libs.append(_Postgres(url))
    year = _Tickvault(base / "tickvault-year", "tickvault:year-history") if history is not None else None
    # Two sessions per repetition (one per shape) and a spare one for the profile of a missed target.
    days: dict[str, list[pa.Table]] = {}
    stored: dict[str, pa.Table] = {}  # the last stored session of each symbol, as stored
    hist_rows = 0
    for b, batch in enumerate(ctx.data.batches()):
        hist_batch = []
        for s, t in batch:
            hist, ds = split_days(t, 2 * reps + 1, history)
            hist_batch.append((s, hist))
            days[s] = ds
            hist_rows += hist.num_rows
            stored[s] = hist.slice(_last_day_start(hist))
            if year is not None:
                year.load([(s, split_days(t, 2 * reps + 1, None)[0])])
        for k in range(len(libs)):
            libs[(b + k) % len(libs)].load(hist_batch)
    for lib in libs:
        lib.finish_load()
    ctx.log(f"upsert: history loaded ({hist_rows:,} rows); {reps} x 2 sessions of {len(days)} symbols")
    measured = [*libs, *([year] if year is not None else [])]
    samples = {(v, lib.name): Samples() for v in (UPSERT_VARIANT, UPSERT_VARIANT_2DAYS) for lib in measured}
    rows = dict.fromkeys((UPSERT_VARIANT, UPSERT_VARIANT_2DAYS), 0)

    def step(variant: str, payload: list[tuple[str, pa.Table]], k0: int) -> None:
        rows[variant] = sum(t.num_rows for _s, t in payload)
        for k in range(len(measured)):
            lib = measured[(k0 + k) % len(measured)]
            prepared = lib.prepare(payload)
            # Untimed: flush what earlier steps left dirty (the history load above all), so no
            # library's fsyncs wait for another's write-back.
            os.sync()
            _, sec, mem = timed(lambda lib=lib, p=prepared: lib.upsert(p), ctx.probe, full_gc=True)  # type: ignore[misc]
            samples[(variant, lib.name)].add(sec, mem)
            lib.settle()
            del prepared

    for rep in range(reps):
        # The shape: today's session, whose morning an earlier intraday update stored
        # (untimed) and the vendor has since revised: 195 changed + 195 new bars per symbol.
        _store_mornings(measured, days, 2 * rep)
        payload = [(s, _day_update(days[s][2 * rep])) for s in ctx.data.symbols]
        step(UPSERT_VARIANT, payload, rep)
        stored.update(payload)
        # Two sessions: yesterday revised (all ~390 bars changed) + today (~390 new bars).
        payload = [(s, pa.concat_tables([_changed(stored[s]), days[s][2 * rep + 1]])) for s in ctx.data.symbols]
        step(UPSERT_VARIANT_2DAYS, payload, rep + 1)
        stored.update((s, days[s][2 * rep + 1]) for s in ctx.data.symbols)
        ctx.log(f"upsert repetition {rep + 1}/{reps}: {rows[UPSERT_VARIANT]:,} and "
                f"{rows[UPSERT_VARIANT_2DAYS]:,} rows; "
                + ", ".join(f"{n} {x.seconds[-1]:.2f}s" for (_v, n), x in samples.items()))
    sym = ctx.data.symbols[0]
    last = 2 * reps - 1
    expected = pa.concat_tables([_changed(_day_update(days[sym][last - 1])), days[sym][last]])
    checks = _verify(ctx, measured, sym, expected)
    for variant in (UPSERT_VARIANT, UPSERT_VARIANT_2DAYS):
        for lib in measured:
            got = samples[(variant, lib.name)]
            record(ctx, "upsert", variant, lib.name, got, rows=rows[variant],
                   rows_per_s=rows[variant] / float(got.summary()["median_s"]), symbols=len(days),
                   history_rows=hist_rows if lib is not year else None,
                   check=checks[lib.name] or "read back as expected", comparable=checks[lib.name] is None)
    span = f"the last {history} sessions" if history is not None else "every earlier session of the data set"
    ctx.notes["about:upsert"] = (
        f"upsert: {reps} repetitions of each shape over {len(days)} symbols: the issue's daily upsert "
        f"({rows[UPSERT_VARIANT]:,} rows: today's session, its stored morning revised) and two sessions "
        f"({rows[UPSERT_VARIANT_2DAYS]:,} rows: yesterday revised + today), on consecutive sessions; history = "
        f"{span} ({hist_rows:,} rows) in every library"
        + ("; `tickvault:year-history` is the same upserts into a store holding the whole year" if year else ""))
    _store_mornings(libs[:1], days, 2 * reps)
    spare = [(s, _day_update(days[s][2 * reps])) for s in ctx.data.symbols]
    maybe_profile(ctx, opts, TARGET_NAME, "upsert: daily (195 K rows), tickvault LocalStore, one more session",
                  lambda: libs[0].upsert(spare))
    for lib in measured:
        lib.close()
    shutil.rmtree(base, ignore_errors=True)


def _morning(session: pa.Table) -> pa.Table:
    return session.slice(0, session.num_rows // 2)


def _day_update(session: pa.Table) -> pa.Table:
    """The session with its (stored) morning revised and its afternoon new."""
    half = session.num_rows // 2
    return pa.concat_tables([_changed(session.slice(0, half)), session.slice(half)])


def _store_mornings(libs: list[_Lib], days: dict[str, list[pa.Table]], i: int) -> None:
    """Untimed: what an earlier intraday update stored, the first half of session ``i``."""
    mornings = [(s, _morning(ds[i])) for s, ds in days.items()]
    for lib in libs:
        lib.upsert(lib.prepare(mornings))
        lib.settle()


def _last_day_start(table: pa.Table) -> int:
    day = np.asarray(table.column("ts").cast(pa.int64()).to_numpy()) // DAY_US
    return int(np.searchsorted(day, day[-1]))


def _verify(ctx: Context, libs: list[_Lib], sym: str, want: pa.Table) -> dict[str, str | None]:
    """Each library's last two stored sessions of ``sym`` equal ``want`` (what was upserted)."""
    out: dict[str, str | None] = {}
    for lib in libs:
        got = lib.read(sym)
        tail = got.slice(max(got.num_rows - want.num_rows, 0))
        out[lib.name] = lossless(tail, want)
        if out[lib.name] is not None:
            ctx.log(f"upsert: {lib.name} read back differs: {out[lib.name]}")
    return out
