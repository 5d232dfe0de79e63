"""The Alpha Vantage provider: daily (adjusted) and intraday bars, splits, dividends, fundamentals.

The store keeps raw prices: daily bars come from ``TIME_SERIES_DAILY_ADJUSTED``'s raw
columns with its dividend amounts and split coefficients as corporate actions, intraday bars
from ``TIME_SERIES_INTRADAY`` with ``adjusted=false``. Alpha Vantage stamps intraday bars at
their end in naive US/Eastern time; keys here are bar opens in UTC. See
:mod:`tickvault.providers.alphavantage._transform` and ``docs/providers-more.md``.
"""

from tickvault.providers.alphavantage._errors import body_error
from tickvault.providers.alphavantage._fundamentals import Fundamentals, income_statement, overview
from tickvault.providers.alphavantage._provider import AlphaVantagePlan, AlphaVantageProvider, Page
from tickvault.providers.alphavantage._transform import (
    PROVIDER,
    Series,
    parse_csv,
    parse_json,
    series_actions,
    series_bars,
)

__all__ = [
    "PROVIDER",
    "AlphaVantagePlan",
    "AlphaVantageProvider",
    "Fundamentals",
    "Page",
    "Series",
    "body_error",
    "income_statement",
    "overview",
    "parse_csv",
    "parse_json",
    "series_actions",
    "series_bars",
]
