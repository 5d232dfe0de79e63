"""`tickvault copy` between the embedded store and PostgreSQL, and `tickvault migrate` (issue 5 point 7)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest

import tickvault
from tickvault.model import CorporateAction, Instrument, ts_to_us
from tickvault.providers.sim import simulate_bars

from ._util import RunCli, assert_one_line_error

ADMIN_URL = os.environ.get("TICKVAULT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def database() -> Iterator[str]:
    """A throwaway database on the machine's PostgreSQL (a missing server fails the test)."""
    name = f"tickvault_cli_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {ADMIN_URL}: {exc}")
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fill(home: Path) -> None:
    with tickvault.open(home) as vault:
        vault.add_instrument(Instrument("AAPL", name="Apple Inc.", exchange="XNAS"))
        for tf, start in (("1d", "2023-01-03"), ("1m", "2024-03-04")):
            table, _cov = simulate_bars("AAPL", tf, ts_to_us(pd.Timestamp(start, tz="UTC")),
                                       ts_to_us(pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=60 if tf == "1d"
                                                                                            else 2)), seed=3)
            vault.write("AAPL", tf, table, provider="sim")
            vault.mark_covered("AAPL", tf, start, pd.Timestamp(start, tz="UTC") + pd.Timedelta(hours=1))
        vault.add_actions("AAPL", [CorporateAction.split("2023-02-01", 2.0)])
        bad = vault.bars("AAPL", "1d", fetch="never").iloc[:1].copy()
        bad["high"] = 0.5
        vault.write("AAPL", "1d", bad)  # quarantined


def _snapshot(vault: tickvault.Vault) -> tuple[object, ...]:
    return (
        [(s.symbol, s.timeframe, s.rows, s.first, s.last) for s in vault.status()],
        vault.bars("AAPL", "1d", fetch="never", adjust="none").to_dict("list"),
        vault.bars("AAPL", "1m", fetch="never").to_dict("list"),
        vault.coverage("AAPL", "1m"), vault.actions("AAPL").to_dict("list"),
        [i.to_dict() for i in vault.instruments()], len(vault.quarantine("AAPL", "1d")),
    )


def test_copy_embedded_to_postgres_and_back_is_lossless_and_idempotent(cli: RunCli, home: Path, tmp_path: Path,
                                                                       database: str) -> None:
    _fill(home)
    with tickvault.open(home) as original:
        expected = _snapshot(original)
    up = cli("copy", "--from", home, "--to", database)
    assert up.exit_code == 0, up.stderr
    assert "copied 2 series" in up.stdout
    assert "postgres@" not in up.stdout
    again = cli("copy", "--from", home, "--to", database)
    assert again.exit_code == 0
    assert " 0 written" in again.stdout
    back = tmp_path / "back"
    down = cli("copy", "--from", database, "--to", back)
    assert down.exit_code == 0, down.stderr
    with tickvault.open(back) as copy:
        assert _snapshot(copy) == expected


def test_migrate_is_idempotent_and_errors_are_one_line(cli: RunCli, database: str, home: Path) -> None:
    first = cli("migrate", "--database-url", database)
    assert first.exit_code == 0, first.stderr
    assert "upgraded from version 0" in first.stdout
    second = cli("migrate", "--database-url", database)
    assert "nothing to do" in second.stdout
    assert tickvault.migrate(database)[0] == tickvault.migrate(database)[1]
    nourl = cli("migrate")
    assert nourl.exit_code == 2
    assert_one_line_error(nourl.stderr, "no database")
    bad = cli("migrate", "--database-url", "mysql://x/y")
    assert bad.exit_code == 2
    missing = cli("copy", "--from", home, "--to", home)
    assert missing.exit_code == 2
    assert_one_line_error(missing.stderr, "same place")
    nowhere = cli("copy", "--from", home / "nope", "--to", home)
    assert nowhere.exit_code == 2
    assert_one_line_error(nowhere.stderr, "no vault")
