"""Alpha Vantage behind the vault: raw daily bars and the dividend are stored, and the vault's
``adjust="all"`` reproduces Alpha Vantage's own adjusted close."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _av_helpers import DAILY, make, payload, route, us

import tickvault
from tickvault.model import Instrument
from tickvault.testing.replay import ManualClock, ReplayServer


def test_read_through_stores_raw_bars_and_actions(shared_data: Path) -> None:
    series = payload(shared_data, DAILY)["Time Series (Daily)"]
    days = sorted(d for d in series if "2019-05-01" <= d < "2019-08-03")
    with ReplayServer([route(shared_data, DAILY, function="TIME_SERIES_DAILY_ADJUSTED")]) as server:
        provider = make(server.base_url, ManualClock(us("2019-08-05")).clock)
        with tickvault.open(":memory:", providers=[provider]) as vault:
            vault.add_instrument(Instrument("MSFT", exchange="XNAS", calendar="XNYS"))
            raw = vault.bars("MSFT", "1d", "2019-05-01", "2019-08-02", adjust="none")
            total = vault.bars("MSFT", "1d", "2019-05-01", "2019-08-02", adjust="all")
            actions = vault.action_list("MSFT")
            assert len(server.requests) == 1
    assert len(raw) == len(days)
    np.testing.assert_array_equal(raw["close"].to_numpy(), [float(series[d]["4. close"]) for d in days])
    assert [(str(a.ex_date), a.value) for a in actions] == [("2019-05-15", 0.46)]
    np.testing.assert_allclose(total["close"].to_numpy(), [float(series[d]["5. adjusted close"]) for d in days],
                               rtol=1e-4)
