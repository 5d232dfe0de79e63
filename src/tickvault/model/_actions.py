"""Corporate actions: splits and cash dividends.

The store keeps raw (as-traded) prices and these actions separately; adjustment happens
on read (DESIGN §3). Conventions:

- A split has ``ratio`` = new shares per old share: a 4-for-1 split is ``4.0``, a 1-for-10
  reverse split ``0.1``. Prices *before* the ex-date are divided by the ratio to adjust.
- A dividend has ``amount`` = cash per share *as paid at the time* (not split-adjusted).
- ``ex_date`` is the session date on which the stock first trades without the entitlement.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from tickvault.errors import SchemaError
from tickvault.model._symbols import validate_symbol

__all__ = ["ACTIONS_SCHEMA", "ActionKind", "CorporateAction", "actions_from_frame", "actions_to_table"]


class ActionKind(enum.StrEnum):
    """Kind of corporate action."""

    SPLIT = "split"
    DIVIDEND = "dividend"


_ACTION_FIELDS: list[pa.Field[Any]] = [
        pa.field("ex_date", pa.date32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("provider", pa.string()),
]
ACTIONS_SCHEMA = pa.schema(_ACTION_FIELDS)


@dataclass(frozen=True, order=True)
class CorporateAction:
    """One split or cash dividend.

    Parameters
    ----------
    symbol
        Canonical symbol.
    ex_date
        Ex-date (a session date).
    kind
        ``split`` or ``dividend``.
    value
        Split ratio (new/old shares) or cash amount per share.
    currency
        Dividend currency, when known.
    provider
        Where the action came from.
    """

    ex_date: dt.date
    kind: ActionKind
    value: float
    symbol: str = ""
    currency: str | None = None
    provider: str | None = None

    def __post_init__(self) -> None:
        if self.symbol:
            object.__setattr__(self, "symbol", validate_symbol(self.symbol))
        object.__setattr__(self, "kind", ActionKind(self.kind))
        if isinstance(self.ex_date, dt.datetime):
            object.__setattr__(self, "ex_date", self.ex_date.date())
        if not math.isfinite(self.value) or self.value <= 0:
            raise SchemaError(f"corporate action value must be a positive number, got {self.value!r}")

    @classmethod
    def split(cls, ex_date: dt.date | str, ratio: float, **kw: str | None) -> CorporateAction:
        """A split of ``ratio`` new shares per old share."""
        return cls(_date(ex_date), ActionKind.SPLIT, float(ratio), **kw)  # type: ignore[arg-type]

    @classmethod
    def dividend(cls, ex_date: dt.date | str, amount: float, **kw: str | None) -> CorporateAction:
        """A cash dividend of ``amount`` per share."""
        return cls(_date(ex_date), ActionKind.DIVIDEND, float(amount), **kw)  # type: ignore[arg-type]


def _date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def actions_to_table(actions: Iterable[CorporateAction]) -> pa.Table:
    """Actions as an Arrow table with :data:`ACTIONS_SCHEMA`, sorted by (ex_date, kind)."""
    items = sorted(actions, key=lambda a: (a.ex_date, str(a.kind), a.value))
    return pa.Table.from_pydict(
        {
            "ex_date": [a.ex_date for a in items],
            "kind": [str(a.kind) for a in items],
            "value": [a.value for a in items],
            "currency": [a.currency for a in items],
            "provider": [a.provider for a in items],
        },
        schema=ACTIONS_SCHEMA,
    )


def actions_from_frame(symbol: str, frame: object) -> list[CorporateAction]:
    """Read actions from a frame with ``ex_date``, ``kind`` and ``value`` columns.

    Also accepts the common wide layout with ``date`` plus ``split`` / ``dividend``
    (or ``Stock Splits`` / ``Dividends``) columns, where 0 and 1.0 mean "no action".

    Raises
    ------
    SchemaError
        If the layout is not recognised or a value is invalid.
    """
    if isinstance(frame, pa.Table):
        df = frame.to_pandas()
    elif isinstance(frame, pd.DataFrame):
        df = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
    elif isinstance(frame, Iterable):
        items = list(frame)
        if not all(isinstance(a, CorporateAction) for a in items):
            raise SchemaError("corporate actions must be CorporateAction objects or a frame")
        return [CorporateAction(a.ex_date, a.kind, a.value, symbol, a.currency, a.provider) for a in items]
    else:
        raise SchemaError(f"cannot read corporate actions from {type(frame).__name__}")
    cols = {str(c).strip().lower(): c for c in df.columns}
    out: list[CorporateAction] = []
    sym = validate_symbol(symbol)
    if {"ex_date", "kind", "value"} <= cols.keys():
        prov = df[cols["provider"]] if "provider" in cols else [None] * len(df)
        for d, kind, value, p in zip(df[cols["ex_date"]], df[cols["kind"]], df[cols["value"]], prov, strict=True):
            out.append(CorporateAction(_date(d), ActionKind(str(kind)), float(value), sym,
                                       provider=None if p is None or pd.isna(p) else str(p)))
        return out
    date_col = next((cols[c] for c in ("ex_date", "date", "datetime", "ts", "index") if c in cols), None)
    split_names = ("split", "splits", "stock splits", "split_factor", "splitfactor")
    split_col = next((cols[c] for c in split_names if c in cols), None)
    div_col = next((cols[c] for c in ("dividend", "dividends", "divcash", "dividend_amount") if c in cols), None)
    if date_col is None or (split_col is None and div_col is None):
        raise SchemaError("corporate actions need ex_date/kind/value columns or date + split/dividend columns")
    dates = pd.to_datetime(df[date_col], utc=False)
    for i, d in enumerate(dates):
        day = pd.Timestamp(d).date()
        if split_col is not None:
            r = float(df[split_col].iloc[i])
            if math.isfinite(r) and r > 0 and r != 1.0:
                out.append(CorporateAction(day, ActionKind.SPLIT, r, sym))
        if div_col is not None:
            a = float(df[div_col].iloc[i])
            if math.isfinite(a) and a > 0:
                out.append(CorporateAction(day, ActionKind.DIVIDEND, a, sym))
    return out
