"""Canonical symbols, their strict validation, and instrument records.

Canonical spelling (DESIGN §3): upper-case exchange tickers with ``.`` for share classes
(``BRK.B``), ``BASE/QUOTE`` for crypto and FX (``BTC/USDT``, ``EUR/USD``), optionally a
ccxt-style settle suffix (``XRP/USDT:USDT``), and ``^`` for indices (``^GSPC``).

Every symbol passes :func:`validate_symbol` before it touches a path, a cache key or a
query. The pattern is an allow-list: anything else — ``..``, slashes in the wrong place,
whitespace, control characters, quotes, ``*?[]`` globs, ``;`` — is rejected with
:class:`~tickvault.errors.InvalidSymbol`.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tickvault.errors import InvalidSymbol

__all__ = [
    "AssetClass",
    "Instrument",
    "InstrumentStatus",
    "symbol_path_component",
    "validate_symbol",
]

MAX_SYMBOL_LENGTH = 40
_PART = r"[A-Z0-9](?:[A-Z0-9_\-]|\.(?!\.)){0,19}"
_SYMBOL_RE = re.compile(rf"^\^?{_PART}(?:/{_PART}(?::{_PART})?)?\Z")


def validate_symbol(symbol: object) -> str:
    """Return the canonical form of ``symbol`` or raise :class:`InvalidSymbol`.

    Lower-case input is upper-cased; nothing else is rewritten.

    Parameters
    ----------
    symbol
        Candidate symbol, e.g. ``"aapl"``, ``"BRK.B"``, ``"BTC/USDT"``.

    Returns
    -------
    str
        The canonical symbol.

    Raises
    ------
    InvalidSymbol
        If ``symbol`` is not a string or does not match the strict pattern.
    """
    if not isinstance(symbol, str):
        raise InvalidSymbol(f"symbol must be a string, got {type(symbol).__name__}")
    if not symbol:
        raise InvalidSymbol("symbol is empty")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbol(f"symbol is longer than {MAX_SYMBOL_LENGTH} characters ({len(symbol)})")
    canonical = symbol.upper()
    if not _SYMBOL_RE.match(canonical) or canonical.endswith("."):
        shown = symbol.encode("unicode_escape").decode("ascii")
        raise InvalidSymbol(
            f"invalid symbol {shown!r}: use upper-case tickers like AAPL, BRK.B, BTC/USDT or ^GSPC"
        )
    return canonical


def symbol_path_component(symbol: str) -> str:
    """Return a file-system-safe, injective spelling of a *validated* symbol.

    ``BTC/USDT`` becomes ``BTC%2FUSDT``; ``^GSPC`` becomes ``%5EGSPC``.

    Raises
    ------
    InvalidSymbol
        If ``symbol`` is not canonical.
    """
    canonical = validate_symbol(symbol)
    return quote(canonical, safe="-_.")


class AssetClass(enum.StrEnum):
    """What kind of instrument a symbol is."""

    EQUITY = "equity"
    ETF = "etf"
    INDEX = "index"
    CRYPTO = "crypto"
    FX = "fx"
    FUTURE = "future"
    OTHER = "other"


class InstrumentStatus(enum.StrEnum):
    """Listing status of an instrument."""

    ACTIVE = "active"
    DELISTED = "delisted"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Instrument:
    """Reference data for one symbol.

    Parameters
    ----------
    symbol
        Canonical symbol (validated on construction).
    asset_class
        Kind of instrument.
    exchange
        ISO 10383 MIC (``XNYS``, ``XNAS``, ``XLON``) or a venue name for crypto.
    currency
        Quote currency (ISO 4217, or the crypto quote asset).
    calendar
        Calendar name understood by :func:`tickvault.calendars.get_calendar`.
    status
        Listing status.
    listed, delisted
        First and last trading dates when known.
    name
        Display name.
    provider_symbols
        Provider name -> that provider's spelling (``{"yahoo": "BRK-B"}``).
    """

    symbol: str
    asset_class: AssetClass = AssetClass.EQUITY
    exchange: str | None = None
    currency: str | None = None
    calendar: str = "XNYS"
    status: InstrumentStatus = InstrumentStatus.ACTIVE
    listed: dt.date | None = None
    delisted: dt.date | None = None
    name: str | None = None
    provider_symbols: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", validate_symbol(self.symbol))
        object.__setattr__(self, "asset_class", AssetClass(self.asset_class))
        object.__setattr__(self, "status", InstrumentStatus(self.status))

    @classmethod
    def guess(cls, symbol: str) -> Instrument:
        """A best-effort default record for a symbol nobody described yet.

        ``BASE/QUOTE`` pairs whose quote is a three-letter fiat code are FX on the 24/5
        calendar; other pairs are crypto on 24/7; everything else is a US equity on XNYS.
        """
        sym = validate_symbol(symbol)
        if "/" in sym:
            base, quote_ = sym.split("/", 1)
            quote_ = quote_.split(":", 1)[0]
            fiat = {"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK"}
            if base in fiat and quote_ in fiat:
                return cls(sym, AssetClass.FX, None, quote_, "24/5")
            return cls(sym, AssetClass.CRYPTO, None, quote_, "24/7")
        if sym.startswith("^"):
            return cls(sym, AssetClass.INDEX, None, "USD", "XNYS")
        return cls(sym, AssetClass.EQUITY, None, "USD", "XNYS")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (dates as ISO strings)."""
        return {
            "symbol": self.symbol,
            "asset_class": str(self.asset_class),
            "exchange": self.exchange,
            "currency": self.currency,
            "calendar": self.calendar,
            "status": str(self.status),
            "listed": self.listed.isoformat() if self.listed else None,
            "delisted": self.delisted.isoformat() if self.delisted else None,
            "name": self.name,
            "provider_symbols": dict(self.provider_symbols),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instrument:
        """Inverse of :meth:`to_dict`."""
        def _date(v: Any) -> dt.date | None:
            return dt.date.fromisoformat(v) if v else None

        return cls(
            symbol=data["symbol"],
            asset_class=AssetClass(data.get("asset_class", "equity")),
            exchange=data.get("exchange"),
            currency=data.get("currency"),
            calendar=data.get("calendar", "XNYS"),
            status=InstrumentStatus(data.get("status", "active")),
            listed=_date(data.get("listed")),
            delisted=_date(data.get("delisted")),
            name=data.get("name"),
            provider_symbols=dict(data.get("provider_symbols") or {}),
        )
