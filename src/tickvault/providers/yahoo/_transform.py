"""Pure transform of Yahoo v8 chart payloads to canonical bars and actions (fuzzed).

Yahoo's conventions, and what this module does about them:

- **Prices are split-adjusted** (``indicators.quote``: every bar is restated in today's
  share basis); ``adjclose`` is also dividend-adjusted. The store keeps raw prices
  (DESIGN §3), so bars before each split's ex-date are multiplied by its ratio (volume
  divided) — using the splits of the window *and* those reported after it up to now
  (Yahoo restates history for every later split). ``adjclose`` is not stored:
  ``adjust(raw, actions, "all")`` reproduces it.
- **Dividends are in today's basis too**: an amount is multiplied back by the ratios of
  the splits after its ex-date, giving the cash paid per share at the time.
- **Daily bars are stamped at the session open** (13:30Z/14:30Z for New York, 08:00Z for
  London, 00:00Z for crypto and FX, 05:00Z for CME futures): keys come from
  :meth:`~tickvault.calendars.TradingCalendar.session_labels` of the instrument's calendar.
- **Intraday bars are stamped at their open**; the trailing "live" row Yahoo appends off the
  bar grid and rows whose OHLC are all ``null`` (no trade) are dropped.
- **An empty window** (weekend, holiday) has ``meta`` but no ``timestamp``: an empty table.
- **Currency** is reported as delivered (``GBp`` for London pence): prices are not rescaled.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickvault.calendars import TradingCalendar
from tickvault.errors import ProviderResponseError
from tickvault.model import CorporateAction, Timeframe
from tickvault.providers._http import (
    DAY_US,
    bars_table,
    epoch_to_us,
    expect_dict,
    expect_list,
    float_column,
    int_column,
    local_days,
    optional,
    require,
    same_length,
    session_keys,
    unadjust,
)

__all__ = ["ChartPage", "Event", "parse_chart", "raw_actions", "transform_chart"]

PROVIDER = "yahoo"
_HALF_HOUR_US = 30 * 60_000_000


@dataclass(frozen=True)
class Event:
    """One split or dividend as Yahoo reports it (epoch seconds, today's basis)."""

    kind: str  # "split" | "dividend"
    date_s: int
    value: float  # split ratio or dividend amount


@dataclass(frozen=True)
class ChartPage:
    """The parts of one chart payload we use."""

    symbol: str
    currency: str | None
    ts_s: np.ndarray
    columns: dict[str, np.ndarray]
    events: list[Event] = field(default_factory=list)


def parse_chart(payload: Any, vendor: str) -> ChartPage:
    """Read one decoded chart payload.

    Parameters
    ----------
    payload
        ``json.loads`` of the response body.
    vendor
        The Yahoo symbol asked for; the answer must be about it.

    Raises
    ------
    ProviderResponseError
        For a malformed payload, a ``chart.error`` or an answer about another symbol.
    IncompleteData
        If the quote arrays are not as long as the timestamps.
    """
    chart = expect_dict(require(expect_dict(payload, "$", PROVIDER), "chart", "$", PROVIDER), "chart", PROVIDER)
    error = chart.get("error")
    if error is not None:
        desc = error.get("description") if isinstance(error, dict) else None
        raise ProviderResponseError(f"chart error: {str(desc)[:200] if desc else 'unspecified'}", provider=PROVIDER)
    results = expect_list(require(chart, "result", "chart", PROVIDER), "chart.result", PROVIDER)
    if len(results) != 1:
        raise ProviderResponseError(f"expected one chart result, got {len(results)}", provider=PROVIDER)
    result = expect_dict(results[0], "chart.result[0]", PROVIDER)
    meta = expect_dict(require(result, "meta", "result", PROVIDER), "meta", PROVIDER)
    symbol = optional(meta, "symbol", str, "meta", PROVIDER)
    if symbol is None or symbol.upper() != vendor.upper():
        raise ProviderResponseError(f"answer is about {str(symbol)[:40]!r}, not {vendor!r}", provider=PROVIDER)
    currency = optional(meta, "currency", str, "meta", PROVIDER)
    events = _events(result.get("events"))
    if result.get("timestamp") is None:  # empty window: meta only
        empty = np.empty(0, dtype=np.float64)
        return ChartPage(symbol, currency, np.empty(0, dtype=np.int64),
                         {k: empty for k in ("open", "high", "low", "close", "volume")}, events)
    ts = int_column(result["timestamp"], "timestamp", PROVIDER)
    indicators = expect_dict(require(result, "indicators", "result", PROVIDER), "indicators", PROVIDER)
    quotes = expect_list(require(indicators, "quote", "indicators", PROVIDER), "indicators.quote", PROVIDER)
    if len(quotes) != 1:
        raise ProviderResponseError(f"expected one quote block, got {len(quotes)}", provider=PROVIDER)
    quote = expect_dict(quotes[0], "indicators.quote[0]", PROVIDER)
    columns = {k: float_column(require(quote, k, "quote", PROVIDER), f"quote.{k}", PROVIDER)
               for k in ("open", "high", "low", "close", "volume")}
    same_length(columns, ts.size, "indicators.quote", PROVIDER)
    return ChartPage(symbol, currency, ts, columns, events)


def _events(raw: Any) -> list[Event]:
    if raw is None:
        return []
    events = expect_dict(raw, "events", PROVIDER)
    out: list[Event] = []
    splits = events.get("splits")
    if splits is not None:
        for item in expect_dict(splits, "events.splits", PROVIDER).values():
            s = expect_dict(item, "events.splits[]", PROVIDER)
            date = _int(require(s, "date", "events.splits[]", PROVIDER), "events.splits[].date")
            num = _positive(require(s, "numerator", "events.splits[]", PROVIDER), "events.splits[].numerator")
            den = _positive(require(s, "denominator", "events.splits[]", PROVIDER), "events.splits[].denominator")
            if not 1e-4 <= num / den <= 1e4:
                raise ProviderResponseError(f"implausible split ratio {num:g}:{den:g}", provider=PROVIDER,
                                            field="events.splits[]")
            out.append(Event("split", date, num / den))
    dividends = events.get("dividends")
    if dividends is not None:
        for item in expect_dict(dividends, "events.dividends", PROVIDER).values():
            d = expect_dict(item, "events.dividends[]", PROVIDER)
            date = _int(require(d, "date", "events.dividends[]", PROVIDER), "events.dividends[].date")
            amount = _positive(require(d, "amount", "events.dividends[]", PROVIDER), "events.dividends[].amount")
            out.append(Event("dividend", date, amount))
    return out


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -2_208_988_800 <= value <= 7_258_118_400:
        raise ProviderResponseError("expected an epoch-seconds integer", provider=PROVIDER, field=where)
    return value


def _positive(value: Any, where: str) -> float:
    # Bounded so that restating by later splits can never overflow to inf.
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < 1e12):
        raise ProviderResponseError("expected a positive number", provider=PROVIDER, field=where)
    return float(value)


def _event_days(events: list[Event], calendar: TradingCalendar) -> np.ndarray:
    """Ex-date keys (epoch µs of the session date) of events stamped at a session instant."""
    if not events:
        return np.empty(0, dtype=np.int64)
    stamps = epoch_to_us(np.array([e.date_s for e in events], dtype=np.int64), "s", "events.date", PROVIDER)
    return session_keys(stamps, calendar, PROVIDER)


def raw_actions(events: list[Event], calendar: TradingCalendar, symbol: str,
                currency: str | None) -> list[CorporateAction]:
    """Yahoo events as :class:`CorporateAction` in our conventions (dividends restated at the time).

    Duplicates (the same event seen in two pages) collapse to one.
    """
    keys = _event_days(events, calendar)
    splits = [(int(k), e.value) for e, k in zip(events, keys, strict=True) if e.kind == "split"]
    seen: dict[tuple[int, str], CorporateAction] = {}
    for e, k in zip(events, keys, strict=True):
        day = dt.date(1970, 1, 1) + dt.timedelta(microseconds=int(k))
        if e.kind == "split":
            if (int(k), "split") not in seen:
                seen[(int(k), "split")] = CorporateAction.split(day, e.value, symbol=symbol, provider=PROVIDER)
            continue
        later = math.prod(r for s_key, r in dict(splits).items() if s_key > int(k))
        seen.setdefault((int(k), "dividend"), CorporateAction.dividend(
            day, e.value * later, symbol=symbol, currency=currency, provider=PROVIDER))
    return sorted(seen.values(), key=lambda a: (a.ex_date, str(a.kind)))


def transform_chart(pages: list[Any], later: Any | None, *, vendor: str, symbol: str, timeframe: Timeframe,
                    calendar: TradingCalendar) -> tuple[Any, list[CorporateAction]]:
    """Chart pages (one per request window) -> raw canonical bars (unclipped) and actions.

    Parameters
    ----------
    pages
        Decoded chart payloads covering the query.
    later
        Decoded chart payload whose events are the splits/dividends after the query window
        (``None`` when the window reaches today).
    vendor, symbol
        Yahoo's spelling and the canonical symbol.
    timeframe
        The query's timeframe.
    calendar
        The instrument's trading calendar (session keys and local dates).

    Returns
    -------
    tuple
        (:data:`~tickvault.model.BAR_SCHEMA` table keyed by bar open / session date, not yet
        clipped or deduplicated; list of actions).

    Raises
    ------
    ProviderResponseError, IncompleteData
        For malformed or truncated payloads.
    """
    parsed = [parse_chart(p, vendor) for p in pages]
    events = [e for page in parsed for e in page.events]
    if later is not None:
        events += parse_chart(later, vendor).events
    currency = next((p.currency for p in parsed if p.currency), None)
    actions = raw_actions(events, calendar, symbol, currency)
    ts_s = np.concatenate([p.ts_s for p in parsed]) if parsed else np.empty(0, dtype=np.int64)
    cols = {k: (np.concatenate([p.columns[k] for p in parsed]) if parsed else np.empty(0)) for k in
            ("open", "high", "low", "close", "volume")}
    ts_us = epoch_to_us(ts_s, "s", "timestamp", PROVIDER)
    prices = np.vstack([cols[k] for k in ("open", "high", "low", "close")]) if ts_us.size else np.empty((4, 0))
    keep = ~np.all(np.isnan(prices), axis=0)  # Yahoo's all-null rows: no trade in that bar
    if timeframe.is_intraday:
        keep &= np.mod(ts_us, min(timeframe.micros, _HALF_HOUR_US)) == 0  # drop the off-grid live row
    ts_us = ts_us[keep]
    cols = {k: v[keep] for k, v in cols.items()}
    keys = ts_us if timeframe.is_intraday else session_keys(ts_us, calendar, PROVIDER)
    factor = np.ones(ts_us.size, dtype=np.float64)
    if ts_us.size:
        days = local_days(ts_us, timeframe, calendar)
        for a in actions:
            if a.kind == "split":
                ex_us = (a.ex_date - dt.date(1970, 1, 1)).days * DAY_US
                factor[days < ex_us] *= a.value
    table = bars_table(keys, provider=PROVIDER, **unadjust(cols, factor, PROVIDER))
    return table, actions
