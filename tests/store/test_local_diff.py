"""The vectorised diff of a whole ``write_many`` call against the per-series ``diff``.

``diff_many`` classifies the rows of many items (slices of one joined batch) against each
item's stored rows with one key space and one ``searchsorted``; it must agree exactly with
``diff`` item by item: the same rows to write, the same new/changed/unchanged counts,
including nulls, NaN (any payload), ``-0.0``, providers from different dictionaries and
items without stored rows. A ``write_many`` through the store must keep the receipts and
the rows of sequential writes (the conformance suite checks that against the oracle too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tickvault.model import BAR_SCHEMA
from tickvault.store.local import LocalStore
from tickvault.store.local._writer import diff, diff_many
from tickvault.store.memory import MemoryStore
from tickvault.testing.conformance import MINUTE_US, T0_US, assert_bars_equal, receipt_counts

# A few values per column, so that equal and changed rows are both common.
_FLOATS = [1.0, 2.5, 0.0, -0.0, float("nan"), float.fromhex("0x1.8p+1"), None]
_INTS = [1, 7, None]
_PROVIDERS = ["a", "b", None]


@st.composite
def _rows(draw: st.DrawFn) -> dict[int, tuple[object, ...]]:
    """Rows by minute (sorted, unique keys) with values drawn from small sets."""
    minutes = draw(st.sets(st.integers(0, 30), max_size=14))
    return {m: (*(draw(st.sampled_from(_FLOATS)) for _ in range(6)), draw(st.sampled_from(_INTS)),
                draw(st.sampled_from(_PROVIDERS))) for m in sorted(minutes)}


def _table(rows: dict[int, tuple[object, ...]], dictionary: list[str] | None = None) -> pa.Table:
    cols: list[pa.Array] = [pa.array([T0_US + m * MINUTE_US for m in rows], pa.timestamp("us", tz="UTC"))]
    for c in range(6):
        cols.append(pa.array([r[c] for r in rows.values()], pa.float64()))
    cols.append(pa.array([r[6] for r in rows.values()], pa.int64()))
    providers = [r[7] for r in rows.values()]
    if dictionary is None:
        cols.append(pa.array(providers, pa.string()).dictionary_encode())
    else:  # an explicit dictionary (another order, unused entries): codes differ, values do not
        idx = pa.array([None if p is None else dictionary.index(str(p)) for p in providers], pa.int32())
        cols.append(pa.DictionaryArray.from_arrays(idx, pa.array(dictionary, pa.string())))
    return pa.Table.from_arrays(cols, schema=BAR_SCHEMA)


_ITEMS = st.lists(st.tuples(_rows(), _rows(), st.booleans()), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(items=_ITEMS, nan_payload=st.booleans(), partial=st.booleans())
def test_diff_many_agrees_with_diff_item_by_item(items: list[tuple[dict[int, tuple[object, ...]],
                                                                   dict[int, tuple[object, ...]], bool]],
                                                 nan_payload: bool, partial: bool) -> None:
    batches = [_table(b) for b, _, _ in items]
    stored = [_table(s, ["b", "zz", "a"]) if other else _table(s) for _, s, other in items]
    if nan_payload:  # a NaN with another payload in the stored rows still equals NaN
        stored = [_with_nan_payload(t) for t in stored]
    joined = pa.concat_tables(batches).unify_dictionaries().combine_chunks()
    sizes = np.array([t.num_rows for t in batches], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    pick = list(range(len(items)))
    if partial and len(items) > 1:  # some items left out of the vectorised diff
        pick = pick[::2]
    got = diff_many(joined, starts[pick], sizes[pick], [stored[j] for j in pick])
    assert got is not None
    write, new, changed, unchanged = got
    for n, j in enumerate(pick):
        want = diff(batches[j], stored[j])
        a, size = int(starts[j]), int(sizes[j])
        mask = np.ones(size, dtype=bool) if want.write is None else want.write
        assert (int(new[n]), int(changed[n]), int(unchanged[n])) == (want.new, want.changed, want.unchanged)
        assert write[a:a + size].tolist() == mask.tolist()
    outside = np.ones(joined.num_rows, dtype=bool)
    for j in pick:
        outside[int(starts[j]):int(starts[j] + sizes[j])] = False
    assert not write[outside].any()


def _with_nan_payload(table: pa.Table) -> pa.Table:
    values = table.column("close").to_numpy(zero_copy_only=False).copy()
    bits = values.view(np.uint64)
    nan = np.isnan(values)
    bits[nan] = np.uint64(0x7FF8000000000001)
    valid = table.column("close").is_valid()
    col = pa.array(values, pa.float64(), mask=~np.asarray(valid.to_numpy(zero_copy_only=False)))
    return table.set_column(4, "close", col)


def test_diff_many_gives_up_when_the_keys_would_overflow() -> None:
    row = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, "a")
    far, late = _table({0: row}), _table({2**62 // MINUTE_US: row})  # a span of ~2^62 µs
    joined = pa.concat_tables([far, late]).unify_dictionaries().combine_chunks()
    got = diff_many(joined, np.array([0, 1]), np.array([1, 1]), [late, far])
    assert got is None  # the caller then diffs item by item


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D"]), _rows()), min_size=1, max_size=7))
def test_write_many_with_the_vectorised_diff_matches_the_oracle(tmp_path_factory: object,
                                                               items: list[tuple[str, dict[int, tuple[object, ...]]]],
                                                               ) -> None:
    root: Path = tmp_path_factory.mktemp("diff")  # type: ignore[attr-defined]
    oracle = MemoryStore()
    with LocalStore(root, durable=False, background_compaction=False) as store:
        for s in (store, oracle):  # every series holds rows, so most items are inline deltas
            s.write_many([(sym, "1m", _table({m: (1.0, 2.0, 0.5, 1.5, 10.0, None, 3, "a") for m in range(0, 31, 3)}))
                          for sym in "ABCD"])
        payload = [(sym, "1m", _table(rows)) for sym, rows in items]
        got = [receipt_counts(r) for r in store.write_many(payload)]
        want = [receipt_counts(r) for r in oracle.write_many(payload)]
        assert got == want
        for sym in "ABCD":
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
