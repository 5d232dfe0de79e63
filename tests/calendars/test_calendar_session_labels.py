"""session_labels: every vendor's daily-bar stamp maps to the same session-date key.

Real recorded payloads (SOURCES.md) are read in place: Yahoo stamps the open (13:30Z/14:30Z),
Polygon and Alpaca local midnight (04:00Z/05:00Z), BTC-USD 00:00Z, GC=F 05:00Z.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from calendar_helpers import DAY_US, us, utc

from tickvault.calendars import get_calendar
from tickvault.errors import InvalidRange

YAHOO = Path("provider-payloads") / "node-yahoo-finance2"


def yahoo_stamps_us(shared_data: Path, name: str) -> np.ndarray:
    body = json.loads((shared_data / YAHOO / name).read_text())["response"]["bodyJson"]
    return np.asarray(body["chart"]["result"][0]["timestamp"], dtype=np.int64) * 1_000_000


def dates(labels: np.ndarray) -> list[str]:
    assert np.all(labels % DAY_US == 0)
    return [str(d.date()) for d in utc(labels)]


def test_yahoo_open_stamps_across_the_dst_change(shared_data: Path) -> None:
    cal = get_calendar("XNYS")
    stamps = yahoo_stamps_us(shared_data, "chart-AAPL-2020-08-31-to-2020-11-07.json")
    clock = {t.strftime("%H:%M") for t in utc(stamps)}
    assert clock == {"13:30", "14:30"}  # 09:30 New York before and after 2020-11-01
    labels = cal.session_labels(stamps)
    assert dates(labels) == [str(d.date()) for d in cal.sessions("2020-08-31", "2020-11-06")]
    assert len(labels) == 49


def test_yahoo_msft_year_maps_one_to_one_onto_sessions(shared_data: Path) -> None:
    cal = get_calendar("XNYS")
    stamps = yahoo_stamps_us(shared_data, "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json")
    assert dates(cal.session_labels(stamps)) == [str(d.date()) for d in cal.sessions("2021-02-01", "2022-01-28")]


def test_polygon_local_midnight_stamps(shared_data: Path) -> None:
    body = json.loads((shared_data / "provider-payloads" / "polygon-client-python"
                       / "v2_aggs_AAPL_range_1_day_2005-04-01_2005-04-04.json").read_text())
    stamps = np.asarray([r["t"] for r in body["results"]], dtype=np.int64) * 1000
    assert [t.strftime("%H:%M") for t in utc(stamps)] == ["05:00", "04:00"]  # EST, then EDT from 2005-04-03
    assert dates(get_calendar("XNYS").session_labels(stamps)) == ["2005-04-01", "2005-04-04"]


def test_alpaca_local_midnight_stamps(shared_data: Path) -> None:
    cases = json.loads((shared_data / "provider-payloads" / "alpaca-py"
                        / "test_historical_stock_data.payloads.json").read_text())
    stamps: list[str] = []
    for case in cases:
        if "/v2/stocks/bars?" in case["url_template"]:  # historical bars (not /bars/latest, which are 1m)
            for bars in case["response"]["bars"].values():
                stamps.extend(bar["t"] for bar in bars)
    instants = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))
    assert {t.strftime("%H:%M") for t in instants} == {"04:00", "05:00"}
    got = dates(get_calendar("XNYS").session_labels(instants.as_unit("us").asi8))
    assert got == [str(t.tz_convert("America/New_York").date()) for t in instants]
    assert "2022-02-01" in got
    assert "2023-09-27" in got


@pytest.mark.parametrize("calendar", ["crypto", "XNYS", "XLON"])
def test_utc_midnight_is_already_a_label(shared_data: Path, calendar: str) -> None:
    stamps = yahoo_stamps_us(shared_data, "chart-BTC-USD-2020-01-01-to-2020-01-03.json")
    labels = get_calendar(calendar).session_labels(stamps)
    np.testing.assert_array_equal(labels, stamps)
    assert dates(labels) == ["2020-01-01", "2020-01-02", "2020-01-03"]


@pytest.mark.parametrize("calendar", ["CMES", "XNYS"])
def test_gold_futures_stamp(shared_data: Path, calendar: str) -> None:
    # 05:00Z is 23:00 in Chicago the evening before (inside the CME session of the 2nd)
    # and local midnight in New York (Yahoo's exchangeTimezoneName for GC=F)
    stamps = yahoo_stamps_us(shared_data, "chart-GC=F-2020-01-01-to-2020-01-03.json")
    assert [t.strftime("%Y-%m-%d %H:%M") for t in utc(stamps)] == ["2020-01-02 05:00"]
    assert dates(get_calendar(calendar).session_labels(stamps)) == ["2020-01-02"]


def test_london_open_stamp(shared_data: Path) -> None:
    stamps = yahoo_stamps_us(shared_data, "chart-OCDO.L-2020-01-01-to-2020-01-03.json")
    assert dates(get_calendar("XLON").session_labels(stamps)) == ["2020-01-02"]


def test_instants_inside_between_and_at_the_edges_of_sessions() -> None:
    cal = get_calendar("XNYS")
    stamps = np.array([
        us("2024-03-08 20:59"),  # Friday, inside the session
        us("2024-03-08 21:00"),  # Friday close (16:00 EST): still Friday
        us("2024-03-08 21:30"),  # after the close -> next session (Monday)
        us("2024-03-09 12:00"),  # Saturday -> Monday
        us("2024-07-04 14:00"),  # holiday -> next session
        us("2024-03-11 08:00"),  # pre-market Monday -> Monday
    ])
    assert dates(cal.session_labels(stamps)) == ["2024-03-08", "2024-03-08", "2024-03-11", "2024-03-11",
                                                  "2024-07-05", "2024-03-11"]
    tokyo = get_calendar("XTKS")
    lunch = np.array([us("2024-03-12 03:00")])  # 12:00 Tokyo, in the lunch break
    assert dates(tokyo.session_labels(lunch)) == ["2024-03-12"]
    assert dates(tokyo.session_labels(np.array([us("2024-03-11 15:00")]))) == ["2024-03-12"]  # Tokyo midnight


def test_labels_keep_shape_and_reject_instants_outside_the_calendar() -> None:
    cal = get_calendar("XNYS")
    grid = np.array([[us("2024-03-11 13:30"), us("2024-03-12 04:00")], [us("2024-03-13"), us("2024-03-13 15:00")]])
    labels = cal.session_labels(grid)
    assert labels.shape == (2, 2)
    assert dates(labels.ravel()) == ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-13"]
    assert cal.session_labels(np.array([], dtype=np.int64)).size == 0
    with pytest.raises(InvalidRange):
        cal.session_labels(np.array([us("2041-06-01 15:00")]))
    with pytest.raises(InvalidRange):
        cal.session_labels(np.array([us("1960-06-01 15:00")]))
