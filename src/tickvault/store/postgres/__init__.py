"""The PostgreSQL store (psycopg 3): range-partitioned bars, catalog tables, in-place migrations.

:class:`PostgresStore` implements :class:`~tickvault.store.base.BarStore` on a server
chosen with ``TICKVAULT_DATABASE_URL=postgresql://...``; with the ``timescaledb``
extension present the same tables become hypertables. :data:`LATEST_VERSION` is the
schema version this code writes; :meth:`PostgresStore.migrate` upgrades a database in
place. See ``docs/postgres.md``.
"""

from tickvault.store.postgres._migrations import LATEST_VERSION
from tickvault.store.postgres._store import DEFAULT_SCHEMA, PostgresStore

__all__ = ["DEFAULT_SCHEMA", "LATEST_VERSION", "PostgresStore"]
