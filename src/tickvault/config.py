"""Configuration, read once at the edge.

One frozen :class:`Settings` object, filled from keyword arguments, ``TICKVAULT_*``
environment variables and an optional ``tickvault.toml`` (in that order of precedence).
Library code receives a ``Settings``; it never reads ``os.environ`` itself. Provider keys
are :class:`pydantic.SecretStr`, so they never show in reprs or logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

__all__ = ["DEFAULT_HARD_RULES", "Settings"]

#: Quality rules whose failures are quarantined by default (see :mod:`tickvault.quality`).
DEFAULT_HARD_RULES: tuple[str, ...] = (
    "required_columns",
    "non_finite_price",
    "non_positive_price",
    "negative_volume",
    "ohlc_consistency",
    "duplicate_ts",
    "misaligned_ts",
    "unit_jump",
)


class Settings(BaseSettings):
    """Everything configurable in tickvault.

    Parameters
    ----------
    home
        Root folder of the embedded store (``TICKVAULT_HOME``, default ``~/.tickvault``).
    database_url
        ``postgresql://...`` to use the PostgreSQL store instead of the embedded one.
    redis_url
        ``redis://...`` for the L2 cache and the event bus.
    hard_rules
        Quality rules whose failing rows are quarantined instead of stored.
    revision_window_days
        Bars younger than this are ``provisional`` and re-fetched when stale.
    lock_timeout
        Seconds a writer waits for another writer of the same series.
    """

    model_config = SettingsConfigDict(
        env_prefix="TICKVAULT_",
        frozen=True,
        extra="ignore",
        toml_file="tickvault.toml",
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".tickvault")
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    hard_rules: tuple[str, ...] = DEFAULT_HARD_RULES
    revision_window_days: int = 2
    lock_timeout: float = 30.0
    provider_preference: tuple[str, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: keyword arguments, environment, ``tickvault.toml``."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        data = self.model_dump()
        data.update(changes)
        return Settings(**data)
