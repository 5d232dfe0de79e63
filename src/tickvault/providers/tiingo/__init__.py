"""The Tiingo provider: end-of-day bars with dividends and splits, IEX intraday bars, fundamentals.

End-of-day prices are stored raw with ``divCash`` / ``splitFactor`` as corporate actions;
IEX intraday bars are keyed by their open (as Tiingo stamps them) and carry IEX-only volume.
See :mod:`tickvault.providers.tiingo._transform` and ``docs/providers-more.md``.
"""

from tickvault.providers.tiingo._fundamentals import Fundamentals, daily_metrics, statements
from tickvault.providers.tiingo._provider import TiingoPlan, TiingoProvider, detail_error, instrument_from_meta
from tickvault.providers.tiingo._transform import (
    IEX_ROW_CAP,
    PROVIDER,
    daily_actions,
    daily_bars,
    daily_csv_bars,
    iex_bars,
)

__all__ = [
    "IEX_ROW_CAP",
    "PROVIDER",
    "Fundamentals",
    "TiingoPlan",
    "TiingoProvider",
    "daily_actions",
    "daily_bars",
    "daily_csv_bars",
    "daily_metrics",
    "detail_error",
    "iex_bars",
    "instrument_from_meta",
    "statements",
]
