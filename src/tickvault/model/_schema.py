"""The canonical bar schema (Arrow) and conversion of user frames into it.

Columns (DESIGN §3): ``ts`` (timestamp[us, UTC], bar open or session date),
``open high low close volume`` (float64), optional ``vwap`` (float64) and ``trade_count``
(int64), and provenance ``provider`` (dictionary-encoded string). Arrow is the currency
between layers; pandas/polars conversion happens at the edges.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import SchemaError

__all__ = [
    "BAR_SCHEMA",
    "OHLCV",
    "PRICE_COLUMNS",
    "TS_MAX_US",
    "TS_MIN_US",
    "conform_bars",
    "dedupe_last",
    "empty_bars",
    "ts_nanos",
]

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV = ("open", "high", "low", "close", "volume")
TS_TYPE = pa.timestamp("us", tz="UTC")
PROVIDER_TYPE = pa.dictionary(pa.int32(), pa.string())

_BAR_FIELDS: list[pa.Field[Any]] = [
    pa.field("ts", TS_TYPE, nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("vwap", pa.float64()),
        pa.field("trade_count", pa.int64()),
        pa.field("provider", PROVIDER_TYPE),
]
BAR_SCHEMA = pa.schema(_BAR_FIELDS)

_ALIASES = {
    "date": "ts", "datetime": "ts", "time": "ts", "timestamp": "ts", "index": "ts",
    "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume", "vw": "vwap",
    "n": "trade_count", "trades": "trade_count", "count": "trade_count",
}


def empty_bars() -> pa.Table:
    """An empty table with :data:`BAR_SCHEMA`."""
    return BAR_SCHEMA.empty_table()


def _to_arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    if isinstance(frame, pd.DataFrame):
        df = frame
        if isinstance(df.index, pd.DatetimeIndex) or str(df.index.name or "").lower() in _ALIASES:
            df = df.reset_index()
            if df.columns[0] == "index":
                df = df.rename(columns={"index": "ts"})
        return pa.Table.from_pandas(df, preserve_index=False)
    to_arrow = getattr(frame, "to_arrow", None)  # polars DataFrame
    if callable(to_arrow):
        table = to_arrow()
        if isinstance(table, pa.Table):
            return table
    raise SchemaError(f"cannot read bars from {type(frame).__name__}; pass pandas, polars or Arrow")


# Bar times the whole stack can represent: pandas' nanosecond timestamps end in 1677 and 2262,
# and the calendars' sessions need a margin on both sides.
TS_MIN_US = -9_183_110_400_000_000  # 1679-01-01
TS_MAX_US = 9_214_646_400_000_000   # 2262-01-01


def conform_bars(frame: Any, *, provider: str | None = None) -> pa.Table:
    """Convert ``frame`` to :data:`BAR_SCHEMA`.

    Column names are matched case-insensitively with common aliases (``date``,
    ``timestamp``, ``o``/``h``/``l``/``c``/``v``). The time column must be tz-aware
    or naive UTC; it is converted to microseconds. Rows are *not* sorted or deduplicated
    here (see :func:`dedupe_last`), so the quality rules can still see the input as given.

    Parameters
    ----------
    frame
        pandas (DatetimeIndex or time column), polars or Arrow.
    provider
        Provenance to fill where the frame has no ``provider`` column.

    Raises
    ------
    SchemaError
        If a required column is missing or cannot be cast.
    """
    table = _to_arrow(frame)
    rename: dict[str, str] = {}
    for name in table.column_names:
        low = str(name).strip().lower()
        target = _ALIASES.get(low, low)
        if target in BAR_SCHEMA.names and target not in rename.values():
            rename[name] = target
    missing = [c for c in ("ts", *OHLCV) if c not in rename.values()]
    if missing:
        raise SchemaError(
            f"bars are missing required column(s) {', '.join(missing)}; got {', '.join(map(str, table.column_names))}"
        )
    columns: list[pa.Array[Any] | pa.ChunkedArray[Any]] = []
    n = table.num_rows
    by_target = {v: k for k, v in rename.items()}
    for field in BAR_SCHEMA:
        src = by_target.get(field.name)
        if src is None:
            if field.name == "provider":
                columns.append(pa.array([provider] * n, pa.string()).dictionary_encode())
            else:
                columns.append(pa.nulls(n, field.type))
            continue
        col = table.column(src)
        try:
            columns.append(_cast(col, field, provider))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
            raise SchemaError(f"column {src!r} cannot be read as {field.type}: {exc}") from None
    out = pa.Table.from_arrays(columns, schema=BAR_SCHEMA)
    if out.column("ts").null_count:
        raise SchemaError(f"{out.column('ts').null_count} row(s) have no timestamp")
    if n:
        us = out.column("ts").cast(pa.int64())
        bounds = pc.min_max(us)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo < TS_MIN_US or hi >= TS_MAX_US:
            raise SchemaError("bar times must lie between 1679-01-01 and 2262-01-01 (UTC): pandas, the quality "
                              "rules and the calendars cannot represent times outside that range")
    return out


def _cast(col: pa.ChunkedArray[Any], field: pa.Field[Any], provider: str | None) -> pa.ChunkedArray[Any]:
    if field.name == "ts":
        t = col.type
        if pa.types.is_timestamp(t):
            if t.tz is None:
                col = cast("pa.ChunkedArray[Any]", pc.assume_timezone(col, "UTC"))
            return col.cast(TS_TYPE)
        if pa.types.is_date(t):
            return col.cast(pa.timestamp("us")).cast(TS_TYPE)  # type: ignore[no-any-return]
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            parsed = pd.to_datetime(pd.Series(col.to_pylist()), utc=True, format="ISO8601")
            return pa.chunked_array([pa.array(parsed, TS_TYPE)])
        raise SchemaError(f"time column has type {t}; pass timestamps (use the files provider for epochs)")
    if field.name == "provider":
        if pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        col = col.cast(pa.string())
        if provider is not None:
            col = pc.fill_null(col, pa.scalar(provider, pa.string()))  # type: ignore[arg-type]
        return col.dictionary_encode().cast(PROVIDER_TYPE)  # type: ignore[no-any-return]
    return col.cast(field.type)


def ts_nanos(table: pa.Table) -> np.ndarray:
    """The ``ts`` column as an int64 array of epoch nanoseconds."""
    us = table.column("ts").cast(pa.int64()).to_numpy()
    return np.asarray(us, dtype=np.int64) * 1000


def dedupe_last(table: pa.Table) -> pa.Table:
    """Sort by ``ts`` and keep the last row of each duplicated key (stable).

    This is the in-batch duplicate rule of DESIGN §3: later rows win, deterministically.
    """
    if table.num_rows <= 1:
        return table
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    if ts.size > 1 and bool(np.all(ts[1:] > ts[:-1])):
        return table
    order = np.argsort(ts, kind="stable")
    sorted_ts = ts[order]
    keep = np.ones(sorted_ts.size, dtype=bool)
    keep[:-1] = sorted_ts[1:] != sorted_ts[:-1]
    return table.take(order[keep])
