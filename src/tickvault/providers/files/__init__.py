"""The ``files`` provider: import OHLCV files in the layouts people already have.

:func:`read_file` recognises the layout of a CSV (plain or compressed), Parquet or Feather
file automatically (yfinance, Yahoo, backtrader, zipline, freqtrade, Binance, nautilus,
Alpha Vantage, pandas exports, generic OHLCV), streams it as canonical bars in bounded
memory and collects splits and dividends. :class:`FilesProvider` serves a folder of such
files through the :class:`~tickvault.providers.base.Provider` protocol. See
``docs/files-provider.md``.
"""

from tickvault.providers.files._convert import SkippedRows
from tickvault.providers.files._import import FileImport, detect_layout, read_file
from tickvault.providers.files._layouts import LAYOUTS
from tickvault.providers.files._provider import FilesProvider

__all__ = ["LAYOUTS", "FileImport", "FilesProvider", "SkippedRows", "detect_layout", "read_file"]
