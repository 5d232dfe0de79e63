"""Pure Alpaca transforms on the recorded bodies and on targeted edits of them."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from _alpaca_helpers import ACTIONS_PAGE, NOW_US, provider, recordings, us

from tickvault.errors import ProviderResponseError
from tickvault.model import CorporateAction, Timeframe
from tickvault.providers.alpaca import parse_actions, parse_bars
from tickvault.providers.base import BarsQuery, BarsResult
from tickvault.testing.replay import ManualClock


def transform(bars: list[Any], actions: list[Any] | None = None, *, symbol: str = "AAPL", tf: str = "1d",
              start: str = "2022-02-01", end: str = "2022-02-03", **kw: Any) -> BarsResult:
    p = provider("http://127.0.0.1:9", ManualClock(NOW_US).clock, **kw)
    plan = p.plan(BarsQuery(symbol, tf, us(start), us(end)), Timeframe.parse(tf))
    return p.transform((bars, actions or []), plan)


def test_bars_page_is_read_exactly(shared_data: Path) -> None:
    page = parse_bars(recordings(shared_data)["test_get_bars"]["response"], "AAPL")
    assert page.ts_us.tolist() == [us("2022-02-01 05:00"), us("2022-02-02 05:00")]
    assert page.columns["vwap"].tolist() == [173.703516, 174.941288]
    assert page.token == "QUFQTHxEfDIwMjItMDItMDJUMDU6MDA6MDAuMDAwMDAwMDAwWg=="


def test_daily_keys_are_session_dates_in_summer_and_winter(shared_data: Path) -> None:
    rec = recordings(shared_data)
    winter = transform([rec["test_get_bars"]["response"]])
    assert [t.date() for t in winter.table.column("ts").to_pylist()] == [dt.date(2022, 2, 1), dt.date(2022, 2, 2)]
    summer = transform([rec["test_get_bars_desc"]["response"]], symbol="TSLA", start="2023-09-25", end="2023-09-28")
    assert [t.date() for t in summer.table.column("ts").to_pylist()] == [  # 04:00Z stamps, and sorted ascending
        dt.date(2023, 9, 25), dt.date(2023, 9, 26), dt.date(2023, 9, 27)]
    assert summer.table.column("close").to_pylist() == [246.99, 244.12, 240.5]


def test_provenance_records_the_feed(shared_data: Path) -> None:
    result = transform([recordings(shared_data)["test_get_bars"]["response"]], feed="iex")
    assert set(result.table.column("provider").cast(pa.string()).to_pylist()) == {"alpaca:iex"}
    assert result.table.column("trade_count").to_pylist() == [732412, 675034]


def test_other_symbols_in_the_answer_are_ignored(shared_data: Path) -> None:
    multi = recordings(shared_data)["test_multisymbol_get_bars"]["response"]
    result = transform([multi], start="2022-03-09", end="2022-03-10")
    assert result.table.column("close").to_pylist() == [162.95]


def test_empty_answers(shared_data: Path) -> None:
    empty = recordings(shared_data)["test_get_bars_single_empty_response"]["response"]
    assert transform([empty]).table.num_rows == 0
    assert transform([{"bars": None, "next_page_token": None}]).table.num_rows == 0


def test_corporate_actions_in_our_conventions() -> None:
    actions, token = parse_actions(ACTIONS_PAGE, "AAPL", "AAPL")
    assert token is None
    assert actions == [
        CorporateAction.split("2020-08-31", 4.0, symbol="AAPL", provider="alpaca"),
        CorporateAction.dividend("2020-11-06", 0.205, symbol="AAPL", currency="USD", provider="alpaca"),
    ]
    (mnts,) = parse_actions(ACTIONS_PAGE, "MNTS", "MNTS")[0]
    assert mnts.value == pytest.approx(1 / 50)


def test_actions_ride_along_with_bars(shared_data: Path) -> None:
    result = transform([recordings(shared_data)["test_get_bars"]["response"]], [ACTIONS_PAGE])
    assert [str(a.kind) for a in result.actions] == ["split", "dividend"]


@pytest.mark.parametrize(("edit", "error"), [
    (lambda b: b["bars"]["AAPL"][0].__setitem__("t", "2022-02-01T05:00:00"), ProviderResponseError),
    (lambda b: b["bars"]["AAPL"][0].pop("o"), ProviderResponseError),
    (lambda b: b["bars"]["AAPL"][1].__setitem__("c", "174.61"), ProviderResponseError),
    (lambda b: b.pop("bars"), ProviderResponseError),
    (lambda b: b.__setitem__("bars", [1, 2]), ProviderResponseError),
    (lambda b: b.__setitem__("next_page_token", 5), ProviderResponseError),
    (lambda b: b["bars"]["AAPL"][1].__setitem__("t", "1999-02-02T05:00:00Z"), ProviderResponseError),
])
def test_inconsistent_pages_raise_typed_errors(shared_data: Path, edit: Any, error: type[Exception]) -> None:
    body = copy.deepcopy(recordings(shared_data)["test_get_bars"]["response"])
    edit(body)
    with pytest.raises(error):
        transform([body])


def test_regular_hours_only_unless_extended() -> None:
    """Synthetic minute page: pre-market, two regular minutes, after-hours."""
    stamps = ["2024-03-05T13:00:00Z", "2024-03-05T14:30:00Z", "2024-03-05T14:31:00Z", "2024-03-05T21:30:00Z"]
    page = {"bars": {"AAPL": [{"t": t, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1} for t in stamps]},
            "next_page_token": None}
    kw: dict[str, Any] = {"tf": "1m", "start": "2024-03-05", "end": "2024-03-06"}
    assert transform([page], **kw).table.num_rows == 2
    ts = np.asarray(transform([page], extended_hours=True, **kw).table.column("ts").cast(pa.int64()).to_numpy())
    assert ts.tolist() == [us(t.rstrip("Z")) for t in stamps]
