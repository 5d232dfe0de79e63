"""Canonical symbols <-> each vendor's spelling (DESIGN §3).

Canonical: ``BRK.B`` (share class with a dot), ``BTC/USD`` (crypto/FX pairs), ``^GSPC``
(indices). Vendors differ:

==========  ==========  ===========  ============  ===========  ===================
canonical   Yahoo       Polygon      Alpaca        Tiingo       notes
==========  ==========  ===========  ============  ===========  ===================
BRK.B       BRK-B       BRK.B        BRK.B         BRK-B
BTC/USD     BTC-USD     X:BTCUSD     BTC/USD       btcusd
EUR/USD     EURUSD=X    C:EURUSD     (none)        eurusd
^GSPC       ^GSPC       I:GSPC       (none)        (none)       Polygon calls it I:SPX
OCDO @XLON  OCDO.L      (none)       (none)        (none)       Yahoo exchange suffix
==========  ==========  ===========  ============  ===========  ===================

Anything the rules cannot derive (futures such as Yahoo's ``GC=F``, Polygon's ``I:SPX``)
comes from :attr:`Instrument.provider_symbols` (``{"yahoo": "GC=F"}``), which always wins.
Every vendor spelling is checked against a strict allow-list before it touches a URL.
"""

from __future__ import annotations

import re

from tickvault.errors import InvalidSymbol
from tickvault.model import AssetClass, Instrument, validate_symbol

__all__ = ["YAHOO_SUFFIXES", "canonical_symbol", "vendor_symbol"]

_VENDOR_RE = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9.\-=^/:_]{0,39}\Z")

#: ISO 10383 MIC -> Yahoo's ticker suffix.
YAHOO_SUFFIXES: dict[str, str] = {
    "XLON": ".L", "XETR": ".DE", "XFRA": ".F", "XPAR": ".PA", "XAMS": ".AS", "XBRU": ".BR", "XMIL": ".MI",
    "XMAD": ".MC", "XSWX": ".SW", "XSTO": ".ST", "XHEL": ".HE", "XCSE": ".CO", "XOSL": ".OL", "XWBO": ".VI",
    "XTSE": ".TO", "XTSX": ".V", "XASX": ".AX", "XHKG": ".HK", "XTKS": ".T", "XKRX": ".KS", "XNSE": ".NS",
    "XBOM": ".BO", "XSES": ".SI", "XJSE": ".JO", "BVMF": ".SA", "XMEX": ".MX", "XDUB": ".IR", "XLIS": ".LS",
}


def _checked(vendor: str, provider: str) -> str:
    if not _VENDOR_RE.match(vendor) or ".." in vendor:
        shown = vendor.encode("unicode_escape").decode("ascii")[:50]
        raise InvalidSymbol(f"invalid {provider} symbol {shown!r}", provider=provider)
    return vendor


def vendor_symbol(provider: str, symbol: str, instrument: Instrument | None = None) -> str:
    """``symbol`` in ``provider``'s spelling.

    Parameters
    ----------
    provider
        ``yahoo``, ``polygon``, ``alpaca`` or ``tiingo`` (others: the canonical symbol).
    symbol
        Canonical symbol.
    instrument
        Reference data: asset class, exchange and explicit ``provider_symbols`` overrides.

    Raises
    ------
    InvalidSymbol
        If the symbol (or an override) fails the strict patterns.
    """
    sym = validate_symbol(symbol)
    inst = instrument if instrument is not None else Instrument.guess(sym)
    override = inst.provider_symbols.get(provider)
    if override:
        return _checked(override, provider)
    pair = sym.split(":", 1)[0].split("/", 1) if "/" in sym else None
    if provider == "yahoo":
        if pair is not None:
            base, quote = pair
            return _checked(f"{base}{quote}=X" if inst.asset_class == AssetClass.FX else f"{base}-{quote}", provider)
        if sym.startswith("^"):
            return _checked(sym, provider)
        suffix = YAHOO_SUFFIXES.get((inst.exchange or "").upper(), "")
        return _checked(sym.replace(".", "-") + suffix, provider)
    if provider == "polygon":
        if pair is not None:
            prefix = "C:" if inst.asset_class == AssetClass.FX else "X:"
            return _checked(prefix + "".join(pair), provider)
        if sym.startswith("^"):
            return _checked("I:" + sym[1:], provider)
        return _checked(sym, provider)
    if provider == "tiingo":
        if pair is not None:
            return _checked("".join(pair).lower(), provider)
        return _checked(sym.replace(".", "-"), provider)
    return _checked(sym if pair is None else "/".join(pair), provider)


def canonical_symbol(provider: str, vendor: str) -> str:
    """Best-effort inverse of :func:`vendor_symbol` (without instrument context).

    Raises
    ------
    InvalidSymbol
        If the result is not a valid canonical symbol.
    """
    v = _checked(vendor, provider)
    if provider == "yahoo":
        if v.endswith("=X") and len(v) == 8:
            return validate_symbol(f"{v[:3]}/{v[3:6]}")
        for suffix in sorted(set(YAHOO_SUFFIXES.values()), key=len, reverse=True):
            if v.upper().endswith(suffix.upper()):
                return validate_symbol(v[: -len(suffix)].replace("-", "."))
        if "-" in v and v.split("-")[-1] in {"USD", "USDT", "EUR", "BTC", "ETH", "GBP", "JPY", "USDC"}:
            base, quote = v.rsplit("-", 1)
            return validate_symbol(f"{base}/{quote}")
        return validate_symbol(v.replace("-", "."))
    if provider == "polygon":
        if v[:2] in ("X:", "C:") and len(v) >= 8:
            body = v[2:]
            return validate_symbol(f"{body[:-3]}/{body[-3:]}")
        if v.startswith("I:"):
            return validate_symbol("^" + v[2:])
        return validate_symbol(v)
    return validate_symbol(v)
