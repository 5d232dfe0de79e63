"""Yahoo's conventions, end to end over real HTTP: raw prices stored, Yahoo's views reproduced.

``adjust="splits"`` reproduces Yahoo's ``close``; ``adjust="all"`` reproduces ``adjclose``
within 1e-6 relative, up to the constant factor of the dividends paid between the window's
end and the recording date (see tests/transform/test_adjust_real.py); ``adjust="none"``
shows the prices as traded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from _yahoo_helpers import CHARTS, FOLDER, body, provider, us

from tickvault.providers.base import BarsQuery, BarsResult
from tickvault.testing.replay import ManualClock, ReplayServer, yahoo_later_events_route, yahoo_route
from tickvault.transform import adjust

CASES = ["chart-AAPL-2020-08-31-to-2020-11-07.json",
         "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json"]


def fetch(shared: Path, name: str, clock: ManualClock) -> BarsResult:
    inst, tf, start, end = CHARTS[name]
    path = shared / FOLDER / name
    with ReplayServer([yahoo_route(path), yahoo_later_events_route(path)]) as server:
        return asyncio.run(provider(server.base_url, clock.clock).bars(
            BarsQuery(inst.symbol, tf, us(start), us(end), inst)))


def closes(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("close").to_numpy(), dtype=np.float64)


@pytest.mark.parametrize("name", CASES)
def test_adjust_reproduces_yahoo_close_adjclose_and_as_traded(shared_data: Path, name: str,
                                                              clock: ManualClock) -> None:
    result = fetch(shared_data, name, clock)
    r = body(shared_data, name)["chart"]["result"][0]
    close = np.asarray(r["indicators"]["quote"][0]["close"], dtype=np.float64)
    adjclose = np.asarray(r["indicators"]["adjclose"][0]["adjclose"], dtype=np.float64)
    raw, actions = result.table, result.actions

    np.testing.assert_allclose(closes(adjust(raw, actions, "splits")), close, rtol=1e-12)
    ours = closes(adjust(raw, actions, "all"))
    k = adjclose[-1] / ours[-1]  # dividends after the window, up to the recording date
    assert 0.9 < k <= 1.0
    np.testing.assert_allclose(ours * k, adjclose, rtol=1e-6)
    np.testing.assert_array_equal(closes(adjust(raw, actions, "none")), closes(raw))


def test_aapl_as_traded_around_the_four_for_one_split(shared_data: Path, clock: ManualClock) -> None:
    """The window opens on the split's ex-date: every bar already traded post-split."""
    result = fetch(shared_data, CASES[0], clock)
    none = closes(adjust(result.table, result.actions, "none"))
    assert none[0] == pytest.approx(129.04, abs=1e-4)  # AAPL's first post-split close, as traded
    assert [str(a.ex_date) for a in result.actions if a.kind == "split"] == ["2020-08-31"]
    # Yahoo's previous close (split-adjusted) is the last pre-split close 499.23 / 4: the split
    # is in the ex-date's open, so the recorded bars need no un-adjusting.
    prev = body(shared_data, CASES[0])["chart"]["result"][0]["meta"]["chartPreviousClose"]
    assert prev * 4 == pytest.approx(499.23, abs=1e-2)


def test_volume_is_in_shares_traded(shared_data: Path, clock: ManualClock) -> None:
    result = fetch(shared_data, CASES[0], clock)
    r = body(shared_data, CASES[0])["chart"]["result"][0]
    np.testing.assert_array_equal(np.asarray(result.table.column("volume").to_numpy()),
                                  np.asarray(r["indicators"]["quote"][0]["volume"], dtype=np.float64))
