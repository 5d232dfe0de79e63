"""File import in two phases, so a malformed file leaves nothing half-written.

Phase one streams the whole file through the ``files`` provider's reader, which detects
every format problem, and spools the canonical batches to a temporary Arrow IPC file.
Only when the entire file parsed does phase two run each batch through the write path.
Memory stays bounded by the batch size, not the file size.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tickvault.errors import FileFormatError
from tickvault.model import BAR_SCHEMA, CorporateAction, QualityReport, Timeframe, WriteReceipt

__all__ = ["ImportResult", "import_file", "merge_receipts"]


class ImportResult:
    """What an import did: the combined receipt plus what the reader detected."""

    def __init__(self, receipt: WriteReceipt, layout: str, actions: int, skipped_rows: int,
                 warnings: tuple[str, ...] = ()) -> None:
        self.receipt = receipt
        self.layout = layout
        self.actions = actions
        self.skipped_rows = skipped_rows
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"ImportResult({self.receipt}, layout={self.layout!r}, actions={self.actions})"


def merge_receipts(symbol: str, timeframe: str, receipts: list[WriteReceipt]) -> WriteReceipt:
    """Combine per-batch receipts (counts summed, flags concatenated with row offsets)."""
    flags = []
    counts: dict[str, int] = {}
    offset = 0
    rows = 0
    score_weight = 0.0
    hard: frozenset[str] = frozenset()
    for r in receipts:
        if r.report is not None:
            rep = r.report
            f = rep.flags
            if f.num_rows:
                f = f.set_column(1, "row", pc.add(f.column("row"), pa.scalar(offset, pa.int64())))
                flags.append(f)
            for k, v in rep.counts.items():
                counts[k] = counts.get(k, 0) + v
            rows += rep.rows
            score_weight += rep.score * rep.rows
            hard = rep.hard_rules
        offset += r.rows_in
    report = None
    if receipts and any(r.report for r in receipts):
        last = next(r.report for r in reversed(receipts) if r.report is not None)
        table = pa.concat_tables(flags) if flags else last.flags.schema.empty_table()
        report = QualityReport(symbol, timeframe, rows, counts, hard, table,
                               score_weight / rows if rows else 1.0, last.created_us)
    return WriteReceipt(
        symbol, timeframe,
        rows_in=sum(r.rows_in for r in receipts),
        rows_written=sum(r.rows_written for r in receipts),
        rows_unchanged=sum(r.rows_unchanged for r in receipts),
        rows_quarantined=sum(r.rows_quarantined for r in receipts),
        bytes_written=sum(r.bytes_written for r in receipts),
        report=report,
    )


def import_file(
    path: Path,
    *,
    symbol: str | None,
    timeframe: str | None,
    tz: str | None,
    layout: str | None,
    spool_dir: Path | None,
    write: Callable[[str, Timeframe, pa.Table], WriteReceipt],
    add_actions: Callable[[str, list[CorporateAction]], int],
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one file (see the module docstring for the two phases).

    Raises
    ------
    FileFormatError
        The file is malformed; nothing was written.
    """
    from tickvault.providers.files import read_file

    imp = read_file(path, symbol=symbol, timeframe=timeframe, tz=tz, layout=layout)
    sym = symbol or imp.symbol
    if sym is None:
        raise FileFormatError("cannot tell the symbol from the file name; pass symbol=", path=str(path))
    tf = Timeframe.parse(timeframe or imp.timeframe)
    if spool_dir is not None:
        spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spool_dir, prefix="import-") as tmp:
        spool = Path(tmp) / "spool.arrows"
        n_batches = 0
        with pa.OSFile(str(spool), "wb") as sink, pa.ipc.new_stream(sink, BAR_SCHEMA) as writer:
            for batch in imp.batches():  # phase one: every format error surfaces here
                writer.write_table(batch.cast(BAR_SCHEMA))
                n_batches += 1
        receipts: list[WriteReceipt] = []
        with pa.memory_map(str(spool), "r") as source:
            reader = pa.ipc.open_stream(source)
            for rb in reader:  # phase two: the write path, batch by batch
                table = pa.Table.from_batches([rb], schema=BAR_SCHEMA)
                receipts.append(write(sym, tf, table))
                if progress is not None:
                    progress(table.num_rows)
    n_actions = add_actions(sym, list(imp.actions)) if imp.actions else 0
    return ImportResult(merge_receipts(sym, str(tf), receipts), imp.layout, n_actions, imp.skipped_rows,
                        tuple(imp.warnings))
