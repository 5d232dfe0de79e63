"""The ccxt provider behind the vault: read-through stores bars and empty minutes, then serves
the range from the store without asking the exchange again."""

from __future__ import annotations

from pathlib import Path

from _crypto_helpers import RECORDINGS, make, route, us

import tickvault
from tickvault.model import CoverageState
from tickvault.testing.replay import ManualClock, ReplayServer


def test_read_through_stores_bars_and_no_trade_minutes_then_reads_locally(shared_data: Path) -> None:
    rec = RECORDINGS["kraken"]
    start, end = "2025-11-10 12:17", "2025-11-11 00:17"  # the settled minutes only
    with ReplayServer([route(shared_data, rec)]) as server:
        provider = make(server.base_url, ManualClock(rec.now_us()).clock, "kraken")
        with tickvault.open(":memory:", providers=[provider]) as vault:
            first = vault.bars("BTC/USDT", "1m", start, end)
            assert len(server.requests) == 1
            again = vault.bars("BTC/USDT", "1m", start, end)
            assert len(server.requests) == 1  # every minute is covered: bars final, no-trade minutes empty
            coverage = vault.coverage("BTC/USDT", "1m")
            missing = vault.missing("BTC/USDT", "1m", start, end)
    assert len(first) == 505
    assert again.equals(first)
    assert {iv.state for iv in coverage} == {CoverageState.FINAL, CoverageState.EMPTY}
    assert missing == []
    # 12:17 and 12:18 were no-trade minutes: covered as empty, so the first bar is 12:19.
    assert [iv.state for iv in coverage[:2]] == [CoverageState.EMPTY, CoverageState.FINAL]
    assert coverage[0].start_us == us(start)
    assert first.index[0].value // 1000 == us("2025-11-10 12:19")
