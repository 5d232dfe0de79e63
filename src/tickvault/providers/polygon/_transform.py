"""Pure transforms of Polygon payloads: aggregates, splits, dividends (fuzzed).

Polygon's conventions, and what this module does about them:

- **Aggregates are requested raw** (``adjusted=false``). Polygon's default (``adjusted=true``)
  is split-adjusted only (never dividend-adjusted). If a page nevertheless says
  ``"adjusted": true``, the splits fetched from ``/v3/reference/splits`` are undone (bars
  before each ex-date multiplied by its ratio, volume divided), so stored prices are raw.
- **Timestamps** ``t`` are epoch milliseconds: the bar open for intraday; for daily bars
  local midnight of the session date in New York (04:00Z/05:00Z; 00:00Z for crypto and FX),
  mapped to session keys with the instrument's calendar.
- **Paging**: a page with more data has ``next_url`` (cursor pagination); ``resultsCount``
  and ``count`` must equal the rows on the page, else :class:`~tickvault.errors.IncompleteData`.
- **Splits**: ``execution_date`` is the ex-date; ratio = ``split_to / split_from``
  (a 4-for-1 is ``split_from=1, split_to=4``).
- **Dividends**: ``cash_amount`` on ``ex_dividend_date`` is the cash per share as paid at
  the time (Polygon does not restate it for later splits); every cash type (regular ``CD``,
  special ``SC``, capital gains ``LT``/``ST``) is a dividend for total-return adjustment.
- **Status**: ``OK`` and ``DELAYED`` are answers; anything else in a 200 body is an error.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa

from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.model import CorporateAction
from tickvault.providers._http import (
    DAY_US,
    bars_table,
    column,
    epoch_to_us,
    expect_dict,
    expect_list,
    float_column,
    int_column,
    optional,
    record_columns,
    require,
    unadjust,
)

__all__ = ["PROVIDER", "AggsPage", "parse_aggs", "parse_dividends", "parse_splits", "unadjust_factor"]

PROVIDER = "polygon"
_OK = ("OK", "DELAYED")


class AggsPage:
    """One aggregates page: epoch-µs bar stamps, columns, ``adjusted`` flag, next URL."""

    def __init__(self, ts_us: np.ndarray, columns: dict[str, np.ndarray], adjusted: bool | None,
                 next_url: str | None) -> None:
        self.ts_us = ts_us
        self.columns = columns
        self.adjusted = adjusted
        self.next_url = next_url

    def __repr__(self) -> str:
        return f"AggsPage(rows={self.ts_us.size}, adjusted={self.adjusted}, next={self.next_url is not None})"


def _status(body: dict[str, Any], where: str) -> None:
    status = optional(body, "status", str, where, PROVIDER)
    if status is not None and status.upper() not in _OK:
        msg = body.get("error") or body.get("message") or status
        raise ProviderResponseError(f"Polygon status {status}: {str(msg)[:200]}", provider=PROVIDER)


def next_url(body: dict[str, Any], where: str) -> str | None:
    """The page's ``next_url`` (``None`` on the last page)."""
    url = optional(body, "next_url", str, where, PROVIDER)
    return url or None


def parse_aggs(payload: Any, vendor: str) -> AggsPage:
    """Read one ``/v2/aggs/ticker/.../range/...`` page.

    Raises
    ------
    ProviderResponseError
        Malformed page, error status, or an answer about another ticker.
    IncompleteData
        If ``resultsCount``/``count`` disagree with the rows on the page.
    """
    body = expect_dict(payload, "$", PROVIDER)
    _status(body, "$")
    ticker = optional(body, "ticker", str, "$", PROVIDER)
    if ticker is not None and ticker.upper() != vendor.upper():
        raise ProviderResponseError(f"answer is about {ticker[:40]!r}, not {vendor!r}", provider=PROVIDER)
    adjusted = optional(body, "adjusted", bool, "$", PROVIDER)
    results = body.get("results")
    rows = expect_list(results, "results", PROVIDER) if results is not None else []
    for key in ("resultsCount", "count"):
        claimed = optional(body, key, int, "$", PROVIDER)
        if claimed is not None and claimed != len(rows):
            raise IncompleteData(f"page claims {key}={claimed} but holds {len(rows)} bars", provider=PROVIDER,
                                 symbol=vendor)
    cols = record_columns(rows, "results", PROVIDER)
    n = len(rows)
    ts = int_column(column(cols, "t", n, "results", PROVIDER), "results.t", PROVIDER) if n else np.empty(0, np.int64)
    out = {
        name: float_column(column(cols, key, n, "results", PROVIDER, required=req), f"results.{key}", PROVIDER,
                           allow_null=not req)
        for name, key, req in (("open", "o", True), ("high", "h", True), ("low", "l", True), ("close", "c", True),
                               ("volume", "v", True), ("vwap", "vw", False), ("trade_count", "n", False))
    } if n else {k: np.empty(0) for k in ("open", "high", "low", "close", "volume", "vwap", "trade_count")}
    return AggsPage(epoch_to_us(ts, "ms", "results.t", PROVIDER), out, adjusted, next_url(body, "$"))


def aggs_table(pages: list[AggsPage], keys: np.ndarray, factor: np.ndarray, provider: str) -> pa.Table:
    """Canonical bars from parsed pages, keys (session or open) and the un-adjustment factor."""
    cols = unadjust({k: (np.concatenate([p.columns[k] for p in pages]) if pages else np.empty(0)) for k in
                     ("open", "high", "low", "close", "volume", "vwap", "trade_count")}, factor, provider)
    return bars_table(keys, provider=provider, **cols)


def _date(value: Any, where: str) -> dt.date:
    if not isinstance(value, str):
        raise ProviderResponseError("expected a YYYY-MM-DD date", provider=PROVIDER, field=where)
    try:
        return dt.date.fromisoformat(value[:10]) if len(value) >= 10 else dt.date.fromisoformat(value)
    except ValueError:
        raise ProviderResponseError("expected a YYYY-MM-DD date", provider=PROVIDER, field=where) from None


def _positive(value: Any, where: str) -> float:
    # Bounded so that restating by later splits can never overflow to inf.
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < 1e12):
        raise ProviderResponseError("expected a positive number", provider=PROVIDER, field=where)
    return float(value)


def _results(payload: Any) -> tuple[list[Any], str | None]:
    body = expect_dict(payload, "$", PROVIDER)
    _status(body, "$")
    results = body.get("results")
    return (expect_list(results, "results", PROVIDER) if results is not None else []), next_url(body, "$")


def parse_splits(payload: Any, vendor: str, symbol: str) -> tuple[list[CorporateAction], str | None]:
    """``/v3/reference/splits`` page -> splits of ``vendor`` (other tickers ignored), next URL."""
    rows, nxt = _results(payload)
    out = []
    for item in rows:
        r = expect_dict(item, "results[]", PROVIDER)
        if optional(r, "ticker", str, "results[]", PROVIDER) != vendor:
            continue
        ratio = _positive(require(r, "split_to", "results[]", PROVIDER), "split_to") / _positive(
            require(r, "split_from", "results[]", PROVIDER), "split_from")
        if not 1e-4 <= ratio <= 1e4:
            raise ProviderResponseError(f"implausible split ratio {ratio:g}", provider=PROVIDER, field="results[]")
        day = _date(require(r, "execution_date", "results[]", PROVIDER), "execution_date")
        out.append(CorporateAction.split(day, ratio, symbol=symbol, provider=PROVIDER))
    return out, nxt


def parse_dividends(payload: Any, vendor: str, symbol: str) -> tuple[list[CorporateAction], str | None]:
    """``/v3/reference/dividends`` page -> cash dividends of ``vendor``, next URL."""
    rows, nxt = _results(payload)
    out = []
    for item in rows:
        r = expect_dict(item, "results[]", PROVIDER)
        if optional(r, "ticker", str, "results[]", PROVIDER) != vendor:
            continue
        amount = _positive(require(r, "cash_amount", "results[]", PROVIDER), "cash_amount")
        day = _date(require(r, "ex_dividend_date", "results[]", PROVIDER), "ex_dividend_date")
        currency = optional(r, "currency", str, "results[]", PROVIDER)
        out.append(CorporateAction.dividend(day, amount, symbol=symbol, currency=currency, provider=PROVIDER))
    return out, nxt


def unadjust_factor(bar_days_us: np.ndarray, splits: list[CorporateAction]) -> np.ndarray:
    """Per bar, the product of the ratios of the splits whose ex-date is after the bar's day."""
    factor = np.ones(bar_days_us.size, dtype=np.float64)
    for s in splits:
        ex_us = (s.ex_date - dt.date(1970, 1, 1)).days * DAY_US
        factor[bar_days_us < ex_us] *= s.value
    return factor
