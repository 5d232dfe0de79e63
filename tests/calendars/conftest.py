"""Fixtures for calendar tests: the exchange_calendars answer keys, read in place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from calendar_helpers import ANSWER_KEYS, read_answer_key


@pytest.fixture(scope="session")
def answer_key(shared_data: Path) -> Callable[[str], pd.DataFrame]:
    """``answer_key("XNYS")`` -> that answer-key frame (parsed once per session)."""
    cache: dict[str, pd.DataFrame] = {}

    def load(name: str) -> pd.DataFrame:
        if name not in cache:
            path = shared_data / "calendars" / "exchange_calendars" / f"{ANSWER_KEYS[name]}.csv"
            cache[name] = read_answer_key(path)
        return cache[name]

    return load
