"""The Alpaca provider: Market Data v2 stock bars (``next_page_token`` paging, feed recorded
in provenance) and ``/v1beta1/corporate-actions`` splits and dividends. See
:mod:`tickvault.providers.alpaca._transform` and ``docs/providers.md``.
"""

from tickvault.providers.alpaca._provider import AlpacaPlan, AlpacaProvider
from tickvault.providers.alpaca._transform import BarsPage, parse_actions, parse_bars

__all__ = ["AlpacaPlan", "AlpacaProvider", "BarsPage", "parse_actions", "parse_bars"]
