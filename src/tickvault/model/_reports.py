"""Result values: write receipts and quality reports.

These are plain frozen values so every layer (store, engine, CLI, service) can pass,
persist and print them without knowing who produced them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

__all__ = ["FLAGS_SCHEMA", "QualityReport", "StoreReceipt", "WriteReceipt", "empty_flags"]

_FLAG_FIELDS: list[pa.Field[Any]] = [
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("row", pa.int64()),
        pa.field("rule", pa.string()),
        pa.field("severity", pa.string()),  # "hard" | "soft"
        pa.field("reason", pa.string()),
]
FLAGS_SCHEMA = pa.schema(_FLAG_FIELDS)


def empty_flags() -> pa.Table:
    """An empty flags table."""
    return FLAGS_SCHEMA.empty_table()


@dataclass(frozen=True)
class StoreReceipt:
    """What a :meth:`BarStore.write` did.

    ``rows_new + rows_changed + rows_unchanged`` equals the number of distinct keys in the
    batch. ``bytes_written`` is 0 when nothing changed.
    """

    rows_new: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    bytes_written: int = 0
    first_us: int | None = None
    last_us: int | None = None

    @property
    def rows_written(self) -> int:
        """New plus changed rows."""
        return self.rows_new + self.rows_changed


@dataclass(frozen=True)
class QualityReport:
    """Outcome of running the quality rules over one batch or one stored series.

    Parameters
    ----------
    symbol, timeframe
        What was checked.
    rows
        Number of rows checked.
    counts
        Rule name -> number of rows it flagged (rules that ran and flagged nothing have 0).
    hard_rules
        Rules treated as hard (their rows are quarantined) under the policy in force.
    flags
        One row per (row, rule) with :data:`FLAGS_SCHEMA`.
    score
        In [0, 1]; 1 means no flags at all.
    created_us
        Creation time, epoch microseconds.
    """

    symbol: str
    timeframe: str
    rows: int
    counts: dict[str, int] = field(default_factory=dict)
    hard_rules: frozenset[str] = frozenset()
    flags: pa.Table = field(default_factory=empty_flags)
    score: float = 1.0
    created_us: int = 0

    @property
    def hard_failures(self) -> int:
        """Number of distinct rows failing at least one hard rule."""
        if self.flags.num_rows == 0:
            return 0
        sev = self.flags.column("severity").to_pylist()
        rows = self.flags.column("row").to_pylist()
        return len({r for r, s in zip(rows, sev, strict=True) if s == "hard"})

    @property
    def soft_flags(self) -> int:
        """Number of distinct rows with at least one soft flag."""
        if self.flags.num_rows == 0:
            return 0
        sev = self.flags.column("severity").to_pylist()
        rows = self.flags.column("row").to_pylist()
        return len({r for r, s in zip(rows, sev, strict=True) if s == "soft"})

    def to_json(self) -> str:
        """Serialise (flags included) to JSON."""
        flags = self.flags.to_pydict()
        flags["ts"] = [None if t is None else t.isoformat() for t in flags["ts"]]
        return json.dumps(
            {
                "symbol": self.symbol,
                "timeframe": self.timeframe,
                "rows": self.rows,
                "counts": self.counts,
                "hard_rules": sorted(self.hard_rules),
                "flags": flags,
                "score": self.score,
                "created_us": self.created_us,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> QualityReport:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        flags_d = data.get("flags") or {}
        import pandas as pd

        ts = [None if t is None else pd.Timestamp(t) for t in flags_d.get("ts", [])]
        flags = pa.Table.from_pydict(
            {
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "row": flags_d.get("row", []),
                "rule": flags_d.get("rule", []),
                "severity": flags_d.get("severity", []),
                "reason": flags_d.get("reason", []),
            },
            schema=FLAGS_SCHEMA,
        )
        return cls(
            symbol=data["symbol"],
            timeframe=data["timeframe"],
            rows=int(data["rows"]),
            counts={k: int(v) for k, v in data.get("counts", {}).items()},
            hard_rules=frozenset(data.get("hard_rules", [])),
            flags=flags,
            score=float(data.get("score", 1.0)),
            created_us=int(data.get("created_us", 0)),
        )

    def summary(self) -> str:
        """One line: rows, score and the rules that flagged something."""
        hits = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()) if v)
        return f"{self.rows} rows, score {self.score:.3f}" + (f"; {hits}" if hits else "; no flags")


@dataclass(frozen=True)
class WriteReceipt:
    """What :meth:`Vault.write` did with a batch.

    Parameters
    ----------
    symbol, timeframe
        Target series.
    rows_in
        Rows received (before de-duplication).
    rows_written
        Rows new or changed in the store.
    rows_unchanged
        Rows identical to what was already stored (no bytes written for them).
    rows_quarantined
        Rows held back by a hard quality rule (see :meth:`Vault.quarantine`).
    bytes_written
        Bytes the store wrote for this batch.
    report
        The quality report of the batch.
    """

    symbol: str
    timeframe: str
    rows_in: int
    rows_written: int
    rows_unchanged: int
    rows_quarantined: int
    bytes_written: int
    report: QualityReport | None = None

    def __str__(self) -> str:
        return (
            f"{self.symbol} {self.timeframe}: {self.rows_written} written, {self.rows_unchanged} unchanged, "
            f"{self.rows_quarantined} quarantined ({self.bytes_written} bytes)"
        )
