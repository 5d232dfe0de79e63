"""Connections for the PostgreSQL store: a tiny pool and the mapping of driver errors.

One :class:`PostgresStore` may be used from several threads (the engine's workers), so
each operation borrows its own connection; idle connections are kept for reuse. A
connection that broke is dropped, never reused. Driver errors become the tickvault
exception tree here, with the server named by host/port/database only: the URL may
carry a password, so it never appears in a message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tickvault.errors import ConfigError, StorageError, StoreLocked, TickvaultError

__all__ = ["Connections", "describe_url", "session_lock", "translate_errors"]

Conn = psycopg.Connection[tuple[Any, ...]]


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a libpq URL or DSN, without user or password.

    Raises
    ------
    ConfigError
        If ``url`` is not a PostgreSQL connection string.
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError("the database URL is not a valid PostgreSQL connection string "
                          "(expected postgresql://user@host:port/dbname)") from None
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    db = str(params.get("dbname") or params.get("user") or "")
    return f"{host}:{port}/{db}"


@contextmanager
def translate_errors(where: str, **context: Any) -> Iterator[None]:
    """Turn driver errors raised inside the block into :class:`StorageError` subclasses."""
    try:
        yield
    except TickvaultError:
        raise
    except pg_errors.LockNotAvailable as exc:
        raise StoreLocked(f"another writer holds the lock ({exc.diag.message_primary})", **context) from None
    except psycopg.OperationalError as exc:
        raise StorageError(f"PostgreSQL at {where} failed: {_first_line(exc)}", **context) from exc
    except psycopg.Error as exc:
        raise StorageError(f"PostgreSQL at {where} refused the operation: {_first_line(exc)}", **context) from exc


@contextmanager
def session_lock(conn: Conn, name: str, timeout_ms: int) -> Iterator[None]:
    """Hold the session-level advisory lock ``name`` around a block of transactions.

    Taken *before* the block's ``BEGIN`` on purpose: a transaction that starts after the
    lock is granted sees every catalog change committed by the previous holder, whereas
    a transaction-scoped advisory lock taken mid-transaction may leave stale "relation
    does not exist" entries in the backend's catalog cache (DDL races between processes
    creating the same schema or partition). Waits at most ``timeout_ms`` (0: forever),
    then PostgreSQL raises LockNotAvailable (:class:`StoreLocked` once translated).
    """
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(0, timeout_ms)}ms",))
    try:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
    finally:
        conn.execute("SELECT set_config('lock_timeout', '0', false)")
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Connections:
    """A minimal thread-safe pool of autocommit connections to one database.

    Parameters
    ----------
    url
        libpq URL or DSN.
    max_idle
        Idle connections kept for reuse; more are closed on release.
    connect_timeout
        Seconds to wait for the server when opening a connection.
    """

    def __init__(self, url: str, *, max_idle: int = 4, connect_timeout: float = 10.0) -> None:
        self.where = describe_url(url)
        self._url = url
        self._max_idle = max_idle
        self._timeout = connect_timeout
        # Name our sessions in pg_stat_activity unless the URL already names them.
        self._app = None if "application_name" in conninfo_to_dict(url) else "tickvault"
        self._idle: list[Conn] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> Conn:
        with translate_errors(self.where):
            try:
                url = self._url if self._app is None else make_conninfo(self._url, application_name=self._app)
                conn: Conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(self._timeout)))
            except psycopg.OperationalError as exc:
                raise StorageError(f"cannot connect to PostgreSQL at {self.where}: {_first_line(exc)}") from None
            # The contract says a write returns once durable: never let a server or role
            # default of synchronous_commit=off acknowledge a commit before its WAL is flushed.
            row = conn.execute("SHOW synchronous_commit").fetchone()
            if row is not None and row[0] == "off":
                conn.execute("SET synchronous_commit = on")
        return conn

    @contextmanager
    def borrow(self) -> Iterator[Conn]:
        """A connection for the duration of the block (returned to the pool afterwards)."""
        if self._closed:
            raise StorageError("the PostgreSQL store is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            # A block that raised has already rolled back (transaction blocks do that), so
            # the connection is reusable unless it broke or was left mid-statement.
            reusable = not conn.closed and not conn.broken and \
                conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            with self._lock:
                if reusable and not self._closed and len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Close every idle connection; borrowed ones close when returned. Idempotent."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
