"""Pure transform of FMP ``profile`` and ``income-statement`` answers to fundamentals (fuzzed).

``{name: (value, source)}`` in the shared vocabulary of ``docs/providers-more.md``. Both the
stable API (``/stable/profile?symbol=``: ``marketCap``, ``lastDividend``) and the older v3
spellings (``mktCap``, ``lastDiv``) are read. No FMP fundamentals answer was recorded, so the
field names follow FMP's documentation; unknown fields are ignored, wrong types are errors.
"""

from __future__ import annotations

import math
from typing import Any

from tickvault.errors import ProviderResponseError

__all__ = ["Fundamentals", "income_statement", "profile"]

Fundamentals = dict[str, tuple[float | str, str]]

PROVIDER = "fmp"

_PROFILE_NUMBERS = {"marketCap": "market_cap", "mktCap": "market_cap", "beta": "beta",
                    "lastDividend": "dividend_per_share", "lastDiv": "dividend_per_share",
                    "fullTimeEmployees": "employees", "averageVolume": "average_volume", "volAvg": "average_volume"}
_PROFILE_TEXT = {"companyName": "name", "currency": "currency", "exchange": "exchange",
                 "exchangeShortName": "exchange", "sector": "sector", "industry": "industry", "country": "country",
                 "isin": "isin", "cusip": "cusip", "cik": "cik", "ipoDate": "ipo_date"}
_INCOME = {"revenue": "revenue", "costOfRevenue": "cost_of_revenue", "grossProfit": "gross_profit",
           "operatingIncome": "operating_income", "netIncome": "net_income", "ebit": "ebit", "ebitda": "ebitda",
           "researchAndDevelopmentExpenses": "research_development",
           "sellingGeneralAndAdministrativeExpenses": "sga", "interestExpense": "interest_expense",
           "incomeTaxExpense": "income_tax", "incomeBeforeTax": "pretax_income",
           "operatingExpenses": "operating_expense", "eps": "eps", "epsDiluted": "eps_diluted",
           "epsdiluted": "eps_diluted"}


def _bad(message: str, where: str) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where)


def _number(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _bad("expected a number, got bool", where)
    if isinstance(value, str):  # FMP sends fullTimeEmployees as text
        try:
            out = float(value.strip()[:64])
        except ValueError:
            raise _bad("not a number", where) from None
    elif isinstance(value, int | float):
        out = float(value)
    else:
        raise _bad(f"expected a number, got {type(value).__name__}", where)
    if not math.isfinite(out):
        raise _bad("number is not finite", where)
    return out


def _one(payload: Any, where: str) -> dict[str, Any] | None:
    if isinstance(payload, dict):
        return payload or None
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise _bad("expected an array of objects", where)
    return payload[0] if payload else None


def profile(payload: Any, *, vendor: str | None = None) -> Fundamentals:
    """``/stable/profile`` (array of one object) -> profile fundamentals.

    Raises
    ------
    ProviderResponseError
        If the shape is wrong, the answer is for another symbol or a number is malformed.
    """
    row = _one(payload, "$")
    if row is None:
        return {}
    sym = row.get("symbol")
    if vendor is not None and isinstance(sym, str) and sym.upper() != vendor.upper():
        raise _bad(f"profile is for {sym[:20]!r}, not {vendor!r}", "$.symbol")
    source = f"{PROVIDER}:profile"
    out: Fundamentals = {}
    for field, name in _PROFILE_NUMBERS.items():
        n = _number(row.get(field), field)
        if n is not None:
            out[name] = (n, source)
    for field, name in _PROFILE_TEXT.items():
        v = row.get(field)
        if v is None:
            continue
        if not isinstance(v, str):
            raise _bad(f"expected text, got {type(v).__name__}", field)
        if v.strip():
            out[name] = (v.strip()[:200], source)
    return out


def income_statement(payload: Any, *, period: str = "annual") -> Fundamentals:
    """``/stable/income-statement`` -> the newest statement's lines.

    Parameters
    ----------
    payload
        Decoded JSON array of statements.
    period
        ``annual`` (keys ``income.*``) or ``quarter`` (keys ``income_q.*``).

    Raises
    ------
    ProviderResponseError
        If the shape is wrong or a line is malformed.
    """
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise _bad("expected an array of statements", "$")
    dated = [r for r in payload if isinstance(r.get("date"), str)]
    if len(dated) != len(payload):
        raise _bad("a statement has no date", "$.date")
    if not dated:
        return {}
    newest = max(dated, key=lambda r: str(r["date"]))
    date = str(newest["date"])[:10]
    prefix = "income" if period == "annual" else "income_q"
    source = f"{PROVIDER}:income-statement:{period}:{date}"
    out: Fundamentals = {f"{prefix}.period_end": (date, source)}
    cur = newest.get("reportedCurrency")
    if isinstance(cur, str) and cur.strip():
        out[f"{prefix}.currency"] = (cur.strip()[:8], source)
    for field, name in _INCOME.items():
        n = _number(newest.get(field), field)
        if n is not None:
            out[f"{prefix}.{name}"] = (n, source)
    return out
