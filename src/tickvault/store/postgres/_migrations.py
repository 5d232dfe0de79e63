"""The PostgreSQL schema as ordered migrations, applied in place and atomically.

The schema version lives in ``<schema>.schema_version`` (one row per applied step).
:func:`migrate` brings a database from whatever version it has up to
:data:`LATEST_VERSION` in one transaction under an advisory lock, so two processes
starting at once cannot both migrate, and a failure leaves the previous version intact
(PostgreSQL DDL is transactional). A database *newer* than this code is refused rather
than guessed at.

Steps are SQL generated from allow-listed identifiers (see :mod:`._names`). Add a step
by appending to :data:`MIGRATIONS`; never edit a released step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tickvault.errors import StorageError
from tickvault.store.postgres._conn import session_lock
from tickvault.store.postgres._names import TIERS
from tickvault.store.postgres._timescale import timescale_statements

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "current_version", "migrate", "read_mode"]

_Steps = Callable[[str, str, "str | None"], list[sql.Composed | sql.SQL]]


@dataclass(frozen=True)
class Migration:
    """One schema step: ``steps(schema, mode, retention)`` returns its statements."""

    version: int
    description: str
    steps: _Steps


def _q(template: str, schema: str, **names: str) -> sql.Composed:
    """Format ``template`` with ``{s}`` as the schema and ``names`` as identifiers."""
    return sql.SQL(template).format(s=sql.Identifier(schema), **{k: sql.Identifier(v) for k, v in names.items()})


_BAR_COLUMNS = """
    series_id integer NOT NULL,
    provider_id smallint,
    revisions smallint NOT NULL DEFAULT 0,
    ts timestamptz NOT NULL,
    open double precision,
    high double precision,
    low double precision,
    close double precision,
    volume double precision,
    vwap double precision,
    trade_count bigint,
    PRIMARY KEY (series_id, ts)
"""


def _v1(schema: str, mode: str, retention: str | None) -> list[sql.Composed | sql.SQL]:
    out: list[sql.Composed | sql.SQL] = [
        _q("CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)", schema),
        sql.SQL("INSERT INTO {}.meta (key, value) VALUES ('mode', {})").format(sql.Identifier(schema),
                                                                                sql.Literal(mode)),
        _q("""CREATE TABLE {s}.series (
                id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                symbol text NOT NULL,
                timeframe text NOT NULL,
                tier text NOT NULL CHECK (tier IN ('intraday', 'session')),
                row_count bigint NOT NULL DEFAULT 0,
                first_us bigint,
                last_us bigint,
                last_write_us bigint,
                UNIQUE (symbol, timeframe))""", schema),
        _q("""CREATE TABLE {s}.providers (
                id smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL UNIQUE)""", schema),
    ]
    for tier in TIERS.values():
        partition = " PARTITION BY RANGE (ts)" if mode == "native" else ""
        out.append(_q("CREATE TABLE {s}.{t} (" + _BAR_COLUMNS + ")" + partition, schema, t=tier.table))
        # BRIN on time: tiny, and bars arrive roughly in time order, so cross-series
        # time-range scans (maintenance, exports) skip most blocks.
        out.append(_q("CREATE INDEX {i} ON {s}.{t} USING brin (ts)", schema,
                      i=f"{tier.table}_ts_brin", t=tier.table))
    out += [
        _q("""CREATE TABLE {s}.coverage (
                series_id integer NOT NULL REFERENCES {s}.series (id),
                start_us bigint NOT NULL,
                end_us bigint NOT NULL,
                state text NOT NULL CHECK (state IN ('final', 'provisional', 'empty')),
                provider text,
                updated_us bigint NOT NULL,
                PRIMARY KEY (series_id, start_us),
                CHECK (end_us > start_us))""", schema),
        _q("""CREATE TABLE {s}.actions (
                symbol text NOT NULL,
                ex_date date NOT NULL,
                kind text NOT NULL CHECK (kind IN ('split', 'dividend')),
                value double precision NOT NULL,
                currency text,
                provider text,
                PRIMARY KEY (symbol, ex_date, kind))""", schema),
        _q("""CREATE TABLE {s}.instruments (
                symbol text PRIMARY KEY,
                asset_class text NOT NULL,
                exchange text,
                currency text,
                calendar text NOT NULL,
                status text NOT NULL,
                listed date,
                delisted date,
                name text,
                provider_symbols jsonb NOT NULL DEFAULT '{{}}'::jsonb)""", schema),
        _q("""CREATE TABLE {s}.reports (
                series_id integer PRIMARY KEY REFERENCES {s}.series (id),
                row_count bigint NOT NULL,
                score double precision NOT NULL,
                created_us bigint NOT NULL,
                body text NOT NULL)""", schema),
        _q("""CREATE TABLE {s}.quarantine (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                series_id integer NOT NULL REFERENCES {s}.series (id),
                ts timestamptz,
                open double precision,
                high double precision,
                low double precision,
                close double precision,
                volume double precision,
                vwap double precision,
                trade_count bigint,
                provider text,
                rule text,
                reason text,
                quarantined_at timestamptz)""", schema),
        _q("CREATE INDEX {i} ON {s}.quarantine (series_id, id)", schema, i="quarantine_series_idx"),
    ]
    if mode == "timescale":
        out += timescale_statements(schema, retention)
    return out


def _v2(schema: str, mode: str, retention: str | None) -> list[sql.Composed | sql.SQL]:
    # A plain view for people who query the database directly (psql, Grafana, BI tools):
    # symbols, timeframes and provider names instead of ids, both tiers in one relation.
    parts = [
        _q("""SELECT s.symbol, s.timeframe, b.ts, b.open, b.high, b.low, b.close, b.volume, b.vwap,
                     b.trade_count, p.name AS provider, b.revisions
              FROM {s}.{t} b
              JOIN {s}.series s ON s.id = b.series_id
              LEFT JOIN {s}.providers p ON p.id = b.provider_id""", schema, t=tier.table)
        for tier in TIERS.values()
    ]
    return [sql.SQL("CREATE VIEW {}.bars AS ").format(sql.Identifier(schema)) + sql.SQL(" UNION ALL ").join(parts)]


def _v3(schema: str, mode: str, retention: str | None) -> list[sql.Composed | sql.SQL]:
    # Small catalog values of the engine (cached fundamentals, ...): BarStore.get_meta /
    # set_meta. bytea, not text: text cannot hold NUL characters, a Python str can.
    return [_q("CREATE TABLE {s}.kv (key text PRIMARY KEY, value bytea NOT NULL)", schema)]


def _v4(schema: str, mode: str, retention: str | None) -> list[sql.Composed | sql.SQL]:
    # The BRIN on time moves from the partitioned parent to the partitions that can use it.
    # It prunes only where rows arrive in time order (partitions made ahead of time or on
    # demand, filled by appends); a partition built in bulk is sorted by series, so every
    # block range spans its whole period and the index would cost ~12 % of the load's
    # server CPU for nothing. A parent index would force it onto every partition.
    # Existing partitions keep a BRIN of their own (one scan each).
    if mode != "native":
        return []  # TimescaleDB chunks keep the hypertable's index
    out: list[sql.Composed | sql.SQL] = []
    for tier in TIERS.values():
        out.append(_q("DROP INDEX {s}.{i}", schema, i=f"{tier.table}_ts_brin"))
        out.append(sql.SQL(
            "DO $$DECLARE part regclass; BEGIN "
            "FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = {}::regclass LOOP "
            "EXECUTE format('CREATE INDEX ON %s USING brin (ts)', part); END LOOP; END$$").format(
                sql.Literal(f'"{schema}"."{tier.table}"')))
    return out


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "bars tables, series, providers and the catalog", _v1),
    Migration(2, "bars view joining symbols and provider names", _v2),
    Migration(3, "key-value catalog entries", _v3),
    Migration(4, "BRIN on time per partition instead of on the partitioned bars tables", _v4),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> int:
    """The schema version of ``schema`` (0 when it has no tickvault tables)."""
    row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."schema_version"',)).fetchone()
    if row is None or row[0] is None:
        return 0
    got = conn.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(
        sql.Identifier(schema))).fetchone()
    return int(got[0]) if got is not None else 0


def read_mode(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> str:
    """``"native"`` or ``"timescale"``: how the bars tables of ``schema`` are partitioned."""
    row = conn.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'mode'").format(sql.Identifier(schema)))
    got = row.fetchone()
    return str(got[0]) if got is not None else "native"


def _timescale_available(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return bool(row and row[0])


def migrate(conn: psycopg.Connection[tuple[Any, ...]], schema: str, *, target: int = LATEST_VERSION,
            timescale: bool | None = None, retention: str | None = None) -> tuple[int, int]:
    """Upgrade ``schema`` in place to ``target``; return ``(from_version, to_version)``.

    Parameters
    ----------
    conn
        An autocommit connection (the migration runs in its own transaction).
    schema
        The validated schema name.
    target
        Version to stop at (tests build old versions with it).
    timescale
        Use TimescaleDB hypertables for a *new* schema: ``None`` decides by whether the
        extension is available; ignored for an existing schema (its mode is fixed).
    retention
        TimescaleDB retention interval for a new schema (``None``: keep everything).

    Raises
    ------
    StorageError
        If the database is newer than this code, or a step fails (nothing is changed).
    """
    if not 0 <= target <= LATEST_VERSION:
        raise StorageError(f"unknown schema version {target}; this tickvault knows 0..{LATEST_VERSION}")
    # One migrator per schema at a time; others wait here, then find nothing to do.
    with session_lock(conn, f"tickvault.migrate:{schema}", 0), conn.transaction():
        before = current_version(conn, schema)
        if before > LATEST_VERSION:
            raise StorageError(f"the database schema {schema!r} is at version {before}, newer than this "
                               f"tickvault ({LATEST_VERSION}); upgrade tickvault", schema=schema)
        if before >= target:
            return before, before
        if before == 0:
            use_ts = _timescale_available(conn) if timescale is None else timescale
            mode = "timescale" if use_ts else "native"
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(_q("""CREATE TABLE {s}.schema_version (
                                 version integer PRIMARY KEY,
                                 description text NOT NULL,
                                 applied_at timestamptz NOT NULL DEFAULT now())""", schema))
        else:
            mode = read_mode(conn, schema)
        for step in MIGRATIONS:
            if before < step.version <= target:
                for stmt in step.steps(schema, mode, retention):
                    conn.execute(stmt)
                conn.execute(sql.SQL("INSERT INTO {}.schema_version (version, description) VALUES (%s, %s)")
                             .format(sql.Identifier(schema)), (step.version, step.description))
        return before, target
