"""tickvault.transform: pure, vectorised transformations of canonical bars.

Adjustment for splits and dividends on read (:func:`adjust`); see docs/adjustment.md.
Session-aware resampling (:func:`resample`) and technical indicators
(:mod:`tickvault.transform.indicators`); see docs/analytics.md.
"""

from tickvault.transform import indicators
from tickvault.transform._adjust import (
    ADJUSTED_PRICE_COLUMNS,
    AdjustmentFactors,
    AdjustMode,
    adjust,
    adjustment_factors,
)
from tickvault.transform._resample import FillMode, best_source, can_resample, resample

__all__: list[str] = [
    "ADJUSTED_PRICE_COLUMNS",
    "AdjustMode",
    "AdjustmentFactors",
    "adjust",
    "adjustment_factors",
    "FillMode",
    "best_source",
    "can_resample",
    "indicators",
    "resample",
]
