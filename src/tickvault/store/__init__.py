"""Storage backends behind the :class:`~tickvault.store.base.BarStore` protocol."""

from tickvault.store.base import QUARANTINE_SCHEMA, BarStore, SeriesInfo, VerifyReport
from tickvault.store.memory import MemoryStore

__all__ = ["QUARANTINE_SCHEMA", "BarStore", "MemoryStore", "SeriesInfo", "VerifyReport"]
