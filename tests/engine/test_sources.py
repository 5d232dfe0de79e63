"""Issue 4 engine side: selection rules, failover, provisional refresh, concurrency, fundamentals,
corporate actions, symbol search and provider wiring (stubs of the Provider protocol, no network)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tickvault
from tickvault._wiring import build_providers
from tickvault.config import Settings
from tickvault.engine._providers import rank_providers
from tickvault.engine._read import plan_missing
from tickvault.errors import ConfigError, InvalidInput, ProviderUnavailable, UnsupportedRequest
from tickvault.model import (
    AssetClass,
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    Timeframe,
    ts_to_us,
)
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.store import MemoryStore

from ._fakes import CountingProvider


class Stub:
    """A configurable provider stub (capabilities, credentials, fundamentals, actions)."""

    def __init__(self, name: str, *, classes: frozenset[AssetClass] = frozenset(AssetClass),
                 tfs: tuple[str, ...] = ("1m", "1d"), keyed: bool = False, key_set: bool = True,
                 fundamentals: dict[str, tuple[float | str, str]] | None = None, fail: bool = False,
                 page_size: int | None = None, delay: float = 0.0) -> None:
        self._name = name
        kinds = {DataKind.BARS, DataKind.ACTIONS} | ({DataKind.FUNDAMENTALS} if fundamentals is not None else set())
        self._caps = Capabilities(name, classes, tuple(TimeframeSupport(t, page_size=page_size) for t in tfs),
                                  frozenset(kinds), needs_credentials=keyed)
        self.settings = type("S", (), {"has_credentials": key_set})()
        self._fund = fundamentals
        self.fail = fail
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._inner = CountingProvider(name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    async def bars(self, query: BarsQuery) -> BarsResult:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise ProviderUnavailable("down", provider=self._name)
            return await self._inner.bars(query)
        finally:
            self.in_flight -= 1

    async def fundamentals(self, symbol: str,
                           instrument: Instrument | None = None) -> dict[str, tuple[float | str, str]]:
        self.calls += 1
        if self.fail or self._fund is None:
            raise ProviderUnavailable("down", provider=self._name)
        return dict(self._fund)

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        self.calls += 1
        return [CorporateAction.split("2024-01-08", 2.0, provider=self._name)]

    async def aclose(self) -> None:
        return None


EQUITY = Instrument("AAPL")
CRYPTO = Instrument.guess("BTC/USDT")


def names(ps: list[object]) -> list[str]:
    return [p.name for p in ps]  # type: ignore[attr-defined]


def test_selection_rules_by_asset_class_timeframe_and_preference() -> None:
    yahoo, ccxt, polygon, alpaca = Stub("yahoo"), Stub("ccxt"), Stub("polygon", keyed=True), Stub("alpaca", keyed=True)
    configured = [alpaca, yahoo, polygon, ccxt]
    daily, minute = Timeframe.parse("1d"), Timeframe.parse("1m")
    assert names(rank_providers(configured, CRYPTO, "bars", minute))[0] == "ccxt"
    assert names(rank_providers(configured, EQUITY, "bars", daily))[0] == "yahoo"
    assert names(rank_providers(configured, EQUITY, "bars", minute)) == ["polygon", "alpaca", "yahoo", "ccxt"]
    pref = {"bars": ("alpaca",)}
    assert names(rank_providers(configured, EQUITY, "bars", daily, pref))[0] == "alpaca"
    assert names(rank_providers(configured, EQUITY, "bars", minute, {"*": ("yahoo",)}))[0] == "yahoo"


def test_providers_without_credentials_or_capability_are_skipped() -> None:
    nokey = Stub("polygon", keyed=True, key_set=False)
    equities_only = Stub("yahoo", classes=frozenset({AssetClass.EQUITY}))
    daily_only = Stub("tiingo", tfs=("1d",))
    configured = [nokey, equities_only, daily_only]
    assert names(rank_providers(configured, EQUITY, "bars", Timeframe.parse("1m"))) == ["yahoo"]
    assert names(rank_providers(configured, CRYPTO, "bars", Timeframe.parse("1d"))) == ["tiingo"]


def test_provisional_recent_bars_are_refetched_only_when_stale() -> None:
    stub = Stub("yahoo")
    with tickvault.open(":memory:", providers=[stub]) as vault:
        now = pd.Timestamp.now(tz="UTC").floor("min")
        start = now - pd.Timedelta(days=3)
        vault.bars("BTC/USDT", "1m", start, now)
        first = stub.calls
        assert first >= 1
        cov = vault.coverage("BTC/USDT", "1m")
        assert cov[-1].state is CoverageState.PROVISIONAL  # the last hour is still provisional
        assert cov[0].state is CoverageState.FINAL
        vault.bars("BTC/USDT", "1m", start, now)
        assert stub.calls == first  # fresh: served from the store
    # staleness is decided by the planner: an old provisional mark counts as missing
    store = MemoryStore()
    t0 = ts_to_us(pd.Timestamp("2024-01-02 14:30", tz="UTC"))
    store.mark_covered("AAPL", "1m", [CoverageInterval(t0, t0 + 60_000_000 * 30, CoverageState.PROVISIONAL, "x",
                                                       updated_us=t0)])
    cal = tickvault.Vault(MemoryStore(), Settings()).calendar("AAPL")
    tf = Timeframe.parse("1m")
    fresh = plan_missing(store, cal, "AAPL", tf, t0, t0 + 60_000_000 * 30, now_us=t0 + 30_000_000)
    stale = plan_missing(store, cal, "AAPL", tf, t0, t0 + 60_000_000 * 30, now_us=t0 + 60_000_000 * 31)
    assert fresh == []
    assert stale == [(t0, t0 + 60_000_000 * 30)]


def test_chunks_are_fetched_concurrently_and_fail_over_per_chunk() -> None:
    slow = Stub("yahoo", page_size=390, delay=0.05)
    with tickvault.open(":memory:", providers=[slow]) as vault:
        got = vault.bars("AAPL", "1m", "2024-01-02", "2024-01-12")  # 9 sessions (end date inclusive)
        assert len(got) == 9 * 390
        assert slow.calls >= 9
        assert slow.max_in_flight > 1
    down, up = Stub("polygon", keyed=True, fail=True), Stub("yahoo")
    with tickvault.open(":memory:", providers=[down, up]) as vault:
        got = vault.bars("AAPL", "1m", "2024-01-02", "2024-01-03")
        assert set(got["provider"].astype(str)) == {"yahoo"}
        status = {s.name: s for s in vault.providers()}
        assert status["polygon"].errors == 1
        assert status["polygon"].last_error
        assert status["yahoo"].calls == 1
        assert status["yahoo"].last_ok is not None
        assert status["polygon"].needs_credentials
        assert status["polygon"].credentials_set


def test_fundamentals_merge_by_priority_with_sources_and_ttl(tmp_path: Path) -> None:
    first = Stub("fmp", fundamentals={"market_cap": (1.0e12, "fmp profile"), "pe_ratio": (30.0, "fmp ratios")})
    second = Stub("tiingo", fundamentals={"market_cap": (9.9e11, "tiingo daily"), "sector": ("Tech", "tiingo meta")})
    home = tmp_path / "vault"
    with tickvault.open(home, providers=[first, second],
                        settings=Settings(home=home, provider_preference={"fundamentals": ("fmp", "tiingo")})) as v:
        got = v.fundamentals("AAPL")
        assert got == {"market_cap": (1.0e12, "fmp profile"), "pe_ratio": (30.0, "fmp ratios"),
                       "sector": ("Tech", "tiingo meta")}
        calls = first.calls + second.calls
        assert v.fundamentals("AAPL") == got
        assert first.calls + second.calls == calls
        v.fundamentals("AAPL", refresh=True)
        assert first.calls + second.calls == calls + 2
    with tickvault.open(home, providers=[first, second]) as v:  # the cache survives a restart
        assert v.fundamentals("AAPL") == got
        assert first.calls + second.calls == calls + 2
    with tickvault.open(":memory:", providers=[first, second], fundamentals_ttl_days=0) as v:
        v.fundamentals("AAPL")
        time.sleep(0.001)
        v.fundamentals("AAPL")
        assert first.calls + second.calls == calls + 6  # TTL 0: asked every time
    with tickvault.open(":memory:", providers=[Stub("fmp", fundamentals={}, fail=True)]) as v, \
            pytest.raises(ProviderUnavailable):
        v.fundamentals("AAPL")
    with tickvault.open(":memory:", providers=[]) as v, pytest.raises(UnsupportedRequest):
        v.fundamentals("AAPL")


def test_fetch_actions_stores_them_and_readjusts() -> None:
    stub = Stub("yahoo")
    with tickvault.open(":memory:", providers=[stub]) as vault:
        vault.bars("AAPL", "1d", "2024-01-02", "2024-01-12")
        before = vault.bars("AAPL", "1d", fetch="never")["close"].iloc[0]
        assert vault.fetch_actions("AAPL") == 1
        after = vault.bars("AAPL", "1d", fetch="never")["close"].iloc[0]
        assert after == pytest.approx(before / 2)


def test_search_maps_provider_spellings() -> None:
    with tickvault.open(":memory:") as vault:
        vault.add_instrument(Instrument("BRK.B", name="Berkshire Hathaway Inc. Class B", exchange="XNYS"))
        vault.add_instrument(Instrument.guess("BTC/USDT"))
        vault.add_instrument(Instrument("AAPL", name="Apple Inc.", provider_symbols={"yahoo": "AAPL"}))
        assert [i.symbol for i in vault.search("brk-b")] == ["BRK.B"]
        assert [i.symbol for i in vault.search("BTCUSDT")] == ["BTC/USDT"]
        assert [i.symbol for i in vault.search("BTC-USD")] == []  # a different pair
        assert [i.symbol for i in vault.search("XBTUSDT")] == ["BTC/USDT"]
        assert [i.symbol for i in vault.search("apple")] == ["AAPL"]
        assert vault.search("zzz") == []
        for bad in ["", " ", "x" * 65, "a\nb"]:
            with pytest.raises(InvalidInput):
                vault.search(bad)


def test_provider_wiring_from_settings_and_environment() -> None:
    env = {"TICKVAULT_POLYGON_API_KEY": "k", "TICKVAULT_POLYGON_BASE_URL": "http://127.0.0.1:9"}
    assert [p.name for p in build_providers(Settings(providers=("none",)), env)] == []
    auto = [p.name for p in build_providers(Settings(providers=("auto",)), env)]
    assert auto[0] == "yahoo"
    assert "polygon" in auto
    assert "alpaca" not in auto
    assert [p.name for p in build_providers(Settings(providers=("sim", "yahoo")), env)] == ["sim", "yahoo"]
    with pytest.raises(ConfigError, match="unknown provider"):
        build_providers(Settings(providers=("nope",)), env)
    polygon = next(p for p in build_providers(Settings(providers=("polygon",)), env))
    assert "k" not in repr(polygon)


def test_read_through_results_are_arrow_canonical(tmp_path: Path) -> None:
    stub = Stub("yahoo")
    with tickvault.open(tmp_path / "v", providers=[stub]) as vault:
        table = vault.bars("AAPL", "1d", "2024-01-02", "2024-01-31", format="arrow")
        assert isinstance(table, pa.Table)
        assert table.num_rows == 21
        assert np.all(np.diff(table.column("ts").cast(pa.int64()).to_numpy()) > 0)


def test_identical_concurrent_requests_share_one_fetch() -> None:
    import threading

    slow = Stub("yahoo", delay=0.3)
    with tickvault.open(":memory:", providers=[slow]) as vault:
        results: list[int] = []
        barrier = threading.Barrier(4)

        def read() -> None:
            barrier.wait()
            results.append(len(vault.bars("AAPL", "1d", "2024-01-02", "2024-01-31")))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [21] * 4
        assert slow.calls == 1
