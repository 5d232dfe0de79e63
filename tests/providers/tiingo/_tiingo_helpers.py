"""Shared helpers of the Tiingo tests: vcrpy cassettes, replay routes, independent expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import yaml  # type: ignore[import-untyped]
from pydantic import SecretStr

from tickvault.providers._http import Clock, ProviderSettings, RetryPolicy
from tickvault.providers.tiingo import TiingoProvider
from tickvault.testing.provider_conformance import ExpectedBars
from tickvault.testing.replay import Canned, Route

FOLDER = Path("provider-payloads/tiingo-python")
DAILY = "ticker_price_pandas_daily_equivalent_requesting_json_or_csv.yaml"
IEX = "intraday_price.yaml"
META = "ticker_metadata.yaml"
FUND_DAILY = "fundamentals_daily.yaml"
FUND_STATEMENTS = "fundamentals_statements.yaml"
KEY = "TIINGO-SECRET-0042"
RECORDED_US = 1_602_892_800_000_000  # 2020-10-17, when the daily cassette was recorded


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def interactions(shared: Path, name: str) -> list[dict[str, Any]]:
    """The recorded request/response pairs of a vcrpy cassette (YAML)."""
    data = yaml.safe_load((shared / FOLDER / name).read_text())
    return list(data["interactions"])


def body_text(interaction: dict[str, Any]) -> str:
    """The recorded response body as text."""
    body = interaction["response"]["body"]["string"]
    return body.decode() if isinstance(body, bytes) else str(body)


def query_of(interaction: dict[str, Any]) -> dict[str, str]:
    """The recorded request's query parameters."""
    return dict(parse_qsl(urlsplit(interaction["request"]["uri"]).query))


def route(shared: Path, name: str, index: int = 0, *, params: dict[str, str] | None = None,
          path: str | None = None) -> Route:
    """Interaction ``index`` of a cassette served at its recorded path (or ``path``)."""
    inter = interactions(shared, name)[index]
    url = urlsplit(inter["request"]["uri"])
    status = int(inter["response"]["status"]["code"])
    ctype = "text/csv" if query_of(inter).get("format") == "csv" else "application/json"
    return Route(path or url.path, Canned(status, body_text(inter).encode(), {"Content-Type": ctype}),
                 dict(params or {}), name=f"{url.path}#{index}", note=f"recorded: {name}[{index}]")


def json_body(shared: Path, name: str, index: int = 0) -> Any:
    """Interaction ``index``'s body decoded as JSON."""
    return json.loads(body_text(interactions(shared, name)[index]))


def expected(rows: list[dict[str, Any]], *, volume: bool = True) -> ExpectedBars:
    """Bars a Tiingo price array holds, computed without the adapter (dates are UTC instants)."""
    keys = pd.DatetimeIndex([pd.Timestamp(r["date"]) for r in rows]).tz_convert("UTC").as_unit("us").asi8
    vol = [float(r["volume"]) if volume else float("nan") for r in rows]
    return ExpectedBars.of(keys, [r["open"] for r in rows], [r["high"] for r in rows], [r["low"] for r in rows],
                           [r["close"] for r in rows], vol)


def make(base_url: str, clock: Clock, *, key: str | None = KEY, retries: int = 2, timeout: float = 2.0,
         **kw: Any) -> TiingoProvider:
    """A Tiingo adapter pointed at ``base_url`` (no client rate limit, seeded jitter)."""
    secret = SecretStr(key) if key else None
    settings = ProviderSettings("tiingo", base_url, api_key=secret, timeout=timeout, max_retries=retries,
                                rate_limit_per_minute=None)
    return TiingoProvider(settings, clock=clock, retry=RetryPolicy(seed=11), **kw)
