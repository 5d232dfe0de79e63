"""The Yahoo Finance provider (v8 chart API): bars, splits and dividends, no key needed.

Yahoo's ``close`` is split-adjusted and ``adjclose`` also dividend-adjusted; the adapter
returns raw (as-traded) prices by undoing the splits Yahoo reports, and the splits and
dividends as corporate actions, so ``adjust="splits"`` reproduces Yahoo's ``close`` and
``adjust="all"`` its ``adjclose``. See :mod:`tickvault.providers.yahoo._transform` and
``docs/providers.md``. Fundamentals come from quoteSummary and the fundamentals time series
(:mod:`tickvault.providers.yahoo._fundamentals`), after Yahoo's cookie + crumb handshake
(:mod:`tickvault.providers.yahoo._crumb`).
"""

from tickvault.providers.yahoo._fundamentals import quote_summary, series_types, timeseries, transform_fundamentals
from tickvault.providers.yahoo._provider import YahooPlan, YahooProvider
from tickvault.providers.yahoo._transform import ChartPage, parse_chart, raw_actions, transform_chart

__all__ = [
    "ChartPage",
    "YahooPlan",
    "YahooProvider",
    "parse_chart",
    "quote_summary",
    "raw_actions",
    "series_types",
    "timeseries",
    "transform_chart",
    "transform_fundamentals",
]
