"""Strict symbol validation: hostile input never reaches a path, key or query."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import InvalidSymbol
from tickvault.model import AssetClass, Instrument, symbol_path_component, validate_symbol

GOOD = ["AAPL", "BRK.B", "BTC/USDT", "EUR/USD", "XRP/USDT:USDT", "^GSPC", "7203", "RDS-A", "BF_B"]
HOSTILE = [
    "../x", "../../etc", "..", ".", "/", "", " ", "A" * 500, "A" * 41, "AAPL\x00", "AA\nPL", "AAPL\t", "\x1b[31m",
    "A';DROP TABLE bars;--", 'A"', "A`", "A*", "A?", "A[1]", "A{x}", "A B", "A/B/C", "A//B", "/AAPL", "AAPL/",
    "A..B", ".AAPL", "AAPL.", "A\\B", "A:B", "^", "^^A", "ÄPPLE", "A\u200bB", "A%2F", "A$", "A#", "A~", "A|B",
]


@pytest.mark.parametrize("symbol", GOOD)
def test_good_symbols_pass(symbol: str) -> None:
    assert validate_symbol(symbol) == symbol


def test_lower_case_is_canonicalised() -> None:
    assert validate_symbol("brk.b") == "BRK.B"
    assert validate_symbol("btc/usdt") == "BTC/USDT"


@pytest.mark.parametrize("symbol", HOSTILE)
def test_hostile_symbols_are_rejected(symbol: str) -> None:
    with pytest.raises(InvalidSymbol):
        validate_symbol(symbol)


@pytest.mark.parametrize("value", [None, 1, b"AAPL", ["AAPL"]])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidSymbol):
        validate_symbol(value)


def test_error_message_is_one_printable_line() -> None:
    with pytest.raises(InvalidSymbol) as info:
        validate_symbol("A\nB\x00")
    text = str(info.value)
    assert "\n" not in text
    assert "\x00" not in text


@given(st.text(max_size=60))
def test_any_accepted_symbol_is_path_and_key_safe(text: str) -> None:
    try:
        sym = validate_symbol(text)
    except InvalidSymbol:
        return
    comp = symbol_path_component(sym)
    assert ".." not in comp
    assert "/" not in comp
    assert "\\" not in comp
    assert comp not in (".", "")
    allowed = set(string.ascii_uppercase + string.digits + "._-%")
    assert set(comp) <= allowed
    assert not (set(sym) & set("*?[]{} \t\r\n'\";`$|&<>"))


def test_path_component_is_injective_on_examples() -> None:
    comps = {symbol_path_component(s) for s in GOOD}
    assert len(comps) == len(GOOD)


def test_instrument_guess_and_round_trip() -> None:
    assert Instrument.guess("BTC/USDT").asset_class is AssetClass.CRYPTO
    assert Instrument.guess("BTC/USDT").calendar == "24/7"
    assert Instrument.guess("EUR/USD").calendar == "24/5"
    assert Instrument.guess("aapl").symbol == "AAPL"
    inst = Instrument("BRK.B", exchange="XNYS", currency="USD", provider_symbols={"yahoo": "BRK-B"})
    assert Instrument.from_dict(inst.to_dict()) == inst
    with pytest.raises(InvalidSymbol):
        Instrument("../x")


@pytest.mark.parametrize("symbol", ["0\n", "AAPL\n", "BTC/USDT\n", "^GSPC\n"])
def test_a_trailing_newline_is_rejected(symbol: str) -> None:
    # Python's "$" also matches before a final newline: the patterns must anchor with \Z.
    with pytest.raises(InvalidSymbol):
        validate_symbol(symbol)
