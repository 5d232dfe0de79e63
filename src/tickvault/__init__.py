"""tickvault: market data you can trust.

>>> import tickvault
>>> vault = tickvault.open()                          # embedded store in ~/.tickvault
>>> vault.write("AAPL", "1d", frame)                  # validated, deduplicated, durable
>>> vault.bars("AAPL", "1d", "2024-01-01", "2024-06-30", adjust="splits")

The public surface is this module's ``__all__``; everything else may change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickvault import errors
from tickvault.config import Settings
from tickvault.errors import (
    CorruptData,
    FileFormatError,
    InvalidInput,
    InvalidSymbol,
    InvalidTimeframe,
    MissingData,
    ProviderError,
    SchemaError,
    StorageError,
    StoreLocked,
    TickvaultError,
)
from tickvault.model import (
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    QualityReport,
    Timeframe,
    TimeRange,
    WriteReceipt,
)

if TYPE_CHECKING:
    from tickvault.engine import BarEvent, CopyReport, FetchOutcome, ImportResult, SeriesStatus, Vault
    from tickvault.providers.base import Provider

# The engine (and with it pyarrow compute, calendars, quality rules) loads on first use, so
# `import tickvault.model` or a CLI `--help` stays fast.
_LAZY = {
    "BarEvent": "tickvault.engine",
    "CopyReport": "tickvault.engine",
    "FetchOutcome": "tickvault.engine",
    "ImportResult": "tickvault.engine",
    "SeriesStatus": "tickvault.engine",
    "Vault": "tickvault.engine",
    "Provider": "tickvault.providers.base",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tickvault' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0.dev0"

__all__ = [
    "BarEvent",
    "CopyReport",
    "CorporateAction",
    "CorruptData",
    "CoverageInterval",
    "CoverageState",
    "FetchOutcome",
    "FileFormatError",
    "ImportResult",
    "Instrument",
    "InvalidInput",
    "InvalidSymbol",
    "InvalidTimeframe",
    "MissingData",
    "Provider",
    "ProviderError",
    "QualityReport",
    "SchemaError",
    "SeriesStatus",
    "Settings",
    "StorageError",
    "StoreLocked",
    "TickvaultError",
    "TimeRange",
    "Timeframe",
    "Vault",
    "WriteReceipt",
    "__version__",
    "errors",
    "migrate",
    "open",
]


def open(
    path: str | Path | None = None,
    *,
    providers: Sequence[Provider] | None = None,
    settings: Settings | None = None,
    database_url: str | None = None,
    **overrides: Any,
) -> Vault:
    """Open (or create) a vault.

    Parameters
    ----------
    path
        Folder of the embedded store. Defaults to ``TICKVAULT_HOME`` or ``~/.tickvault``.
        ``":memory:"`` gives a throw-away in-memory vault.
    providers
        Data sources for read-through, in preference order. Default: built from
        ``Settings.providers`` (``TICKVAULT_PROVIDERS``: ``auto`` = keyless providers plus
        those whose ``TICKVAULT_<NAME>_API_KEY`` is set; ``none``; or names in order).
    settings
        A full :class:`Settings`; otherwise it is read from the environment and
        ``tickvault.toml``, with ``overrides`` applied.
    database_url
        ``postgresql://user@host:5432/dbname`` to keep everything in PostgreSQL instead
        of the embedded store (same as ``TICKVAULT_DATABASE_URL``; wins over ``settings``).

    Returns
    -------
    Vault
        The vault; use it as a context manager or call :meth:`Vault.close`.
    """
    import os

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from tickvault._wiring import build_providers, build_store
    from tickvault.engine import Vault

    memory = path == ":memory:"
    try:
        base = settings if settings is not None else Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise errors.ConfigError(f"invalid setting {where}: {first.get('msg', 'invalid value')}") from None
    except SettingsError as exc:
        raise errors.ConfigError(str(exc).splitlines()[0]) from None
    if path is not None and not memory:
        base = base.replace(home=Path(path).expanduser())
    if database_url is not None:
        base = base.replace(database_url=database_url)
    # The edge: provider settings come from the environment here, and nowhere in the library.
    chosen = list(providers) if providers is not None else build_providers(base, os.environ)
    store = build_store(base, memory=memory)
    return Vault(store, base, chosen)


def migrate(database_url: str | None = None, **overrides: Any) -> tuple[int, int]:
    """Create or upgrade the PostgreSQL schema in place.

    Parameters
    ----------
    database_url
        ``postgresql://...``; default ``TICKVAULT_DATABASE_URL``.

    Returns
    -------
    tuple[int, int]
        ``(from_version, to_version)``.

    Raises
    ------
    ConfigError
        No PostgreSQL URL configured, or psycopg missing.
    StorageError
        The server is unreachable or a step failed (the schema is left as it was).
    """
    from tickvault._wiring import migrate_database

    url = database_url
    if url is None:
        configured = Settings(**overrides).database_url
        if configured is None:
            raise errors.ConfigError("no database: pass database_url or set TICKVAULT_DATABASE_URL")
        url = configured.get_secret_value()
    return migrate_database(url)
