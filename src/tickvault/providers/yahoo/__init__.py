"""The Yahoo Finance provider (v8 chart API): bars, splits and dividends, no key needed.

Yahoo's ``close`` is split-adjusted and ``adjclose`` also dividend-adjusted; the adapter
returns raw (as-traded) prices by undoing the splits Yahoo reports, and the splits and
dividends as corporate actions, so ``adjust="splits"`` reproduces Yahoo's ``close`` and
``adjust="all"`` its ``adjclose``. See :mod:`tickvault.providers.yahoo._transform` and
``docs/providers.md``.
"""

from tickvault.providers.yahoo._provider import YahooPlan, YahooProvider
from tickvault.providers.yahoo._transform import ChartPage, parse_chart, raw_actions, transform_chart

__all__ = ["ChartPage", "YahooPlan", "YahooProvider", "parse_chart", "raw_actions", "transform_chart"]
