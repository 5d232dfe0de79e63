"""``ServiceSettings``: everything the HTTP service needs beyond the vault's own settings.

Read once at the edge (``tickvault serve`` builds it from ``TICKVAULT_SERVICE_*`` variables and
``TICKVAULT_API_KEYS``); :func:`tickvault.service.create_app` receives it. It is a separate object
from :class:`tickvault.Settings` because a library user who never serves HTTP should not see
request limits and API keys in their configuration.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiKeyEntry", "Role", "ServiceSettings"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class Role(enum.StrEnum):
    """What an API key may do; each role includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for read, 1 for write, 2 for admin."""
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether a key with this role may call an endpoint that needs ``needed``."""
        return self.rank >= needed.rank


_RANKS = {Role.READ: 0, Role.WRITE: 1, Role.ADMIN: 2}


class ApiKeyEntry(BaseModel):
    """One configured API key: a name, a role and the SHA-256 of the key (never the key).

    Parameters
    ----------
    name
        Identifier shown in logs and metrics (``[A-Za-z0-9._-]``, at most 64 characters).
    role
        ``read``, ``write`` or ``admin``.
    sha256
        Lower-case hex SHA-256 of the key. Keys are 256-bit random tokens, so an unsalted
        hash is as strong as the token itself (the GitHub-token model); see docs/service.md.
    created
        ISO timestamp of creation, informational.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Role
    sha256: str
    created: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("key name must be 1-64 characters of letters, digits, '.', '_' or '-'")
        return v

    @field_validator("sha256")
    @classmethod
    def _check_hash(cls, v: str) -> str:
        v = v.strip().lower()
        if not _SHA256_RE.match(v):
            raise ValueError("sha256 must be 64 hex characters (the hash of the key, never the key)")
        return v


class ServiceSettings(BaseSettings):
    """Configuration of the HTTP service (environment: ``TICKVAULT_SERVICE_<FIELD>``).

    Parameters
    ----------
    api_keys
        Hashed keys (``TICKVAULT_API_KEYS``: a JSON list of ``{name, role, sha256}``), in
        addition to the keys file.
    keys_file
        JSON file of hashed keys written by ``tickvault keys add`` (default
        ``<vault home>/service/api_keys.json``). Re-read when it changes.
    read_requires_key
        Whether reads (bars, instruments, health details, metrics, the stream) need a key
        with the ``read`` role. Writes, fetches and admin calls always need a key.
    max_body_bytes
        Largest accepted request body (413 beyond it, refused before it is read).
    max_rows
        Most rows one request may read or write (latest ``n``, the rows a range can hold,
        the rows of an ingest body).
    max_range_days
        Longest time range one request may name.
    max_symbols
        Most symbols in one request (several-symbol reads, fetches).
    max_fetch_bars
        Most bars (by the range's length in bars) one fetch or backfill request may ask
        providers for, per symbol.
    rate_limit_per_minute, rate_limit_burst
        Token bucket per API key (per client address without a key); 0 disables it.
    latest_cache_seconds, latest_cache_entries
        Pre-serialised latest-N responses: how long one may be served (events from the
        vault's bus invalidate it sooner) and how many are kept. 0 seconds disables it.
    stream_threshold_rows
        Tabular responses with more rows are streamed in chunks of this many rows.
    stream_heartbeat_seconds, stream_max_subscriptions, stream_queue_size
        WebSocket stream: heartbeat period, patterns per connection, messages buffered
        for a slow client before it is disconnected.
    static_dir
        Folder served at ``/`` (default: the package's ``static`` folder).
    redact
        Extra secret values that must never appear in a response or a log line (the edge
        adds provider keys and database/Redis passwords here).
    """

    model_config = SettingsConfigDict(env_prefix="TICKVAULT_SERVICE_", frozen=True, extra="ignore",
                                      populate_by_name=True)

    api_keys: tuple[ApiKeyEntry, ...] = Field(
        default=(), validation_alias=AliasChoices("api_keys", "TICKVAULT_API_KEYS", "TICKVAULT_SERVICE_API_KEYS"))
    keys_file: Path | None = None
    read_requires_key: bool = False
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=200_000, ge=1)
    max_range_days: int = Field(default=36_600, ge=1)
    max_symbols: int = Field(default=50, ge=1)
    max_fetch_bars: int = Field(default=5_000_000, ge=1)
    rate_limit_per_minute: float = Field(default=1200.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    latest_cache_seconds: float = Field(default=2.0, ge=0)
    latest_cache_entries: int = Field(default=1024, ge=0)
    stream_threshold_rows: int = Field(default=50_000, ge=1)
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    stream_max_subscriptions: int = Field(default=100, ge=1)
    stream_queue_size: int = Field(default=1000, ge=1)
    static_dir: Path | None = None
    redact: tuple[SecretStr, ...] = ()

    def replace(self, **changes: Any) -> ServiceSettings:
        """A validated copy with some fields changed."""
        data = {k: getattr(self, k) for k in type(self).model_fields}
        data.update(changes)
        return ServiceSettings(**data)
