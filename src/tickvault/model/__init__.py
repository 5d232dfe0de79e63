"""Pure types shared by every layer: bar schema, timeframes, symbols, ranges, actions,
coverage intervals, reports, and the column blocks through which a decoded table becomes a
pandas frame without a copy. No I/O happens here; only :mod:`tickvault.errors` is
imported from the rest of the package.
"""

from tickvault.model._actions import (
    ACTIONS_SCHEMA,
    ActionKind,
    CorporateAction,
    actions_from_frame,
    actions_to_table,
)
from tickvault.model._blocks import ColumnBlock, shared_rows
from tickvault.model._coverage import (
    CoverageInterval,
    CoverageState,
    apply_marks,
    covered_mask,
    intervals_from_mask,
    ts_to_us,
    us_to_ts,
)
from tickvault.model._reports import FLAGS_SCHEMA, QualityReport, StoreReceipt, WriteReceipt, empty_flags
from tickvault.model._schema import (
    BAR_SCHEMA,
    OHLCV,
    PRICE_COLUMNS,
    TS_MAX_US,
    TS_MIN_US,
    conform_bars,
    dedupe_last,
    empty_bars,
    ts_nanos,
)
from tickvault.model._symbols import (
    AssetClass,
    Instrument,
    InstrumentStatus,
    symbol_path_component,
    validate_symbol,
)
from tickvault.model._time import TimeLike, TimeRange, to_utc
from tickvault.model._timeframe import Timeframe

__all__ = [
    "ACTIONS_SCHEMA",
    "BAR_SCHEMA",
    "FLAGS_SCHEMA",
    "OHLCV",
    "PRICE_COLUMNS",
    "ActionKind",
    "AssetClass",
    "ColumnBlock",
    "CorporateAction",
    "CoverageInterval",
    "CoverageState",
    "Instrument",
    "InstrumentStatus",
    "QualityReport",
    "StoreReceipt",
    "TimeLike",
    "TimeRange",
    "Timeframe",
    "WriteReceipt",
    "actions_from_frame",
    "actions_to_table",
    "apply_marks",
    "TS_MAX_US",
    "TS_MIN_US",
    "conform_bars",
    "covered_mask",
    "dedupe_last",
    "empty_bars",
    "empty_flags",
    "intervals_from_mask",
    "shared_rows",
    "symbol_path_component",
    "to_utc",
    "ts_nanos",
    "ts_to_us",
    "us_to_ts",
    "validate_symbol",
]
