"""Strict payload readers and pagination: garbage becomes a typed error, loops stop."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.providers._http import (
    epoch_to_us,
    float_column,
    follow_pages,
    int_column,
    iso_to_us,
    record_columns,
    same_length,
)

numbers = st.one_of(st.none(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))


@given(st.lists(numbers, max_size=50))
def test_float_column_reads_numbers_and_nulls(values: list[Any]) -> None:
    out = float_column(values, "x", "demo")
    assert out.dtype == np.float64
    assert out.size == len(values)
    for v, o in zip(values, out, strict=True):
        assert (v is None and math.isnan(o)) or o == pytest.approx(float(v)) or v is None


@given(st.lists(numbers, min_size=1, max_size=10), st.sampled_from(["NaN", "1.5", True, [1], {"a": 1}, 2**70]),
       st.integers(0, 10))
def test_float_column_rejects_anything_else(values: list[Any], junk: Any, where: int) -> None:
    values.insert(min(where, len(values)), junk)
    with pytest.raises(ProviderResponseError):
        float_column(values, "x", "demo")


@pytest.mark.parametrize("junk", [[1, None], [1.5], ["1"], [True], [2**64], "123"])
def test_int_column_rejects_nulls_fractions_and_strings(junk: Any) -> None:
    with pytest.raises(ProviderResponseError):
        int_column(junk, "t", "demo")


def test_epochs_are_range_checked_per_unit() -> None:
    assert epoch_to_us(np.array([1_598_880_600]), "s", "t", "demo").tolist() == [1_598_880_600_000_000]
    assert epoch_to_us(np.array([1_112_331_600_000]), "ms", "t", "demo").tolist() == [1_112_331_600_000_000]
    with pytest.raises(ProviderResponseError, match=r"1900\.\.2200"):
        epoch_to_us(np.array([1_112_331_600_000]), "s", "t", "demo")  # ms read as seconds
    with pytest.raises(ProviderResponseError):
        epoch_to_us(np.array([2**62]), "ms", "t", "demo")


def test_iso_timestamps_need_an_offset() -> None:
    assert iso_to_us(["2022-02-01T05:00:00Z", "2022-02-01T00:00:00-05:00"], "t", "demo").tolist() == [
        1_643_691_600_000_000, 1_643_691_600_000_000]
    for bad in (["2022-02-01T05:00:00"], ["2022-02-30T05:00:00Z"], [None], [1], ["yesterday"]):
        with pytest.raises(ProviderResponseError):
            iso_to_us(bad, "t", "demo")


def test_record_columns_infer_one_struct() -> None:
    cols = record_columns([{"t": 1, "o": 1.5}, {"t": 2, "o": 2, "n": 7}], "r", "demo")
    assert cols["n"].to_pylist() == [None, 7]
    for bad in ([1, 2], [{"t": 1}, {"t": "x"}], [{"t": 1}, None], {"t": 1}):
        with pytest.raises(ProviderResponseError):
            record_columns(bad, "r", "demo")


def test_columns_of_different_lengths_are_incomplete_data() -> None:
    with pytest.raises(IncompleteData, match="close=2"):
        same_length({"open": [1, 2, 3], "close": [1, 2]}, 3, "q", "demo")


def test_pages_are_followed_to_the_end() -> None:
    cursors: list[str | None] = []

    async def fetch(cursor: str | None, k: int) -> tuple[int, str | None]:
        cursors.append(cursor)
        return k, (f"c{k + 1}" if k < 3 else None)

    assert asyncio.run(follow_pages(fetch, provider="demo")) == [0, 1, 2, 3]
    assert cursors == [None, "c1", "c2", "c3"]


def test_a_repeated_cursor_is_incomplete_data_not_a_loop() -> None:
    async def fetch(cursor: str | None, k: int) -> tuple[int, str | None]:
        return k, "same"

    with pytest.raises(IncompleteData, match="repeated a page cursor"):
        asyncio.run(follow_pages(fetch, provider="demo", symbol="AAPL"))


def test_too_many_pages_is_incomplete_data() -> None:
    async def fetch(cursor: str | None, k: int) -> tuple[int, str | None]:
        return k, f"c{k + 1}"

    with pytest.raises(IncompleteData, match="more than 5 pages"):
        asyncio.run(follow_pages(fetch, provider="demo", max_pages=5))
