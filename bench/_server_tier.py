"""Server-tier workloads: the PostgreSQL store against plain PostgreSQL, and the cache tiers.

Why this module exists: with ``TICKVAULT_DATABASE_URL`` and ``TICKVAULT_REDIS_URL`` the
same vault runs on a server store and a shared cache; their costs are measured here, on
real local servers, never against mocks.

- ``postgres``: bulk ingest with de-duplication (``PostgresStore.write_many`` of
  :data:`PG_BATCH_SYMBOLS` symbols per call: in-batch dedup, upsert, binary COPY, one
  durable transaction per call; and ``PostgresStore.write`` per symbol as
  ``tickvault:write``) against the plain peer people write by hand: ``COPY … FROM STDIN
  (FORMAT csv)`` of the same symbols in one transaction into a table whose primary key
  is ``(symbol, ts)`` (the CSV text is made before the clock starts; the server parses
  it inside the timed region). Then one symbol-year read to
  pandas: ``store.read`` against ``fetchall`` into a frame and against
  ``COPY (SELECT …) TO STDOUT`` parsed by pyarrow's CSV reader. Everything lives in a
  throw-away database created for the run and dropped at its end.
- ``cache``: ``vault.latest(symbol, "1m", 500)`` through the vault's read-through cache
  layer, per tier: the store (``cache_enabled=False``), the in-process L1, Redis alone
  (``cache_bytes=0``) and L1 backed by Redis (an L1 hit checks Redis's generation). Keys
  live under a unique prefix that is deleted at the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from bench._contenders import arrow_to_pandas, lossless
from bench._extra import ExtraOptions, maybe_profile, record
from bench._harness import Samples, timed
from bench._workloads import Context, read_symbols

__all__ = ["copy_to_pandas", "csv_payload", "postgres_problem", "redis_problem", "run_cache", "run_postgres",
           "throwaway_database"]

#: Symbols ingested into PostgreSQL (None: all): the full size would need ~10 GB of disk per rep.
PG_SYMBOLS: dict[str, int | None] = {"tiny": None, "quick": 10, "full": 100}
PG_REPS = {"tiny": 1, "quick": 2, "full": 2}
PG_READ_REPS = {"tiny": 1, "quick": 5, "full": 5}
#: Symbols per ``write_many`` call and per peer transaction: the whole backfill (100
#: symbol-years at ``full``) in one call, so every new month is built in bulk.
PG_BATCH_SYMBOLS = 100
_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "vwap", "trade_count", "provider")
_PEER_DDL = ("CREATE TABLE {t} (symbol text NOT NULL, ts timestamptz NOT NULL, open float8, high float8, low float8, "
             "close float8, volume float8, vwap float8, trade_count int8, provider text, PRIMARY KEY (symbol, ts))")


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create a uniquely named database through ``admin_url``; yield its DSN; drop it after."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"tickvault_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def postgres_problem(admin_url: str) -> str | None:
    """``None`` when PostgreSQL answers at ``admin_url``, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg not installed ({exc})"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable: {str(exc).strip().splitlines()[0]}"
    return None


def csv_payload(symbol: str, table: pa.Table) -> bytes:
    """``table``'s rows as headerless CSV with a leading ``symbol`` column (COPY's input)."""
    import pyarrow.csv as csv

    t = table.set_column(table.schema.get_field_index("provider"), "provider",
                         table.column("provider").cast(pa.string()))
    t = t.add_column(0, "symbol", pa.array([symbol] * t.num_rows, pa.string()))
    buf = io.BytesIO()
    csv.write_csv(t, buf, csv.WriteOptions(include_header=False))
    return buf.getvalue()


def _pg_data(ctx: Context) -> list[tuple[str, pa.Table]]:
    want = PG_SYMBOLS.get(ctx.data.size.name)
    out: list[tuple[str, pa.Table]] = []
    for batch in ctx.data.batches():
        out.extend(batch)
        if want is not None and len(out) >= want:
            break
    return out if want is None else out[:want]


def _copy(conn: Any, table: str, payloads: list[bytes]) -> None:
    from psycopg import sql

    with conn.transaction(), conn.cursor() as cur, cur.copy(
            sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(sql.Identifier(table))) as cp:
        for payload in payloads:
            cp.write(payload)


def _fetchall_pandas(conn: Any, symbol: str) -> pd.DataFrame:
    cols = ", ".join(_COLUMNS)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {cols} FROM bars WHERE symbol = %s ORDER BY ts", (symbol,))
        return pd.DataFrame.from_records(cur.fetchall(), columns=list(_COLUMNS)).set_index("ts")


def copy_to_pandas(conn: Any, symbol: str) -> pd.DataFrame:
    """One symbol's bars from the peer's ``bars`` table: ``COPY … TO STDOUT`` parsed by pyarrow."""
    import pyarrow.csv as csv

    cols = ", ".join(_COLUMNS)
    buf = bytearray()
    with conn.cursor() as cur, cur.copy(
            f"COPY (SELECT {cols} FROM bars WHERE symbol = %s ORDER BY ts) TO STDOUT (FORMAT csv)",
            (symbol,)) as cp:
        for chunk in cp:
            buf += chunk
    types = {"ts": pa.timestamp("us", tz="UTC"), "trade_count": pa.int64(), "provider": pa.string()}
    table = csv.read_csv(io.BytesIO(buf), read_options=csv.ReadOptions(column_names=list(_COLUMNS)),
                         convert_options=csv.ConvertOptions(column_types=types))
    return arrow_to_pandas(table)


def run_postgres(ctx: Context, opts: ExtraOptions) -> None:
    """Ingest with dedup and a symbol-year read: PostgresStore against plain PostgreSQL."""
    problem = postgres_problem(opts.database_url)
    if problem is None:
        try:
            from tickvault.store.postgres import PostgresStore  # noqa: F401
        except ImportError as exc:
            problem = f"tickvault.store.postgres does not import ({exc})"
    if problem is not None:
        opts.skipped["postgresql"] = problem
        ctx.log(f"postgres workload not run: {problem}")
        return
    data = _pg_data(ctx)
    with throwaway_database(opts.database_url) as url:
        _pg_ingest_and_read(ctx, opts, url, data)


def _pg_ingest_and_read(ctx: Context, opts: ExtraOptions, url: str, data: list[tuple[str, pa.Table]]) -> None:
    import psycopg
    from psycopg import sql

    from tickvault.store.postgres import PostgresStore

    size = ctx.data.size.name
    reps = PG_REPS.get(size, 2)
    rows = sum(t.num_rows for _s, t in data)
    contenders = ("tickvault", "tickvault:write", "peer")
    samples_of = {name: Samples() for name in contenders}
    store: Any = None
    with psycopg.connect(url, autocommit=True) as conn:
        for rep in range(reps):
            for schema in (f"tv_r{rep - 1}", f"tvw_r{rep - 1}"):  # keep one tickvault schema (reads) at a time
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("bars")))
            conn.execute(sql.SQL(_PEER_DDL).format(t=sql.Identifier("bars")))
            if store is not None:
                store.close()
            store = PostgresStore(url, schema=f"tv_r{rep}")
            per_symbol = PostgresStore(url, schema=f"tvw_r{rep}")
            totals = dict.fromkeys(contenders, 0.0)
            peaks = dict.fromkeys(contenders, 0)
            for i in range(0, len(data), PG_BATCH_SYMBOLS):
                chunk = data[i:i + PG_BATCH_SYMBOLS]
                payloads = [csv_payload(s, t) for s, t in chunk]  # the peer's input, made before its clock starts
                items = [(s, "1m", t) for s, t in chunk]
                jobs: list[tuple[str, Callable[[], Any]]] = [
                    ("tickvault", lambda w=store.write_many, it=items: w(it)),  # type: ignore[misc]
                    ("tickvault:write", lambda w=per_symbol.write, it=items: [w(*x) for x in it]),  # type: ignore[misc]
                    ("peer", lambda p=payloads: _copy(conn, "bars", p))]  # type: ignore[misc]
                k = (i // PG_BATCH_SYMBOLS + rep) % len(jobs)
                for name, fn in jobs[k:] + jobs[:k]:
                    _, sec, mem = timed(fn, ctx.probe)
                    totals[name] += sec
                    peaks[name] = max(peaks[name], mem)
                del payloads
            per_symbol.close()
            for name in contenders:
                samples_of[name].add(totals[name], peaks[name])
            ctx.log(f"postgres ingest rep {rep + 1}/{reps}: {rows:,} rows; tickvault write_many "
                    f"{totals['tickvault']:.2f}s, write per symbol {totals['tickvault:write']:.2f}s, "
                    f"COPY {totals['peer']:.2f}s")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(f"tvw_r{reps - 1}")))
        for lib, name in (("tickvault", "tickvault"), ("tickvault:write", "tickvault:write"),
                          ("postgresql:copy", "peer")):
            s = samples_of[name]
            record(ctx, "postgres", "ingest with dedup", lib, s, rows=rows,
                   rows_per_s=rows / float(s.summary()["median_s"]), symbols=len(data),
                   symbols_per_transaction=1 if name == "tickvault:write" else min(PG_BATCH_SYMBOLS, len(data)))
        # Symbol-year read to pandas (warm: each symbol read once first).
        syms = [s for s in read_symbols(ctx) if s in {d[0] for d in data}] or [data[0][0]]
        readers: dict[str, Callable[[str], pd.DataFrame]] = {
            "tickvault": lambda s: arrow_to_pandas(store.read(s, "1m")),
            "postgresql:fetchall": lambda s: _fetchall_pandas(conn, s),
            "postgresql:copy-csv": lambda s: copy_to_pandas(conn, s),
        }
        originals = dict(data)
        checks = {name: lossless(fn(syms[0]), originals[syms[0]]) for name, fn in readers.items()}
        samples = {name: Samples() for name in readers}
        names = list(readers)
        for r in range(PG_READ_REPS.get(size, 5)):
            for j, sym in enumerate(syms):
                for k in range(len(names)):
                    name = names[(r + j + k) % len(names)]
                    out, sec, mem = timed(lambda f=readers[name], s=sym: f(s), ctx.probe)  # type: ignore[misc]
                    del out
                    samples[name].add(sec, mem)
        for name in names:
            record(ctx, "postgres", "symbol-year read to pandas", name, samples[name], symbols=len(syms),
                   lossless=checks[name] is None, check=checks[name] or "bit-exact")
        ctx.notes["about:postgres"] = (
            f"postgres: {len(data)} symbols ({rows:,} rows) ingested {reps}x into fresh tables of a throw-away "
            f"database on the local server; tickvault writes {PG_BATCH_SYMBOLS} symbols per write_many call (one "
            "transaction; `tickvault:write`: one write per symbol), the peer COPYs the same symbols in one "
            "transaction (CSV made before its clock starts); reads are warm, "
            f"{PG_READ_REPS.get(size, 5)}x each of {len(syms)} symbols")

        def profile_write() -> None:
            conn.execute("DROP SCHEMA IF EXISTS tv_profile CASCADE")
            with PostgresStore(url, schema="tv_profile") as fresh:
                fresh.write_many([(s, "1m", t) for s, t in data[:5]])

        maybe_profile(ctx, opts, "PostgreSQL ingest with dedup", "postgres: ingest, tickvault, 5 symbols by one "
                      "write_many into a fresh schema", profile_write)
        store.close()


# --------------------------------------------------------------------------- cache tiers


def redis_problem(url: str) -> str | None:
    """``None`` when Redis answers at ``url``, else why not."""
    try:
        import redis
    except ImportError as exc:
        return f"redis not installed ({exc})"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis not reachable: {exc}"
    return None


def _drop_prefix(url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        return len(keys)
    finally:
        client.close()


def run_cache(ctx: Context, opts: ExtraOptions) -> None:
    """``vault.latest(symbol, "1m", 500)`` from the store, L1, Redis, and L1 backed by Redis."""
    import tickvault
    from tickvault.store.local import LocalStore

    problem = redis_problem(opts.redis_url)
    if problem is not None:
        opts.skipped["redis"] = problem
        ctx.log(f"cache workload: Redis tiers not run: {problem}")
    root = ctx.workdir / "cache-store"
    shutil.rmtree(root, ignore_errors=True)
    syms = read_symbols(ctx)
    originals = {s: ctx.data.bars(s) for s in syms}
    with LocalStore(root) as store:
        for s, t in originals.items():
            store.write(s, "1m", t)
    prefix = f"tickvault-bench-{os.getpid()}-{secrets.token_hex(4)}:"
    tiers: dict[str, dict[str, Any]] = {"tickvault:store": {"cache_enabled": False},
                                        "tickvault:L1": {"cache_prefix": prefix + "l1:"}}
    if problem is None:
        tiers["tickvault:redis"] = {"redis_url": opts.redis_url, "cache_prefix": prefix + "l2:", "cache_bytes": 0}
        tiers["tickvault:L1+redis"] = {"redis_url": opts.redis_url, "cache_prefix": prefix + "l1l2:"}
    vaults = {name: tickvault.open(root, providers=[], **kw) for name, kw in tiers.items()}
    try:
        _measure_tiers(ctx, vaults, syms, originals)
        for name, label in (("tickvault:store", "from the store"), ("tickvault:L1", "from L1")):
            vault = vaults[name]
            maybe_profile(ctx, opts, f"latest 500 bars {label} (vault, Arrow)",
                          f"cache: latest 500 bars {label}, vault.latest(format='arrow'), 2,000 warm calls",
                          lambda v=vault: [v.latest(syms[0], "1m", 500, adjust="none", format="arrow")
                                           for _ in range(2000)])
    finally:
        for v in vaults.values():
            v.close()
        if problem is None:
            _drop_prefix(opts.redis_url, prefix)
        shutil.rmtree(root, ignore_errors=True)


def _measure_tiers(ctx: Context, vaults: dict[str, Any], syms: list[str], originals: dict[str, pa.Table]) -> None:
    n = 500
    reps = ctx.data.size.read_reps
    names = list(vaults)
    calls: dict[str, Callable[[Any, str], Any]] = {
        "arrow": lambda v, s: v.latest(s, "1m", n, adjust="none", format="arrow"),
        "pandas": lambda v, s: v.latest(s, "1m", n),  # the defaults: split-adjusted pandas
    }
    for variant, call in calls.items():
        checks: dict[str, str | None] = {}
        for name in names:  # warm-up fills the caches; the answer must be the store's
            for s in syms:
                got = call(vaults[name], s)
                want = originals[s].slice(max(originals[s].num_rows - n, 0))
                checks[name] = checks.get(name) or lossless(got, want)
        samples = {name: Samples() for name in names}
        for r in range(reps):
            for i, s in enumerate(syms):
                for k in range(len(names)):
                    name = names[(r + i + k) % len(names)]
                    out, sec, mem = timed(lambda v=vaults[name], s=s, c=call: c(v, s), ctx.probe)  # type: ignore[misc]
                    del out
                    samples[name].add(sec, mem)
        for name in names:
            record(ctx, "cache", variant, name, samples[name], symbols=len(syms), n_bars=n,
                   check=checks[name] or "same bars as the store", comparable=checks[name] is None)
    stats = {name: v.cache_stats() if hasattr(v, "cache_stats") else {} for name, v in vaults.items()}
    ctx.notes["about:cache"] = (
        f"cache: vault.latest(symbol, \"1m\", {n}) warm, {reps}x each of {len(syms)} symbols per tier; `arrow` is "
        "adjust=\"none\", format=\"arrow\" (the tier's own cost), `pandas` the defaults (split-adjusted pandas); "
        "tiers: store = cache_enabled=False, L1 = in-process cache only, redis = cache_bytes=0 (every read from "
        "Redis), L1+redis = both (an L1 hit still asks Redis for the generation); "
        + "; ".join(f"{k}: {_hits(v)}" for k, v in stats.items() if v))


def _hits(stats: Any) -> str:
    reads = stats.get("reads", {}) if isinstance(stats, dict) else {}
    return ", ".join(f"{k} {v}" for k, v in sorted(reads.items())) or "no counters"
