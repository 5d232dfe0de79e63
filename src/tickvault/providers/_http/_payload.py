"""Strict readers for vendor JSON: every surprise becomes a typed provider error.

Transforms are pure functions from a decoded payload to Arrow and are fuzzed with mutated
recordings (tests/providers/*/test_*_fuzz.py): they may raise only
:class:`~tickvault.errors.ProviderResponseError` (the payload is garbage) or
:class:`~tickvault.errors.IncompleteData` (the payload is consistent but short). These
helpers make that cheap: shape checks with the path in the message, and column conversion
through :func:`pyarrow.array` (C++ type inference, no per-row Python loop) that rejects
strings, booleans, nested values and out-of-range numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import IncompleteData, ProviderResponseError

__all__ = [
    "EPOCH_UNITS",
    "column",
    "expect_dict",
    "expect_list",
    "float_column",
    "int_column",
    "epoch_to_us",
    "iso_to_us",
    "optional",
    "record_columns",
    "require",
    "same_length",
]

#: Multipliers from a vendor's epoch unit to microseconds.
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}

# Plausible bar instants: 1900-01-01 .. 2200-01-01 (Yahoo has index history from 1927).
_MIN_US = -2_208_988_800_000_000
_MAX_US = 7_258_118_400_000_000


def _bad(message: str, provider: str, where: str, **context: Any) -> ProviderResponseError:
    return ProviderResponseError(message, provider=provider, field=where, **context)


def expect_dict(value: Any, where: str, provider: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else :class:`ProviderResponseError`."""
    if not isinstance(value, dict):
        raise _bad(f"expected an object, got {type(value).__name__}", provider, where)
    return value


def expect_list(value: Any, where: str, provider: str) -> list[Any]:
    """``value`` if it is a JSON array, else :class:`ProviderResponseError`."""
    if not isinstance(value, list):
        raise _bad(f"expected an array, got {type(value).__name__}", provider, where)
    return value


def require(obj: dict[str, Any], key: str, where: str, provider: str) -> Any:
    """``obj[key]``; a missing key is a :class:`ProviderResponseError` naming the path."""
    if key not in obj:
        raise _bad(f"missing field {key!r}", provider, f"{where}.{key}")
    return obj[key]


def optional(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, provider: str) -> Any:
    """``obj.get(key)`` checked against ``kind`` (``None`` allowed)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _bad(f"expected {kind}, got bool", provider, f"{where}.{key}")
    if not isinstance(value, kind):
        raise _bad(f"expected {kind}, got {type(value).__name__}", provider, f"{where}.{key}")
    return value


def _arrow(values: Any, where: str, provider: str) -> pa.Array[Any]:
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, list):
        try:
            return pa.array(values, from_pandas=False)
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            raise _bad(f"unreadable values ({type(exc).__name__})", provider, where) from None
    raise _bad(f"expected an array, got {type(values).__name__}", provider, where)


def record_columns(records: Any, where: str, provider: str) -> dict[str, pa.Array[Any]]:
    """A JSON array of flat objects (``[{"t": ..., "o": ...}, ...]``) as Arrow columns.

    Arrow infers one struct type in C++ (no per-row Python work); a field absent from some
    records is null there. The column values still need :func:`float_column` and friends.

    Raises
    ------
    ProviderResponseError
        If it is not an array of objects or a field mixes incompatible types.
    """
    items = expect_list(records, where, provider)
    if not items:
        return {}
    arr = _arrow(items, where, provider)
    if not pa.types.is_struct(arr.type) or arr.null_count:
        raise _bad(f"expected an array of objects, got {arr.type}", provider, where)
    struct = arr.type
    return {struct.field(i).name: arr.field(i) for i in range(struct.num_fields)}  # type: ignore[attr-defined]


def column(columns: Mapping[str, Any], name: str, n: int, where: str, provider: str, *,
           required: bool = True) -> Any:
    """``columns[name]``; a missing required field raises, a missing optional one is all-null."""
    if name in columns:
        return columns[name]
    if required:
        raise _bad(f"missing field {name!r}", provider, f"{where}.{name}")
    return pa.nulls(n)


def _no_booleans(values: Any, where: str, provider: str) -> None:
    # Arrow coerces JSON true/false inside a numeric list to 1/0; a boolean price is garbage.
    # This scan is the one Python-level pass, cheap next to the JSON decoding that built the list.
    if isinstance(values, list) and any(type(v) is bool for v in values):
        raise _bad("expected numbers, got a boolean", provider, where)


def float_column(values: Any, where: str, provider: str, *, allow_null: bool = True) -> np.ndarray:
    """A JSON array of numbers as float64, ``null`` -> NaN (when ``allow_null``).

    Raises
    ------
    ProviderResponseError
        For strings (including ``"NaN"``), booleans, objects, nested arrays, or nulls when
        not allowed.
    """
    arr = _arrow(values, where, provider)
    t = arr.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        raise _bad(f"expected numbers, got {t}", provider, where)
    if not allow_null and arr.null_count:
        raise _bad(f"{arr.null_count} missing value(s)", provider, where)
    _no_booleans(values, where, provider)
    try:
        out = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowException as exc:
        raise _bad(f"unreadable numbers ({type(exc).__name__})", provider, where) from None
    return np.asarray(out, dtype=np.float64)


def int_column(values: Any, where: str, provider: str) -> np.ndarray:
    """A JSON array of integers (no nulls) as int64.

    Raises
    ------
    ProviderResponseError
        For nulls, fractions, strings, booleans or values outside int64.
    """
    arr = _arrow(values, where, provider)
    t = arr.type
    if pa.types.is_null(t) and len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    if not pa.types.is_integer(t):
        raise _bad(f"expected integers, got {t}", provider, where)
    _no_booleans(values, where, provider)
    if arr.null_count:
        raise _bad(f"{arr.null_count} null value(s) where integers are required", provider, where)
    try:
        return np.asarray(arr.cast(pa.int64()).to_numpy(), dtype=np.int64)
    except pa.ArrowException:
        raise _bad("integer out of range", provider, where) from None


def epoch_to_us(values: np.ndarray, unit: str, where: str, provider: str) -> np.ndarray:
    """Epoch integers in ``unit`` (``s``, ``ms``, ``us``, ``ns``) as int64 microseconds.

    Raises
    ------
    ProviderResponseError
        If a value lies outside 1900..2200 (a unit mix-up or garbage).
    """
    v = np.asarray(values, dtype=np.int64)
    if unit == "ns":
        us = v // 1000
    else:
        factor = EPOCH_UNITS[unit]
        lo, hi = _MIN_US // factor, _MAX_US // factor
        if v.size and (int(v.min()) < lo or int(v.max()) > hi):
            raise _bad(f"timestamp outside 1900..2200 for unit {unit}", provider, where)
        us = v * factor
    if us.size and (int(us.min()) < _MIN_US or int(us.max()) > _MAX_US):
        raise _bad("timestamp outside 1900..2200", provider, where)
    return us


def iso_to_us(values: Any, where: str, provider: str) -> np.ndarray:
    """A JSON array of RFC 3339 strings (``2022-02-01T05:00:00Z``) as int64 epoch microseconds.

    Raises
    ------
    ProviderResponseError
        For non-strings, unparseable strings, missing offsets or out-of-range instants.
    """
    arr = _arrow(values, where, provider)
    if len(arr) == 0:
        return np.empty(0, dtype=np.int64)
    if not pa.types.is_string(arr.type) or arr.null_count:
        raise _bad(f"expected timestamp strings, got {arr.type}", provider, where)
    has_offset = pc.match_substring_regex(arr, r"^\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:?\d\d)$")
    if not pc.all(has_offset).as_py():
        raise _bad("timestamps must be RFC 3339 with a UTC offset", provider, where)
    try:
        parsed = pd.to_datetime(pd.Series(arr.to_pylist(), dtype=object), format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise _bad("unparseable timestamp", provider, where) from None
    us = np.asarray(parsed.dt.as_unit("us").astype("int64"), dtype=np.int64)
    if us.size and (int(us.min()) < _MIN_US or int(us.max()) > _MAX_US):
        raise _bad("timestamp outside 1900..2200", provider, where)
    return us


def same_length(columns: Mapping[str, Sequence[Any] | np.ndarray], expected: int, where: str, provider: str) -> None:
    """Raise :class:`IncompleteData` if any column's length differs from ``expected``.

    A column shorter or longer than the timestamps means the vendor cut (or padded) the
    page: the rows cannot be matched up, so nothing is returned silently.
    """
    bad = {k: len(v) for k, v in columns.items() if len(v) != expected}
    if bad:
        shown = ", ".join(f"{k}={n}" for k, n in sorted(bad.items()))
        raise IncompleteData(f"payload columns are not the same length as its {expected} timestamps ({shown})",
                             provider=provider, field=where)
