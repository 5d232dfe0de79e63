"""Column layouts of the OHLCV files people actually have, and how to recognise them.

A layout says which column is the time, which are open/high/low/close/volume, which carry
corporate actions and which are knowingly ignored. Recognition works on the header (or,
for headerless files, on the shape of the first row); column names are compared by a key
that drops case, spaces and punctuation (``Stock Splits`` == ``stock_splits``). The named
layouts exist because they change behaviour (bar-end timestamps, Binance's positional
columns, a pandas index column) or deserve a precise hint in warnings; everything else
with recognisable names is the generic ``ohlcv`` layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tickvault.errors import FileFormatError

__all__ = ["LAYOUTS", "ColumnMap", "looks_like_data", "match_header", "match_headerless"]

#: Layout name -> one-line description (the docs and ``layout=`` validation use this table).
LAYOUTS: Mapping[str, str] = {
    "yfinance": "yfinance DataFrame export: Date|Datetime (tz-aware), Open, High, Low, Close, Adj Close, Volume, "
                "Dividends, Stock Splits",
    "yahoo": "classic Yahoo Finance download: Date, Open, High, Low, Close, Adj Close, Volume",
    "backtrader": "backtrader CSV: Date[, Time], Open, High, Low, Close, Volume, OpenInterest (naive local time)",
    "zipline": "zipline csvdir bundle: date, open, high, low, close, volume, dividend, split",
    "freqtrade": "freqtrade Feather/Parquet: date (UTC), open, high, low, close, volume",
    "binance": "Binance public data klines: 12 columns, open time in ms (µs in newer files), header optional",
    "nautilus": "nautilus_trader bar CSV: timestamp_utc (bar END time), open, high, low, close, volume",
    "alpha_vantage": "Alpha Vantage CSV: time|timestamp (naive US/Eastern for intraday), open, high, low, close, "
                     "volume, newest first",
    "pandas_index": "pandas to_csv with an unnamed time index: ,Open,High,Low,Close,Volume (backtesting.py)",
    "pandas_range_index": "pandas to_csv with an unnamed row-number index and a time column (pandas-ta)",
    "ohlcv": "generic: a time column (date, datetime, time, timestamp, ...) plus open, high, low, close "
             "[, volume, vwap, trade_count, dividend, split] in any order and case (e.g. Stock.Indicators)",
    "ohlcv_noheader": "headerless: time, open, high, low, close[, volume] or date, time, open, high, low, close"
                      "[, volume]",
}

_TIME = frozenset({"date", "datetime", "time", "timestamp", "ts", "timestamputc", "opentime", "index", "dt",
                   "datetimeutc", "dateutc", "timeutc", "gmttime", "localtime", "starttime"})
_ROLES: Mapping[str, frozenset[str]] = {
    "open": frozenset({"open", "o", "openprice"}),
    "high": frozenset({"high", "h", "highprice"}),
    "low": frozenset({"low", "l", "lowprice"}),
    "close": frozenset({"close", "c", "closeprice", "last", "lastprice"}),
    "volume": frozenset({"volume", "vol", "v", "basevolume"}),
    "vwap": frozenset({"vwap", "vw", "wap", "averageprice"}),
    "trade_count": frozenset({"tradecount", "trades", "count", "n", "numberoftrades", "numtrades", "transactions"}),
    "dividend": frozenset({"dividend", "dividends", "divcash", "dividendamount", "cashdividend"}),
    "split": frozenset({"split", "splits", "stocksplits", "splitfactor", "splitratio", "splitcoefficient"}),
}
# Columns we know and deliberately do not store: adjusted prices (tickvault stores raw
# prices and adjusts on read), open interest, vendor bookkeeping.
_IGNORED = frozenset({
    "adjclose", "adjustedclose", "adjopen", "adjhigh", "adjlow", "adjvolume", "openinterest", "oi", "repaired",
    "capitalgains", "closetime", "quotevolume", "quoteassetvolume", "takerbuyvolume", "takerbuybasevolume",
    "takerbuyquotevolume", "takerbuybaseassetvolume", "takerbuyquoteassetvolume", "ignore",
})
_SYMBOL = frozenset({"symbol", "ticker", "pair", "instrument", "secid"})
_OHLCV = ("open", "high", "low", "close", "volume")

_BINANCE_NAMES = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                  "taker_buy_volume", "taker_buy_quote_volume", "ignore")
_TIME_OF_DAY = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*$")
_TIME_LIKE = re.compile(r"^\s*[+-]?\d[\dA-Za-z\-+:./ ]*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class ColumnMap:
    """Where each canonical field lives in a file (column positions).

    Attributes
    ----------
    layout
        Layout name (a key of :data:`LAYOUTS`).
    names
        Column names as written (synthetic for headerless files).
    time
        Position of the time column, or of the (date, time-of-day) pair.
    fields
        Canonical bar field -> position (``open high low close`` always; ``volume``,
        ``vwap``, ``trade_count`` when present).
    dividend, split
        Positions of corporate-action columns.
    quote_volume, close_time
        Binance extras: quote volume (VWAP = quote volume / volume) and bar close time.
    ignored
        Known columns deliberately not stored (``Adj Close``, ``OpenInterest``, ...).
    unknown
        Columns nobody recognised (ignored too, and reported in warnings).
    header
        Whether the first line is a header.
    label
        ``open`` when timestamps mark the bar open, ``end`` when they mark its end.
    utc
        The column name itself says naive times are UTC (``timestamp_utc``).
    tz_hint
        Where the layout's naive times are known to come from (for the warning).
    """

    layout: str
    names: tuple[str, ...]
    time: tuple[int, ...]
    fields: Mapping[str, int]
    dividend: int | None = None
    split: int | None = None
    quote_volume: int | None = None
    close_time: int | None = None
    ignored: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    header: bool = True
    label: str = "open"
    tz_hint: str = ""
    utc: bool = False

    def used(self) -> list[int]:
        """Positions the reader must load, sorted."""
        pos = {*self.time, *self.fields.values()}
        for extra in (self.dividend, self.split, self.quote_volume, self.close_time):
            if extra is not None:
                pos.add(extra)
        return sorted(pos)


def key(name: str) -> str:
    """Comparison key of a column name: lower-case letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def looks_like_data(fields: Sequence[str]) -> bool:
    """Whether a first line is a data row rather than a header."""
    if not fields or not _TIME_LIKE.match(fields[0]):
        return False
    numeric = sum(1 for f in fields[1:] if _NUMBER.match(f) or _TIME_OF_DAY.match(f))
    return numeric * 2 >= len(fields) - 1


def match_headerless(fields: Sequence[str], *, path: str, forced: str | None) -> ColumnMap:
    """Layout of a file without a header, from its first row.

    Raises
    ------
    FileFormatError
        If the row shape matches no headerless layout.
    """
    n = len(fields)
    if n == 12 and forced in (None, "binance") and all(_NUMBER.match(f) for f in fields):
        return ColumnMap("binance", _BINANCE_NAMES, (0,),
                         {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5, "trade_count": 8},
                         quote_volume=7, close_time=6, ignored=_BINANCE_NAMES[9:], header=False)
    if forced not in (None, "ohlcv_noheader"):
        raise FileFormatError(f"file has no header and does not look like layout {forced!r}", path=path, line=1)
    pair = n >= 2 and bool(_TIME_OF_DAY.match(fields[1]))
    start = 2 if pair else 1
    rest = n - start
    if rest not in (4, 5):
        raise FileFormatError(
            f"file has no header and {n} columns; expected time, open, high, low, close[, volume] "
            "(or a header line naming the columns)", path=path, line=1)
    names = (("date", "time") if pair else ("time",)) + _OHLCV[:rest]
    return ColumnMap("ohlcv_noheader", names, (0, 1) if pair else (0,),
                     {name: start + i for i, name in enumerate(_OHLCV[:rest])}, header=False)


def _layout_name(names: Sequence[str], keys: Sequence[str], columnar: bool) -> str:
    keyset = set(keys)
    if keys[:6] == ["opentime", "open", "high", "low", "close", "volume"] and "closetime" in keyset:
        return "binance"
    if keys and keys[0] in ("date", "datetime") and {"dividends", "stocksplits"} <= keyset:
        return "yfinance"
    if keys == ["date", "open", "high", "low", "close", "adjclose", "volume"]:
        return "yahoo"
    if keyset == {"date", "open", "high", "low", "close", "volume", "dividend", "split"} and len(keys) == 8:
        return "zipline"
    if keys and keys[0] == "date" and keys[-1] == "openinterest":
        return "backtrader"
    if keys and keys[0] == "timestamputc":
        return "nautilus"
    if list(names) in (["time", *_OHLCV], ["timestamp", *_OHLCV]):
        return "alpha_vantage"  # Alpha Vantage writes exactly this, lower case
    if columnar and keys == ["date", *_OHLCV]:
        return "freqtrade"
    if "" in keys:  # pandas wrote its index unnamed (first in CSV, last in Parquet)
        return "pandas_range_index" if any(k in _TIME for k in keys) else "pandas_index"
    return "ohlcv"


def match_header(names: Sequence[str], *, path: str, columnar: bool = False,
                 forced: str | None = None) -> ColumnMap:
    """Layout and column positions of a file with a header (or a columnar schema).

    Parameters
    ----------
    names
        Column names as written.
    path
        For error messages.
    columnar
        Whether the names come from a Parquet/Feather schema.
    forced
        Layout the caller insists on; detection must agree (``ohlcv`` always fits).

    Raises
    ------
    FileFormatError
        If required columns are missing, ambiguous or duplicated, or the file has a
        symbol column (one file holds one symbol).
    """
    names = [n.strip().strip('"').strip() for n in names]
    keys = [key(n) for n in names]
    # pandas writes an unnamed index as an empty header field or "__index_level_0__"/"Unnamed: 0".
    keys = ["" if k.startswith("indexlevel") or k.startswith("unnamed") else k for k in keys]
    layout = _layout_name(names, keys, columnar)
    line = None if columnar else 1
    if forced is not None and forced not in (layout, "ohlcv"):
        raise FileFormatError(f"header does not match layout {forced!r} (looks like {layout!r}): "
                              f"{', '.join(names)}", path=path, line=line)
    layout = forced or layout
    fields: dict[str, int] = {}
    time: list[int] = []
    extras: dict[str, int] = {}
    ignored: list[str] = []
    unknown: list[str] = []
    index_col = keys.index("") if "" in keys else -1
    for i, k in enumerate(keys):
        if k in _SYMBOL:
            raise FileFormatError(f"column {names[i]!r} suggests several symbols in one file; import one file "
                                  "per symbol", path=path, line=line)
        if i == index_col and layout == "pandas_index":
            time.append(i)
            continue
        role = next((r for r, aliases in _ROLES.items() if k in aliases), None)
        if role is not None:
            if role in fields or role in extras:
                raise FileFormatError(f"column {names[i]!r} duplicates the {role} column", path=path, line=line)
            (extras if role in ("dividend", "split") else fields)[role] = i
        elif k in _TIME:
            time.append(i)
        elif k in _IGNORED or (i == index_col and layout == "pandas_range_index"):
            ignored.append(names[i] or "(unnamed index)")
        else:
            unknown.append(names[i] or f"(unnamed column {i + 1})")
    time = _pick_time(time, keys, names, path, line)
    missing = [r for r in ("open", "high", "low", "close") if r not in fields]
    if missing:
        raise FileFormatError(f"missing column(s) {', '.join(missing)}; header is: {', '.join(names)}",
                              path=path, line=line)
    if layout == "binance":
        closetime = keys.index("closetime")
        quote = next((i for i, k in enumerate(keys) if k in ("quotevolume", "quoteassetvolume")), None)
        return ColumnMap(layout, tuple(names), tuple(time), fields, quote_volume=quote, close_time=closetime,
                         ignored=tuple(ignored), unknown=tuple(unknown))
    tz_hint = {"alpha_vantage": "Alpha Vantage intraday times are US/Eastern: tz='America/New_York'",
               "backtrader": "backtrader data feeds are usually in exchange time"}.get(layout, "")
    return ColumnMap(layout, tuple(names), tuple(time), fields, dividend=extras.get("dividend"),
                     split=extras.get("split"), ignored=tuple(ignored), unknown=tuple(unknown),
                     label="end" if layout == "nautilus" else "open", tz_hint=tz_hint,
                     utc=any(keys[i].endswith("utc") for i in time))


def _pick_time(time: list[int], keys: Sequence[str], names: Sequence[str], path: str,
               line: int | None) -> list[int]:
    if len(time) == 1:
        return time
    if len(time) == 2 and keys[time[0]] == "date" and keys[time[1]] == "time":
        return time  # separate date and time-of-day columns (backtrader, MetaTrader)
    if not time:
        raise FileFormatError(f"no time column (date, datetime, time, timestamp, ...); header is: "
                              f"{', '.join(names)}", path=path, line=line)
    shown = ", ".join(names[i] or "(unnamed)" for i in time)
    raise FileFormatError(f"several candidate time columns ({shown}); keep one", path=path, line=line)
