"""Shared helpers of the Alpaca tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr

from tickvault.providers._http import Clock, ProviderSettings, RetryPolicy
from tickvault.providers.alpaca import AlpacaProvider
from tickvault.testing.replay import alpaca_recordings

FILE = Path("provider-payloads/alpaca-py/test_historical_stock_data.payloads.json")
KEY, SECRET = "ak-test-id", "ak-test-secret"
NOW_US = 1_740_009_600_000_000

#: Synthetic, shaped like alpaca-py's corporate-actions mock (tests/data/test_corporate_actions.py);
#: the AAPL values are AAPL's real 2020 split and dividend.
ACTIONS_PAGE: dict[str, Any] = {
    "corporate_actions": {
        "forward_splits": [
            {"ex_date": "2020-08-31", "new_rate": 4, "old_rate": 1, "process_date": "2020-08-31",
             "record_date": "2020-08-24", "payable_date": "2020-08-28", "symbol": "AAPL"},
            {"ex_date": "2023-08-22", "new_rate": 2, "old_rate": 1, "process_date": "2023-08-22", "symbol": "SRE"},
        ],
        "reverse_splits": [{"ex_date": "2023-08-24", "new_rate": 1, "old_rate": 50, "process_date": "2023-08-24",
                            "symbol": "MNTS"}],
        "cash_dividends": [{"ex_date": "2020-11-06", "foreign": False, "payable_date": "2020-11-12",
                            "process_date": "2020-11-12", "rate": 0.205, "record_date": "2020-11-09",
                            "special": False, "symbol": "AAPL"}],
        "name_changes": [{"new_symbol": "VFS", "old_symbol": "BSAQ", "process_date": "2023-08-15"}],
    },
    "next_page_token": None,
}


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def recordings(shared: Path) -> dict[str, dict[str, Any]]:
    """The alpaca-py recordings by test name."""
    return alpaca_recordings(shared / FILE)


def provider(base_url: str, clock: Clock, *, key: bool = True, **kw: Any) -> AlpacaProvider:
    """An Alpaca adapter pointed at ``base_url`` (actions off unless asked)."""
    settings = ProviderSettings("alpaca", base_url, api_key=SecretStr(KEY) if key else None,
                                api_secret=SecretStr(SECRET) if key else None,
                                timeout=kw.pop("timeout", 5.0), max_retries=kw.pop("retries", 2))
    kw.setdefault("actions", False)
    return AlpacaProvider(settings, clock=clock, retry=RetryPolicy(seed=9), **kw)
