"""Shared helpers of the FMP tests: OpenBB's vcrpy cassettes (gzip bodies), routes, expectations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import yaml  # type: ignore[import-untyped]
from pydantic import SecretStr

from tickvault.providers._http import Clock, ProviderSettings, RetryPolicy
from tickvault.providers.fmp import FmpProvider
from tickvault.testing.provider_conformance import ExpectedBars
from tickvault.testing.replay import Canned, Route

FOLDER = Path("provider-payloads/OpenBB")
PRICES = "test_fmp_equity_historical_fetcher_urllib3_v2.yaml"
SPLITS = "test_fmp_historical_splits_fetcher_urllib3_v2.yaml"
KEY = "FMP-SECRET-777"
RECORDED_US = 1_758_585_600_000_000  # 2025-09-23, when the prices cassette was recorded
PRICES_PATH = "/stable/historical-price-eod/full"
V3_SPLITS_PATH = "/api/v3/historical-price-full/stock_split/AAPL"


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def interaction(shared: Path, name: str) -> dict[str, Any]:
    """The one recorded request/response of an OpenBB cassette."""
    data = yaml.safe_load((shared / FOLDER / name).read_text())
    inter: dict[str, Any] = data["interactions"][0]
    return inter


def raw_body(shared: Path, name: str) -> bytes:
    """The recorded body bytes as sent on the wire (gzip)."""
    body = interaction(shared, name)["response"]["body"]["string"]
    assert isinstance(body, bytes)
    return body


def json_body(shared: Path, name: str) -> Any:
    """The recorded body decoded: base64 (by YAML) -> gunzip -> JSON."""
    return json.loads(gzip.decompress(raw_body(shared, name)))


def route(shared: Path, name: str, *, params: dict[str, str] | None = None) -> Route:
    """The cassette served at its recorded path with its recorded gzip bytes and Content-Encoding."""
    path = urlsplit(interaction(shared, name)["request"]["uri"]).path
    headers = {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"}
    return Route(path, Canned(200, raw_body(shared, name), headers), dict(params or {}), note=f"recorded: {name}")


def stable_splits_route(shared: Path) -> Route:
    """Derived: the recorded v3 split list reshaped to the stable API's bare array."""
    rows = [{"symbol": "AAPL", **{k: r[k] for k in ("date", "numerator", "denominator")}}
            for r in json_body(shared, SPLITS)["historical"]]
    return Route("/stable/splits", Canned.json(rows), {"symbol": "AAPL"}, note="derived: v3 splits as a stable array")


def no_dividends_routes() -> list[Route]:
    """Derived: empty dividend lists (no recording; no AAPL ex-date falls in the recorded window)."""
    return [Route("/stable/dividends", Canned.json([]), note="derived: empty"),
            Route("/api/v3/historical-price-full/stock_dividend/AAPL", Canned.json({}), note="derived: empty")]


def expected(rows: list[dict[str, Any]]) -> ExpectedBars:
    """Bars an FMP price array holds (dates at 00:00 UTC; no split after 2023 so values are raw)."""
    rows = sorted(rows, key=lambda r: r["date"])
    keys = pd.DatetimeIndex([r["date"] for r in rows]).tz_localize("UTC").as_unit("us").asi8
    return ExpectedBars.of(keys, [r["open"] for r in rows], [r["high"] for r in rows], [r["low"] for r in rows],
                           [r["close"] for r in rows], [r["volume"] for r in rows])


def make(base_url: str, clock: Clock, *, key: str | None = KEY, retries: int = 2, timeout: float = 2.0,
         **kw: Any) -> FmpProvider:
    """An FMP adapter pointed at ``base_url`` (no client rate limit, seeded jitter)."""
    secret = SecretStr(key) if key else None
    settings = ProviderSettings("fmp", base_url, api_key=secret, timeout=timeout, max_retries=retries,
                                rate_limit_per_minute=None)
    return FmpProvider(settings, clock=clock, retry=RetryPolicy(seed=5), **kw)
