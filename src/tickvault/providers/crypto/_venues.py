"""What tickvault knows about each crypto exchange it reaches through ccxt.

One :class:`Venue` per exchange: the ccxt id, the public API host, the most candles ccxt
fetches per request, the native timeframes, how far back the exchange serves candles, and
how it spells symbols. Canonical symbols are ``BASE/QUOTE`` (DESIGN §3); exchanges spell
them ``BTCUSDT`` (Binance), ``BTC-USD`` (Coinbase), ``XBTUSDT`` (Kraken: ``XBT`` for
bitcoin, ``XDG`` for dogecoin) and ``BTC-USDT`` (OKX).

:func:`market_id` / :func:`canonical_symbol` convert, and :func:`static_market` builds the
minimal ccxt market record (id, symbol, base, quote, spot) that lets ccxt work without
downloading the exchange's market list — for replayed tests and offline use. In production
the markets come from the exchange (``markets="exchange"``), which also knows the legacy
Kraken ids (``XXBTZUSD`` for BTC/USD) that these rules cannot derive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tickvault.errors import InvalidSymbol, ProviderResponseError, UnsupportedRequest
from tickvault.model import validate_symbol

__all__ = ["VENUES", "Venue", "candle_rows", "canonical_symbol", "market_id", "static_market", "venue"]

# Quote assets tried longest first when splitting a concatenated id such as BTCUSDT.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BRL", "AUD",
           "CAD", "CHF", "BTC", "ETH", "BNB", "XBT", "SOL")


@dataclass(frozen=True)
class Venue:
    """One exchange reachable through ccxt.

    Parameters
    ----------
    id
        ccxt exchange id (``binance``).
    base_url
        Public REST origin ccxt talks to (overridable per provider settings).
    page_limit
        Candles asked for per ``fetch_ohlcv`` call (the exchange's maximum through ccxt).
    timeframes
        Canonical timeframe -> ccxt timeframe string.
    history_bars
        How many recent candles the exchange serves at all (Kraken: 720), ``None``: unlimited.
    separator
        Between base and quote in the exchange's id (``""``, ``"-"``).
    aliases
        Canonical asset -> exchange asset code (Kraken ``BTC`` -> ``XBT``).
    rate_limit_per_minute
        Default request budget (public endpoints).
    send_limit
        Whether ``limit`` is passed to ccxt. Kraken's endpoint has no limit parameter and
        ccxt would only cut its answer client-side (dropping the newest candle of 721).
    rows_path
        Where the candle array sits in the exchange's JSON answer (``"{id}"``: the market id).
        The adapter re-parses that array with ccxt's own row parser but *without* ccxt's
        ``since``/``limit`` filtering, so candles an exchange sent from before the cursor are
        seen (and reported) instead of silently dropped.
    """

    id: str
    base_url: str
    page_limit: int
    timeframes: dict[str, str]
    history_bars: int | None = None
    separator: str = ""
    aliases: dict[str, str] | None = None
    rate_limit_per_minute: float = 600.0
    send_limit: bool = True
    rows_path: tuple[str, ...] = ()


VENUES: dict[str, Venue] = {
    "binance": Venue(
        "binance", "https://api.binance.com", 1000,
        {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "4h": "4h", "1d": "1d", "1w": "1w",
         "1mo": "1M"},
        rate_limit_per_minute=1200.0,
    ),
    "coinbase": Venue(
        "coinbase", "https://api.coinbase.com", 300,
        {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "1d": "1d"},
        separator="-", rate_limit_per_minute=600.0, rows_path=("candles",),
    ),
    "kraken": Venue(
        "kraken", "https://api.kraken.com", 720,
        {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "4h": "4h", "1d": "1d"},
        history_bars=720, aliases={"BTC": "XBT", "DOGE": "XDG"}, rate_limit_per_minute=60.0, send_limit=False,
        rows_path=("result", "{id}"),
    ),
    "okx": Venue(
        "okx", "https://www.okx.com", 100,
        {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "4h": "4h", "1d": "1d", "1w": "1w",
         "1mo": "1M"},
        separator="-", rate_limit_per_minute=600.0, rows_path=("data",),
    ),
}


def venue(exchange: str) -> Venue:
    """The :class:`Venue` of a ccxt exchange id.

    Raises
    ------
    UnsupportedRequest
        For an exchange tickvault has no settings for.
    """
    v = VENUES.get(exchange.strip().lower()) if isinstance(exchange, str) else None
    if v is None:
        raise UnsupportedRequest(f"exchange {str(exchange)[:30]!r} is not supported; use one of {', '.join(VENUES)}",
                                 provider="ccxt")
    return v


def _pair(symbol: str) -> tuple[str, str]:
    sym = validate_symbol(symbol)
    if "/" not in sym or ":" in sym:
        raise InvalidSymbol(f"{sym!r} is not a spot crypto pair like BTC/USDT", provider="ccxt")
    base, quote = sym.split("/", 1)
    return base, quote


def market_id(v: Venue, symbol: str) -> str:
    """The exchange's id of a canonical spot pair (``BTC/USDT`` -> ``XBTUSDT`` on Kraken).

    Raises
    ------
    InvalidSymbol
        If ``symbol`` is not a ``BASE/QUOTE`` pair.
    """
    base, quote = _pair(symbol)
    aliases = v.aliases or {}
    return f"{aliases.get(base, base)}{v.separator}{aliases.get(quote, quote)}"


def canonical_symbol(v: Venue, vendor_id: str) -> str:
    """Inverse of :func:`market_id` (``BTCUSDT`` -> ``BTC/USDT``).

    Raises
    ------
    InvalidSymbol
        If the id cannot be split into a known base and quote.
    """
    back = {code: canonical for canonical, code in (v.aliases or {}).items()}
    raw = vendor_id.strip().upper()
    if v.separator:
        parts = raw.split(v.separator)
        if len(parts) != 2 or not all(parts):
            raise InvalidSymbol(f"cannot split {vendor_id[:30]!r} on {v.separator!r}", provider=f"ccxt:{v.id}")
        base, quote = parts
    else:
        quote = next((q for q in _QUOTES if raw.endswith(q) and len(raw) > len(q)), "")
        if not quote:
            raise InvalidSymbol(f"cannot find the quote asset in {vendor_id[:30]!r}", provider=f"ccxt:{v.id}")
        base = raw[: -len(quote)]
    return validate_symbol(f"{back.get(base, base)}/{back.get(quote, quote)}")


def static_market(v: Venue, symbol: str) -> dict[str, Any]:
    """A minimal ccxt spot market record for ``symbol`` (enough for ``fetch_ohlcv``).

    Raises
    ------
    InvalidSymbol
        If ``symbol`` is not a ``BASE/QUOTE`` pair.
    """
    base, quote = _pair(symbol)
    aliases = v.aliases or {}
    return {
        "id": market_id(v, symbol), "symbol": f"{base}/{quote}", "base": base, "quote": quote,
        "baseId": aliases.get(base, base), "quoteId": aliases.get(quote, quote), "type": "spot", "spot": True,
        "margin": False, "swap": False, "future": False, "option": False, "contract": False, "linear": None,
        "inverse": None, "active": True, "info": {},
    }


def candle_rows(v: Venue, payload: Any, vendor_id: str) -> list[Any]:
    """The raw candle array of an exchange's JSON answer (see :attr:`Venue.rows_path`).

    Raises
    ------
    ProviderResponseError
        If the answer does not have the array where the exchange puts it.
    """
    node = payload
    for step in v.rows_path:
        key = vendor_id if step == "{id}" else step
        if not isinstance(node, dict) or key not in node:
            raise ProviderResponseError(f"answer has no {key!r} member", provider=f"ccxt:{v.id}", field=key)
        node = node[key]
    if not isinstance(node, list):
        raise ProviderResponseError(f"candles are not an array ({type(node).__name__})", provider=f"ccxt:{v.id}")
    return node
