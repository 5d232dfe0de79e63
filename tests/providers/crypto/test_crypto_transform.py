"""Pure pieces of the ccxt provider: symbol spelling, candle checks, no-trade rows, coverage."""

from __future__ import annotations

from pathlib import Path

import ccxt.async_support as ccxt_async
import numpy as np
import pyarrow as pa
import pytest
from _crypto_helpers import RECORDINGS, no_trade, us, vendor_rows

from tickvault.calendars import get_calendar
from tickvault.errors import InvalidSymbol, ProviderResponseError, UnsupportedRequest
from tickvault.model import BAR_SCHEMA, CoverageState, Timeframe
from tickvault.providers.crypto import (
    VENUES,
    canonical_symbol,
    crypto_coverage,
    market_id,
    ohlcv_bars,
    ohlcv_page,
    static_market,
    venue,
)

CAL = get_calendar("24/7")
M1 = Timeframe.parse("1m")
MIN = 60_000_000


@pytest.mark.parametrize(("exchange", "symbol", "vendor"), [
    ("binance", "BTC/USDT", "BTCUSDT"), ("coinbase", "BTC/USD", "BTC-USD"), ("kraken", "BTC/USDT", "XBTUSDT"),
    ("okx", "BTC/USDT", "BTC-USDT"), ("kraken", "DOGE/USD", "XDGUSD"), ("binance", "ETH/BTC", "ETHBTC"),
])
def test_symbols_map_both_ways(exchange: str, symbol: str, vendor: str) -> None:
    v = venue(exchange)
    assert market_id(v, symbol) == vendor
    assert canonical_symbol(v, vendor) == symbol


def test_kraken_aliases_agree_with_ccxt_currency_codes() -> None:
    kraken = ccxt_async.kraken()
    for canonical, code in (VENUES["kraken"].aliases or {}).items():
        assert kraken.safe_currency_code(code) == canonical


def test_static_market_is_a_spot_record_ccxt_accepts() -> None:
    ex = ccxt_async.kraken()
    ex.set_markets([static_market(venue("kraken"), "BTC/USDT")])
    market = ex.market("BTC/USDT")
    assert market["id"] == "XBTUSDT"
    assert market["spot"] is True
    assert ex.markets_by_id["XBTUSDT"][0]["symbol"] == "BTC/USDT"


def test_non_pairs_and_unknown_exchanges_are_refused() -> None:
    with pytest.raises(InvalidSymbol):
        market_id(venue("binance"), "AAPL")
    with pytest.raises(InvalidSymbol):
        canonical_symbol(venue("binance"), "NOQUOTEHERE")
    with pytest.raises(UnsupportedRequest):
        venue("mtgox")


def test_candle_rows_are_checked_column_wise() -> None:
    ts, cols = ohlcv_page([[1_700_000_040_000, 1.0, 2.0, 0.5, 1.5, 10.0]], provider="ccxt:x")
    assert ts.tolist() == [1_700_000_040_000_000]
    assert cols["close"].tolist() == [1.5]
    for bad in ([[1, "1", 2, 3, 4, 5]], [[1, 2, 3]], [[1.5, 1, 1, 1, 1, 1]], "nope", [None], [[None, 1, 1, 1, 1, 1]]):
        with pytest.raises(ProviderResponseError):
            ohlcv_page(bad, provider="ccxt:x")


def test_kraken_no_trade_rows_become_empty_slots_not_bars(shared_data: Path) -> None:
    rec = RECORDINGS["kraken"]
    rows = vendor_rows(shared_data, rec)
    page = ohlcv_page([[r[0] // 1000, *r[1:]] for r in rows], provider="ccxt:kraken")
    table, empty = ohlcv_bars([page], timeframe=M1, calendar=CAL, provider="ccxt:kraken")
    assert len(rows) == 721
    assert empty.size == sum(no_trade(r) for r in rows) == 216
    assert table.num_rows == 505
    assert table.schema.equals(BAR_SCHEMA)
    assert not np.isin(table.column("ts").cast(pa.int64()).to_numpy(), empty).any()


def test_off_grid_candle_is_a_response_error() -> None:
    page = ohlcv_page([[1_700_000_030_000, 1.0, 1.0, 1.0, 1.0, 1.0]], provider="ccxt:x")  # :30 seconds
    with pytest.raises(ProviderResponseError, match="grid"):
        ohlcv_bars([page], timeframe=M1, calendar=CAL, provider="ccxt:x")


def test_duplicate_candles_keep_the_later_page() -> None:
    t = 1_700_000_040_000
    first = ohlcv_page([[t, 1.0, 1.0, 1.0, 1.0, 1.0]], provider="ccxt:x")
    second = ohlcv_page([[t, 2.0, 2.0, 2.0, 2.0, 2.0]], provider="ccxt:x")
    table, _ = ohlcv_bars([first, second], timeframe=M1, calendar=CAL, provider="ccxt:x")
    assert table.column("close").to_pylist() == [2.0]


def test_coverage_partitions_the_window() -> None:
    start = us("2024-01-01 00:00")
    now = start + 4 * MIN + 30_000_000
    bars = np.array([start, start + 2 * MIN])  # minutes 1 and 3 had no trade
    cov = crypto_coverage(bars, start, start + 5 * MIN, M1, now, CAL, "ccxt")
    assert [(iv.state, iv.start_us - start, iv.end_us - start) for iv in cov] == [
        (CoverageState.FINAL, 0, MIN), (CoverageState.EMPTY, MIN, 2 * MIN), (CoverageState.FINAL, 2 * MIN, 3 * MIN),
        (CoverageState.EMPTY, 3 * MIN, 4 * MIN), (CoverageState.PROVISIONAL, 4 * MIN, now - start)]


def test_future_is_never_covered() -> None:
    start = us("2024-01-01")
    assert crypto_coverage(np.array([], dtype=np.int64), start, start + MIN, M1, start - 1, CAL, "ccxt") == []


def test_public_names_are_pinned() -> None:
    import tickvault.providers.crypto as pkg

    assert sorted(pkg.__all__) == [
        "CcxtProvider", "OhlcvPage", "VENUES", "Venue", "canonical_symbol", "crypto_coverage", "map_ccxt_error",
        "market_id", "ohlcv_bars", "ohlcv_page", "require_ccxt", "settings_name", "static_market", "transform_pages",
        "venue"]
