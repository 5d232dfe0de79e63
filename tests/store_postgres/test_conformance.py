"""The shared BarStore conformance suite, unchanged, against PostgreSQL."""

from __future__ import annotations

import pytest

from tickvault.testing.conformance import BarStoreConformance, StoreHarness

from ._pg import PostgresHarness


class TestPostgresStore(BarStoreConformance):
    @pytest.fixture
    def harness(self, pg_database: str, pg_schema: str) -> StoreHarness:
        return PostgresHarness(pg_database, pg_schema)
