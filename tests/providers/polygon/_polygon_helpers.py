"""Shared helpers of the Polygon tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr

from tickvault.providers._http import Clock, ProviderSettings, RetryPolicy
from tickvault.providers.polygon import PolygonProvider

FOLDER = Path("provider-payloads/polygon-client-python")
AGGS = "v2_aggs_AAPL_range_1_day_2005-04-01_2005-04-04.json"
AGGS_PATH = "/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04"
KEY = "pk-test-key"
NOW_US = 1_740_009_600_000_000


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def load(shared: Path, name: str) -> Any:
    """A recorded Polygon body."""
    return json.loads((shared / FOLDER / name).read_text())


def provider(base_url: str, clock: Clock, *, key: str | None = KEY, **kw: Any) -> PolygonProvider:
    """A Polygon adapter pointed at ``base_url``."""
    settings = ProviderSettings("polygon", base_url, api_key=SecretStr(key) if key else None,
                                timeout=kw.pop("timeout", 5.0), max_retries=kw.pop("retries", 2))
    return PolygonProvider(settings, clock=clock, retry=RetryPolicy(seed=5), **kw)
