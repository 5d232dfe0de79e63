"""Recovery and checking: orphan cleanup (on open after a writer died), and ``verify()``.

Orphans are files under a series folder that the manifest does not list: a temp file or
a published file whose manifest commit never happened (crash before the publication
point), or an old file whose deletion after a committed compaction was cut short. They
are removed under the series lock, so a writer that is between publishing and committing
in another process is never disturbed (its lock makes us skip that series).

``verify()`` re-reads every listed file (checksum recorded at publish time, size,
decodability, row count). A damaged file leaves the manifest and its time range leaves
the coverage ledger in one transaction, so the engine sees that range as missing and
fetches it again; the file is then moved under ``damaged/`` for inspection (a damaged
inline delta's BLOB is written there as a file after the commit that dropped it; a crash
in between loses only those damaged bytes). A damaged pack of inline deltas is
:class:`CorruptData` for every series using it; each series sets aside only its own
manifest rows (the pack's BLOB is written under ``damaged/packs/`` once), and the pack
leaves the catalog with the last row using it, so healing one series never drops
another series' rows. Nothing here
raises on a damaged file, so a damaged store always opens and never crash-loops.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pyarrow as pa

from tickvault.errors import CorruptData, StorageError
from tickvault.store.base import VerifyReport
from tickvault.store.local._catalog import Catalog, Segment
from tickvault.store.local._core import Core
from tickvault.store.local._delta import is_inline
from tickvault.store.local._fs import TEMP_SUFFIX
from tickvault.store.local._layout import SeriesKey, bar_span_us
from tickvault.store.local._ledger import clear_coverage_in
from tickvault.store.local._reader import merge_segments
from tickvault.store.local._session import stale_sessions

__all__ = ["cleanup_orphans", "heal", "recover", "verify"]


def _damaged_dest(seg: Segment) -> str:
    """Where a damaged file (or inline delta, or pack of them: once per pack) is set aside."""
    if seg.pack is not None:
        return f"damaged/packs/pack-{seg.pack}.inline"
    return "damaged/" + seg.path.removeprefix("bars/")


def recover(core: Core) -> int:
    """On open: sweep orphans only if a writer process died since the last sweep.

    Returns how many orphan files were removed (0 when no writer died).
    """
    stale = stale_sessions(core.layout.sessions)
    if not stale:
        return 0
    try:
        removed = cleanup_orphans(core)
        for path, _ in stale:
            core.fs.unlink(path)  # the sweep is complete: forget the dead writers
    finally:
        for _, fd in stale:
            os.close(fd)
    return removed


def cleanup_orphans(core: Core) -> int:
    """Remove files no manifest row lists, for every series whose lock is free.

    Returns how many files were removed or moved aside.
    """
    with core.catalog.read() as conn:
        series = Catalog.all_series(conn)
        moves = {r[0]: r[1] for r in conn.execute("SELECT original, moved_to FROM damaged WHERE moved_to IS NOT NULL")}
    removed = 0
    for row in series:
        key = SeriesKey(row.symbol, row.timeframe)
        lock = core.lock(key, timeout=0)
        if not lock.try_acquire():
            continue  # a writer is active; its own files are not orphans
        try:
            with core.catalog.read() as conn:
                listed = {s.path for s in Catalog.segments(conn, row.id)}
            folder = core.layout.abs(row.rel_dir)
            dirs = set()
            for path in core.fs.scandir_files(folder):
                rel = path.relative_to(core.layout.root).as_posix()
                dirs.add(path.parent)
                if rel in listed:
                    continue
                if rel in moves and not path.name.endswith(TEMP_SUFFIX):
                    # verify() committed the removal but was cut short before moving it.
                    core.fs.move_aside(path, core.layout.abs(moves[rel]))
                else:
                    core.fs.unlink(path)
                removed += 1
            for d in dirs:
                core.fs.rmdir_if_empty(d)
        finally:
            lock.release()
    return removed


def _remaining_rows(core: Core, remaining: Sequence[Segment]) -> int:
    try:
        return merge_segments(core.load(remaining, columns=[])).num_rows
    except (CorruptData, FileNotFoundError):
        # Another damaged file of the series: count what the manifest says; the next
        # verify() pass (this one continues) sets that file aside as well.
        return sum(s.rows for s in remaining)


def _still_listed(core: Core, seg: Segment) -> bool:
    with core.catalog.read() as conn:
        # By id AND path: SQLite reuses the ids of deleted rows.
        row = conn.execute("SELECT 1 FROM segments WHERE id = ? AND path = ?", (seg.id, seg.path)).fetchone()
    return row is not None


def verify(core: Core) -> VerifyReport:
    """Check every stored file; set aside damaged ones and clear their coverage.

    Also sweeps orphan files (reported in ``repaired``, not as damage).
    """
    swept = cleanup_orphans(core)
    with core.catalog.read() as conn:
        entries = Catalog.all_segments(conn)
    bad: dict[tuple[str, str], list[tuple[Segment, str]]] = {}
    damaged: list[tuple[str, str]] = []
    packs: dict[int, tuple[pa.Table | None, str | None]] = {}  # each pack is checked once
    for seg, symbol, timeframe in entries:
        problem = core.reader.check(seg, packs)
        if problem is not None and not _still_listed(core, seg):
            continue  # compacted (or deleted) by a writer after the listing: not damage
        if problem is not None:
            bad.setdefault((symbol, timeframe), []).append((seg, problem))
            damaged.append((str(core.layout.abs(seg.path)), problem))
    repaired: list[str] = [f"removed {swept} orphan file(s) left by an interrupted writer"] if swept else []
    for (symbol, timeframe), items in bad.items():
        key = SeriesKey(symbol, timeframe)
        try:
            repaired.extend(_set_aside(core, key, items))
        except StorageError as exc:
            repaired.append(f"could not set aside files of {symbol} {timeframe}: {exc}")
    return VerifyReport(checked=len(entries), damaged=damaged, repaired=repaired)


def heal(core: Core, key: SeriesKey, rel: str) -> str | None:
    """Set aside one file a reader found damaged, once a full check confirms it.

    Returns what was done, or ``None`` when the file is fine or no longer listed. This
    is what keeps a damaged file from failing every read: the first read that trips on
    it raises, and the next one sees the range as missing instead.
    """
    _, segs = core.listing(key)
    seg = next((s for s in segs if s.path == rel), None)
    if seg is None:
        return None
    problem = core.reader.check(seg)
    if problem is None:
        return None
    done = _set_aside(core, key, [(seg, problem)])
    return "; ".join(done) if done else None


def _set_aside(core: Core, key: SeriesKey, items: list[tuple[Segment, str]]) -> list[str]:
    done: list[str] = []
    span = bar_span_us(key.timeframe)
    with core.lock(key):
        series, segs = core.listing(key)
        # May have been compacted meanwhile; match the path too, as SQLite reuses row ids.
        current = {(s.id, s.path) for s in segs}
        items = [(s, p) for s, p in items if (s.id, s.path) in current]
        if series is None or not items:
            return done
        core.session.ensure()
        doomed = {s.id for s, _ in items}
        rows = _remaining_rows(core, [s for s in segs if s.id not in doomed])
        # An inline delta's BLOB leaves with its manifest row (a pack with the last row
        # using it): keep its bytes to set aside. A pack is set aside once, under its id.
        blobs = {s.path: core.catalog.delta_data(s.path) if s.pack is None else core.catalog.pack_data(s.pack)
                 for s, p in items if is_inline(s.path) and p != "missing"}
        with core.catalog.write(before_commit=lambda: core.fs.point("before_commit")) as conn:
            Catalog.apply_manifest(conn, series, add=[], remove=sorted(doomed), rows=rows, touched=True)
            for seg, problem in items:
                dest = None if problem == "missing" else _damaged_dest(seg)
                clear_coverage_in(conn, key, seg.min_us, seg.max_us + span)
                Catalog.record_damage(conn, key.symbol, key.timeframe, seg.path, dest, problem, seg.min_us,
                                      seg.max_us)
        core.fs.point("after_commit")
        core.reader.forget([s.path for s, _ in items])
        for seg, problem in items:
            src = core.layout.abs(seg.path)
            note = f"cleared coverage [{seg.min_us}, {seg.max_us + span}) of {key.symbol} {key.timeframe}"
            if problem == "missing":
                done.append(f"dropped missing {src} from the manifest; {note}")
                continue
            target = core.layout.abs(_damaged_dest(seg))
            if is_inline(seg.path):
                data = blobs.get(seg.path)
                if data is not None and not target.exists():
                    core.fs.ensure_dirs([target.parent])
                    core.fs.publish(target, data)
                what = "inline delta" if seg.pack is None else f"pack {seg.pack} of the inline delta"
                done.append(f"wrote the {what} {seg.path} to {target}; {note}")
                continue
            try:
                core.fs.move_aside(src, target)
            except FileNotFoundError:
                pass
            done.append(f"moved {src} to {target}; {note}")
    return done
