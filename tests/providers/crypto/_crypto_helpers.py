"""Shared helpers of the ccxt tests: nautilus_trader's recorded candle answers, routes, expectations.

Expected bars are computed from the vendor JSON directly (not through ccxt): the time field
as the candle open, prices and volume as the numbers the exchange sent. Kraken's no-trade
rows (volume 0, flat) are expected as ``empty`` coverage, not bars.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault.model import AssetClass, Instrument
from tickvault.providers._http import Clock, ProviderSettings, RetryPolicy
from tickvault.providers.base import BarsQuery
from tickvault.providers.crypto import CcxtProvider
from tickvault.testing.provider_conformance import ExpectedBars
from tickvault.testing.replay import Canned, Route

FOLDER = Path("provider-payloads/nautilus_trader")


def us(text: str) -> int:
    """Epoch µs of a UTC date/time string."""
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


@dataclass(frozen=True)
class Recording:
    """One exchange's recorded candle answer and the query it answers."""

    exchange: str
    file: str
    path: str
    params: dict[str, str]
    symbol: str
    timeframe: str
    start: str
    end: str
    now: str

    def instrument(self) -> Instrument:
        """The pair on this exchange (24/7)."""
        return Instrument(self.symbol, AssetClass.CRYPTO, exchange=self.exchange, calendar="24/7")

    def query(self) -> BarsQuery:
        """The bars query the recording answers."""
        return BarsQuery(self.symbol, self.timeframe, us(self.start), us(self.end), self.instrument())

    def now_us(self) -> int:
        """The injected "now"."""
        return us(self.now)


RECORDINGS: dict[str, Recording] = {
    # Binance documentation example kline (1w: openTime 2017-07-03 Monday, closeTime a week later).
    "binance": Recording("binance", "binance_spot_klines_response.json", "/api/v3/klines",
                         {"symbol": "LTCBTC", "interval": "1w"}, "LTC/BTC", "1w", "2017-07-03", "2017-07-10",
                         "2017-08-01"),
    "coinbase": Recording("coinbase", "coinbase_advanced_http_candles.json",
                          "/api/v3/brokerage/market/products/BTC-USD/candles", {"granularity": "ONE_HOUR"},
                          "BTC/USD", "1h", "2024-04-04 00:00", "2024-04-04 02:00", "2024-04-04 03:00"),
    # 721 rows 12:17..00:17; Kraken's "last" (00:16) says the 00:17 candle is still forming.
    "kraken": Recording("kraken", "kraken_spot_http_ohlc.json", "/0/public/OHLC", {"pair": "XBTUSDT", "interval": "1"},
                        "BTC/USDT", "1m", "2025-11-10 12:17", "2025-11-11 00:18", "2025-11-11 00:17:30"),
    "okx": Recording("okx", "okx_http_get_candlesticks_full.json", "/api/v5/market/candles",
                     {"instId": "BTC-USDT", "bar": "1m"}, "BTC/USDT", "1m", "2025-05-12 23:53", "2025-05-12 23:55",
                     "2025-05-12 23:56"),
}


def body(shared: Path, rec: Recording) -> Any:
    """The recorded JSON body."""
    return json.loads((shared / FOLDER / rec.file).read_text())


def route(shared: Path, rec: Recording, payload: Any = None) -> Route:
    """The recording (or ``payload``) served where ccxt asks for it."""
    data = (shared / FOLDER / rec.file).read_bytes() if payload is None else json.dumps(payload).encode()
    return Route(rec.path, Canned(200, data), dict(rec.params), name=rec.exchange, note=f"recorded: {rec.file}")


Row = tuple[int, float, float, float, float, float]


def vendor_rows(shared: Path, rec: Recording) -> list[Row]:
    """``(open µs, o, h, l, c, volume)`` straight from the vendor JSON, ascending."""
    data = body(shared, rec)
    rows: list[Any]
    if rec.exchange == "binance":
        rows = [(int(r[0]) * 1000, *map(float, r[1:6])) for r in data]
    elif rec.exchange == "coinbase":
        rows = [(int(c["start"]) * 1_000_000, float(c["open"]), float(c["high"]), float(c["low"]),
                 float(c["close"]), float(c["volume"])) for c in data["candles"]]
    elif rec.exchange == "kraken":
        rows = [(int(r[0]) * 1_000_000, float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[6]))
                for r in data["result"]["XBTUSDT"]]
    else:
        rows = [(int(r[0]) * 1000, *map(float, r[1:6])) for r in data["data"]]
    return sorted(rows)


def no_trade(row: Row) -> bool:
    """Volume 0 and a flat candle: a minute without trades."""
    _, o, h, lo, c, v = row
    return v == 0 and o == h == lo == c


def expected(shared: Path, rec: Recording) -> ExpectedBars:
    """The traded candles of the recording inside its query window."""
    q = rec.query()
    rows = [r for r in vendor_rows(shared, rec) if q.start_us <= r[0] < q.end_us and not no_trade(r)]
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
    return ExpectedBars.of(np.asarray(cols[0], dtype=np.int64), *cols[1:])


def settings(exchange: str, base_url: str, **options: str) -> ProviderSettings:
    """Settings pointing one exchange at ``base_url`` (no client rate limit)."""
    return ProviderSettings(f"ccxt_{exchange}", base_url, timeout=2.0, max_retries=2, rate_limit_per_minute=None,
                            options=options)


def make(base_url: str, clock: Clock, exchange: str, **options: str) -> CcxtProvider:
    """A ccxt provider for ``exchange`` at ``base_url`` with static markets (nothing but candles asked)."""
    return CcxtProvider([exchange], settings={exchange: settings(exchange, base_url, **options)}, markets="static",
                        clock=clock, retry=RetryPolicy(seed=13))
