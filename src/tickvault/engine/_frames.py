"""Conversions at the edge of the engine: Arrow in, pandas / polars / Arrow out.

Arrow is the currency between layers; users get pandas by default (DESIGN §3: a UTC
``DatetimeIndex`` named ``ts`` for one symbol, a ``symbol`` column for several).
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from tickvault.errors import InvalidInput

__all__ = ["Format", "to_format"]

Format = Literal["pandas", "polars", "arrow"]


def to_format(table: pa.Table, fmt: str, *, index: bool = True) -> Any:
    """Return ``table`` as pandas (default), polars or Arrow.

    Parameters
    ----------
    table
        Bars (or any table with a ``ts`` column).
    fmt
        ``"pandas"``, ``"polars"`` or ``"arrow"``.
    index
        For pandas, make ``ts`` the index (one-symbol frames).

    Raises
    ------
    InvalidInput
        For an unknown format, or polars requested but not installed.
    """
    if fmt == "arrow":
        return table
    if fmt == "pandas":
        df = table.to_pandas()
        if index and "ts" in df.columns:
            df = df.set_index("ts")
        return df
    if fmt == "polars":
        try:
            import polars as pl
        except ImportError:  # pragma: no cover - depends on the environment
            raise InvalidInput("format='polars' needs polars: pip install 'tickvault[polars]'") from None
        return pl.from_arrow(table)
    raise InvalidInput(f"unknown format {fmt!r}; use 'pandas', 'polars' or 'arrow'")


def empty_like_index() -> pd.DatetimeIndex:
    """An empty UTC index named ``ts``."""
    return pd.DatetimeIndex([], tz="UTC", name="ts")
