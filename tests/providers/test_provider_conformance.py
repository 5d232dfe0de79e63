"""The provider conformance suite over every provider, on recorded payloads, through real HTTP.

Each case replays recorded vendor responses from ``shared/data/provider-payloads`` on a
local server and fetches them with the real adapter; the expected bars are computed here
from the raw JSON, independently of the adapters (exchange-local dates of the vendor stamps
as session keys, values as recorded). Cases marked *derived* serve a recorded body split into
pages (see :mod:`tickvault.testing.replay`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from tickvault.model import AssetClass, Instrument
from tickvault.providers._http import Clock, ProviderSettings
from tickvault.providers.alpaca import AlpacaProvider
from tickvault.providers.base import BarsQuery, Provider
from tickvault.providers.polygon import PolygonProvider
from tickvault.providers.yahoo import YahooProvider
from tickvault.testing.provider_conformance import ConformanceCase, ExpectedBars, ProviderConformance
from tickvault.testing.replay import (
    alpaca_pages,
    alpaca_recordings,
    alpaca_route,
    polygon_pages,
    polygon_path,
    polygon_route,
    yahoo_later_events_route,
    yahoo_route,
)

PAYLOADS = Path("provider-payloads")
RECORDED_US = 1_740_009_600_000_000  # 2025-02-20: the Yahoo recordings' date; "now" for every case
SECRET = "conformance-secret-key"


def us(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def local_keys(instants: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Exchange-local calendar date of each instant, as epoch µs at 00:00 UTC."""
    return np.asarray(pd.DatetimeIndex(instants.tz_convert(tz).date).tz_localize("UTC").as_unit("us").asi8)


# -- Yahoo ----------------------------------------------------------------------------------

YAHOO: dict[str, tuple[Instrument, str, str, str]] = {
    "chart-AAPL-2020-08-31-to-2020-11-07.json": (Instrument("AAPL", exchange="XNAS"), "1d", "2020-08-31",
                                                 "2020-11-07"),
    "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json": (
        Instrument("MSFT", exchange="XNAS"), "1d", "2021-02-01", "2022-01-31"),
    "chart-BTC-USD-2020-01-01-to-2020-01-03.json": (Instrument("BTC/USD", AssetClass.CRYPTO, calendar="24/7"), "1d",
                                                    "2020-01-01", "2020-01-04"),
    "chart-EURUSD=X-2020-01-01-to-2020-01-03.json": (Instrument("EUR/USD", AssetClass.FX, calendar="24/5"), "1d",
                                                     "2020-01-01", "2020-01-04"),
    "chart-GC=F-2020-01-01-to-2020-01-03.json": (
        Instrument("GC", AssetClass.FUTURE, calendar="CMES", provider_symbols={"yahoo": "GC=F"}), "1d",
        "2020-01-01", "2020-01-03"),
    "chart-OCDO.L-2020-01-01-to-2020-01-03.json": (Instrument("OCDO", exchange="XLON", calendar="XLON"), "1d",
                                                   "2020-01-01", "2020-01-03"),
    "chart-WSU.DE-2023-08-04-to-2023-08-09.json": (Instrument("WSU", exchange="XETR", calendar="XETR"), "1d",
                                                   "2023-08-04", "2023-08-09"),
    "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json": (
        Instrument("AAPL", exchange="XNAS"), "1m", "2025-02-01", "2025-02-02"),
}


def yahoo_factory(base_url: str, clock: Clock) -> Provider:
    return YahooProvider(ProviderSettings("yahoo", base_url, timeout=5.0), clock=clock)


def yahoo_case(name: str) -> Callable[[Path], ConformanceCase]:
    def build(shared: Path) -> ConformanceCase:
        path = shared / PAYLOADS / "node-yahoo-finance2" / name
        result = json.loads(path.read_text())["response"]["bodyJson"]["chart"]["result"][0]
        inst, tf, start, end = YAHOO[name]
        if "timestamp" in result:
            stamps = pd.to_datetime(result["timestamp"], unit="s", utc=True)
            keys = local_keys(stamps, result["meta"]["exchangeTimezoneName"])
            q = result["indicators"]["quote"][0]
            expected = ExpectedBars.of(keys, q["open"], q["high"], q["low"], q["close"], q["volume"])
        else:
            expected = ExpectedBars.of([], [], [], [], [], [])
        return ConformanceCase(f"yahoo:{name}", (yahoo_route(path), yahoo_later_events_route(path)), yahoo_factory,
                               BarsQuery(inst.symbol, tf, us(start), us(end), inst), expected, RECORDED_US)

    return build


# -- Polygon --------------------------------------------------------------------------------

POLYGON_AGGS = "v2_aggs_AAPL_range_1_day_2005-04-01_2005-04-04.json"


def polygon_factory(base_url: str, clock: Clock) -> Provider:
    return PolygonProvider(ProviderSettings("polygon", base_url, api_key=SecretStr(SECRET), timeout=5.0), clock=clock)


def polygon_case(paged: bool) -> Callable[[Path], ConformanceCase]:
    def build(shared: Path) -> ConformanceCase:
        folder = shared / PAYLOADS / "polygon-client-python"
        body: dict[str, Any] = json.loads((folder / POLYGON_AGGS).read_text())
        aggs = (polygon_pages(polygon_path(POLYGON_AGGS), body, 1) if paged
                else [polygon_route(folder / POLYGON_AGGS)])
        routes = (*aggs, polygon_route(folder / "v3_reference_splits.json"),
                  polygon_route(folder / "v3_reference_dividends.json"))
        rows = body["results"]
        keys = local_keys(pd.to_datetime([r["t"] for r in rows], unit="ms", utc=True), "America/New_York")
        expected = ExpectedBars.of(keys, *([r[k] for r in rows] for k in ("o", "h", "l", "c", "v")))
        return ConformanceCase(f"polygon:AAPL-2005{'-paged (derived)' if paged else ''}", routes, polygon_factory,
                               BarsQuery("AAPL", "1d", us("2005-04-01"), us("2005-04-05")), expected, RECORDED_US)

    return build


# -- Alpaca ---------------------------------------------------------------------------------

ALPACA_FILE = PAYLOADS / "alpaca-py" / "test_historical_stock_data.payloads.json"


def alpaca_factory(base_url: str, clock: Clock) -> Provider:
    settings = ProviderSettings("alpaca", base_url, api_key=SecretStr(SECRET), api_secret=SecretStr(SECRET + "2"),
                                timeout=5.0)
    return AlpacaProvider(settings, clock=clock, actions=False)


def alpaca_case(test: str, symbol: str, start: str, end: str, paged: bool = False) -> Callable[[Path], ConformanceCase]:
    def build(shared: Path) -> ConformanceCase:
        rec = alpaca_recordings(shared / ALPACA_FILE)[test]
        response = rec["response"]
        routes = (alpaca_pages("/v2/stocks/bars", {"symbols": symbol}, response, 1) if paged
                  else alpaca_route(rec, params={"symbols": symbol}))
        rows = sorted((response.get("bars") or {}).get(symbol, []), key=lambda r: r["t"])
        keys = local_keys(pd.to_datetime([r["t"] for r in rows], utc=True), "America/New_York") if rows else []
        expected = ExpectedBars.of(keys, *([r[k] for r in rows] for k in ("o", "h", "l", "c", "v")))
        name = f"alpaca:{test}{'-paged (derived)' if paged else ''}"
        return ConformanceCase(name, tuple(routes), alpaca_factory, BarsQuery(symbol, "1d", us(start), us(end)),
                               expected, RECORDED_US)

    return build


CASES: dict[str, Callable[[Path], ConformanceCase]] = {
    **{f"yahoo:{n}": yahoo_case(n) for n in YAHOO},
    "polygon:recorded": polygon_case(paged=False),
    "polygon:paged": polygon_case(paged=True),
    "alpaca:get_bars": alpaca_case("test_get_bars", "AAPL", "2022-02-01", "2022-02-03"),
    "alpaca:desc-paged": alpaca_case("test_get_bars_desc", "TSLA", "2023-09-25", "2023-09-28", paged=True),
    "alpaca:desc": alpaca_case("test_get_bars_desc", "TSLA", "2023-09-25", "2023-09-28"),
    "alpaca:empty": alpaca_case("test_get_bars_single_empty_response", "AAPL", "2022-02-05", "2022-02-07"),
}


class TestEveryProvider(ProviderConformance):
    @pytest.fixture(params=sorted(CASES))
    def case(self, request: pytest.FixtureRequest, shared_data: Path) -> ConformanceCase:
        return CASES[request.param](shared_data)

    def test_repr_never_shows_the_key(self, outcome: Any) -> None:
        assert SECRET not in outcome.provider_repr


def test_every_network_provider_has_cases() -> None:
    assert {k.split(":")[0] for k in CASES} == {"yahoo", "polygon", "alpaca"}


# -- Alpha Vantage, Tiingo, FMP, ccxt (added with those providers; their own folders hold more cases) ----
#
# Expected bars come from the raw recordings here too: Alpha Vantage stamps are bar ENDS in naive
# US/Eastern (key = stamp - one bar, in UTC), Tiingo and FMP dates are session dates, ccxt candles
# are keyed by their open and no-trade candles (volume 0, flat) are empty coverage, not bars.

def alpha_vantage_case(shared: Path) -> ConformanceCase:
    from tickvault.providers.alphavantage import AlphaVantageProvider
    from tickvault.testing.replay import Canned, Route

    path = shared / PAYLOADS / "stock-point" / "TIME_SERIES_INTRADAY_5min_MSFT_compact.json"
    body = json.loads(path.read_text())["response"]
    series = body["Time Series (5min)"]
    stamps = sorted(series)
    keys = (pd.DatetimeIndex(stamps).tz_localize("America/New_York").tz_convert("UTC")
            - pd.Timedelta(minutes=5)).as_unit("us").asi8
    fields = ("1. open", "2. high", "3. low", "4. close", "5. volume")
    expected = ExpectedBars.of(keys, *([float(series[s][f]) for s in stamps] for f in fields))
    route = Route("/query", Canned.json(body), {"function": "TIME_SERIES_INTRADAY"}, note=f"recorded: {path.name}")

    def factory(base_url: str, clock: Clock) -> Provider:
        return AlphaVantageProvider(ProviderSettings("alpha_vantage", base_url, api_key=SecretStr(SECRET)),
                                    clock=clock)

    q = BarsQuery("MSFT", "5m", us("2019-08-01 18:10"), us("2019-08-02 20:00"), Instrument("MSFT"))
    return ConformanceCase("alpha_vantage:intraday-5m", (route,), factory, q, expected, us("2019-08-03"))


def tiingo_case(shared: Path) -> ConformanceCase:
    import yaml  # type: ignore[import-untyped]

    from tickvault.providers.tiingo import TiingoProvider
    from tickvault.testing.replay import Canned, Route

    path = shared / PAYLOADS / "tiingo-python" / "ticker_price_pandas_daily_equivalent_requesting_json_or_csv.yaml"
    text = yaml.safe_load(path.read_text())["interactions"][0]["response"]["body"]["string"]
    rows = json.loads(text)
    keys = pd.DatetimeIndex([r["date"] for r in rows]).tz_convert("UTC").as_unit("us").asi8
    expected = ExpectedBars.of(keys, *([r[k] for r in rows] for k in ("open", "high", "low", "close", "volume")))
    route = Route("/tiingo/daily/GOOGL/prices", Canned(200, text.encode()), {"format": "json"},
                  note=f"recorded: {path.name}[0]")

    def factory(base_url: str, clock: Clock) -> Provider:
        return TiingoProvider(ProviderSettings("tiingo", base_url, api_key=SecretStr(SECRET)), clock=clock)

    q = BarsQuery("GOOGL", "1d", us("2018-01-05"), us("2018-01-20"))
    return ConformanceCase("tiingo:end-of-day", (route,), factory, q, expected, RECORDED_US)


def fmp_case(shared: Path) -> ConformanceCase:
    import gzip
    from urllib.parse import urlsplit

    import yaml

    from tickvault.providers.fmp import FmpProvider
    from tickvault.testing.replay import Canned, Route

    def recorded(name: str) -> tuple[str, bytes]:
        inter = yaml.safe_load((shared / PAYLOADS / "OpenBB" / name).read_text())["interactions"][0]
        return urlsplit(inter["request"]["uri"]).path, inter["response"]["body"]["string"]

    gz = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    prices_path, prices = recorded("test_fmp_equity_historical_fetcher_urllib3_v2.yaml")
    splits_path, splits = recorded("test_fmp_historical_splits_fetcher_urllib3_v2.yaml")
    rows = sorted(json.loads(gzip.decompress(prices)), key=lambda r: r["date"])
    keys = pd.DatetimeIndex([r["date"] for r in rows]).tz_localize("UTC").as_unit("us").asi8
    expected = ExpectedBars.of(keys, *([r[k] for r in rows] for k in ("open", "high", "low", "close", "volume")))
    routes = (Route(prices_path, Canned(200, prices, gz), note="recorded: FMP prices (gzip)"),
              Route(splits_path, Canned(200, splits, gz), note="recorded: FMP v3 splits (gzip)"),
              Route("/api/v3/historical-price-full/stock_dividend/AAPL", Canned.json({}),
                    note="derived: no dividend recorded"))

    def factory(base_url: str, clock: Clock) -> Provider:
        return FmpProvider(ProviderSettings("fmp", base_url, api_key=SecretStr(SECRET)), clock=clock, api="v3")

    q = BarsQuery("AAPL", "1d", us("2023-01-01"), us("2023-01-11"))
    return ConformanceCase("fmp:end-of-day", routes, factory, q, expected, RECORDED_US)


CCXT: dict[str, tuple[str, str, dict[str, str], str, str, str, str, str]] = {
    "kraken": ("kraken_spot_http_ohlc.json", "/0/public/OHLC", {"pair": "XBTUSDT"}, "BTC/USDT", "1m",
               "2025-11-10 12:17", "2025-11-11 00:18", "2025-11-11 00:17:30"),
    "binance": ("binance_spot_klines_response.json", "/api/v3/klines", {"symbol": "LTCBTC"}, "LTC/BTC", "1w",
                "2017-07-03", "2017-07-10", "2017-08-01"),
    "coinbase": ("coinbase_advanced_http_candles.json", "/api/v3/brokerage/market/products/BTC-USD/candles", {},
                 "BTC/USD", "1h", "2024-04-04 00:00", "2024-04-04 02:00", "2024-04-04 03:00"),
    "okx": ("okx_http_get_candlesticks_full.json", "/api/v5/market/candles", {"instId": "BTC-USDT"}, "BTC/USDT", "1m",
            "2025-05-12 23:53", "2025-05-12 23:55", "2025-05-12 23:56"),
}


def ccxt_case(exchange: str) -> Callable[[Path], ConformanceCase]:
    def build(shared: Path) -> ConformanceCase:
        from tickvault.providers.crypto import CcxtProvider
        from tickvault.testing.replay import Canned, Route

        file, path, params, symbol, tf, start, end, now = CCXT[exchange]
        raw = (shared / PAYLOADS / "nautilus_trader" / file).read_bytes()
        data = json.loads(raw)
        rows = {"binance": lambda: [(int(r[0]) * 1000, *r[1:6]) for r in data],
                "coinbase": lambda: [(int(c["start"]) * 10**6, c["open"], c["high"], c["low"], c["close"], c["volume"])
                                     for c in data["candles"]],
                "kraken": lambda: [(r[0] * 10**6, *r[1:5], r[6]) for r in data["result"]["XBTUSDT"]],
                "okx": lambda: [(int(r[0]) * 1000, *r[1:6]) for r in data["data"]]}[exchange]()
        lo, hi = us(start), us(end)
        traded = sorted((r[0], *map(float, r[1:])) for r in rows
                        if lo <= r[0] < hi and not (float(r[5]) == 0 and len({float(x) for x in r[1:5]}) == 1))
        cols = list(zip(*traded, strict=True))
        expected = ExpectedBars.of(np.asarray(cols[0], dtype=np.int64), *cols[1:])
        inst = Instrument(symbol, AssetClass.CRYPTO, exchange=exchange, calendar="24/7")

        def factory(base_url: str, clock: Clock) -> Provider:
            return CcxtProvider([exchange], settings={exchange: ProviderSettings(f"ccxt_{exchange}", base_url)},
                                markets="static", clock=clock)

        return ConformanceCase(f"ccxt:{exchange}", (Route(path, Canned(200, raw), params, note=f"recorded: {file}"),),
                               factory, BarsQuery(symbol, tf, lo, hi, inst), expected, us(now))

    return build


MORE_CASES: dict[str, Callable[[Path], ConformanceCase]] = {
    "alpha_vantage:intraday-5m": alpha_vantage_case,
    "tiingo:end-of-day": tiingo_case,
    "fmp:end-of-day": fmp_case,
    **{f"ccxt:{e}": ccxt_case(e) for e in CCXT},
}


class TestEveryMoreProvider(ProviderConformance):
    @pytest.fixture(params=sorted(MORE_CASES))
    def case(self, request: pytest.FixtureRequest, shared_data: Path) -> ConformanceCase:
        return MORE_CASES[request.param](shared_data)

    def test_repr_never_shows_the_key(self, outcome: Any) -> None:
        assert SECRET not in outcome.provider_repr


def test_every_more_network_provider_has_cases() -> None:
    assert {k.split(":")[0] for k in MORE_CASES} == {"alpha_vantage", "tiingo", "fmp", "ccxt"}
