"""Shared helpers of the Alpha Vantage tests: recordings, independent expectations, factory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import SecretStr

from tickvault.providers._http import Clock, ProviderSettings, RetryPolicy
from tickvault.providers.alphavantage import AlphaVantageProvider
from tickvault.testing.provider_conformance import ExpectedBars
from tickvault.testing.replay import Canned, Route

AV = Path("provider-payloads/alpha_vantage")
SP = Path("provider-payloads/stock-point")
DAILY = SP / "TIME_SERIES_DAILY_ADJUSTED_MSFT_compact.json"
FIVE_MIN = SP / "TIME_SERIES_INTRADAY_5min_MSFT_compact.json"
ONE_MIN = AV / "mock_time_series.json"
EXTENDED_CSV = AV / "mock_time_series_extended.csv"
OVERVIEW = AV / "mock_company_overview.json"
INCOME = AV / "mock_fundamental_data.json"
KEY = "AVKEY-SECRET-123"


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def payload(shared: Path, rel: Path) -> Any:
    """A recorded JSON body (stock-point files wrap it in ``{request_url, response}``)."""
    data = json.loads((shared / rel).read_text())
    return data["response"] if isinstance(data, dict) and "response" in data and "request_url" in data else data


def body_bytes(shared: Path, rel: Path) -> bytes:
    """The recorded body as served."""
    if rel.suffix == ".csv":
        return (shared / rel).read_bytes()
    return json.dumps(payload(shared, rel)).encode()


def expected_json(series: dict[str, dict[str, str]], *, minutes: int | None, tz: str = "America/New_York",
                  volume_field: str = "5. volume") -> ExpectedBars:
    """Bars a JSON series holds, computed without the adapter (bar-end stamps -> opens)."""
    stamps = sorted(series)
    if minutes is None:
        keys = pd.DatetimeIndex(stamps).tz_localize("UTC")
    else:
        local = pd.DatetimeIndex(stamps).tz_localize(tz)
        keys = local.tz_convert("UTC") - pd.Timedelta(minutes=minutes)
    rows = [series[s] for s in stamps]

    def col(name: str) -> list[float]:
        return [float(r[name]) for r in rows]

    return ExpectedBars.of(keys.as_unit("us").asi8, col("1. open"), col("2. high"), col("3. low"), col("4. close"),
                           col(volume_field))


def expected_csv(shared: Path, *, regular_only: bool) -> ExpectedBars:
    """Bars of the extended CSV slice: stamps are bar ends in New York time; optionally keep
    regular-session opens only (09:30-16:00, 13:00 on the 2020-11-27 early close)."""
    df = pd.read_csv(shared / EXTENDED_CSV)
    local = pd.DatetimeIndex(pd.to_datetime(df["time"])).tz_localize("America/New_York") - pd.Timedelta(minutes=1)
    keep = np.ones(len(df), dtype=bool)
    if regular_only:
        minute = local.hour * 60 + local.minute
        close = np.where(local.date == pd.Timestamp("2020-11-27").date(), 13 * 60, 16 * 60)
        keep = (minute >= 9 * 60 + 30) & (minute < close)
    keys = local.tz_convert("UTC")[keep]
    order = np.argsort(keys.asi8)
    sub = df[keep].iloc[order]
    return ExpectedBars.of(keys.as_unit("us").asi8[order], sub["open"], sub["high"], sub["low"], sub["close"],
                           sub["volume"])


def route(shared: Path, rel: Path, **params: str) -> Route:
    """The recording served at ``/query`` for requests carrying ``params``."""
    content_type = "text/csv" if rel.suffix == ".csv" else "application/json"
    return Route("/query", Canned(200, body_bytes(shared, rel), {"Content-Type": content_type}), params,
                 name=f"{params.get('function', '')}:{rel.name}", note=f"recorded: {rel.name}")


def make(base_url: str, clock: Clock, *, key: str | None = KEY, retries: int = 2, timeout: float = 2.0,
         **kw: Any) -> AlphaVantageProvider:
    """An Alpha Vantage adapter pointed at ``base_url`` (no client rate limit, seeded jitter)."""
    secret = SecretStr(key) if key else None
    settings = ProviderSettings("alpha_vantage", base_url, api_key=secret, timeout=timeout, max_retries=retries,
                                rate_limit_per_minute=None)
    return AlphaVantageProvider(settings, clock=clock, retry=RetryPolicy(seed=7), **kw)
