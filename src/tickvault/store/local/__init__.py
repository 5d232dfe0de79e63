"""The embedded store: Parquet files under one folder plus a SQLite catalog.

:class:`LocalStore` implements :class:`~tickvault.store.base.BarStore`; see
``docs/store.md`` for the layout, file format, crash safety and measured numbers.
:class:`FileSystem` is the seam through which every file-system write goes, exported so
fault-injection tests can subclass it.
"""

from tickvault.store.local._fs import FileSystem
from tickvault.store.local._store import LocalStore

__all__ = ["FileSystem", "LocalStore"]
