"""What a quality rule is: a name, a default severity, parameters and a pure function.

A rule reads a :class:`~tickvault.quality._prepare.Batch` and returns the batch rows it flags
with one human-readable reason each, or ``None`` when it cannot run (for example a session
check without a calendar). Rules never modify their input and never decide what happens to a
row: the policy (which rules are *hard*) is applied by :func:`tickvault.quality.check`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickvault.quality._prepare import Batch

__all__ = ["Finding", "Rule", "Severity", "fmt_price", "fmt_ts", "findings"]


class Severity(enum.StrEnum):
    """What a failing row means under the default policy."""

    HARD = "hard"  # quarantined: never stored
    SOFT = "soft"  # stored, with the flag reported alongside


@dataclass(frozen=True)
class Finding:
    """The rows one rule flagged, each with its reason.

    Attributes
    ----------
    rows
        Batch row indices (input order), unique.
    reasons
        One reason per row.
    """

    rows: npt.NDArray[np.int64]
    reasons: list[str]

    @classmethod
    def empty(cls) -> Finding:
        """No row flagged."""
        return cls(np.empty(0, dtype=np.int64), [])


RuleFn = Callable[[Batch], Finding | None]


@dataclass(frozen=True)
class Rule:
    """One quality rule.

    Parameters
    ----------
    name
        Stable identifier (used in reports, policies and the quarantine table).
    severity
        Default severity; the policy passed to :func:`~tickvault.quality.check` decides.
    summary
        What the rule catches, one line.
    fn
        The pure check.
    params
        Default parameters (override with ``check(..., params={name: {...}})``).
    """

    name: str
    severity: Severity
    summary: str
    fn: RuleFn = field(repr=False)
    params: Mapping[str, float] = field(default_factory=dict)

    def __call__(self, batch: Batch) -> Finding | None:
        """Run the rule."""
        return self.fn(batch)


def findings(mask: npt.NDArray[np.bool_], reason: Callable[[int], str]) -> Finding:
    """Build a :class:`Finding` from a row mask, formatting reasons for flagged rows only.

    Reasons are strings for people, so they are built per flagged row; clean batches flag
    nothing and never pay for it.
    """
    rows = np.flatnonzero(mask).astype(np.int64)
    return Finding(rows, [reason(int(i)) for i in rows])


def fmt_ts(us: int, *, daily: bool = False) -> str:
    """An epoch-µs instant for a reason string."""
    ts = pd.Timestamp(int(us) * 1000, tz="UTC")
    if daily or (ts.hour == 0 and ts.minute == 0 and ts.second == 0 and ts.microsecond == 0):
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00") + "Z"


def fmt_price(x: float) -> str:
    """A price for a reason string (short, but never hiding a ×100 or a sign)."""
    return f"{x:.6g}"
