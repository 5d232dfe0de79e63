"""Indicator names (``"rsi_14"``, ``"macd_12_26_9"``, ...) and :func:`compute` over a bar table.

Why this module exists: the CLI, the HTTP service, snapshots and screens all name indicators
as short strings; one parser turns a name into the function to call and the output column
names, so every surface spells and labels them the same way.

Grammar: ``<kind>[_<param>...]`` with integer periods (``bb`` also takes a float width:
``bb_20_2.5``). Omitted parameters take the defaults below, and the canonical name (used as
the column prefix) always spells them out: ``"rsi"`` -> ``rsi_14``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tickvault.errors import InvalidInput, SchemaError
from tickvault.transform.indicators._ma import ema, sma, wma
from tickvault.transform.indicators._oscillators import macd, rsi, stoch
from tickvault.transform.indicators._trend import adx
from tickvault.transform.indicators._volatility import atr, bbands
from tickvault.transform.indicators._volume import obv, vwap

__all__ = ["IndicatorSpec", "compute", "parse_indicator"]

Inputs = dict[str, np.ndarray]
Runner = Callable[[Inputs, "np.ndarray | None"], list[np.ndarray]]


@dataclass(frozen=True)
class IndicatorSpec:
    """A parsed indicator name.

    Attributes
    ----------
    name
        Canonical name, e.g. ``macd_12_26_9``.
    kind
        ``sma``, ``ema``, ``wma``, ``rsi``, ``macd``, ``bb``, ``atr``, ``stoch``, ``adx``,
        ``obv`` or ``vwap``.
    params
        Parameters in name order.
    columns
        Output column names, in the order :attr:`run` returns them.
    inputs
        Bar columns needed (``close``, ``high``, ...).
    warmups
        Per output column, the number of leading bars that are NaN on a gap-free series.
    needs_sessions
        Whether ``session_ids`` must be given (VWAP).
    """

    name: str
    kind: str
    params: tuple[float, ...]
    columns: tuple[str, ...]
    inputs: tuple[str, ...]
    warmups: tuple[int, ...]
    needs_sessions: bool
    runner: Runner

    @property
    def warmup(self) -> int:
        """Leading bars before every output column is valid (the largest of :attr:`warmups`)."""
        return max(self.warmups)

    def run(self, inputs: Inputs, session_ids: np.ndarray | None = None) -> list[np.ndarray]:
        """Compute the outputs from ``inputs`` (column name -> float64 array)."""
        return self.runner(inputs, session_ids)


_DEFAULTS: dict[str, tuple[float, ...]] = {
    "sma": (20,), "ema": (20,), "wma": (20,), "rsi": (14,), "macd": (12, 26, 9), "bb": (20, 2.0),
    "atr": (14,), "stoch": (14, 3, 3), "adx": (14,), "obv": (), "vwap": (),
}
_NAME = re.compile(r"^([a-z]+)((?:_[0-9]+(?:\.[0-9]+)?)*)$")
HLC = ("high", "low", "close")


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _ints(kind: str, params: tuple[float, ...]) -> tuple[int, ...]:
    out = []
    for p in params:
        if not float(p).is_integer() or p < 1:
            raise InvalidInput(f"{kind} periods must be positive integers, got {_fmt(p)}")
        out.append(int(p))
    return tuple(out)


def parse_indicator(name: str) -> IndicatorSpec:
    """Parse an indicator name.

    Parameters
    ----------
    name
        e.g. ``"rsi_14"``, ``"macd_12_26_9"``, ``"bb_20_2"``, ``"sma_200"``, ``"ema_50"``,
        ``"wma_20"``, ``"atr_14"``, ``"stoch_14_3_3"``, ``"adx_14"``, ``"obv"``, ``"vwap"``.

    Returns
    -------
    IndicatorSpec

    Raises
    ------
    InvalidInput
        Unknown kind, wrong number of parameters or a bad value.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"indicator name must be a string, got {type(name).__name__}")
    raw = name
    m = _NAME.match(name.strip().lower())
    if m is None:
        raise InvalidInput(f"invalid indicator name {raw!r}; use e.g. rsi_14, macd_12_26_9, bb_20_2")
    kind = m.group(1)
    if kind not in _DEFAULTS:
        raise InvalidInput(f"unknown indicator {kind!r} in {raw!r}; known: {', '.join(sorted(_DEFAULTS))}")
    given = tuple(float(p) for p in m.group(2).split("_")[1:])
    defaults = _DEFAULTS[kind]
    if len(given) > len(defaults):
        raise InvalidInput(f"{kind} takes at most {len(defaults)} parameter(s), got {len(given)} in {raw!r}")
    params = given + defaults[len(given):]
    canonical = "_".join([kind, *(_fmt(p) for p in params)])
    return _build(kind, params, canonical)


def _build(kind: str, params: tuple[float, ...], name: str) -> IndicatorSpec:
    if kind in ("sma", "ema", "wma"):
        (n,) = _ints(kind, params)
        fn = {"sma": sma, "ema": ema, "wma": wma}[kind]
        return IndicatorSpec(name, kind, params, (name,), ("close",), (n - 1,), False,
                             lambda d, _s: [fn(d["close"], n)])
    if kind == "rsi":
        (n,) = _ints(kind, params)
        return IndicatorSpec(name, kind, params, (name,), ("close",), (n,), False,
                             lambda d, _s: [rsi(d["close"], n)])
    if kind == "macd":
        f, s, g = _ints(kind, params)
        if f >= s:
            raise InvalidInput(f"macd fast period must be shorter than slow, got {f} >= {s}")
        return IndicatorSpec(name, kind, params, (name, f"{name}_signal", f"{name}_hist"), ("close",),
                             (s - 1, s + g - 2, s + g - 2), False, lambda d, _s: list(macd(d["close"], f, s, g)))
    if kind == "bb":
        n = _ints(kind, params[:1])[0]
        k = float(params[1])
        if not np.isfinite(k) or k <= 0:
            raise InvalidInput(f"bb width must be positive, got {k}")
        cols = tuple(f"{name}_{c}" for c in ("middle", "upper", "lower", "pctb", "width"))
        return IndicatorSpec(name, kind, params, cols, ("close",), (n - 1,) * 5, False,
                             lambda d, _s: list(bbands(d["close"], n, k)))
    if kind == "atr":
        (n,) = _ints(kind, params)
        return IndicatorSpec(name, kind, params, (name,), HLC, (n - 1,), False,
                             lambda d, _s: [atr(d["high"], d["low"], d["close"], n)])
    if kind == "stoch":
        k, sl, dd = _ints(kind, params)
        return IndicatorSpec(name, kind, params, (f"{name}_k", f"{name}_d"), HLC,
                             (k + sl - 2, k + sl + dd - 3), False,
                             lambda d, _s: list(stoch(d["high"], d["low"], d["close"], k, sl, dd)))
    if kind == "adx":
        (n,) = _ints(kind, params)
        return IndicatorSpec(name, kind, params, (name, f"{name}_plus_di", f"{name}_minus_di"), HLC,
                             (2 * n - 1, n, n), False, lambda d, _s: list(adx(d["high"], d["low"], d["close"], n)))
    if kind == "obv":
        return IndicatorSpec(name, kind, params, (name,), ("close", "volume"), (0,), False,
                             lambda d, _s: [obv(d["close"], d["volume"])])
    return IndicatorSpec(name, kind, params, (name,), (*HLC, "volume"), (0,), True,
                         lambda d, s: [vwap(d["high"], d["low"], d["close"], d["volume"], s)])


def _column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        raise SchemaError(f"bars have no {name!r} column, needed by the requested indicators")
    col = table.column(name)
    try:
        arr = col.cast(pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"column {name!r} cannot be read as float64: {exc}") from None
    return np.ascontiguousarray(arr, dtype=np.float64)


def compute(names: Sequence[str], table: pa.Table, session_ids: np.ndarray | None = None) -> pa.Table:
    """Compute indicators over one symbol's bars.

    Parameters
    ----------
    names
        Indicator names (see :func:`parse_indicator`); duplicates are computed once.
    table
        Bars in time order (``tickvault.model.BAR_SCHEMA`` or any table with the needed
        float columns). Null values count as missing (see the warm-up and gap rules in
        docs/analytics.md).
    session_ids
        One session key per bar, required by ``vwap`` (e.g. ``cal.session_labels(ts)``).

    Returns
    -------
    pyarrow.Table
        ``ts`` (when the input has it) followed by each indicator's output columns, one row
        per input bar.

    Raises
    ------
    InvalidInput
        Bad name, or ``vwap`` without ``session_ids``.
    SchemaError
        A needed column is missing or not numeric.
    """
    specs: list[IndicatorSpec] = []
    seen: set[str] = set()
    for raw in names:
        spec = parse_indicator(raw)
        if spec.name not in seen:
            seen.add(spec.name)
            specs.append(spec)
    inputs: Inputs = {}
    for spec in specs:
        for col in spec.inputs:
            if col not in inputs:
                inputs[col] = _column(table, col)
        if spec.needs_sessions and session_ids is None:
            raise InvalidInput(f"{spec.name} needs session_ids (one session key per bar, e.g. cal.session_labels(ts))")
    sessions = None if session_ids is None else np.asarray(session_ids)
    if sessions is not None and sessions.shape != (table.num_rows,):
        raise InvalidInput(f"session_ids must have one entry per bar ({table.num_rows}), got shape {sessions.shape}")
    arrays: list[Any] = []
    fields: list[Any] = []
    if "ts" in table.column_names:
        arrays.append(table.column("ts").combine_chunks())
        fields.append(table.schema.field("ts"))
    for spec in specs:
        for col, values in zip(spec.columns, spec.run(inputs, sessions), strict=True):
            arrays.append(pa.array(values, pa.float64(), from_pandas=True))
            fields.append(pa.field(col, pa.float64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
