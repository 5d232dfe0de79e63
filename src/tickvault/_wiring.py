"""The one place that picks concrete backends from :class:`~tickvault.config.Settings`.

The engine only knows protocols; this module knows the implementations. Keeping the
choice here means a new backend is one branch in one function.
"""

from __future__ import annotations

from collections.abc import Sequence

from tickvault.config import Settings
from tickvault.errors import ConfigError
from tickvault.providers.base import Provider
from tickvault.store.base import BarStore

__all__ = ["build_store"]


def build_store(settings: Settings, *, memory: bool = False) -> BarStore:
    """Build the store named by ``settings``.

    Raises
    ------
    ConfigError
        For a database URL whose backend is not available yet.
    """
    if memory:
        from tickvault.store.memory import MemoryStore

        return MemoryStore()
    if settings.database_url is not None:
        raise ConfigError("the PostgreSQL store is not available yet; unset TICKVAULT_DATABASE_URL")
    from tickvault.store.local import LocalStore

    return LocalStore(settings.home, lock_timeout=settings.lock_timeout)


def default_providers(settings: Settings) -> Sequence[Provider]:
    """Providers configured by default (none until network providers land)."""
    return ()
