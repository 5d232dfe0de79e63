"""Pure transform of Tiingo price payloads to canonical bars and actions (fuzzed).

Tiingo's conventions, and what this module does about them:

- **End-of-day** (``/tiingo/daily/{ticker}/prices``): a JSON array of objects, one per
  session, ``date`` at ``00:00:00.000Z`` of the session date — already the session key.
  ``open high low close volume`` are raw (as traded); the ``adj*`` columns are not stored
  (``adjust="all"`` reproduces ``adjClose``). ``divCash`` (cash per share at the time, on
  the ex-date) and ``splitFactor`` (new/old shares, on the ex-date) become corporate actions.
  The CSV spelling of the same endpoint (``format=csv``: bare ``2018-01-05`` dates) reads to
  the same bars.
- **IEX intraday** (``/iex/{ticker}/prices``): ``date`` is the bar OPEN in UTC
  (``14:30:00.000Z`` is the 09:30 New York bar); ``volume`` is present only when asked for
  with ``columns=open,high,low,close,volume`` and counts IEX's own volume, not the
  consolidated tape. Without it volume is null (unknown), never 0.
- **Truncation.** Tiingo caps an intraday answer at :data:`IEX_ROW_CAP` rows; an answer that
  long is treated as cut and raises :class:`~tickvault.errors.IncompleteData` (the adapter
  asks for windows well under the cap, so a full page means something went wrong).

Every surprise raises :class:`~tickvault.errors.ProviderResponseError` or
:class:`~tickvault.errors.IncompleteData`, nothing else.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tickvault.errors import IncompleteData, ProviderResponseError
from tickvault.model import CorporateAction
from tickvault.providers._http import DAY_US, bars_table, column, float_column, iso_to_us, record_columns

__all__ = ["IEX_ROW_CAP", "PROVIDER", "daily_actions", "daily_bars", "daily_csv_bars", "iex_bars"]

PROVIDER = "tiingo"
IEX_ROW_CAP = 10_000


def _bad(message: str, where: str, **context: Any) -> ProviderResponseError:
    return ProviderResponseError(message, provider=PROVIDER, field=where, **context)


def _columns(payload: Any, where: str) -> tuple[dict[str, Any], int]:
    cols = record_columns(payload, where, PROVIDER)
    n = len(payload) if isinstance(payload, list) else 0
    return cols, n


def _prices(cols: dict[str, Any], n: int, where: str, *, volume_required: bool) -> dict[str, np.ndarray]:
    out = {name: float_column(column(cols, name, n, where, PROVIDER), f"{where}.{name}", PROVIDER)
           for name in ("open", "high", "low", "close")}
    out["volume"] = float_column(column(cols, "volume", n, where, PROVIDER, required=volume_required),
                                 f"{where}.volume", PROVIDER)
    return out


def daily_bars(payload: Any, *, provider: str = PROVIDER) -> pa.Table:
    """``/tiingo/daily/{ticker}/prices`` JSON -> raw daily bars keyed by session date.

    Raises
    ------
    ProviderResponseError
        If the payload is not an array of price objects, a date is not at 00:00 UTC, or a
        field is missing or not a number.
    """
    cols, n = _columns(payload, "$")
    if n == 0:
        return bars_table(np.empty(0, dtype=np.int64), open=np.empty(0), high=np.empty(0), low=np.empty(0),
                          close=np.empty(0), volume=np.empty(0), provider=provider)
    ts = iso_to_us(column(cols, "date", n, "$", PROVIDER), "$.date", PROVIDER)
    if bool(np.any(ts % DAY_US)):
        raise _bad("end-of-day dates must be 00:00 UTC", "$.date")
    p = _prices(cols, n, "$", volume_required=True)
    return bars_table(ts, open=p["open"], high=p["high"], low=p["low"], close=p["close"], volume=p["volume"],
                      provider=provider)


def daily_actions(payload: Any, symbol: str, *, provider: str = PROVIDER) -> list[CorporateAction]:
    """Dividends (``divCash``) and splits (``splitFactor``) from an end-of-day payload.

    Raises
    ------
    ProviderResponseError
        If ``divCash`` is negative or ``splitFactor`` not a positive finite number.
    """
    cols, n = _columns(payload, "$")
    if n == 0:
        return []
    ts = iso_to_us(column(cols, "date", n, "$", PROVIDER), "$.date", PROVIDER)
    div = float_column(column(cols, "divCash", n, "$", PROVIDER, required=False), "$.divCash", PROVIDER)
    split = float_column(column(cols, "splitFactor", n, "$", PROVIDER, required=False), "$.splitFactor", PROVIDER)
    div = np.where(np.isnan(div), 0.0, div)
    split = np.where(np.isnan(split), 1.0, split)
    if not bool(np.all(np.isfinite(div) & (div >= 0))):
        raise _bad("divCash is negative or not finite", "$.divCash")
    if not bool(np.all(np.isfinite(split) & (split > 0))):
        raise _bad("splitFactor is not a positive number", "$.splitFactor")
    days = ts // DAY_US
    out: list[CorporateAction] = []
    for i in np.nonzero(div > 0)[0]:
        out.append(CorporateAction.dividend(str(np.datetime64(int(days[i]), "D")), float(div[i]), symbol=symbol,
                                            provider=provider))
    for i in np.nonzero(split != 1.0)[0]:
        out.append(CorporateAction.split(str(np.datetime64(int(days[i]), "D")), float(split[i]), symbol=symbol,
                                         provider=provider))
    return sorted(out, key=lambda a: (a.ex_date, str(a.kind)))


def daily_csv_bars(data: bytes, *, provider: str = PROVIDER) -> pa.Table:
    """``format=csv`` end-of-day body -> the same bars as :func:`daily_bars`.

    Raises
    ------
    ProviderResponseError
        If the body is not CSV with ``date`` and price columns.
    """
    if not isinstance(data, bytes | bytearray) or not bytes(data).strip():
        raise _bad("empty or non-bytes CSV body", "$")
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("CSV body is not UTF-8", "$") from None
    try:
        table = pacsv.read_csv(io.BytesIO(bytes(data)),
                               convert_options=pacsv.ConvertOptions(column_types={"date": pa.string()}))
    except (pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"unreadable CSV ({type(exc).__name__})", "$") from None
    names = table.column_names
    if len(set(names)) != len(names) or "date" not in names:
        raise _bad("CSV needs one date column and unique names", "$")
    dates = table.column("date").combine_chunks()
    if not pa.types.is_string(dates.type) or dates.null_count:
        raise _bad("dates must be strings", "date")
    try:
        ts = pc.strptime(dates, format="%Y-%m-%d", unit="us", error_is_null=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _bad("dates are not YYYY-MM-DD", "date") from None
    ts_us = np.asarray(ts.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    cols = {name: table.column(name).combine_chunks() for name in names}
    p = _prices(cols, table.num_rows, "$", volume_required=True)
    return bars_table(ts_us, open=p["open"], high=p["high"], low=p["low"], close=p["close"], volume=p["volume"],
                      provider=provider)


def iex_bars(payload: Any, *, provider: str = PROVIDER) -> pa.Table:
    """``/iex/{ticker}/prices`` JSON -> intraday bars keyed by bar open (UTC).

    Raises
    ------
    ProviderResponseError
        If the payload is not an array of price objects or a field is malformed.
    IncompleteData
        If the answer holds :data:`IEX_ROW_CAP` rows or more (Tiingo cut it).
    """
    cols, n = _columns(payload, "$")
    if n >= IEX_ROW_CAP:
        raise IncompleteData(f"IEX answer has {n} rows, Tiingo's cap: the window was cut", provider=provider)
    if n == 0:
        return bars_table(np.empty(0, dtype=np.int64), open=np.empty(0), high=np.empty(0), low=np.empty(0),
                          close=np.empty(0), volume=np.empty(0), provider=provider)
    ts = iso_to_us(column(cols, "date", n, "$", PROVIDER), "$.date", PROVIDER)
    p = _prices(cols, n, "$", volume_required=False)
    table = bars_table(ts, open=p["open"], high=p["high"], low=p["low"], close=p["close"], volume=p["volume"],
                       provider=provider)
    if "volume" not in cols:  # not asked for: unknown (null), not NaN and never 0
        table = table.set_column(table.schema.get_field_index("volume"), "volume", pa.nulls(n, pa.float64()))
    return table
