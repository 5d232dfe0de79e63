"""Fixtures for the PostgreSQL store tests: a real server, a database per run, a schema per test.

The server comes from ``TICKVAULT_TEST_DATABASE_URL`` (read at import, before the
hermetic fixture clears ``TICKVAULT_*``), default ``postgresql://postgres@127.0.0.1:5432/postgres``.
An unreachable server is a test *failure* with a clear message, never a skip: CI must not
go green without PostgreSQL. Each run creates ``tickvault_test_<pid>_<random>`` and drops
it afterwards; each test gets its own schema inside it (cheap isolation).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

ADMIN_URL = os.environ.get("TICKVAULT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away database for this test run; yields its connection string."""
    name = f"tickvault_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests and is not reachable via TICKVAULT_TEST_DATABASE_URL "
                    f"(default postgresql://postgres@127.0.0.1:5432/postgres): {str(exc).strip().splitlines()[0]}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(ADMIN_URL, dbname=name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_schema(pg_database: str) -> Iterator[str]:
    """A fresh schema name in the run's database, dropped after the test."""
    name = f"tv_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """Connection string of the run's database."""
    return pg_database
