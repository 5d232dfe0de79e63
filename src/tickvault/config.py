"""Configuration, read once at the edge.

One frozen :class:`Settings` object, filled from keyword arguments, ``TICKVAULT_*``
environment variables and an optional ``tickvault.toml`` (in that order of precedence).
Library code receives a ``Settings``; it never reads ``os.environ`` itself. Provider keys
are :class:`pydantic.SecretStr`, so they never show in reprs or logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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
    cache_enabled
        Serve hot reads from the caches (``docs/cache.md``); ``False`` reads the store only.
    cache_bytes
        Budget of the in-process L1 cache in bytes (LRU beyond it).
    cache_ttls
        Seconds to keep cached entries per timeframe, e.g. ``{"1m": 30}``; unlisted
        timeframes keep one bar's duration (60 s for 1m, 300 s for 5m), between 1 s and 1 day.
    cache_prefix
        Namespace of Redis keys and event channels (``tickvault:``).
    cache_window
        Bars kept in a cached latest window per series (more when ``latest(n)`` asks for more).
    redis_timeout
        Socket timeout for Redis calls, in seconds; a slower Redis counts as unavailable.
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
    hard_rules: Annotated[tuple[str, ...], NoDecode] = DEFAULT_HARD_RULES
    revision_window_days: int = 2
    lock_timeout: float = 30.0
    #: Which providers to configure: "auto" (keyless ones plus every one whose API key is set),
    #: "none", or explicit names in order.
    providers: Annotated[tuple[str, ...], NoDecode] = ("auto",)
    #: Preference order per data kind, e.g. {"bars": ["polygon", "yahoo"], "*": ["yahoo"]}.
    provider_preference: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: Intraday bars younger than this are provisional (refetched when stale).
    revision_window_minutes: int = 60
    #: How long merged fundamentals are kept before providers are asked again.
    fundamentals_ttl_days: float = 7.0
    #: symbol (or "*") -> coarser timeframes kept stored and updated on every write to a finer one
    materialize: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # -- caches (docs/cache.md) --
    cache_enabled: bool = True
    cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    cache_ttls: dict[str, float] = Field(default_factory=dict)
    cache_prefix: str = "tickvault:"
    cache_window: int = Field(default=500, ge=1)
    redis_timeout: float = Field(default=0.25, gt=0)

    @field_validator("providers", "hard_rules", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """Accept ``yahoo,polygon`` as well as a JSON list in the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return tuple(json.loads(text))
            return tuple(v.strip() for v in text.split(",") if v.strip())
        return value

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
