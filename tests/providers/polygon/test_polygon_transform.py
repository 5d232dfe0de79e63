"""Pure Polygon transforms on the recorded bodies and on targeted edits of them."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from _polygon_helpers import AGGS, NOW_US, load, provider, us

from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.model import CorporateAction, Timeframe
from tickvault.providers.base import BarsQuery
from tickvault.providers.polygon import parse_aggs, parse_dividends, parse_splits
from tickvault.providers.polygon._provider import PolygonRaw
from tickvault.testing.replay import ManualClock


def test_aggregates_page_is_read_exactly(shared_data: Path) -> None:
    page = parse_aggs(load(shared_data, AGGS), "AAPL")
    assert page.ts_us.tolist() == [1_112_331_600_000_000, 1_112_587_200_000_000]  # 05:00Z / 04:00Z: NY midnights
    assert page.columns["close"].tolist() == [1.4604, 1.4675]
    assert page.columns["vwap"].tolist() == [1.469, 1.4589]
    assert page.columns["trade_count"].tolist() == [82132, 65543]
    assert page.adjusted is True
    assert page.next_url is None


def transform(shared: Path, aggs: list[Any], splits: list[Any] | None = None, *, extended: bool = False,
              tf: str = "1d", start: str = "2005-04-01", end: str = "2005-04-05") -> Any:
    p = provider("http://127.0.0.1:9", ManualClock(NOW_US).clock, extended_hours=extended)
    plan = p.plan(BarsQuery("AAPL", tf, us(start), us(end)), Timeframe.parse(tf))
    return p.transform(PolygonRaw(aggs, splits or [], []), plan)


def test_daily_keys_are_session_dates(shared_data: Path) -> None:
    result = transform(shared_data, [load(shared_data, AGGS)])
    assert [t.date() for t in result.table.column("ts").to_pylist()] == [dt.date(2005, 4, 1), dt.date(2005, 4, 4)]
    assert result.table.column("trade_count").to_pylist() == [82132, 65543]


def test_adjusted_answers_are_unadjusted_with_the_split_list(shared_data: Path) -> None:
    """Synthetic split list: the recording says adjusted=true, so a later 2:1 split is undone."""
    splits = {"status": "OK", "results": [{"execution_date": "2005-04-04", "split_from": 1, "split_to": 2,
                                           "ticker": "AAPL"}, {"execution_date": "2005-04-04", "split_from": 1,
                                                               "split_to": 9, "ticker": "MSFT"}]}
    result = transform(shared_data, [load(shared_data, AGGS)], [splits])
    close = np.asarray(result.table.column("close").to_numpy())
    np.testing.assert_allclose(close, [1.4604 * 2, 1.4675])
    assert np.asarray(result.table.column("volume").to_numpy())[0] == 642646396.0 / 2
    assert result.actions == [CorporateAction.split("2005-04-04", 2.0, symbol="AAPL", provider="polygon")]
    raw = copy.deepcopy(load(shared_data, AGGS))
    raw["adjusted"] = False
    close_raw = np.asarray(transform(shared_data, [raw], [splits]).table.column("close").to_numpy())
    np.testing.assert_allclose(close_raw, [1.4604, 1.4675])  # raw answers are left alone


def test_splits_and_dividends_of_other_tickers_are_ignored(shared_data: Path) -> None:
    splits = load(shared_data, "v3_reference_splits.json")
    shop, nxt = parse_splits(splits, "SHOP", "SHOP")
    assert nxt is None
    assert [(str(a.ex_date), a.value) for a in shop] == [("2022-06-29", 10.0), ("2022-06-22", 10.0)]
    (brw,) = parse_splits(splits, "BRW", "BRW")[0]
    assert brw.value == 0.5  # 2 old shares -> 1 new: reverse split
    (cig,) = parse_splits(splits, "CIG.C", "CIG.C")[0]
    assert cig.value == pytest.approx(4 / 3)
    assert parse_splits(splits, "AAPL", "AAPL")[0] == []
    divs, _ = parse_dividends(load(shared_data, "v3_reference_dividends.json"), "CSSEN", "CSSEN")
    assert len(divs) == 8  # the other two rows are AIRTP
    assert {a.value for a in divs} == {0.59375}
    assert str(divs[0].ex_date) == "2025-06-12"


@pytest.mark.parametrize(("edit", "error"), [
    (lambda b: b.__setitem__("resultsCount", 3), IncompleteData),
    (lambda b: b.__setitem__("count", 1), IncompleteData),
    (lambda b: b.__setitem__("status", "ERROR"), ProviderResponseError),
    (lambda b: b.__setitem__("ticker", "MSFT"), ProviderResponseError),
    (lambda b: b["results"][0].pop("c"), ProviderResponseError),
    (lambda b: b["results"][0].__setitem__("t", "2005-04-01"), ProviderResponseError),
    (lambda b: b["results"][1].__setitem__("t", 1_112_587_200), ProviderResponseError),  # seconds: 1970 in ms
    (lambda b: b["results"][0].__setitem__("n", 1.5), ProviderResponseError),
    (lambda b: b.__setitem__("results", {"t": 1}), ProviderResponseError),
])
def test_inconsistent_pages_raise_typed_errors(shared_data: Path, edit: Any, error: type[Exception]) -> None:
    body = copy.deepcopy(load(shared_data, AGGS))
    edit(body)
    with pytest.raises(error):
        transform(shared_data, [body])


def test_regular_hours_only_unless_extended(shared_data: Path) -> None:
    """Synthetic minute page: a pre-market bar (13:00Z), two regular bars, an after-hours bar."""
    t = [us("2024-03-05 13:00"), us("2024-03-05 14:30"), us("2024-03-05 14:31"), us("2024-03-05 21:30")]
    rows = [{"t": v // 1000, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1} for v in t]
    body = {"ticker": "AAPL", "status": "OK", "adjusted": False, "resultsCount": 4, "results": rows}
    kw: dict[str, Any] = {"tf": "1m", "start": "2024-03-05", "end": "2024-03-06"}
    regular = transform(shared_data, [body], **kw).table.column("ts").cast(pa.int64()).to_pylist()
    assert regular == t[1:3]
    everything = transform(shared_data, [body], extended=True, **kw).table.column("ts").cast(pa.int64()).to_pylist()
    assert everything == t
