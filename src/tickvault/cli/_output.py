"""Writing Arrow tables (bars, quarantined rows) as a rich table, CSV, JSON or Parquet.

Timestamps leave as ISO 8601 UTC strings (``2024-01-02T14:30:00Z``) in CSV and JSON, so
any tool reads them without guessing a unit or a zone; Parquet keeps the Arrow types.
JSON numbers are written by :mod:`json` (shortest exact repr), so crypto prices keep
every digit.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import tickvault

__all__ = ["OutFormat", "check_output", "with_iso_times", "write_table"]

_JSON_BATCH = 10_000


class OutFormat(enum.StrEnum):
    """Output formats of ``bars`` and ``quarantine``."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def check_output(fmt: OutFormat, output: Path | None) -> None:
    """Reject format/output combinations before any work is done.

    Raises
    ------
    InvalidInput
        Parquet without ``--output``, a table with ``--output``, or an output folder
        that does not exist.
    """
    if fmt is OutFormat.parquet and output is None:
        raise tickvault.InvalidInput("--format parquet needs --output FILE (Parquet is binary)")
    if fmt is OutFormat.table and output is not None:
        raise tickvault.InvalidInput("--output needs --format csv, json or parquet")
    if output is not None:
        if output.is_dir():
            raise tickvault.InvalidInput(f"--output {output} is a folder; name a file")
        if not output.expanduser().resolve().parent.is_dir():
            raise tickvault.InvalidInput(f"--output {output}: folder {output.parent} does not exist")


def with_iso_times(table: pa.Table) -> pa.Table:
    """Timestamp columns as ISO 8601 UTC strings; dictionary columns as plain strings."""
    cols = []
    for col in table.columns:
        if pa.types.is_timestamp(col.type):
            col = _iso(col)
        elif pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def _iso(col: Any) -> Any:
    utc = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
    try:
        # Bars are whole seconds; print them without a fraction when nothing is lost.
        secs = utc.cast(pa.timestamp("s", tz="UTC"), safe=True)
        return pc.strftime(secs, format="%Y-%m-%dT%H:%M:%SZ")
    except pa.ArrowInvalid:
        return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")


def write_table(table: pa.Table, fmt: OutFormat, stream: IO[str] | None, output: Path | None) -> None:
    """Write ``table`` as CSV, JSON or Parquet to ``output`` or ``stream``.

    Parameters
    ----------
    table
        Any Arrow table (bars, quarantined rows).
    fmt
        ``csv``, ``json`` or ``parquet`` (``table`` is rendered by :func:`render_table`).
    stream
        Text stream for CSV/JSON when ``output`` is ``None`` (stdout).
    output
        File to write instead of the stream (required for Parquet).
    """
    if fmt is OutFormat.parquet:
        if output is None:
            raise tickvault.InvalidInput("--format parquet needs --output FILE")
        pq.write_table(table, output, compression="zstd")
        return
    if output is not None:
        with output.open("w", encoding="utf-8", newline="") as fh:
            _write_text(table, fmt, fh)
    elif stream is not None:
        _write_text(table, fmt, stream)


def _write_text(table: pa.Table, fmt: OutFormat, fh: IO[str]) -> None:
    text = with_iso_times(table)
    if fmt is OutFormat.csv:
        text.to_pandas().to_csv(fh, index=False, na_rep="", lineterminator="\n")
        return
    # JSON: an array of records, streamed in batches so memory stays bounded.
    fh.write("[")
    first = True
    for batch in text.to_batches(max_chunksize=_JSON_BATCH):
        for record in batch.to_pylist():
            fh.write("\n  " if first else ",\n  ")
            fh.write(json.dumps(record, allow_nan=False, default=_nan_safe))
            first = False
    fh.write("\n]\n" if not first else "]\n")


def _nan_safe(value: object) -> object:  # pragma: no cover - only for exotic column types
    return str(value)
