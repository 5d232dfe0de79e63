"""Shared helpers of the Yahoo tests: recordings, independent expectations, provider factory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault.model import AssetClass, Instrument
from tickvault.providers._http import Clock, ProviderSettings
from tickvault.providers.yahoo import YahooProvider
from tickvault.testing.provider_conformance import ExpectedBars

FOLDER = Path("provider-payloads/node-yahoo-finance2")
RECORDED_US = 1_740_009_600_000_000  # 2025-02-20, the day node-yahoo-finance2 recorded these exchanges

#: file -> (canonical symbol, instrument, timeframe, query start, query end)
CHARTS: dict[str, tuple[Instrument, str, str, str]] = {
    "chart-AAPL-2020-08-31-to-2020-11-07.json": (Instrument("AAPL", exchange="XNAS", calendar="XNYS"), "1d",
                                                 "2020-08-31", "2020-11-07"),
    "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json": (
        Instrument("MSFT", exchange="XNAS", calendar="XNYS"), "1d", "2021-02-01", "2022-01-31"),
    "chart-BTC-USD-2020-01-01-to-2020-01-03.json": (Instrument("BTC/USD", AssetClass.CRYPTO, calendar="24/7"), "1d",
                                                    "2020-01-01", "2020-01-04"),
    "chart-EURUSD=X-2020-01-01-to-2020-01-03.json": (Instrument("EUR/USD", AssetClass.FX, calendar="24/5"), "1d",
                                                     "2020-01-01", "2020-01-04"),
    "chart-GC=F-2020-01-01-to-2020-01-03.json": (
        Instrument("GC", AssetClass.FUTURE, "XCEC", "USD", "CMES", provider_symbols={"yahoo": "GC=F"}), "1d",
        "2020-01-01", "2020-01-03"),
    "chart-OCDO.L-2020-01-01-to-2020-01-03.json": (Instrument("OCDO", exchange="XLON", currency="GBp",
                                                              calendar="XLON"), "1d", "2020-01-01", "2020-01-03"),
    "chart-WSU.DE-2023-08-04-to-2023-08-09.json": (Instrument("WSU", exchange="XETR", currency="EUR",
                                                              calendar="XETR"), "1d", "2023-08-04", "2023-08-09"),
    "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json": (
        Instrument("AAPL", exchange="XNAS", calendar="XNYS"), "1m", "2025-02-01", "2025-02-02"),
}


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def recording(shared: Path, name: str) -> dict[str, Any]:
    """The whole recorded exchange."""
    data: dict[str, Any] = json.loads((shared / FOLDER / name).read_text())
    return data


def body(shared: Path, name: str) -> Any:
    """The recorded Yahoo JSON body."""
    return recording(shared, name)["response"]["bodyJson"]


def expected_bars(shared: Path, name: str) -> ExpectedBars:
    """What the payload holds, computed without the adapter: exchange-local session date of each
    stamp (Yahoo stamps the session open) at 00:00 UTC, quote values unchanged (no split after
    any recorded window, so Yahoo's split-adjusted values are the raw ones)."""
    result = body(shared, name)["chart"]["result"][0]
    if "timestamp" not in result:
        empty = np.empty(0)
        return ExpectedBars.of(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
    tz = result["meta"]["exchangeTimezoneName"]
    local = pd.to_datetime(result["timestamp"], unit="s", utc=True).tz_convert(tz)
    keys = pd.DatetimeIndex(local.date).tz_localize("UTC").as_unit("us").asi8
    q = result["indicators"]["quote"][0]
    return ExpectedBars.of(keys, q["open"], q["high"], q["low"], q["close"], q["volume"])


def provider(base_url: str, clock: Clock, **kw: Any) -> YahooProvider:
    """A Yahoo adapter pointed at ``base_url`` (short timeout, deterministic jitter)."""
    from tickvault.providers._http import RetryPolicy

    settings = ProviderSettings("yahoo", base_url, timeout=kw.pop("timeout", 5.0), max_retries=kw.pop("retries", 2),
                                rate_limit_per_minute=None)
    return YahooProvider(settings, clock=clock, retry=RetryPolicy(seed=3), **kw)
