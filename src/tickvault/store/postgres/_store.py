"""``PostgresStore``: the :class:`~tickvault.store.base.BarStore` on a PostgreSQL server.

Everything lives in one schema (``tickvault`` by default) of the database named by the
URL: bars in two range-partitioned tables (intraday / session bars), the catalog in
ordinary tables, the version in ``schema_version``. PostgreSQL provides what the
contract asks for: a committed transaction is durable, readers see a snapshot and are
never blocked by writers, and a crash (of the client or the server) rolls back whatever
was in flight. Writers of one series are serialised by an advisory lock with a timeout.
See ``docs/postgres.md`` for the schema, the write path and measured numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import pyarrow as pa
from psycopg import sql

from tickvault.errors import InvalidInput, StorageError
from tickvault.model import (
    BAR_SCHEMA,
    CorporateAction,
    CoverageInterval,
    Instrument,
    QualityReport,
    StoreReceipt,
    validate_symbol,
)
from tickvault.store.base import SeriesInfo, VerifyReport, check_meta_key, conform_table
from tickvault.store.postgres import _migrations
from tickvault.store.postgres._bars import Bars
from tickvault.store.postgres._catalog import Catalog
from tickvault.store.postgres._conn import Conn, Connections, translate_errors
from tickvault.store.postgres._names import TIERS, Tier, tier_of, validate_schema_name
from tickvault.store.postgres._partitions import Partitions
from tickvault.store.postgres._registry import Registry
from tickvault.store.postgres._verify import verify

__all__ = ["PostgresStore"]

DEFAULT_SCHEMA = "tickvault"


class PostgresStore:
    """Bar store on PostgreSQL (see the module docstring).

    Parameters
    ----------
    url
        libpq URL (``postgresql://user@host:5432/dbname``) or DSN. Never logged or put
        in error messages; errors name ``host:port/dbname`` only.
    schema
        PostgreSQL schema holding the tables (lower-case letters, digits, ``_``).
    lock_timeout
        Seconds a writer waits for another writer of the same series before
        :class:`~tickvault.errors.StoreLocked`.
    migrate
        Create or upgrade the schema on open (default). With ``False`` an absent or
        older schema raises :class:`~tickvault.errors.StorageError` instead.
    timescale
        For a new schema: ``None`` uses TimescaleDB when the extension is available,
        ``True`` requires it, ``False`` uses native partitioning.
    partitions_ahead
        Months of partitions created ahead of the current one on open.
    max_idle
        Idle connections kept for reuse.

    Raises
    ------
    StorageError
        If the server cannot be reached or the schema is unusable.
    ConfigError
        If ``url`` or ``schema`` is malformed.
    """

    def __init__(self, url: str, *, schema: str = DEFAULT_SCHEMA, lock_timeout: float = 30.0, migrate: bool = True,
                 timescale: bool | None = None, partitions_ahead: int = 3, max_idle: int = 4) -> None:
        if lock_timeout < 0:
            raise InvalidInput(f"lock_timeout must be >= 0, got {lock_timeout}")
        self.schema = validate_schema_name(schema)
        self._pool = Connections(url, max_idle=max_idle)
        self.where = self._pool.where
        try:
            with self._conn() as conn:
                version = _migrations.current_version(conn, self.schema)
                if migrate:
                    _migrations.migrate(conn, self.schema, timescale=timescale)
                elif version != _migrations.LATEST_VERSION:
                    raise StorageError(f"schema {self.schema!r} is at version {version}, this tickvault needs "
                                       f"{_migrations.LATEST_VERSION}; run `tickvault migrate`", schema=self.schema)
                self.mode = _migrations.read_mode(conn, self.schema)
                registry = Registry(self.schema)
                partitions = Partitions(self.schema, int(lock_timeout * 1000)) if self.mode == "native" else None
                self._bars = Bars(self.schema, registry, partitions, int(lock_timeout * 1000))
                self._catalog = Catalog(self.schema, self._bars)
                self._registry = registry
                if partitions is not None:
                    partitions.ensure_ahead(conn, partitions_ahead)
        except BaseException:
            self._pool.close()  # no connection outlives a failed open
            raise

    # -- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _conn(self, **context: Any) -> Iterator[Conn]:
        with self._pool.borrow() as conn, translate_errors(self._pool.where, **context):
            yield conn

    @staticmethod
    def _tier(timeframe: str) -> Tier:
        return tier_of(str(timeframe))

    def _sid(self, conn: Conn, symbol: str, timeframe: str, *, create: bool) -> int | None:
        return self._registry.series_id(conn, symbol, str(timeframe), create=create)

    @classmethod
    def migrate(cls, url: str, *, schema: str = DEFAULT_SCHEMA, target: int | None = None,
                timescale: bool | None = None) -> tuple[int, int]:
        """Create or upgrade the schema in place; return ``(from_version, to_version)``.

        The entry point of ``tickvault migrate``. Safe to run concurrently (one process
        migrates, the others wait and then find nothing to do) and atomic.

        Parameters
        ----------
        url
            Database URL.
        schema
            Schema to migrate.
        target
            Stop at this version (default: the latest).
        timescale
            See :class:`PostgresStore`.

        Raises
        ------
        StorageError
            If the server is unreachable, the database is newer than this code, or a step fails.
        """
        pool = Connections(url, max_idle=0)
        try:
            with pool.borrow() as conn, translate_errors(pool.where):
                return _migrations.migrate(conn, validate_schema_name(schema),
                                           target=_migrations.LATEST_VERSION if target is None else target,
                                           timescale=timescale)
        finally:
            pool.close()

    def schema_version(self) -> int:
        """The schema version of the database."""
        with self._conn() as conn:
            return _migrations.current_version(conn, self.schema)

    def ensure_partitions(self, ahead_months: int = 3) -> int:
        """Create partitions up to ``ahead_months`` ahead (for a scheduled job); return how many were new."""
        if self._bars.partitions is None:
            return 0
        with self._conn() as conn:
            return self._bars.partitions.ensure_ahead(conn, ahead_months)

    # -- bars --------------------------------------------------------------------------------
    def write(self, symbol: str, timeframe: str, table: pa.Table) -> StoreReceipt:
        """Upsert ``table`` atomically and durably (see :mod:`._bars`)."""
        sym = validate_symbol(symbol)
        tier = self._tier(timeframe)
        table = conform_table(table)
        if table.num_rows == 0:
            return StoreReceipt()
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            return self._bars.write(conn, sym, str(timeframe), tier, table)

    def write_many(self, items: Sequence[tuple[str, str, pa.Table]]) -> list[StoreReceipt]:
        """Upsert several batches in one transaction, all or nothing; one receipt per item.

        Each item ``(symbol, timeframe, table)`` is treated exactly as :meth:`write`
        treats it, in order (a series may appear more than once: a later item sees the
        earlier one's rows). Every item is validated before anything is written. Batches
        of distinct series share the round trips, the ``COPY`` streams and the commit,
        and a history backfill of many series fills new partitions through the bulk
        path (see :mod:`._bars`), so this is the fast way to load many symbols.
        """
        prepared = []
        for symbol, timeframe, table in items:
            sym = validate_symbol(symbol)
            prepared.append((sym, str(timeframe), self._tier(timeframe), conform_table(table)))
        if all(t.num_rows == 0 for *_, t in prepared):
            return [StoreReceipt() for _ in prepared]
        with self._conn() as conn:
            return self._bars.write_many(conn, prepared)

    def read(self, symbol: str, timeframe: str, start_us: int | None = None,
             end_us: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Bars with ``start_us <= ts < end_us``, sorted, BAR_SCHEMA."""
        sym = validate_symbol(symbol)
        tier = self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=False)
            table = BAR_SCHEMA.empty_table() if sid is None else self._bars.read(conn, sid, tier, start_us, end_us)
        return table.select(list(columns)) if columns is not None else table

    def latest(self, symbol: str, timeframe: str, n: int) -> pa.Table:
        """The last ``n`` bars, ascending."""
        sym = validate_symbol(symbol)
        tier = self._tier(timeframe)
        if n <= 0:
            return BAR_SCHEMA.empty_table()
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=False)
            return BAR_SCHEMA.empty_table() if sid is None else self._bars.latest(conn, sid, tier, n)

    def delete_range(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> int:
        """Remove bars in the range atomically; return how many were removed."""
        sym = validate_symbol(symbol)
        tier = self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=False)
            return 0 if sid is None else self._bars.delete_range(conn, sid, tier, start_us, end_us)

    def series(self) -> list[SeriesInfo]:
        """Every stored series with rows."""
        with self._conn() as conn:
            return self._bars.series(conn)

    # -- coverage ------------------------------------------------------------------------------
    def coverage(self, symbol: str, timeframe: str) -> list[CoverageInterval]:
        """The coverage intervals, sorted and non-overlapping."""
        sym = validate_symbol(symbol)
        self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=False)
            return [] if sid is None else self._catalog.coverage(conn, sid)

    def mark_covered(self, symbol: str, timeframe: str, intervals: Sequence[CoverageInterval]) -> None:
        """Apply coverage marks atomically (latest mark wins on overlap)."""
        sym = validate_symbol(symbol)
        self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=True)
            assert sid is not None
            self._catalog.mark_covered(conn, sid, list(intervals))

    def clear_coverage(self, symbol: str, timeframe: str, start_us: int | None, end_us: int | None) -> None:
        """Forget coverage inside the range."""
        sym = validate_symbol(symbol)
        self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=False)
            if sid is not None:
                self._catalog.clear_coverage(conn, sid, start_us, end_us)

    # -- catalog ---------------------------------------------------------------------------------
    def add_actions(self, symbol: str, actions: Sequence[CorporateAction]) -> int:
        """Store actions keyed by (ex_date, kind); return how many were new or changed."""
        sym = validate_symbol(symbol)
        with self._conn(symbol=sym) as conn:
            return self._catalog.add_actions(conn, sym, list(actions))

    def actions(self, symbol: str) -> list[CorporateAction]:
        """All actions for ``symbol`` sorted by ex_date."""
        sym = validate_symbol(symbol)
        with self._conn(symbol=sym) as conn:
            return self._catalog.actions(conn, sym)

    def put_instrument(self, instrument: Instrument) -> None:
        """Insert or replace an instrument record."""
        with self._conn(symbol=instrument.symbol) as conn:
            self._catalog.put_instrument(conn, instrument)

    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument record, if any."""
        sym = validate_symbol(symbol)
        with self._conn(symbol=sym) as conn:
            return self._catalog.instrument(conn, sym)

    def delete_instrument(self, symbol: str) -> bool:
        """Remove an instrument record; return whether there was one."""
        sym = validate_symbol(symbol)
        with self._conn(symbol=sym) as conn:
            return self._catalog.delete_instrument(conn, sym)

    def instruments(self) -> list[Instrument]:
        """Every instrument record, sorted by symbol."""
        with self._conn() as conn:
            return self._catalog.instruments(conn)

    def save_report(self, report: QualityReport) -> None:
        """Keep ``report`` as the latest for its (symbol, timeframe)."""
        sym = validate_symbol(report.symbol)
        self._tier(report.timeframe)
        with self._conn(symbol=sym, timeframe=report.timeframe) as conn:
            sid = self._sid(conn, sym, report.timeframe, create=True)
            assert sid is not None
            self._catalog.save_report(conn, sid, report)

    def latest_report(self, symbol: str, timeframe: str) -> QualityReport | None:
        """The latest quality report, if any."""
        sym = validate_symbol(symbol)
        self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=False)
            return None if sid is None else self._catalog.latest_report(conn, sid)

    def quarantine(self, symbol: str, timeframe: str, rows: pa.Table) -> None:
        """Append quarantined rows (QUARANTINE_SCHEMA) durably."""
        sym = validate_symbol(symbol)
        self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            sid = self._sid(conn, sym, timeframe, create=True)
            assert sid is not None
            self._catalog.quarantine(conn, sid, rows)

    def quarantined(self, symbol: str, timeframe: str) -> pa.Table:
        """All quarantined rows for the series (QUARANTINE_SCHEMA)."""
        sym = validate_symbol(symbol)
        self._tier(timeframe)
        with self._conn(symbol=sym, timeframe=timeframe) as conn:
            return self._catalog.quarantined(conn, self._sid(conn, sym, timeframe, create=False))

    def get_meta(self, key: str) -> str | None:
        """A small catalog value stored under ``key``, if any."""
        check_meta_key(key)
        with self._conn() as conn:
            return self._catalog.get_meta(conn, key)

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with ``None`` delete) a small catalog value durably."""
        check_meta_key(key, value)
        with self._conn() as conn:
            self._catalog.set_meta(conn, key, value)

    # -- maintenance -------------------------------------------------------------------------------
    def compact(self, symbol: str | None = None, timeframe: str | None = None) -> int:
        """Nothing to merge: PostgreSQL updates rows in place and autovacuum reclaims space.

        Returns 0. (Validates its arguments like every other method.)
        """
        if symbol is not None:
            validate_symbol(symbol)
        if timeframe is not None:
            self._tier(timeframe)
        return 0

    def verify(self) -> VerifyReport:
        """Reconcile every series' stored count and bounds with its bars; report orphans.

        PostgreSQL checksums and WAL protect the pages themselves; what can drift is our
        own bookkeeping. Drifted series rows are repaired (listed in ``repaired``); bars
        whose series row is missing, or a schema at the wrong version, are ``damaged``.
        This scans every bar: run it as maintenance, not on a hot path.
        """
        with self._conn() as conn:
            return verify(conn, self.schema)

    def size_bytes(self) -> int:
        """Bytes used by the schema's tables and indexes (PostgreSQL's own accounting)."""
        with self._conn() as conn:
            row = conn.execute(
                """SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = %s AND c.relkind IN ('r', 'm')""", (self.schema,)).fetchone()
            total = int(row[0]) if row is not None else 0
            if self.mode == "timescale":  # chunks live in TimescaleDB's own schema
                for tier in TIERS.values():
                    got = conn.execute(sql.SQL("SELECT coalesce(hypertable_size({}), 0)").format(
                        sql.Literal(f'"{self.schema}"."{tier.table}"'))).fetchone()
                    total += int(got[0]) if got is not None else 0
            return total

    def close(self) -> None:
        """Close pooled connections. Idempotent."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, schema={self.schema!r}, mode={self.mode!r})"

