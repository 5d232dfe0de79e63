"""Canonical symbols <-> vendor spellings, and the allow-list every spelling passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import InvalidSymbol
from tickvault.model import AssetClass, Instrument
from tickvault.providers._symbols import canonical_symbol, vendor_symbol

FX = Instrument("EUR/USD", AssetClass.FX, calendar="24/5")


@pytest.mark.parametrize(("provider", "symbol", "instrument", "expected"), [
    ("yahoo", "BRK.B", None, "BRK-B"),
    ("yahoo", "BTC/USD", None, "BTC-USD"),
    ("yahoo", "EUR/USD", FX, "EURUSD=X"),
    ("yahoo", "^GSPC", None, "^GSPC"),
    ("yahoo", "OCDO", Instrument("OCDO", exchange="XLON"), "OCDO.L"),
    ("yahoo", "WSU", Instrument("WSU", exchange="XETR"), "WSU.DE"),
    ("yahoo", "GC", Instrument("GC", AssetClass.FUTURE, provider_symbols={"yahoo": "GC=F"}), "GC=F"),
    ("polygon", "BRK.B", None, "BRK.B"),
    ("polygon", "BTC/USD", None, "X:BTCUSD"),
    ("polygon", "EUR/USD", FX, "C:EURUSD"),
    ("polygon", "^SPX", None, "I:SPX"),
    ("alpaca", "BRK.B", None, "BRK.B"),
    ("alpaca", "BTC/USD", None, "BTC/USD"),
    ("tiingo", "BTC/USD", None, "btcusd"),
    ("tiingo", "BRK.B", None, "BRK-B"),
])
def test_vendor_spellings(provider: str, symbol: str, instrument: Instrument | None, expected: str) -> None:
    assert vendor_symbol(provider, symbol, instrument) == expected


@pytest.mark.parametrize(("provider", "vendor", "expected"), [
    ("yahoo", "BRK-B", "BRK.B"), ("yahoo", "BTC-USD", "BTC/USD"), ("yahoo", "EURUSD=X", "EUR/USD"),
    ("yahoo", "OCDO.L", "OCDO"), ("polygon", "X:BTCUSD", "BTC/USD"), ("polygon", "I:SPX", "^SPX"),
    ("polygon", "BRK.B", "BRK.B"),
])
def test_vendor_spellings_map_back(provider: str, vendor: str, expected: str) -> None:
    assert canonical_symbol(provider, vendor) == expected


@pytest.mark.parametrize("override", ["../etc/passwd", "A B", "AAPL?x=1", "AAPL&apikey=1", "A#B", "", "x" * 60])
def test_overrides_must_pass_the_allow_list(override: str) -> None:
    inst = Instrument("AAPL", provider_symbols={"yahoo": override})
    if not override:
        assert vendor_symbol("yahoo", "AAPL", inst) == "AAPL"  # an empty override is no override
        return
    with pytest.raises(InvalidSymbol):
        vendor_symbol("yahoo", "AAPL", inst)


@given(st.text(max_size=12))
def test_arbitrary_text_is_either_valid_or_rejected(text: str) -> None:
    for provider in ("yahoo", "polygon", "alpaca", "tiingo"):
        try:
            out = vendor_symbol(provider, text)
        except InvalidSymbol:
            continue
        assert all(c.isalnum() or c in ".-=^/:_" for c in out)
