"""The Financial Modeling Prep provider: daily bars stored raw, splits, dividends, fundamentals.

FMP's end-of-day prices are split-adjusted; the adapter restores as-traded prices with FMP's
own split list and returns the splits and cash dividends as corporate actions. See
:mod:`tickvault.providers.fmp._transform` and ``docs/providers-more.md``.
"""

from tickvault.providers.fmp._fundamentals import Fundamentals, income_statement, profile
from tickvault.providers.fmp._provider import (
    LATE_START_DAYS,
    WINDOW_DAYS,
    FmpPlan,
    FmpProvider,
    FmpRaw,
    message_error,
    vendor_symbol,
)
from tickvault.providers.fmp._transform import PROVIDER, dividends, eod_bars, split_actions, unadjust

__all__ = [
    "LATE_START_DAYS",
    "PROVIDER",
    "WINDOW_DAYS",
    "FmpPlan",
    "FmpProvider",
    "FmpRaw",
    "Fundamentals",
    "dividends",
    "eod_bars",
    "income_statement",
    "message_error",
    "profile",
    "split_actions",
    "unadjust",
    "vendor_symbol",
]
