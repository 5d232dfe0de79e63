"""Options and arguments shared by several commands, declared once so help reads the same."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

import tickvault
from tickvault.model import validate_symbol

__all__ = [
    "AdjustMode",
    "FetchMode",
    "SymbolArg",
    "TimeframeOpt",
    "canonical",
]


class AdjustMode(enum.StrEnum):
    """``--adjust``: how prices are adjusted on read."""

    none = "none"
    splits = "splits"
    all = "all"


class FetchMode(enum.StrEnum):
    """``--fetch``: whether missing bars are fetched from providers."""

    never = "never"
    auto = "auto"
    always = "always"


SymbolArg = Annotated[str, typer.Argument(help="Canonical symbol: AAPL, BRK.B, BTC/USDT, ^GSPC.",
                                          show_default=False)]
TimeframeOpt = Annotated[str, typer.Option("--timeframe", "-t", help="Bar timeframe: 1m 5m 15m 1h 1d 1w 1mo ...",
                                           show_default=False)]


def canonical(symbol: str, timeframe: str) -> tuple[str, str]:
    """Validate a symbol and timeframe before anything opens a file.

    Raises
    ------
    InvalidSymbol, InvalidTimeframe
        Exit code 2, one line.
    """
    return validate_symbol(symbol), str(tickvault.Timeframe.parse(timeframe))
