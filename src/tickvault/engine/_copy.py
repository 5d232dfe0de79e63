"""Moving a vault's data between backends (embedded ⇄ PostgreSQL ⇄ embedded).

What is copied: every stored series (bars in year-sized chunks, so memory stays bounded),
its coverage ledger, latest quality report and quarantined rows, every instrument record
and every symbol's corporate actions. Bars are written with the destination store's own
upsert, so a copy is idempotent: running it twice writes nothing the second time, and an
interrupted copy is finished by running it again. Data is copied as stored — it was
validated on the way in, so the quality rules are not run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tickvault.store.base import BarStore

__all__ = ["CopyReport", "copy_store"]

_YEAR_US = 366 * 86_400_000_000


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_store` did."""

    series: int
    rows_read: int
    rows_written: int
    rows_unchanged: int
    instruments: int
    actions: int
    quarantined: int


def copy_store(src: BarStore, dst: BarStore, *, progress: Callable[[str, str, int], None] | None = None,
               chunk_us: int = _YEAR_US) -> CopyReport:
    """Copy everything in ``src`` into ``dst`` (see the module docstring).

    ``progress(symbol, timeframe, rows)`` is called after each chunk.
    """
    instruments = src.instruments()
    for inst in instruments:
        dst.put_instrument(inst)
    infos = src.series()
    symbols = sorted({i.symbol for i in infos} | {i.symbol for i in instruments})
    actions = 0
    for sym in symbols:
        acts = src.actions(sym)
        if acts:
            actions += dst.add_actions(sym, acts)
    read = written = unchanged = quarantined = 0
    for info in infos:
        if info.first_us is not None and info.last_us is not None:
            start = info.first_us
            while start <= info.last_us:
                table = src.read(info.symbol, info.timeframe, start, start + chunk_us)
                if table.num_rows:
                    receipt = dst.write(info.symbol, info.timeframe, table)
                    read += table.num_rows
                    written += receipt.rows_written
                    unchanged += receipt.rows_unchanged
                if progress is not None:
                    progress(info.symbol, info.timeframe, table.num_rows)
                start += chunk_us
        coverage = src.coverage(info.symbol, info.timeframe)
        if coverage:
            dst.mark_covered(info.symbol, info.timeframe, coverage)
        report = src.latest_report(info.symbol, info.timeframe)
        if report is not None:
            dst.save_report(report)
        held = src.quarantined(info.symbol, info.timeframe)
        if held.num_rows and dst.quarantined(info.symbol, info.timeframe).num_rows < held.num_rows:
            dst.quarantine(info.symbol, info.timeframe, held)
            quarantined += held.num_rows
    return CopyReport(len(infos), read, written, unchanged, len(instruments), actions, quarantined)
