"""Pure transform of Tiingo fundamentals (``daily`` metrics and ``statements``) (fuzzed).

``{name: (value, source)}`` in the shared vocabulary of ``docs/providers-more.md``:

- ``/tiingo/fundamentals/{ticker}/daily``: the newest row gives ``market_cap``,
  ``enterprise_value``, ``pe_ratio``, ``pb_ratio``, ``peg_ratio``
  (source ``tiingo:fundamentals/daily:2020-04-01``).
- ``/tiingo/fundamentals/{ticker}/statements``: ``quarter == 0`` rows are fiscal years,
  others quarters. The newest year gives ``income.*``, ``balance.*``, ``cashflow.*``; the
  newest quarter ``income_q.*``, ``balance_q.*``, ``cashflow_q.*`` and the ratios of its
  ``overview`` section (source ``tiingo:fundamentals/statements:2020-03-31:Q1``).
"""

from __future__ import annotations

import math
from typing import Any

from tickvault.errors import ProviderResponseError

__all__ = ["Fundamentals", "daily_metrics", "statements"]

Fundamentals = dict[str, tuple[float | str, str]]

PROVIDER = "tiingo"

_DAILY = {"marketCap": "market_cap", "enterpriseVal": "enterprise_value", "peRatio": "pe_ratio",
          "pbRatio": "pb_ratio", "trailingPEG1Y": "peg_ratio"}
_SECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "incomeStatement": ("income", {
        "revenue": "revenue", "costRev": "cost_of_revenue", "grossProfit": "gross_profit",
        "opinc": "operating_income", "netinc": "net_income", "ebit": "ebit", "ebitda": "ebitda",
        "rnd": "research_development", "sga": "sga", "intexp": "interest_expense", "taxExp": "income_tax",
        "ebt": "pretax_income", "opex": "operating_expense", "eps": "eps", "epsDil": "eps_diluted",
    }),
    "balanceSheet": ("balance", {
        "totalAssets": "total_assets", "totalLiabilities": "total_liabilities", "equity": "equity",
        "cashAndEq": "cash", "debt": "debt", "sharesBasic": "shares_basic",
    }),
    "cashFlow": ("cashflow", {
        "ncfo": "operating_cash_flow", "capex": "capex", "freeCashFlow": "free_cash_flow", "payDiv": "dividends_paid",
    }),
}
_OVERVIEW = {"bvps": "book_value_per_share", "roe": "return_on_equity", "roa": "return_on_assets",
             "profitMargin": "profit_margin", "grossMargin": "gross_margin", "currentRatio": "current_ratio",
             "longTermDebtEquity": "debt_to_equity", "piotroskiFScore": "piotroski_f_score"}


def _bad(message: str, where: str) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"expected a number, got {type(value).__name__}", where)
    out = float(value)
    if not math.isfinite(out):
        raise _bad("number is not finite", where)
    return out


def _rows(payload: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise _bad("expected an array of objects", where)
    if not all(isinstance(r.get("date"), str) and len(r["date"]) >= 10 for r in payload):
        raise _bad("a row has no date", f"{where}.date")
    return payload


def daily_metrics(payload: Any) -> Fundamentals:
    """Newest row of ``fundamentals/daily`` -> valuation metrics.

    Raises
    ------
    ProviderResponseError
        If the payload is not an array of dated objects or a metric is not a number.
    """
    rows = _rows(payload, "$")
    if not rows:
        return {}
    newest = max(rows, key=lambda r: str(r["date"]))
    source = f"{PROVIDER}:fundamentals/daily:{str(newest['date'])[:10]}"
    out: Fundamentals = {}
    for field, name in _DAILY.items():
        n = _number(newest.get(field), field)
        if n is not None:
            out[name] = (n, source)
    return out


def _codes(section: Any, where: str) -> dict[str, Any]:
    if not isinstance(section, list) or not all(isinstance(i, dict) for i in section):
        raise _bad("statement section is not an array of objects", where)
    out: dict[str, Any] = {}
    for item in section:
        code = item.get("dataCode")
        if not isinstance(code, str):
            raise _bad("statement line has no dataCode", where)
        out[code] = item.get("value")
    return out


def statements(payload: Any) -> Fundamentals:
    """``fundamentals/statements`` -> newest annual and quarterly lines and ratios.

    Raises
    ------
    ProviderResponseError
        If the payload shape is wrong or a line is not a number.
    """
    rows = _rows(payload, "$")
    for r in rows:
        q = r.get("quarter")
        if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= 4:
            raise _bad("quarter must be 0..4", "$.quarter")
        if not isinstance(r.get("statementData"), dict):
            raise _bad("row has no statementData object", "$.statementData")
    out: Fundamentals = {}
    annual = [r for r in rows if r["quarter"] == 0]
    quarterly = [r for r in rows if r["quarter"] != 0]
    for group, suffix in ((annual, ""), (quarterly, "_q")):
        if not group:
            continue
        newest = max(group, key=lambda r: (str(r["date"]), int(r["quarter"])))
        period = "FY" if newest["quarter"] == 0 else f"Q{newest['quarter']}"
        date = str(newest["date"])[:10]
        source = f"{PROVIDER}:fundamentals/statements:{date}:{period}"
        data = newest["statementData"]
        for section, (prefix, names) in _SECTIONS.items():
            if section not in data:
                continue
            codes = _codes(data[section], f"statementData.{section}")
            out[f"{prefix}{suffix}.period_end"] = (date, source)
            for code, name in names.items():
                n = _number(codes.get(code), f"statementData.{section}.{code}")
                if n is not None:
                    out[f"{prefix}{suffix}.{name}"] = (n, source)
        if suffix and "overview" in data:
            codes = _codes(data["overview"], "statementData.overview")
            for code, name in _OVERVIEW.items():
                n = _number(codes.get(code), f"statementData.overview.{code}")
                if n is not None:
                    out[name] = (n, source)
    return out
