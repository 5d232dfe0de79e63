"""Crypto exchanges through ccxt: Binance, Coinbase, Kraken and OKX candles.

Named ``crypto`` (not ``ccxt``) so the package never shadows the ccxt library in readers'
minds or in relative imports. One :class:`CcxtProvider` (``name == "ccxt"``) serves several
exchanges; provenance is ``ccxt:<exchange>``. No-trade candles (volume 0, flat) become
``empty`` coverage instead of bars. See :mod:`tickvault.providers.crypto._provider` and
``docs/providers-more.md``.
"""

from tickvault.providers.crypto._errors import map_ccxt_error, require_ccxt
from tickvault.providers.crypto._provider import CcxtProvider, settings_name, transform_pages
from tickvault.providers.crypto._transform import OhlcvPage, crypto_coverage, ohlcv_bars, ohlcv_page
from tickvault.providers.crypto._venues import VENUES, Venue, canonical_symbol, market_id, static_market, venue

__all__ = [
    "VENUES",
    "CcxtProvider",
    "OhlcvPage",
    "Venue",
    "canonical_symbol",
    "crypto_coverage",
    "map_ccxt_error",
    "market_id",
    "ohlcv_bars",
    "ohlcv_page",
    "settings_name",
    "require_ccxt",
    "static_market",
    "transform_pages",
    "venue",
]
