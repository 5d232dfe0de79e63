"""Pure transform of Financial Modeling Prep payloads to raw bars and corporate actions (fuzzed).

FMP's conventions, and what this module does about them:

- **End-of-day prices** (``/stable/historical-price-eod/full``): a JSON array of objects,
  newest first, ``date`` as ``YYYY-MM-DD`` (that date at 00:00 UTC is the session key).
  ``open high low close volume`` are **split-adjusted** (FMP serves unadjusted prices on a
  separate ``non-split-adjusted`` endpoint), so :func:`unadjust` multiplies every bar before a
  split's ex-date by the split ratio (volume divided) using FMP's own split list — the store
  keeps raw prices (DESIGN §3) and ``adjust="splits"`` gives FMP's numbers back. FMP's
  ``vwap`` field is the mean of open, high, low and close, not a volume-weighted price, so it
  is not stored; ``change`` / ``changePercent`` are derived and dropped.
- **Splits**: ``/stable/splits`` (array of ``{date, numerator, denominator}``) or the older
  ``/api/v3/historical-price-full/stock_split/{symbol}`` (``{"symbol", "historical": [...]}``).
  ``date`` is the ex-date; ratio = numerator / denominator (new shares per old share).
- **Dividends**: ``/stable/dividends`` or ``/api/v3/historical-price-full/stock_dividend/{symbol}``;
  ``date`` is the ex-date, ``dividend`` the cash paid at the time (``adjDividend`` is
  split-adjusted and not used).

Every surprise raises :class:`~tickvault.errors.ProviderResponseError`, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import ProviderResponseError
from tickvault.model import ActionKind, CorporateAction
from tickvault.providers._http import DAY_US, bars_table, column, float_column, record_columns

__all__ = ["PROVIDER", "dividends", "eod_bars", "split_actions", "unadjust"]

PROVIDER = "fmp"


def _bad(message: str, where: str, **context: Any) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where, **context)


def _days(values: Any, where: str) -> np.ndarray:
    """``YYYY-MM-DD`` strings -> epoch µs at 00:00 UTC."""
    arr: Any = values if isinstance(values, pa.Array) else None
    if arr is None or not pa.types.is_string(arr.type) or arr.null_count:
        raise _bad("dates must be YYYY-MM-DD strings", where)
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    if not pc.all(pc.equal(pc.utf8_length(arr), pa.scalar(10, pa.int32()))).as_py():
        raise _bad("dates must be YYYY-MM-DD", where)
    try:
        parsed = pc.strptime(arr, format="%Y-%m-%d", unit="us", error_is_null=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _bad("dates must be YYYY-MM-DD", where) from None
    return np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _check_symbol(cols: dict[str, Any], vendor: str | None, where: str) -> None:
    if vendor is None or "symbol" not in cols:
        return
    sym: Any = cols["symbol"]
    if not pa.types.is_string(sym.type):
        raise _bad("symbol is not text", f"{where}.symbol")
    if not pc.all(pc.equal(pc.utf8_upper(sym.fill_null("")), pa.scalar(vendor.upper()))).as_py():
        raise _bad(f"answer holds rows for another symbol than {vendor!r}", f"{where}.symbol")


def eod_bars(payload: Any, *, vendor: str | None = None, provider: str = PROVIDER) -> pa.Table:
    """``historical-price-eod/full`` JSON -> daily bars (still split-adjusted; see :func:`unadjust`).

    Parameters
    ----------
    payload
        Decoded JSON array.
    vendor
        The FMP symbol asked for; rows for another symbol are garbage.
    provider
        Provenance.

    Raises
    ------
    ProviderResponseError
        If the payload is not an array of price objects or a field is missing or malformed.
    """
    cols = record_columns(payload, "$", PROVIDER)
    n = len(payload) if isinstance(payload, list) else 0
    if n == 0:
        return bars_table(np.empty(0, dtype=np.int64), open=np.empty(0), high=np.empty(0), low=np.empty(0),
                          close=np.empty(0), volume=np.empty(0), provider=provider)
    _check_symbol(cols, vendor, "$")
    ts = _days(column(cols, "date", n, "$", PROVIDER), "$.date")
    p = {name: float_column(column(cols, name, n, "$", PROVIDER), f"$.{name}", PROVIDER)
         for name in ("open", "high", "low", "close", "volume")}
    return bars_table(ts, open=p["open"], high=p["high"], low=p["low"], close=p["close"], volume=p["volume"],
                      provider=provider)


def _records(payload: Any, where: str) -> tuple[list[Any], str | None]:
    """Both FMP shapes: a bare array (stable API) or ``{"symbol", "historical": [...]}`` (v3)."""
    if isinstance(payload, list):
        return payload, None
    if isinstance(payload, dict):
        if not payload:
            return [], None  # v3 answers {} for a symbol with no events
        hist = payload.get("historical")
        sym = payload.get("symbol")
        if not isinstance(hist, list):
            raise _bad("expected an array or an object with 'historical'", where)
        return hist, sym if isinstance(sym, str) else None
    raise _bad(f"expected an array or object, got {type(payload).__name__}", where)


def split_actions(payload: Any, symbol: str, *, vendor: str | None = None,
                  provider: str = PROVIDER) -> list[CorporateAction]:
    """Split list -> :class:`~tickvault.model.CorporateAction` splits (ratio = numerator / denominator).

    Raises
    ------
    ProviderResponseError
        If the shape is wrong, the answer is for another symbol, or a ratio is not positive.
    """
    rows, outer = _records(payload, "$")
    if outer is not None and vendor is not None and outer.upper() != vendor.upper():
        raise _bad(f"answer is for {outer[:20]!r}, not {vendor!r}", "$.symbol")
    if not rows:
        return []
    cols = record_columns(rows, "$.historical", PROVIDER)
    n = len(rows)
    _check_symbol(cols, vendor, "$.historical")
    days = _days(column(cols, "date", n, "$", PROVIDER), "$.date") // DAY_US
    num = float_column(column(cols, "numerator", n, "$", PROVIDER), "$.numerator", PROVIDER)
    den = float_column(column(cols, "denominator", n, "$", PROVIDER), "$.denominator", PROVIDER)
    ratio = num / np.where(den == 0, np.nan, den)
    if not bool(np.all(np.isfinite(ratio) & (ratio > 0))):
        raise _bad("split numerator/denominator is not a positive ratio", "$.numerator")
    out = [CorporateAction.split(str(np.datetime64(int(d), "D")), float(r), symbol=symbol, provider=provider)
           for d, r in zip(days, ratio, strict=True) if r != 1.0]
    return sorted(out)


def dividends(payload: Any, symbol: str, *, vendor: str | None = None,
              provider: str = PROVIDER) -> list[CorporateAction]:
    """Dividend list -> cash dividends on their ex-dates (``dividend``, as paid at the time).

    Raises
    ------
    ProviderResponseError
        If the shape is wrong, the answer is for another symbol, or an amount is negative.
    """
    rows, outer = _records(payload, "$")
    if outer is not None and vendor is not None and outer.upper() != vendor.upper():
        raise _bad(f"answer is for {outer[:20]!r}, not {vendor!r}", "$.symbol")
    if not rows:
        return []
    cols = record_columns(rows, "$.historical", PROVIDER)
    n = len(rows)
    _check_symbol(cols, vendor, "$.historical")
    days = _days(column(cols, "date", n, "$", PROVIDER), "$.date") // DAY_US
    amount = float_column(column(cols, "dividend", n, "$", PROVIDER), "$.dividend", PROVIDER)
    amount = np.where(np.isnan(amount), 0.0, amount)
    if not bool(np.all(np.isfinite(amount) & (amount >= 0))):
        raise _bad("dividend amount is negative or not finite", "$.dividend")
    out = [CorporateAction.dividend(str(np.datetime64(int(d), "D")), float(a), symbol=symbol, provider=provider)
           for d, a in zip(days, amount, strict=True) if a > 0]
    return sorted(out)


def unadjust(table: pa.Table, splits: Sequence[CorporateAction]) -> pa.Table:
    """Undo split adjustment of daily bars: prices x ratio, volume / ratio, per later split.

    A bar keyed before a split's ex-date was restated by the vendor in post-split shares; the
    cumulative product of the ratios of every split after the bar restores the as-traded
    numbers (pure, vectorised).

    Parameters
    ----------
    table
        Daily bars (:data:`~tickvault.model.BAR_SCHEMA`, keys at 00:00 UTC), split-adjusted.
    splits
        The symbol's splits (others kinds are ignored), in any order.

    Returns
    -------
    pyarrow.Table
        Same rows and order, raw prices and volumes.
    """
    items = sorted((a for a in splits if a.kind == ActionKind.SPLIT), key=lambda a: a.ex_date)
    if not items or table.num_rows == 0:
        return table
    ex_us = np.array([(a.ex_date.toordinal() - 719_163) * DAY_US for a in items], dtype=np.int64)
    ratios = np.array([a.value for a in items], dtype=np.float64)
    # suffix[i] = product of ratios[i:], suffix[len] = 1: the factor for a bar before ex_us[i].
    suffix = np.ones(ratios.size + 1, dtype=np.float64)
    suffix[:-1] = np.cumprod(ratios[::-1])[::-1]
    ts = np.asarray(table.column("ts").cast(pa.int64()).to_numpy(), dtype=np.int64)
    factor = suffix[np.searchsorted(ex_us, ts, side="right")]
    if bool(np.all(factor == 1.0)):
        return table
    out = table
    for name in ("open", "high", "low", "close", "vwap"):
        i = out.schema.get_field_index(name)
        col = out.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        out = out.set_column(i, name, pa.array(col * factor, pa.float64(), mask=np.isnan(col)))
    i = out.schema.get_field_index("volume")
    vol = out.column("volume").to_numpy(zero_copy_only=False).astype(np.float64)
    out = out.set_column(i, "volume", pa.array(vol / factor, pa.float64(), mask=np.isnan(vol)))
    return out

