"""Data-quality rules, reports and the quarantine policy.

Every batch on its way to the store is checked by :func:`check`, a pure function that returns a
:class:`~tickvault.model.QualityReport` (per-rule counts, one flag per (row, rule) with a
reason, and a score); :func:`partition` then splits the batch into rows that may be stored
(soft flags included) and rows held back by a *hard* rule, with their reasons. Rows are
never modified or "repaired". Which rules are hard is policy (``hard_rules``), defaulting
to :data:`DEFAULT_HARD_RULES`. See ``docs/quality.md`` for the rules and their parameters.
"""

from tickvault.quality._check import (
    BAD_ROWS_SCHEMA,
    DEFAULT_HARD_RULES,
    RULES,
    SOFT_WEIGHT,
    check,
    partition,
    score_of,
)
from tickvault.quality._jumps import COMMON_SPLIT_RATIOS
from tickvault.quality._rule import Rule, Severity
from tickvault.quality._series import MINOR_UNIT_CURRENCIES

__all__ = [
    "BAD_ROWS_SCHEMA",
    "COMMON_SPLIT_RATIOS",
    "DEFAULT_HARD_RULES",
    "MINOR_UNIT_CURRENCIES",
    "RULES",
    "Rule",
    "SOFT_WEIGHT",
    "Severity",
    "check",
    "partition",
    "score_of",
]
