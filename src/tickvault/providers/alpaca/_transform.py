"""Pure transforms of Alpaca Market Data v2 payloads (fuzzed).

Alpaca's conventions, and what this module does about them:

- **Bars are requested raw** (``adjustment=raw``): Alpaca can adjust on its side
  (``split``, ``dividend``, ``all``) but the store keeps raw prices and applies actions on
  read. Splits and dividends come from ``/v1beta1/corporate-actions``.
- **Timestamps** ``t`` are RFC 3339 strings: the bar open for intraday; local midnight of
  the session date in New York for daily bars (``2022-02-01T05:00:00Z`` in winter,
  ``04:00:00Z`` in summer), mapped to session keys with the instrument's calendar.
- **Paging**: ``next_page_token`` until ``null``; bars come keyed by symbol
  (``{"bars": {"AAPL": [...]}}``); other symbols in the answer are ignored, an empty answer
  is ``{"bars": {}}`` (or ``null``).
- **Feed** (``sip``, ``iex``, ...) is recorded in the ``provider`` column as
  ``alpaca:<feed>``: IEX volumes are a small fraction of consolidated (SIP) volumes.
- **Corporate actions**: split ratio = ``new_rate / old_rate`` (forward and reverse
  splits); a cash dividend's ``rate`` on its ``ex_date`` is the cash per share at the time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from tickvault.errors import ProviderResponseError
from tickvault.model import CorporateAction
from tickvault.providers._http import (
    column,
    expect_dict,
    expect_list,
    float_column,
    iso_to_us,
    optional,
    record_columns,
    require,
)

__all__ = ["PROVIDER", "BarsPage", "parse_actions", "parse_bars"]

PROVIDER = "alpaca"
_FIELDS = (("open", "o", True), ("high", "h", True), ("low", "l", True), ("close", "c", True),
           ("volume", "v", True), ("vwap", "vw", False), ("trade_count", "n", False))


class BarsPage:
    """One page of bars for one symbol: epoch-µs stamps, float columns, next token."""

    def __init__(self, ts_us: np.ndarray, columns: dict[str, np.ndarray], token: str | None) -> None:
        self.ts_us = ts_us
        self.columns = columns
        self.token = token

    def __repr__(self) -> str:
        return f"BarsPage(rows={self.ts_us.size}, next={self.token is not None})"


def page_token(payload: Any) -> str | None:
    """The page's ``next_page_token`` (``None`` on the last page)."""
    body = expect_dict(payload, "$", PROVIDER)
    token = optional(body, "next_page_token", str, "$", PROVIDER)
    return token or None


def parse_bars(payload: Any, vendor: str) -> BarsPage:
    """Read one ``/v2/stocks/bars`` page for ``vendor``.

    Raises
    ------
    ProviderResponseError
        For a malformed page.
    """
    body = expect_dict(payload, "$", PROVIDER)
    token = page_token(body)
    bars = require(body, "bars", "$", PROVIDER)
    rows: list[Any] = []
    if bars is not None:
        by_symbol = expect_dict(bars, "bars", PROVIDER)
        rows = expect_list(by_symbol.get(vendor, []) or [], f"bars.{vendor}", PROVIDER)
    n = len(rows)
    if n == 0:
        return BarsPage(np.empty(0, dtype=np.int64), {k: np.empty(0) for k, _, _ in _FIELDS}, token)
    cols = record_columns(rows, f"bars.{vendor}", PROVIDER)
    ts = iso_to_us(column(cols, "t", n, "bars", PROVIDER), "bars[].t", PROVIDER)
    out = {name: float_column(column(cols, key, n, "bars", PROVIDER, required=req), f"bars[].{key}", PROVIDER,
                              allow_null=not req)
           for name, key, req in _FIELDS}
    return BarsPage(ts, out, token)


def _date(value: Any, where: str) -> dt.date:
    if not isinstance(value, str) or len(value) != 10:
        raise ProviderResponseError("expected a YYYY-MM-DD date", provider=PROVIDER, field=where)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ProviderResponseError("expected a YYYY-MM-DD date", provider=PROVIDER, field=where) from None


def _positive(value: Any, where: str) -> float:
    # Bounded so that restating by later splits can never overflow to inf.
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < 1e12):
        raise ProviderResponseError("expected a positive number", provider=PROVIDER, field=where)
    return float(value)


def parse_actions(payload: Any, vendor: str, symbol: str) -> tuple[list[CorporateAction], str | None]:
    """One ``/v1beta1/corporate-actions`` page -> splits and cash dividends of ``vendor``, next token.

    Other kinds (mergers, spin-offs, name changes, stock dividends) are not price
    adjustments tickvault models yet and are skipped.
    """
    body = expect_dict(payload, "$", PROVIDER)
    token = page_token(body)
    groups = require(body, "corporate_actions", "$", PROVIDER)
    if groups is None:
        return [], token
    groups = expect_dict(groups, "corporate_actions", PROVIDER)
    out: list[CorporateAction] = []
    for kind in ("forward_splits", "reverse_splits"):
        for item in expect_list(groups.get(kind) or [], f"corporate_actions.{kind}", PROVIDER):
            r = expect_dict(item, f"{kind}[]", PROVIDER)
            if optional(r, "symbol", str, f"{kind}[]", PROVIDER) != vendor:
                continue
            ratio = _positive(require(r, "new_rate", f"{kind}[]", PROVIDER), "new_rate") / _positive(
                require(r, "old_rate", f"{kind}[]", PROVIDER), "old_rate")
            if not 1e-4 <= ratio <= 1e4:
                raise ProviderResponseError(f"implausible split ratio {ratio:g}", provider=PROVIDER, field=kind)
            day = _date(require(r, "ex_date", f"{kind}[]", PROVIDER), f"{kind}[].ex_date")
            out.append(CorporateAction.split(day, ratio, symbol=symbol, provider=PROVIDER))
    for item in expect_list(groups.get("cash_dividends") or [], "corporate_actions.cash_dividends", PROVIDER):
        r = expect_dict(item, "cash_dividends[]", PROVIDER)
        if optional(r, "symbol", str, "cash_dividends[]", PROVIDER) != vendor:
            continue
        amount = _positive(require(r, "rate", "cash_dividends[]", PROVIDER), "rate")
        day = _date(require(r, "ex_date", "cash_dividends[]", PROVIDER), "cash_dividends[].ex_date")
        out.append(CorporateAction.dividend(day, amount, symbol=symbol, currency="USD", provider=PROVIDER))
    return out, token
