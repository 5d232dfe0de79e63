"""Pure transform of Alpha Vantage time-series payloads to canonical bars and actions (fuzzed).

Alpha Vantage's conventions, and what this module does about them:

- **Rows are a JSON object keyed by time, newest first**, with numbered string fields
  (``"1. open": "86.4900"``). CSV answers (``datatype=csv``, the old ``..._EXTENDED`` slices)
  have a ``timestamp`` or ``time`` column. Both are read column-wise through Arrow.
- **Times are naive exchange-local** (``Meta Data`` ``"Time Zone": "US/Eastern"``; CSV has no
  meta and is US/Eastern). They are localised to UTC; a time that does not exist or is
  ambiguous across a DST change is a :class:`~tickvault.errors.ProviderResponseError`.
- **Intraday bars are stamped at their END** in the recorded payloads: the 1-minute slice runs
  ``04:01 .. 20:00`` for the ``04:00-20:00`` extended session, the opening cross lands on
  ``09:31``, and the 5-minute series has ``09:35 .. 16:00`` and no ``09:30``. Canonical keys
  are bar OPENs (DESIGN §3), so ``label="end"`` (the default) subtracts one bar length;
  ``label="open"`` keeps the stamp, for data that is stamped at the open.
- **Daily bars are keyed by date**: that date at 00:00 UTC is already the session key.
- **Raw prices.** ``TIME_SERIES_DAILY_ADJUSTED`` carries raw ``1. open .. 4. close``, an
  ``adjusted close`` (not stored; ``adjust="all"`` reproduces it), ``7. dividend amount`` on
  the ex-date (cash at the time) and ``8. split coefficient`` (new/old shares) on the
  ex-date: those become :class:`~tickvault.model.CorporateAction` records.
- **Truncation.** A ``compact`` answer holds the newest 100 rows only; when it holds 100 rows
  and does not reach back to the start asked for, the answer is short and
  :class:`~tickvault.errors.IncompleteData` is raised instead of returning it.

Every surprise in a payload raises :class:`~tickvault.errors.ProviderResponseError` (garbage)
or :class:`~tickvault.errors.IncompleteData` (consistent but short) — nothing else.
"""

from __future__ import annotations

import io
import zoneinfo
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.model import CorporateAction, Timeframe
from tickvault.providers._http import DAY_US, bars_table

__all__ = [
    "COMPACT_ROWS",
    "DEFAULT_TZ",
    "PROVIDER",
    "Label",
    "Series",
    "parse_csv",
    "parse_json",
    "series_actions",
    "series_bars",
]

PROVIDER = "alpha_vantage"
DEFAULT_TZ = "US/Eastern"
COMPACT_ROWS = 100  # what outputsize=compact returns at most

Label = Literal["open", "end"]

# Field numbers vary between functions ("5. volume" intraday, "6. volume" daily adjusted),
# so fields are matched on the name after the number.
_FIELDS = {
    "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
    "adjusted close": "adjusted_close", "dividend amount": "dividend", "split coefficient": "split",
    # CSV spellings
    "adjusted_close": "adjusted_close", "dividend_amount": "dividend", "split_coefficient": "split",
}
_REQUIRED = ("open", "high", "low", "close", "volume")
_DAILY_FMT = "%Y-%m-%d"
_INTRADAY_FMT = "%Y-%m-%d %H:%M:%S"
_MAX_ROWS = 5_000_000  # a month of 1-minute extended bars is ~20k; anything huge is garbage


def _bad(message: str, where: str, **context: Any) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where, **context)


@dataclass(frozen=True)
class Series:
    """One parsed Alpha Vantage answer, still in the vendor's time stamps.

    Parameters
    ----------
    stamps_us
        The vendor's stamps as epoch µs UTC (daily: the date at 00:00 UTC), ascending.
    columns
        ``open high low close volume`` and, when present, ``adjusted_close``, ``dividend``,
        ``split`` as float64 arrays aligned with ``stamps_us``.
    daily
        Whether the stamps are dates (daily series) rather than times.
    symbol
        ``Meta Data`` symbol (``None`` for CSV).
    interval
        ``Meta Data`` interval (``1min``) for intraday JSON, else ``None``.
    compact
        Whether the answer says it is ``compact`` (newest 100 rows only).
    """

    stamps_us: np.ndarray
    columns: dict[str, np.ndarray]
    daily: bool
    symbol: str | None = None
    interval: str | None = None
    compact: bool = False

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.stamps_us.size)


def _numbers(values: Any, where: str) -> np.ndarray:
    """Strings (``"86.4900"``) or JSON numbers as float64; anything else is garbage."""
    t = values.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if values.null_count:
            raise _bad(f"{values.null_count} missing value(s)", where)
        try:
            out = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _bad("a value is not a number", where) from None
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        if values.null_count:
            raise _bad(f"{values.null_count} missing value(s)", where)
        try:
            out = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _bad("a value is out of range", where) from None
    else:
        raise _bad(f"expected numbers, got {t}", where)
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64)


def _as_array(values: list[Any], where: str) -> Any:
    try:
        return pa.array(values, from_pandas=False)
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
        raise _bad(f"unreadable values ({type(exc).__name__})", where) from None


def _zone(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise _bad("time zone is not a name", where)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise _bad(f"unknown time zone {name[:64]!r}", where) from None
    return name


def _stamps(keys: Any, tz: str, where: str) -> tuple[np.ndarray, bool]:
    """Vendor time strings -> (epoch µs UTC, daily?)."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64), True
    if not (pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type)) or keys.null_count:
        raise _bad(f"time stamps must be strings, got {keys.type}", where)
    lengths: Any = pc.utf8_length(keys)
    daily = bool(pc.all(pc.equal(lengths, pa.scalar(10, lengths.type))).as_py())
    fmt = _DAILY_FMT if daily else _INTRADAY_FMT
    try:
        parsed = pc.strptime(keys, format=fmt, unit="us", error_is_null=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _bad(f"time stamps are not all {fmt}", where) from None
    if not daily:
        try:
            parsed = pc.assume_timezone(parsed, timezone=tz, ambiguous="raise", nonexistent="raise")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            raise _bad(f"a time stamp does not exist or is ambiguous in {tz}", where) from None
    us = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    if us.size and (int(us.min()) < -2_208_988_800_000_000 or int(us.max()) > 7_258_118_400_000_000):
        raise _bad("time stamp outside 1900..2200", where)
    return us, daily


def _sorted(stamps: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    order = np.argsort(stamps, kind="stable")
    return stamps[order], {k: v[order] for k, v in columns.items()}


def parse_json(payload: Any) -> Series:
    """Read a ``TIME_SERIES_*`` JSON answer.

    Parameters
    ----------
    payload
        The decoded JSON (already checked for ``Note`` / ``Information`` / ``Error Message``
        bodies by the adapter).

    Returns
    -------
    Series

    Raises
    ------
    ProviderResponseError
        If the object has no single ``Time Series (...)`` member, rows are not objects,
        a field is missing or not a number, or a time stamp is malformed.
    """
    if not isinstance(payload, dict):
        raise _bad(f"expected an object, got {type(payload).__name__}", "$")
    meta = payload.get("Meta Data", {})
    if not isinstance(meta, dict):
        raise _bad("Meta Data is not an object", "Meta Data")
    series_keys = [k for k in payload if isinstance(k, str) and k.startswith("Time Series")]
    if len(series_keys) != 1:
        raise _bad(f"expected one 'Time Series (...)' member, found {len(series_keys)}", "$")
    rows = payload[series_keys[0]]
    if not isinstance(rows, dict):
        raise _bad("time series is not an object", series_keys[0])
    if len(rows) > _MAX_ROWS:
        raise _bad(f"implausibly many rows ({len(rows)})", series_keys[0])
    meta_values = {str(k).split(". ", 1)[-1].strip().lower(): v for k, v in meta.items()}
    tz = _zone(meta_values.get("time zone", DEFAULT_TZ), "Meta Data.Time Zone")
    values = list(rows.values())
    if not all(type(v) is dict for v in values):
        raise _bad("a time series row is not an object", series_keys[0])
    stamps, daily = _stamps(_as_array(list(rows.keys()), series_keys[0]), tz, series_keys[0])
    # Field names of the first row decide the layout; every row must have the same ones.
    names: dict[str, str] = {}
    for raw_name in (values[0] if values else {}):
        short = str(raw_name).split(". ", 1)[-1].strip().lower()
        if short in _FIELDS:
            names[_FIELDS[short]] = raw_name
    missing = [f for f in _REQUIRED if f not in names] if values else []
    if missing:
        raise _bad(f"rows lack field(s) {', '.join(missing)}", series_keys[0])
    columns: dict[str, np.ndarray] = {}
    for field, raw_name in names.items():
        where = f"{series_keys[0]}.{raw_name}"
        try:
            cells = [v[raw_name] for v in values]
        except KeyError:
            raise _bad("a row lacks this field", where) from None
        columns[field] = _numbers(_as_array(cells, where), where)
    if not values:
        columns = {f: np.empty(0, dtype=np.float64) for f in _REQUIRED}
    stamps, columns = _sorted(stamps, columns)
    symbol = meta_values.get("symbol")
    interval = meta_values.get("interval")
    size = meta_values.get("output size")
    return Series(
        stamps_us=stamps,
        columns=columns,
        daily=daily,
        symbol=symbol if isinstance(symbol, str) else None,
        interval=interval if isinstance(interval, str) else None,
        compact=isinstance(size, str) and size.strip().lower() == "compact",
    )


def parse_csv(data: bytes, *, tz: str = DEFAULT_TZ) -> Series:
    """Read a CSV answer (``datatype=csv`` or a ``TIME_SERIES_INTRADAY_EXTENDED`` slice).

    Parameters
    ----------
    data
        The raw body. The first column is ``timestamp`` or ``time``.
    tz
        Zone of the naive time stamps (CSV carries no meta; Alpha Vantage uses US/Eastern).

    Raises
    ------
    ProviderResponseError
        If the body is not CSV with the expected columns and numbers.
    """
    if not isinstance(data, bytes | bytearray):
        raise _bad(f"expected CSV bytes, got {type(data).__name__}", "$")
    body = bytes(data).strip()
    if not body:
        raise _bad("empty CSV body", "$")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("CSV body is not UTF-8", "$") from None
    first_line = body.split(b"\n", 1)[0].decode("utf-8").strip().lower()
    header = [h.strip() for h in first_line.split(",")]
    if not header or header[0] not in ("timestamp", "time"):
        raise _bad("CSV does not start with a timestamp/time column", "$")
    types = {header[0]: pa.string()}
    try:
        table = pacsv.read_csv(io.BytesIO(body), convert_options=pacsv.ConvertOptions(column_types=types),
                               parse_options=pacsv.ParseOptions(newlines_in_values=False))
    except (pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"unreadable CSV ({type(exc).__name__})", "$") from None
    lower = {str(c).strip().lower(): c for c in table.column_names}
    if len(lower) != len(table.column_names):
        raise _bad("CSV has duplicate column names", "$")
    columns: dict[str, np.ndarray] = {}
    for short, field in _FIELDS.items():
        if short in lower and field not in columns:
            col = table.column(lower[short]).combine_chunks()
            columns[field] = _numbers(col, short)
    missing = [f for f in _REQUIRED if f not in columns]
    if missing:
        raise _bad(f"CSV lacks column(s) {', '.join(missing)}", "$")
    keys = table.column(lower[header[0]]).combine_chunks()
    stamps, daily = _stamps(keys, _zone(tz, "tz"), header[0])
    stamps, columns = _sorted(stamps, columns)
    return Series(stamps_us=stamps, columns=columns, daily=daily)


def series_bars(series: Series, *, timeframe: Timeframe, label: Label = "end", start_us: int,
                provider: str = PROVIDER) -> Any:
    """Canonical bars (:data:`~tickvault.model.BAR_SCHEMA`, not yet clipped) from a series.

    Parameters
    ----------
    series
        A parsed answer.
    timeframe
        The timeframe asked for; an intraday series must match it (``5min`` is ``5m``).
    label
        What the intraday stamps mark: ``"end"`` (Alpha Vantage) or ``"open"``.
    start_us
        Start of the query window (keys): a compact answer that does not reach it is short.
    provider
        Provenance.

    Returns
    -------
    pyarrow.Table

    Raises
    ------
    ProviderResponseError
        If the series is intraday when daily was asked for (or the reverse), or its
        interval is not the one asked for.
    IncompleteData
        If a compact answer was cut before ``start_us``.
    """
    want_daily = not timeframe.is_intraday
    if series.rows and series.daily != want_daily:
        kind = "daily" if series.daily else "intraday"
        raise _bad(f"got a {kind} series for a {timeframe} request", "$", timeframe=str(timeframe))
    if series.interval is not None and not series.daily:
        try:
            got = Timeframe.parse(series.interval)
        except ValueError:
            raise _bad(f"unreadable interval {series.interval[:20]!r}", "Meta Data.Interval") from None
        if got != timeframe:
            raise _bad(f"got {got} bars for a {timeframe} request", "Meta Data.Interval", timeframe=str(timeframe))
    stamps = series.stamps_us
    if series.daily:
        if stamps.size and bool(np.any(stamps % DAY_US)):
            raise _bad("daily stamps are not whole dates", "$")
        keys = stamps
    else:
        keys = stamps - timeframe.micros if label == "end" else stamps
    if series.compact and series.rows >= COMPACT_ROWS and int(keys[0]) > start_us:
        raise IncompleteData(
            f"compact answer holds only the newest {series.rows} bars and starts after the window",
            provider=provider, timeframe=str(timeframe), first_us=int(keys[0]), start_us=start_us)
    c = series.columns
    return bars_table(keys, open=c["open"], high=c["high"], low=c["low"], close=c["close"],
                      volume=c["volume"], provider=provider)


def series_actions(series: Series, symbol: str, *, provider: str = PROVIDER) -> list[CorporateAction]:
    """Splits and dividends of a daily adjusted series (ex-date rows), in our conventions.

    Raises
    ------
    ProviderResponseError
        If a dividend is negative or not finite, or a split coefficient is not a
        positive finite number.
    """
    if not series.daily or not series.rows:
        return []
    out: list[CorporateAction] = []
    days = series.stamps_us // DAY_US
    div = series.columns.get("dividend")
    if div is not None:
        if not bool(np.all(np.isfinite(div) & (div >= 0))):
            raise _bad("dividend amount is negative or not finite", "dividend amount")
        for i in np.nonzero(div > 0)[0]:
            out.append(CorporateAction.dividend(_day(int(days[i])), float(div[i]), symbol=symbol, provider=provider))
    split = series.columns.get("split")
    if split is not None:
        if not bool(np.all(np.isfinite(split) & (split > 0))):
            raise _bad("split coefficient is not a positive number", "split coefficient")
        for i in np.nonzero(split != 1.0)[0]:
            out.append(CorporateAction.split(_day(int(days[i])), float(split[i]), symbol=symbol, provider=provider))
    return sorted(out, key=lambda a: (a.ex_date, str(a.kind)))


def _day(epoch_day: int) -> str:
    return str(np.datetime64(epoch_day, "D"))
