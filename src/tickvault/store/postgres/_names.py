"""Every SQL identifier the PostgreSQL store uses, from allow-lists only.

User input never reaches SQL text: symbols and timeframe strings travel as query
parameters. The few identifiers that vary (the schema name, the bars table of a
timeframe, partition names) are built here from fixed mappings and digits, checked
against strict patterns, and quoted with :class:`psycopg.sql.Identifier` anyway.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from psycopg import sql

from tickvault.errors import ConfigError, InvalidTimeframe
from tickvault.model import Timeframe

__all__ = [
    "TIERS",
    "Period",
    "Tier",
    "period_of",
    "tier_of",
    "validate_schema_name",
]

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def validate_schema_name(name: str) -> str:
    """Return ``name`` if it is a safe PostgreSQL schema name, else raise.

    Raises
    ------
    ConfigError
        Unless ``name`` is lower-case letters, digits and underscores (max 48 chars),
        not starting with a digit and not a reserved ``pg_`` name.
    """
    if not isinstance(name, str) or not _SCHEMA_RE.match(name) or name.startswith("pg_"):
        raise ConfigError(f"invalid PostgreSQL schema name {name!r}: use lower-case letters, digits and _")
    return name


@dataclass(frozen=True)
class Tier:
    """One partitioned bars table and how it is cut into partitions.

    Intraday bars (seconds, minutes, hours) go to monthly partitions; session bars
    (days, weeks, months) to yearly ones, so a table never holds thousands of tiny
    partitions of daily history nor one giant partition of minute bars.
    """

    name: str
    table: str
    months_per_partition: int

    def ident(self, schema: str) -> sql.Composed:
        """The schema-qualified parent table."""
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(self.table))


INTRADAY = Tier("intraday", "bars_intraday", 1)
SESSION = Tier("session", "bars_session", 12)
#: The allow-list: the only bars tables that exist.
TIERS: dict[str, Tier] = {INTRADAY.name: INTRADAY, SESSION.name: SESSION}
_TIER_BY_UNIT = {"s": INTRADAY, "m": INTRADAY, "h": INTRADAY, "d": SESSION, "w": SESSION, "mo": SESSION}


def tier_of(timeframe: str) -> Tier:
    """The bars table for ``timeframe`` (by unit, from the allow-list).

    Raises
    ------
    InvalidTimeframe
        If ``timeframe`` does not parse.
    """
    tf = Timeframe.parse(timeframe)
    tier = _TIER_BY_UNIT.get(tf.unit)
    if tier is None:  # pragma: no cover - Timeframe.parse only yields known units
        raise InvalidTimeframe(f"no bars table for timeframe {timeframe!r}")
    return tier


@dataclass(frozen=True, order=True)
class Period:
    """One partition: ``[start, end)`` months of a tier, named from digits only."""

    tier_name: str
    start_month: int  # months since year 0: year * 12 + (month - 1)

    @property
    def tier(self) -> Tier:
        """The tier this period partitions."""
        return TIERS[self.tier_name]

    @property
    def start(self) -> dt.date:
        """First day of the partition."""
        return dt.date(self.start_month // 12, self.start_month % 12 + 1, 1)

    @property
    def end(self) -> dt.date | None:
        """First day after the partition (``None`` past year 9999: the range is open)."""
        m = self.start_month + self.tier.months_per_partition
        return dt.date(m // 12, m % 12 + 1, 1) if m // 12 <= 9999 else None

    @property
    def table(self) -> str:
        """Partition table name, e.g. ``bars_intraday_p202401`` or ``bars_session_p2024``."""
        d = self.start
        suffix = f"{d.year:04d}{d.month:02d}" if self.tier.months_per_partition == 1 else f"{d.year:04d}"
        name = f"{self.tier.table}_p{suffix}"
        if not re.fullmatch(r"bars_(intraday|session)_p\d{4,6}", name):  # pragma: no cover - by construction
            raise ConfigError(f"refusing unexpected partition name {name!r}")
        return name

    def ident(self, schema: str) -> sql.Composed:
        """The schema-qualified partition table."""
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(self.table))


def period_of(tier: Tier, year: int, month: int) -> Period:
    """The partition of ``tier`` holding the given month (1-12)."""
    m = year * 12 + (month - 1)
    return Period(tier.name, m - m % tier.months_per_partition)
