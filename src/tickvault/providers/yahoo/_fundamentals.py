"""Pure transform of Yahoo ``quoteSummary`` and ``fundamentals-timeseries`` answers (fuzzed).

The result is ``{name: (value, source)}`` in the vocabulary every fundamentals provider
shares (``docs/providers-more.md``), so the engine can merge Yahoo with Alpha Vantage,
Tiingo and FMP field by field. Yahoo's conventions, and what this module does about them:

- **quoteSummary** (``/v10/finance/quoteSummary/{symbol}?modules=...&formatted=false``)
  answers one object per module. Numbers are plain JSON numbers with ``formatted=false``
  and ``{"raw": ..., "fmt": ...}`` objects otherwise: both are read. Dates are epoch
  seconds and become ISO dates (``"2025-02-10"``); ``lastFiscalYearEnd`` becomes the month
  name (``"September"``), as Alpha Vantage spells ``fiscal_year_end``.
- When two modules carry the same field (``marketCap`` in ``price`` and ``summaryDetail``,
  ``forwardPE`` in ``summaryDetail`` and ``defaultKeyStatistics``, which differ slightly), the
  module listed first in :data:`MODULES` wins and is named in the source
  (``yahoo:quoteSummary/summaryDetail``).
- Yahoo reports an undefined ratio as ``"Infinity"`` / ``"NaN"`` (or a non-finite number):
  the field is left out, like Alpha Vantage's ``"None"``. Any other wrong type is garbage.
- **fundamentals-timeseries** (``/ws/fundamentals-timeseries/v1/finance/timeseries/{symbol}
  ?type=annualTotalRevenue,...``) answers one series per requested type, each a list of
  ``{asOfDate, periodType, currencyCode, reportedValue: {raw}}`` (``null`` for a missing
  period). Per group (``income``, ``balance``, ``cashflow``) and period (``annual`` ->
  ``income.*``, ``quarterly`` -> ``income_q.*``), only the **newest period of the group** is
  reported, with ``period_end`` and ``currency``; a line without a value for that period is
  left out rather than taken from an older period (AAPL's recorded ``annualInterestExpense``
  stops at 2023 while revenue goes to 2024). Trailing-twelve-month types give
  ``revenue_ttm``, ``gross_profit_ttm`` and ``ebitda``.

Sources name the vendor, endpoint and period: ``yahoo:quoteSummary/price``,
``yahoo:fundamentals-timeseries:annual:2024-09-30``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from tickvault.errors import (
    AuthenticationFailed,
    ProviderError,
    ProviderResponseError,
    SymbolNotFound,
    UnsupportedRequest,
)
from tickvault.providers.base import Fundamentals

__all__ = [
    "MODULES",
    "body_error",
    "quote_summary",
    "series_types",
    "timeseries",
    "transform_fundamentals",
]

PROVIDER = "yahoo"

#: quoteSummary modules asked for, in priority order (the first module with a field wins).
MODULES: tuple[str, ...] = ("price", "summaryDetail", "defaultKeyStatistics", "calendarEvents")

# module -> ((Yahoo field, canonical name, kind), ...); kinds: num, text, date, month.
_SUMMARY: dict[str, tuple[tuple[str, str, str], ...]] = {
    "price": (
        ("longName", "name", "text"), ("shortName", "name", "text"), ("exchangeName", "exchange", "text"),
        ("currency", "currency", "text"), ("quoteType", "asset_type", "text"), ("marketCap", "market_cap", "num"),
    ),
    "summaryDetail": (
        ("marketCap", "market_cap", "num"), ("trailingPE", "pe_ratio", "num"), ("trailingPE", "trailing_pe", "num"),
        ("forwardPE", "forward_pe", "num"), ("dividendRate", "dividend_per_share", "num"),
        ("dividendYield", "dividend_yield", "num"), ("payoutRatio", "payout_ratio", "num"), ("beta", "beta", "num"),
        ("fiftyTwoWeekHigh", "week52_high", "num"), ("fiftyTwoWeekLow", "week52_low", "num"),
        ("priceToSalesTrailing12Months", "ps_ratio", "num"), ("averageVolume", "average_volume", "num"),
        ("exDividendDate", "ex_dividend_date", "date"), ("currency", "currency", "text"),
    ),
    "defaultKeyStatistics": (
        ("enterpriseValue", "enterprise_value", "num"), ("forwardPE", "forward_pe", "num"),
        ("profitMargins", "profit_margin", "num"), ("sharesOutstanding", "shares_outstanding", "num"),
        ("floatShares", "float_shares", "num"), ("bookValue", "book_value_per_share", "num"),
        ("priceToBook", "pb_ratio", "num"), ("trailingEps", "eps", "num"), ("forwardEps", "forward_eps", "num"),
        ("pegRatio", "peg_ratio", "num"), ("beta", "beta", "num"),
        ("enterpriseToRevenue", "ev_to_revenue", "num"), ("enterpriseToEbitda", "ev_to_ebitda", "num"),
        ("lastSplitFactor", "last_split_factor", "text"), ("lastSplitDate", "last_split_date", "date"),
        ("lastFiscalYearEnd", "fiscal_year_end", "month"), ("mostRecentQuarter", "latest_quarter", "date"),
    ),
    "calendarEvents": (
        ("exDividendDate", "ex_dividend_date", "date"), ("dividendDate", "dividend_date", "date"),
    ),
}

#: timeseries type (without its period prefix) -> (group, canonical line name).
_LINES: dict[str, tuple[str, str]] = {
    "TotalRevenue": ("income", "revenue"), "CostOfRevenue": ("income", "cost_of_revenue"),
    "GrossProfit": ("income", "gross_profit"), "OperatingIncome": ("income", "operating_income"),
    "OperatingExpense": ("income", "operating_expense"), "NetIncome": ("income", "net_income"),
    "EBIT": ("income", "ebit"), "EBITDA": ("income", "ebitda"),
    "ResearchAndDevelopment": ("income", "research_development"),
    "SellingGeneralAndAdministration": ("income", "sga"), "InterestExpense": ("income", "interest_expense"),
    "TaxProvision": ("income", "income_tax"), "PretaxIncome": ("income", "pretax_income"),
    "BasicEPS": ("income", "eps"), "DilutedEPS": ("income", "eps_diluted"),
    "TotalAssets": ("balance", "total_assets"),
    "TotalLiabilitiesNetMinorityInterest": ("balance", "total_liabilities"),
    "StockholdersEquity": ("balance", "equity"), "CashAndCashEquivalents": ("balance", "cash"),
    "TotalDebt": ("balance", "debt"),
    "OperatingCashFlow": ("cashflow", "operating_cash_flow"), "CapitalExpenditure": ("cashflow", "capex"),
    "FreeCashFlow": ("cashflow", "free_cash_flow"), "CashDividendsPaid": ("cashflow", "dividends_paid"),
}
#: trailing-twelve-month types -> top-level canonical names.
_TRAILING: dict[str, str] = {"TotalRevenue": "revenue_ttm", "GrossProfit": "gross_profit_ttm", "EBITDA": "ebitda"}
_PERIODS: dict[str, str] = {"annual": "", "quarterly": "_q"}  # period prefix -> group suffix
_UNDEFINED = frozenset({"infinity", "-infinity", "+infinity", "nan"})
# Plausible dates (epoch seconds): 1900-01-01 .. 2200-01-01.
_MIN_S, _MAX_S = -2_208_988_800, 7_258_118_400
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _bad(message: str, where: str) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where)


def _raw(value: Any) -> Any:
    """``{"raw": x, "fmt": ...}`` (``formatted=true``) -> ``x``; ``{}`` (no value) -> ``None``."""
    if isinstance(value, dict):
        return value.get("raw")
    return value


def _number(value: Any, where: str) -> float | None:
    value = _raw(value)
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in _UNDEFINED:
            return None  # Yahoo's spelling of an undefined ratio
        raise _bad("expected a number, got text", where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"expected a number, got {type(value).__name__}", where)
    out = float(value)
    return out if math.isfinite(out) else None


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"expected text, got {type(value).__name__}", where)
    v = value.strip()
    return v[:200] if v else None


def _date(value: Any, where: str) -> dt.date | None:
    value = _raw(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"expected epoch seconds, got {type(value).__name__}", where)
    if not _MIN_S <= value <= _MAX_S:
        raise _bad("date out of range", where)
    return dt.date(1970, 1, 1) + dt.timedelta(seconds=value)


def _value(kind: str, value: Any, where: str) -> float | str | None:
    if kind == "num":
        return _number(value, where)
    if kind == "text":
        return _text(value, where)
    day = _date(value, where)
    if day is None:
        return None
    return _MONTHS[day.month - 1] if kind == "month" else day.isoformat()


def quote_summary(payload: Any, *, vendor: str | None = None) -> Fundamentals:
    """quoteSummary answer (any subset of :data:`MODULES`) -> fundamentals.

    Parameters
    ----------
    payload
        Decoded JSON ``{"quoteSummary": {"result": [{module: {...}}], "error": null}}``.
    vendor
        Yahoo's spelling of the symbol asked for; an answer about another symbol is garbage.

    Returns
    -------
    Fundamentals
        ``{name: (value, "yahoo:quoteSummary/<module>")}``; empty if no module was answered.

    Raises
    ------
    ProviderResponseError
        If the shape is wrong, a field has the wrong type or the answer is for another symbol.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("quoteSummary"), dict):
        raise _bad("not a quoteSummary answer", "$")
    result = payload["quoteSummary"].get("result")
    if not isinstance(result, list) or not result or not isinstance(result[0], dict):
        raise _bad("quoteSummary has no result object", "quoteSummary.result")
    modules = result[0]
    out: Fundamentals = {}
    for module in MODULES:
        data = modules.get(module)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise _bad(f"module is not an object: {type(data).__name__}", module)
        if module == "price" and vendor is not None:
            sym = _text(data.get("symbol"), "price.symbol")
            if sym is not None and sym.upper() != vendor.upper():
                raise _bad(f"answer is for {sym[:20]!r}, not {vendor!r}", "price.symbol")
        source = f"{PROVIDER}:quoteSummary/{module}"
        for field, name, kind in _SUMMARY[module]:
            if name in out:
                continue  # an earlier field or module already gave it
            value = _value(kind, data.get(field), f"{module}.{field}")
            if value is not None:
                out[name] = (value, source)
        if module == "calendarEvents":
            _earnings(data, source, out)
    return out


def _earnings(data: dict[str, Any], source: str, out: Fundamentals) -> None:
    """``calendarEvents.earnings.earningsDate`` (a window of one or two instants) -> its first day."""
    earnings = data.get("earnings")
    if earnings is None:
        return
    if not isinstance(earnings, dict):
        raise _bad("earnings is not an object", "calendarEvents.earnings")
    dates = earnings.get("earningsDate")
    if dates is None:
        return
    if not isinstance(dates, list):
        raise _bad("earningsDate is not an array", "calendarEvents.earnings.earningsDate")
    days = [d for d in (_date(v, "calendarEvents.earnings.earningsDate") for v in dates) if d is not None]
    if days:
        out["next_earnings_date"] = (min(days).isoformat(), source)


def series_types() -> list[str]:
    """The ``type`` values asked of the timeseries endpoint (annual, quarterly and trailing)."""
    types = [f"{period}{line}" for period in _PERIODS for line in _LINES]
    return types + [f"trailing{line}" for line in _TRAILING]


def _split_type(name: str) -> tuple[str, str] | None:
    for period in (*_PERIODS, "trailing"):
        if name.startswith(period):
            line = name[len(period):]
            known = _TRAILING if period == "trailing" else _LINES
            return (period, line) if line in known else None
    return None


def _entry(item: Any, where: str) -> tuple[str, float, str | None] | None:
    """One ``{asOfDate, currencyCode, reportedValue}`` -> (ISO date, value, currency); ``None`` if empty."""
    if item is None:
        return None
    if not isinstance(item, dict):
        raise _bad("series entry is not an object", where)
    date = item.get("asOfDate")
    if not isinstance(date, str):
        raise _bad("series entry has no asOfDate", f"{where}.asOfDate")
    try:
        day = dt.date.fromisoformat(date[:10]).isoformat()
    except ValueError:
        raise _bad("asOfDate is not an ISO date", f"{where}.asOfDate") from None
    value = _number(item.get("reportedValue"), f"{where}.reportedValue")
    if value is None:
        return None
    currency = _text(item.get("currencyCode"), f"{where}.currencyCode")
    return day, value, currency


def timeseries(payload: Any) -> Fundamentals:
    """fundamentals-timeseries answer -> the newest period of each statement group.

    Returns
    -------
    Fundamentals
        ``income.*``, ``income_q.*``, ``balance[_q].*``, ``cashflow[_q].*`` (each with
        ``period_end`` and ``currency``) and the trailing ``revenue_ttm``,
        ``gross_profit_ttm``, ``ebitda``; types this module does not know are ignored.

    Raises
    ------
    ProviderResponseError
        If the shape is wrong or a value is not a number.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("timeseries"), dict):
        raise _bad("not a timeseries answer", "$")
    result = payload["timeseries"].get("result")
    if result is None:
        return {}
    if not isinstance(result, list):
        raise _bad("timeseries.result is not an array", "timeseries.result")
    # (period, group) -> ISO date -> {name: value}, and the currency of each date
    found: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    currencies: dict[tuple[str, str, str], str] = {}
    for k, series in enumerate(result):
        where = f"timeseries.result[{k}]"
        if not isinstance(series, dict) or not isinstance(series.get("meta"), dict):
            raise _bad("series has no meta object", where)
        types = series["meta"].get("type")
        if not isinstance(types, list) or len(types) != 1 or not isinstance(types[0], str):
            raise _bad("meta.type is not one type name", f"{where}.meta.type")
        split = _split_type(types[0])
        values = series.get(types[0])
        if split is None or values is None:
            continue  # a type we did not ask for, or no data for it
        if not isinstance(values, list):
            raise _bad("series values are not an array", f"{where}.{types[0][:60]}")
        period, line = split
        group, name = ("", _TRAILING[line]) if period == "trailing" else _LINES[line]
        for i, item in enumerate(values):
            entry = _entry(item, f"{where}[{i}]")
            if entry is None:
                continue
            day, value, currency = entry
            found.setdefault((period, group), {}).setdefault(day, {})[name] = value
            if currency is not None:
                currencies[(period, group, day)] = currency[:8]
    out: Fundamentals = {}
    for (period, group), by_day in sorted(found.items()):
        day = max(by_day)
        source = f"{PROVIDER}:fundamentals-timeseries:{period}:{day}"
        prefix = f"{group}{_PERIODS[period]}." if group else ""
        if group:
            out[f"{prefix}period_end"] = (day, source)
            if (period, group, day) in currencies:
                out[f"{prefix}currency"] = (currencies[(period, group, day)], source)
        for name, value in sorted(by_day[day].items()):
            out[f"{prefix}{name}"] = (value, source)
    return out


def transform_fundamentals(summary: Any, series: Any, *, vendor: str | None = None) -> Fundamentals:
    """Both answers -> one :data:`~tickvault.providers.base.Fundamentals` mapping.

    The statement lines come from the timeseries; the trailing ``ebitda`` there wins over
    nothing in quoteSummary (which does not carry it), so the two never collide.

    Raises
    ------
    ProviderResponseError
        If either answer is garbage.
    """
    return {**quote_summary(summary, vendor=vendor), **timeseries(series)}


def body_error(payload: Any, key: str, *, symbol: str | None = None) -> ProviderError | None:
    """The typed error a 200 answer reports in ``{key: {"result": null, "error": {...}}}``, if any.

    Yahoo sometimes answers a failure with status 200 and an error object: ``Not Found``
    -> :class:`SymbolNotFound`, ``Unauthorized`` (``Invalid Crumb``) ->
    :class:`AuthenticationFailed`, ``Bad Request`` -> :class:`UnsupportedRequest`, others
    -> :class:`ProviderResponseError`. ``symbol`` is added to the error's context.
    """
    body = payload.get(key) if isinstance(payload, dict) else None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = str(error.get("code", ""))[:60]
    desc = str(error.get("description", ""))[:200]
    message = f"Yahoo: {desc or code or 'error'}"
    if code == "Not Found":
        return SymbolNotFound(message, provider=PROVIDER, symbol=symbol)
    if code == "Unauthorized":
        return AuthenticationFailed(message, provider=PROVIDER, symbol=symbol)
    if code in ("Bad Request", "Unprocessable Entity"):
        return UnsupportedRequest(message, provider=PROVIDER, symbol=symbol)
    return ProviderResponseError(message, provider=PROVIDER, symbol=symbol, code=code or None)
