"""Timeframe parsing, formatting, alignment and arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import InvalidTimeframe
from tickvault.model import Timeframe


@pytest.mark.parametrize("text", Timeframe.CANONICAL)
def test_canonical_strings_round_trip(text: str) -> None:
    assert str(Timeframe.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("60m", "1h"), ("60min", "1h"), ("1 min", "1m"), ("120s", "2m"), ("1day", "1d"), ("1wk", "1w"),
     ("1month", "1mo"), ("3mo", "3mo"), ("24h", "24h"), ("7m", "7m"), ("1H", "1h"), ("1D", "1d")],
)
def test_aliases_normalise(text: str, canonical: str) -> None:
    assert str(Timeframe.parse(text)) == canonical


@pytest.mark.parametrize("bad", ["", "m", "0m", "-1m", "1x", "1M", "1.5h", "1m; drop", "9999999m", "1 m m"])
def test_invalid_timeframes_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidTimeframe):
        Timeframe.parse(bad)


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidTimeframe):
        Timeframe.parse(5)  # type: ignore[arg-type]


def test_ordering_and_properties() -> None:
    tfs = [Timeframe.parse(t) for t in ["1mo", "1d", "1m", "1w", "4h", "5m"]]
    assert [str(t) for t in sorted(tfs)] == ["1m", "5m", "4h", "1d", "1w", "1mo"]
    assert Timeframe.parse("5m").is_intraday
    assert not Timeframe.parse("1d").is_intraday
    assert Timeframe.parse("1m").divides(Timeframe.parse("1h"))
    assert not Timeframe.parse("7m").divides(Timeframe.parse("1h"))
    assert Timeframe.parse("1d").divides(Timeframe.parse("1w"))


@given(st.integers(min_value=0, max_value=7_000_000_000), st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d"]))
def test_floor_is_aligned_and_not_after(seconds: int, tf_text: str) -> None:
    tf = Timeframe.parse(tf_text)
    ns = np.array([seconds * 1_000_000_000], dtype=np.int64)
    floored = tf.floor(ns)
    assert floored[0] <= ns[0] < floored[0] + tf.nanos
    assert bool(tf.is_aligned(floored)[0])


def test_weekly_has_no_utc_grid() -> None:
    with pytest.raises(InvalidTimeframe):
        Timeframe.parse("1w").floor(np.array([0], dtype=np.int64))


def test_add_months_is_calendar_aware() -> None:
    ts = pd.Timestamp("2024-01-31", tz="UTC")
    assert Timeframe.parse("1mo").add(ts) == pd.Timestamp("2024-02-29", tz="UTC")
    assert Timeframe.parse("1h").add(ts, 3) == pd.Timestamp("2024-01-31 03:00", tz="UTC")
