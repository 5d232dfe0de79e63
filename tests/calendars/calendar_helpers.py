"""Small helpers shared by the calendar tests (a uniquely named module, not a conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ANSWER_KEYS = {"XNYS": "xnys", "XLON": "xlon", "XTKS": "xtks", "CMES": "cmes", "24/7": "24-7"}
MINUTE_US = 60_000_000
DAY_US = 86_400_000_000


def us(value: str) -> int:
    """Epoch µs of a UTC time written as text."""
    return int(pd.Timestamp(value, tz="UTC").value // 1000)


def utc(values: np.ndarray) -> pd.DatetimeIndex:
    """Epoch-µs instants as a UTC DatetimeIndex."""
    return pd.DatetimeIndex(np.asarray(values, dtype=np.int64).astype("datetime64[us]")).tz_localize("UTC")


def local_times(values: np.ndarray, tz: str) -> list[str]:
    """``HH:MM`` wall-clock strings of epoch-µs instants in ``tz``."""
    return [t.strftime("%H:%M") for t in utc(values).tz_convert(tz)]


def read_answer_key(path: Path) -> pd.DataFrame:
    """An exchange_calendars answer key: naive session index, UTC open/close/break columns (ns)."""
    frame = pd.read_csv(path, index_col=0)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True).tz_localize(None)).as_unit("ns")
    frame.index.name = None
    for col in ("open", "close", "break_start", "break_end"):
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
    return frame


def key_us(frame: pd.DataFrame, col: str) -> np.ndarray:
    """An answer-key column as epoch µs (NaT as the minimum int64)."""
    return np.asarray(pd.DatetimeIndex(frame[col]).as_unit("us").asi8, dtype=np.int64)
