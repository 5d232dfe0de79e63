"""Surrogate ids for series and providers, cached per store.

Bars rows carry a 4-byte ``series_id`` instead of (symbol, timeframe) and a 2-byte
``provider_id`` instead of the provider name: the primary key (series_id, ts) is the bar
key (symbol, timeframe, ts) through the unique ``series`` row, at a fraction of the index
size. Ids are created on first use in their own short transaction (so a data
transaction never waits on another series' insert of the same provider name) and never
change or disappear, which makes caching them safe for the life of the process. An
unused series or provider row left by a rolled-back write is harmless: ``series()`` only
lists series with rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from tickvault.errors import StorageError
from tickvault.store.postgres._names import Tier, tier_of

__all__ = ["Registry"]

Conn = psycopg.Connection[tuple[Any, ...]]
_MAX_PROVIDERS = 32_000  # provider_id is a smallint


class Registry:
    """Series and provider ids of one schema (thread-safe cache over two small tables)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._series: dict[tuple[str, str], int] = {}
        self._provider_ids: dict[str, int] = {}
        self._provider_names: list[str | None] = [None]
        self._lock = threading.Lock()
        s = sql.Identifier(schema)
        self._find_series = sql.SQL("SELECT id FROM {}.series WHERE symbol = %s AND timeframe = %s").format(s)
        self._add_series = sql.SQL(
            "INSERT INTO {}.series (symbol, timeframe, tier) VALUES (%s, %s, %s) "
            "ON CONFLICT (symbol, timeframe) DO NOTHING RETURNING id").format(s)
        self._add_provider = sql.SQL(
            "INSERT INTO {}.providers (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING").format(s)
        self._all_providers = sql.SQL("SELECT id, name FROM {}.providers").format(s)
        # Insert what is missing, then read every id back (a row inserted by another
        # process meanwhile is found by the second statement).
        self._add_many = sql.SQL(
            "WITH ins AS (INSERT INTO {s}.series (symbol, timeframe, tier) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) ON CONFLICT (symbol, timeframe) DO NOTHING "
            "RETURNING symbol, timeframe, id) "
            "SELECT symbol, timeframe, id FROM ins UNION ALL "
            "SELECT s.symbol, s.timeframe, s.id FROM {s}.series s "
            "JOIN unnest(%s::text[], %s::text[]) AS k(symbol, timeframe) USING (symbol, timeframe)").format(s=s)

    def series_id(self, conn: Conn, symbol: str, timeframe: str, *, create: bool) -> int | None:
        """The id of (symbol, timeframe); created when missing if ``create``, else ``None``.

        ``symbol`` must already be validated; ``timeframe`` picks the tier (and is
        validated by it).
        """
        key = (symbol, timeframe)
        with self._lock:
            sid = self._series.get(key)
        if sid is not None:
            return sid
        tier: Tier = tier_of(timeframe)
        row = conn.execute(self._find_series, key).fetchone()
        if row is None and create:
            row = conn.execute(self._add_series, (symbol, timeframe, tier.name)).fetchone()
            if row is None:  # created concurrently by another process between the two statements
                row = conn.execute(self._find_series, key).fetchone()
        if row is None:
            return None
        sid = int(row[0])
        with self._lock:
            self._series[key] = sid
        return sid

    def series_ids(self, conn: Conn, keys: Sequence[tuple[str, str]]) -> list[int]:
        """Ids of many (symbol, timeframe) keys, creating the missing ones in one statement.

        Same rules as :meth:`series_id` with ``create=True``; one round trip for all the
        new series instead of two (and a commit) each.
        """
        with self._lock:
            # Sorted: two processes registering overlapping sets insert the shared keys in
            # the same order, so one waits for the other instead of deadlocking.
            missing = sorted({k for k in keys if k not in self._series})
        if missing:
            symbols = [k[0] for k in missing]
            timeframes = [k[1] for k in missing]
            tiers = [tier_of(tf).name for tf in timeframes]
            rows = conn.execute(self._add_many, (symbols, timeframes, tiers, symbols, timeframes)).fetchall()
            with self._lock:
                for symbol, timeframe, sid in rows:
                    self._series[(str(symbol), str(timeframe))] = int(sid)
                late = [k for k in missing if k not in self._series]
            for symbol, timeframe in late:  # created by another process after our snapshot
                self.series_id(conn, symbol, timeframe, create=True)
        with self._lock:
            return [self._series[k] for k in keys]

    def provider_ids(self, conn: Conn, names: Sequence[str | None]) -> list[int]:
        """Ids for provider ``names`` (``-1`` for ``None``), registering new names."""
        with self._lock:
            missing = [n for n in names if n is not None and n not in self._provider_ids]
        if missing:
            conn.execute(self._add_provider, (sorted(set(missing)),))
            self._reload(conn)
        with self._lock:
            return [-1 if n is None else self._provider_ids[n] for n in names]

    def provider_names(self, conn: Conn, needed: int = 0) -> list[str | None]:
        """Provider names indexed by id (reloaded if id ``needed`` is not cached yet)."""
        with self._lock:
            if needed < len(self._provider_names):
                return self._provider_names
        self._reload(conn)
        with self._lock:
            return self._provider_names

    def _reload(self, conn: Conn) -> None:
        rows = conn.execute(self._all_providers).fetchall()
        top = max((int(r[0]) for r in rows), default=0)
        if top >= _MAX_PROVIDERS:
            raise StorageError(f"too many distinct provider names ({top}); provider ids are 16-bit")
        names: list[str | None] = [None] * (top + 1)
        for pid, name in rows:
            names[int(pid)] = str(name)
        with self._lock:
            self._provider_names = names
            self._provider_ids = {str(n): i for i, n in enumerate(names) if n is not None}
