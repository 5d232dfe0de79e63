"""Pure transform of Alpha Vantage ``OVERVIEW`` and ``INCOME_STATEMENT`` to fundamentals (fuzzed).

The result is ``{name: (value, source)}`` in the vocabulary shared by every provider that
serves fundamentals (``docs/providers-more.md``): ``market_cap``, ``pe_ratio``, ``eps``,
``income.revenue`` ... . ``value`` is a float for numbers, a string for text and dates;
Alpha Vantage's ``"None"`` / ``"-"`` mean "unknown" and the field is left out rather than
reported as a value. ``source`` names the vendor, function and period
(``alpha_vantage:INCOME_STATEMENT:annual:2019-12-31``) so a value can be traced.
"""

from __future__ import annotations

import math
from typing import Any

from tickvault.errors import ProviderResponseError

__all__ = ["Fundamentals", "income_statement", "overview"]

Fundamentals = dict[str, tuple[float | str, str]]

PROVIDER = "alpha_vantage"

#: OVERVIEW field -> canonical name (numbers).
_OVERVIEW_NUMBERS = {
    "MarketCapitalization": "market_cap", "EBITDA": "ebitda", "PERatio": "pe_ratio", "PEGRatio": "peg_ratio",
    "BookValue": "book_value_per_share", "DividendPerShare": "dividend_per_share", "DividendYield": "dividend_yield",
    "EPS": "eps", "DilutedEPSTTM": "eps_diluted", "RevenuePerShareTTM": "revenue_per_share",
    "ProfitMargin": "profit_margin", "OperatingMarginTTM": "operating_margin",
    "ReturnOnAssetsTTM": "return_on_assets", "ReturnOnEquityTTM": "return_on_equity",
    "RevenueTTM": "revenue_ttm", "GrossProfitTTM": "gross_profit_ttm", "ForwardPE": "forward_pe",
    "TrailingPE": "trailing_pe", "PriceToSalesRatioTTM": "ps_ratio", "PriceToBookRatio": "pb_ratio",
    "EVToRevenue": "ev_to_revenue", "EVToEBITDA": "ev_to_ebitda", "Beta": "beta", "52WeekHigh": "week52_high",
    "52WeekLow": "week52_low", "SharesOutstanding": "shares_outstanding", "FullTimeEmployees": "employees",
    "AnalystTargetPrice": "analyst_target_price", "PayoutRatio": "payout_ratio",
}
#: OVERVIEW field -> canonical name (text and dates).
_OVERVIEW_TEXT = {
    "Name": "name", "AssetType": "asset_type", "Exchange": "exchange", "Currency": "currency",
    "Country": "country", "Sector": "sector", "Industry": "industry", "FiscalYearEnd": "fiscal_year_end",
    "LatestQuarter": "latest_quarter", "ExDividendDate": "ex_dividend_date", "DividendDate": "dividend_date",
    "LastSplitFactor": "last_split_factor", "LastSplitDate": "last_split_date",
}
#: INCOME_STATEMENT field -> canonical name, prefixed ``income.`` (annual) / ``income_q.`` (quarterly).
_INCOME = {
    "totalRevenue": "revenue", "costOfRevenue": "cost_of_revenue", "grossProfit": "gross_profit",
    "operatingIncome": "operating_income", "netIncome": "net_income", "ebit": "ebit", "ebitda": "ebitda",
    "researchAndDevelopment": "research_development", "sellingGeneralAdministrative": "sga",
    "interestExpense": "interest_expense", "incomeTaxExpense": "income_tax", "incomeBeforeTax": "pretax_income",
    "totalOperatingExpense": "operating_expense",
}
_UNKNOWN = frozenset({"", "none", "-", "n/a", "null"})


def _bad(message: str, where: str) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(f"expected a number, got {type(value).__name__}", where)
    if isinstance(value, str):
        if value.strip().lower() in _UNKNOWN:
            return None
        try:
            out = float(value.strip()[:64])
        except ValueError:
            raise _bad("not a number", where) from None
    else:
        out = float(value)
    if not math.isfinite(out):
        raise _bad("number is not finite", where)
    return out


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"expected text, got {type(value).__name__}", where)
    v = value.strip()
    return None if v.lower() in _UNKNOWN else v[:200]


def overview(payload: Any) -> Fundamentals:
    """``OVERVIEW`` -> fundamentals.

    Raises
    ------
    ProviderResponseError
        If the payload is not an object, has no ``Symbol``, or a numeric field is not a number.
    """
    if not isinstance(payload, dict) or not payload:
        raise _bad("OVERVIEW is not a non-empty object (unknown symbol?)", "$")
    if not isinstance(payload.get("Symbol"), str):
        raise _bad("OVERVIEW has no Symbol", "Symbol")
    source = f"{PROVIDER}:OVERVIEW"
    out: Fundamentals = {}
    for field, name in _OVERVIEW_NUMBERS.items():
        n = _number(payload.get(field), field)
        if n is not None:
            out[name] = (n, source)
    for field, name in _OVERVIEW_TEXT.items():
        t = _text(payload.get(field), field)
        if t is not None:
            out[name] = (t, source)
    return out


def _latest(reports: Any, where: str) -> dict[str, Any] | None:
    if reports is None:
        return None
    if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
        raise _bad("reports are not a list of objects", where)
    dated = [r for r in reports if isinstance(r.get("fiscalDateEnding"), str)]
    if len(dated) != len(reports):
        raise _bad("a report has no fiscalDateEnding", where)
    return max(dated, key=lambda r: str(r["fiscalDateEnding"])) if dated else None


def income_statement(payload: Any) -> Fundamentals:
    """``INCOME_STATEMENT`` -> the latest annual (``income.*``) and quarterly (``income_q.*``) lines.

    Raises
    ------
    ProviderResponseError
        If the payload is not an object with report lists, or a line is not a number.
    """
    if not isinstance(payload, dict) or ("annualReports" not in payload and "quarterlyReports" not in payload):
        raise _bad("INCOME_STATEMENT has no annualReports/quarterlyReports", "$")
    out: Fundamentals = {}
    for key, prefix, period in (("annualReports", "income", "annual"), ("quarterlyReports", "income_q", "quarterly")):
        report = _latest(payload.get(key), key)
        if report is None:
            continue
        date = str(report["fiscalDateEnding"])[:10]
        source = f"{PROVIDER}:INCOME_STATEMENT:{period}:{date}"
        out[f"{prefix}.period_end"] = (date, source)
        currency = _text(report.get("reportedCurrency"), f"{key}.reportedCurrency")
        if currency is not None:
            out[f"{prefix}.currency"] = (currency, source)
        for field, name in _INCOME.items():
            n = _number(report.get(field), f"{key}.{field}")
            if n is not None:
                out[f"{prefix}.{name}"] = (n, source)
    return out
