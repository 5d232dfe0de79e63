"""Injected bad ticks: known-bad rows for testing quality rules end to end.

At rate ``bad_ticks`` per bar (decided by a hash of the bar, so as deterministic as the bar
itself), one of three faults seen in real vendor data is injected:

- ``spike``: the close jumps up or down by a factor 1.5-3 and the high (or low) follows, so
  OHLC stays consistent; only a return/outlier rule can catch it.
- ``unit``: every price is 100x too large or too small (pence vs pounds, cents vs dollars).
- ``ohlc``: high and low are crossed (high < low), a hard consistency violation.

The table says which rows were made bad in its schema metadata, read back with
:func:`injected_bad_ticks`; a test can therefore check a quality report row for row.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping

import numpy as np
import pyarrow as pa

from tickvault.errors import SchemaError
from tickvault.providers.sim._random import mix64, uniforms

__all__ = ["BAD_TICK_KINDS", "METADATA_KEY", "bad_ticks_metadata", "inject_bad_ticks", "injected_bad_ticks"]

BAD_TICK_KINDS = ("spike", "unit", "ohlc")
METADATA_KEY = b"tickvault.sim.bad_ticks"
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_THREE = np.uint64(3)


def inject_bad_ticks(bars: object, hashes: np.ndarray, rate: float, decimals: int) -> list[tuple[int, str]]:
    """Corrupt, in place, the rows of ``bars`` whose hash falls under ``rate``.

    Parameters
    ----------
    bars
        An object with float arrays ``open high low close vwap`` and int64 ``start`` that the
        caller owns (they are modified in place).
    hashes
        One uint64 hash per row (the bar's ``bad-tick`` stream).
    rate
        Probability per row.
    decimals
        Price decimals of the symbol (spiked closes stay on the tick grid).

    Returns
    -------
    list of tuple
        ``(ts_us, kind)`` of every corrupted row, in row order.
    """
    cols: MutableMapping[str, np.ndarray] = {k: getattr(bars, k) for k in ("open", "high", "low", "close", "vwap")}
    start: np.ndarray = getattr(bars, "start")  # noqa: B009 - duck-typed on purpose
    rows = np.flatnonzero(uniforms(hashes) < rate)
    if rows.size == 0:
        return []
    h = mix64(hashes[rows])  # fresh bits: the selection used the top ones
    kind = (h % _THREE).astype(np.int64)
    up = ((h >> _TWO) & _ONE) == _ONE
    scale = 10.0**decimals

    spike = rows[kind == 0]
    mag = 1.5 + 1.5 * uniforms(mix64(h[kind == 0]))
    s_up = up[kind == 0]
    new_close = np.rint(np.where(s_up, cols["close"][spike] * mag, cols["close"][spike] / mag) * scale) / scale
    new_close = np.maximum(new_close, 1.0 / scale)
    cols["close"][spike] = new_close
    cols["high"][spike] = np.where(s_up, np.maximum(cols["high"][spike], new_close), cols["high"][spike])
    cols["low"][spike] = np.where(s_up, cols["low"][spike], np.minimum(cols["low"][spike], new_close))

    unit = rows[kind == 1]
    factor = np.where(up[kind == 1], 100.0, 0.01)
    for name in ("open", "high", "low", "close", "vwap"):
        cols[name][unit] = cols[name][unit] * factor

    crossed = rows[kind == 2]
    high, low = cols["high"][crossed].copy(), cols["low"][crossed].copy()
    cols["high"][crossed] = low * 0.995
    cols["low"][crossed] = high * 1.005

    names = np.array(BAD_TICK_KINDS)[kind]
    return [(int(t), str(k)) for t, k in zip(start[rows], names, strict=True)]


def bad_ticks_metadata(bad: list[tuple[int, str]]) -> dict[bytes, bytes]:
    """Schema metadata recording the injected rows."""
    payload = {"ts_us": [t for t, _ in bad], "kind": [k for _, k in bad]}
    return {METADATA_KEY: json.dumps(payload, separators=(",", ":")).encode()}


def injected_bad_ticks(table: pa.Table) -> list[tuple[int, str]]:
    """The ``(ts_us, kind)`` rows that :func:`simulate_bars` corrupted in ``table``.

    Returns an empty list for a table simulated without bad ticks.

    Raises
    ------
    SchemaError
        If the metadata is present but unreadable.
    """
    meta = table.schema.metadata or {}
    raw = meta.get(METADATA_KEY)
    if raw is None:
        return []
    try:
        payload = json.loads(raw)
        return [(int(t), str(k)) for t, k in zip(payload["ts_us"], payload["kind"], strict=True)]
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(f"unreadable sim bad-tick metadata: {exc}") from None
