"""The Polygon.io (Massive) provider: aggregates with cursor paging, splits and dividends.

Bars are requested raw (``adjusted=false``); splits and dividends come from the reference
endpoints and are returned as corporate actions. See
:mod:`tickvault.providers.polygon._transform` and ``docs/providers.md``.
"""

from tickvault.providers.polygon._provider import PolygonPlan, PolygonProvider, rebase
from tickvault.providers.polygon._transform import AggsPage, parse_aggs, parse_dividends, parse_splits

__all__ = ["AggsPage", "PolygonPlan", "PolygonProvider", "parse_aggs", "parse_dividends", "parse_splits", "rebase"]
