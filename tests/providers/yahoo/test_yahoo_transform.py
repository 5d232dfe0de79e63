"""The pure Yahoo transform on every recorded chart payload, and on targeted edits of them."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from _yahoo_helpers import CHARTS, body, expected_bars, us

from tickvault.calendars import get_calendar
from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.model import BAR_SCHEMA, CorporateAction, Timeframe
from tickvault.providers._symbols import vendor_symbol
from tickvault.providers.yahoo import transform_chart
from tickvault.transform import adjust


def run(payload: Any, name: str, later: Any = None) -> tuple[pa.Table, list[CorporateAction]]:
    inst, tf, _, _ = CHARTS[name]
    return transform_chart([payload], later, vendor=vendor_symbol("yahoo", inst.symbol, inst), symbol=inst.symbol,
                           timeframe=Timeframe.parse(tf), calendar=get_calendar(inst.calendar))


def values(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_every_recording_becomes_canonical_bars(shared_data: Path, name: str) -> None:
    table, _ = run(body(shared_data, name), name)
    exp = expected_bars(shared_data, name)
    assert table.schema.equals(BAR_SCHEMA)
    assert table.num_rows == len(exp)
    np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), np.asarray(exp.ts_us))
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(values(table, col), np.asarray(getattr(exp, col)))
    assert set(table.column("provider").cast(pa.string()).to_pylist()) <= {"yahoo"}


@pytest.mark.parametrize(("name", "first_key"), [
    ("chart-AAPL-2020-08-31-to-2020-11-07.json", "2020-08-31"),      # stamped 13:30Z (the open)
    ("chart-GC=F-2020-01-01-to-2020-01-03.json", "2020-01-02"),      # stamped 05:00Z inside the CME session
    ("chart-OCDO.L-2020-01-01-to-2020-01-03.json", "2020-01-02"),    # stamped 08:00Z (London open)
    ("chart-WSU.DE-2023-08-04-to-2023-08-09.json", "2023-08-04"),    # stamped 07:00Z (XETRA open)
    ("chart-BTC-USD-2020-01-01-to-2020-01-03.json", "2020-01-01"),   # 00:00Z: already a key
])
def test_daily_stamps_become_session_date_keys(shared_data: Path, name: str, first_key: str) -> None:
    table, _ = run(body(shared_data, name), name)
    assert table.column("ts")[0].as_py() == dt.datetime.fromisoformat(first_key).replace(tzinfo=dt.UTC)


def test_events_become_actions_in_our_conventions(shared_data: Path) -> None:
    _, actions = run(body(shared_data, "chart-AAPL-2020-08-31-to-2020-11-07.json"),
                     "chart-AAPL-2020-08-31-to-2020-11-07.json")
    assert actions == [
        CorporateAction.split("2020-08-31", 4.0, symbol="AAPL", provider="yahoo"),
        CorporateAction.dividend("2020-11-06", 0.205, symbol="AAPL", currency="USD", provider="yahoo"),
    ]
    _, msft = run(body(shared_data, "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json"),
                  "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json")
    assert [(str(a.ex_date), a.value) for a in msft] == [
        ("2021-02-17", 0.56), ("2021-05-19", 0.56), ("2021-08-18", 0.56), ("2021-11-17", 0.62)]


def test_pence_are_kept_as_delivered(shared_data: Path) -> None:
    name = "chart-OCDO.L-2020-01-01-to-2020-01-03.json"
    table, _ = run(body(shared_data, name), name)
    assert values(table, "close").tolist() == [1259.5]  # GBp, as LSE quotes it


def test_the_empty_weekend_answer_is_an_empty_table(shared_data: Path) -> None:
    name = "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json"
    table, actions = run(body(shared_data, name), name)
    assert table.num_rows == 0
    assert actions == []


def _aapl(shared: Path) -> tuple[dict[str, Any], str]:
    name = "chart-AAPL-2020-08-31-to-2020-11-07.json"
    return copy.deepcopy(body(shared, name)), name


def test_a_later_split_is_undone_so_prices_are_raw(shared_data: Path) -> None:
    """Synthetic edit: a 2:1 split reported after the window restates every bar in it."""
    payload, name = _aapl(shared_data)
    later = copy.deepcopy(payload)
    res = later["chart"]["result"][0]
    for k in ("timestamp", "indicators"):
        res.pop(k)
    res["events"] = {"splits": {"1": {"date": 1_609_770_600, "numerator": 2, "denominator": 1}},  # 2021-01-04 open
                     "dividends": {"2": {"date": 1_612_535_400, "amount": 0.1}}}  # 2021-02-05
    raw, actions = run(payload, name, later)
    yahoo_close = np.asarray(payload["chart"]["result"][0]["indicators"]["quote"][0]["close"], dtype=np.float64)
    yahoo_volume = np.asarray(payload["chart"]["result"][0]["indicators"]["quote"][0]["volume"], dtype=np.float64)
    np.testing.assert_allclose(values(raw, "close"), yahoo_close * 2, rtol=0)
    np.testing.assert_allclose(values(raw, "volume"), yahoo_volume / 2, rtol=0)
    by_kind = {(a.kind, str(a.ex_date)): a.value for a in actions}
    assert by_kind[("split", "2021-01-04")] == 2.0
    assert by_kind[("dividend", "2020-11-06")] == pytest.approx(0.41)  # 0.205 in today's basis -> 0.41 paid then
    assert by_kind[("dividend", "2021-02-05")] == pytest.approx(0.1)
    np.testing.assert_allclose(values(adjust(raw, actions, "splits"), "close"), yahoo_close, rtol=1e-15)


def test_null_rows_and_the_off_grid_live_row_are_dropped(shared_data: Path) -> None:
    """Synthetic intraday payload on the recorded 1m meta: a no-trade minute and Yahoo's live tick."""
    name = "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json"
    payload = copy.deepcopy(body(shared_data, name))
    res = payload["chart"]["result"][0]
    t0 = us("2025-01-31 14:30") // 1_000_000
    res["timestamp"] = [t0, t0 + 60, t0 + 120, t0 + 137]
    res["indicators"] = {"quote": [{"open": [1, None, 3, 4], "high": [1, None, 3, 4], "low": [1, None, 3, 4],
                                    "close": [1, None, 3, 4], "volume": [10, None, 30, 5]}]}
    table, _ = run(payload, name)
    assert table.column("ts").cast(pa.int64()).to_pylist() == [t0 * 1_000_000, (t0 + 120) * 1_000_000]


@pytest.mark.parametrize(("edit", "error"), [
    (lambda r, c: c.__setitem__("error", {"code": "Not Found", "description": "No data found"}), ProviderResponseError),
    (lambda r, c: r["meta"].__setitem__("symbol", "MSFT"), ProviderResponseError),
    (lambda r, c: c["result"].append(copy.deepcopy(r)), ProviderResponseError),
    (lambda r, c: r["indicators"]["quote"][0]["close"].pop(), IncompleteData),
    (lambda r, c: r["timestamp"].append(r["timestamp"][-1] + 86_400), IncompleteData),
    (lambda r, c: r["indicators"]["quote"][0].pop("open"), ProviderResponseError),
    (lambda r, c: r["indicators"]["quote"][0]["close"].__setitem__(3, "NaN"), ProviderResponseError),
    (lambda r, c: r["events"]["splits"]["1598880600"].__setitem__("denominator", 0), ProviderResponseError),
    (lambda r, c: r["timestamp"].__setitem__(0, 1_598_880_600_000), ProviderResponseError),  # ms, not s
])
def test_inconsistent_payloads_raise_typed_errors(shared_data: Path, edit: Any, error: type[Exception]) -> None:
    payload, name = _aapl(shared_data)
    edit(payload["chart"]["result"][0], payload["chart"])
    with pytest.raises(error):
        run(payload, name)
