"""SimProvider: the Provider protocol over simulate_bars."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from tickvault.errors import UnsupportedRequest
from tickvault.model import AssetClass, Instrument, Timeframe
from tickvault.providers.base import BarsQuery, DataKind, Provider
from tickvault.providers.sim import SimProvider, injected_bad_ticks, simulate_bars


def us(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def test_is_a_provider_with_open_capabilities() -> None:
    provider = SimProvider(seed=3)
    assert isinstance(provider, Provider)
    assert provider.name == "sim"
    caps = provider.capabilities
    assert caps.asset_classes == frozenset(AssetClass)
    assert [t.timeframe for t in caps.timeframes] == list(Timeframe.CANONICAL)
    assert caps.supports("1m") is not None
    assert caps.supports("1mo") is not None
    assert caps.kinds == frozenset({DataKind.BARS})
    assert caps.needs_credentials is False


@pytest.mark.parametrize(("symbol", "timeframe"), [("AAPL", "1m"), ("BTC/USDT", "1h"), ("EUR/USD", "1d"),
                                                   ("MSFT", "1w")])
def test_async_bars_equal_simulate_bars(symbol: str, timeframe: str) -> None:
    provider = SimProvider(seed=5, bad_ticks=0.01)
    query = BarsQuery(symbol, timeframe, us("2024-01-01"), us("2024-03-01"))
    result = asyncio.run(provider.bars(query))
    table, coverage = simulate_bars(symbol, timeframe, query.start_us, query.end_us, seed=5, bad_ticks=0.01)
    assert result.table.equals(table)
    assert injected_bad_ticks(result.table) == injected_bad_ticks(table)
    assert result.coverage == coverage
    assert result.actions == []
    asyncio.run(provider.aclose())
    asyncio.run(provider.aclose())  # idempotent


def test_instrument_calendar_is_used() -> None:
    inst = Instrument("VOD", calendar="XLON")
    query = BarsQuery("VOD", "1m", us("2024-03-04"), us("2024-03-05"), instrument=inst)
    result = asyncio.run(SimProvider().bars(query))
    local = result.table.to_pandas()["ts"].dt.tz_convert("Europe/London")
    assert local.dt.strftime("%H:%M").min() == "08:00"
    table, _ = simulate_bars("VOD", "1m", query.start_us, query.end_us, calendar="XLON")
    assert result.table.equals(table)


def test_no_trade_probability_is_configurable() -> None:
    query = BarsQuery("AAPL", "1m", us("2024-01-01"), us("2024-02-01"))
    dense = asyncio.run(SimProvider(no_trade_prob=0.0).bars(query))
    assert all(c.state == "final" for c in dense.coverage)
    assert dense.table.num_rows == 21 * 390


def test_unsupported_timeframe_is_a_provider_rejection() -> None:
    query = BarsQuery("AAPL", "2d", us("2024-01-01"), us("2024-02-01"))
    with pytest.raises(UnsupportedRequest) as info:
        asyncio.run(SimProvider().bars(query))
    assert info.value.context["provider"] == "sim"
