"""A reusable pytest suite that every :class:`~tickvault.store.base.BarStore` must pass.

Subclass :class:`BarStoreConformance` in a test module and provide a ``harness`` fixture
returning a :class:`StoreHarness` for your backend; every ``test_*`` method then runs
unchanged against it (``MemoryStore``, ``LocalStore`` and later PostgreSQL)::

    class TestMyStore(BarStoreConformance):
        @pytest.fixture
        def harness(self, tmp_path):
            return MyHarness(tmp_path)

A harness opens stores on one backing location and can *restart* them (close, reopen:
for in-memory stores the same object), so persistence is part of the contract. Results
are compared with :class:`~tickvault.store.memory.MemoryStore`, the oracle, so every
backend returns identical tables, receipts and ledgers for the same inputs.
"""

from __future__ import annotations

import abc
import datetime as dt
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tickvault.errors import InvalidInput, InvalidSymbol
from tickvault.model import (
    BAR_SCHEMA,
    FLAGS_SCHEMA,
    CorporateAction,
    CoverageInterval,
    CoverageState,
    Instrument,
    QualityReport,
    StoreReceipt,
)
from tickvault.store.base import QUARANTINE_SCHEMA, BarStore
from tickvault.store.memory import MemoryStore

__all__ = [
    "MINUTE_US",
    "T0_US",
    "BarStoreConformance",
    "MemoryHarness",
    "StoreHarness",
    "assert_bars_equal",
    "bars_to_rows",
    "make_bars",
    "receipt_counts",
]

MINUTE_US = 60_000_000
T0_US = 1_704_205_800_000_000  # 2024-01-02 14:30 UTC
_YEAR_END_US = 1_704_067_200_000_000  # 2024-01-01 00:00 UTC


class StoreHarness(abc.ABC):
    """Opens stores of one backend on one backing location."""

    def __init__(self) -> None:
        self._opened: list[BarStore] = []

    @abc.abstractmethod
    def _open(self) -> BarStore:
        """Open a store handle on the backing location."""

    def open(self) -> BarStore:
        """A store handle; every handle of a harness sees the same data."""
        store = self._open()
        self._opened.append(store)
        return store

    def restart(self, store: BarStore) -> BarStore:
        """Close ``store`` and open the location again (what a process restart does)."""
        store.close()
        return self.open()

    def close_all(self) -> None:
        """Close every handle this harness opened."""
        for store in self._opened:
            store.close()


class MemoryHarness(StoreHarness):
    """Harness for :class:`MemoryStore`: one shared instance, restart keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self._store = MemoryStore()

    def _open(self) -> BarStore:
        return self._store

    def restart(self, store: BarStore) -> BarStore:
        """Nothing persists beyond the object, so a restart is the same object."""
        return self._store


# -- data helpers -------------------------------------------------------------------------
def make_bars(ts_us: Sequence[int], *, version: int = 0, provider: str | None = "test",
              vwap: bool = False, trade_count: bool = False) -> pa.Table:
    """A BAR_SCHEMA table with deterministic prices derived from ``ts`` and ``version``.

    Prices are two-decimal values (like real quotes); ``version`` shifts them so two
    versions of the same key differ in every price column.
    """
    ts = np.asarray(list(ts_us), dtype=np.int64)
    step = (ts // MINUTE_US) % 10_000
    close = np.round(100.0 + step * 0.01 + version * 0.5, 2)
    open_ = np.round(close - 0.03, 2)
    high = np.round(close + 0.07, 2)
    low = np.round(close - 0.09, 2)
    volume = (1000 + step * 3 + version).astype(np.float64)
    n = ts.size
    return pa.Table.from_arrays(
        [
            pa.array(ts, pa.int64()).cast(BAR_SCHEMA.field("ts").type),
            pa.array(open_), pa.array(high), pa.array(low), pa.array(close), pa.array(volume),
            pa.array(np.round(close - 0.01, 4)) if vwap else pa.nulls(n, pa.float64()),
            pa.array(step + version, pa.int64()) if trade_count else pa.nulls(n, pa.int64()),
            pa.array([provider] * n, pa.string()).dictionary_encode().cast(BAR_SCHEMA.field("provider").type),
        ],
        schema=BAR_SCHEMA,
    )


def bars_to_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows as tuples with ``ts`` in epoch µs and floats as exact bit patterns (NaN-safe)."""
    t = table.combine_chunks()
    cols: list[list[Any]] = []
    for name in t.column_names:
        col = t.column(name)
        if name == "ts":
            cols.append(col.cast(pa.int64()).to_pylist())
        elif pa.types.is_floating(col.type):
            values = np.asarray(col.fill_null(pa.scalar(0.0, col.type)).to_numpy()).view(np.int64).tolist()
            valid = col.is_valid().to_pylist()
            cols.append([v if ok else None for v, ok in zip(values, valid, strict=True)])
        elif pa.types.is_dictionary(col.type):
            cols.append(col.cast(pa.string()).to_pylist())
        else:
            cols.append(col.to_pylist())
    return list(zip(*cols, strict=True)) if cols else []


def assert_bars_equal(actual: pa.Table, expected: pa.Table) -> None:
    """Same schema (exactly) and the same values bit for bit, whatever the chunking."""
    assert actual.schema.equals(expected.schema), f"schema {actual.schema} != {expected.schema}"
    assert actual.num_rows == expected.num_rows, f"{actual.num_rows} rows != {expected.num_rows}"
    assert bars_to_rows(actual) == bars_to_rows(expected)


def receipt_counts(r: StoreReceipt) -> tuple[int, int, int, bool, int | None, int | None]:
    """The backend-independent part of a receipt (bytes only as written or not)."""
    return r.rows_new, r.rows_changed, r.rows_unchanged, r.bytes_written > 0, r.first_us, r.last_us


def _minutes(start: int, count: int, first: int = T0_US) -> list[int]:
    return [first + (start + i) * MINUTE_US for i in range(count)]


# -- the suite ----------------------------------------------------------------------------
class BarStoreConformance:
    """The BarStore contract as tests; subclass it and define the ``harness`` fixture."""

    @pytest.fixture
    def harness(self) -> StoreHarness:
        """Override in the subclass: return a harness for the backend under test."""
        raise NotImplementedError("define a `harness` fixture in the subclass")

    @pytest.fixture
    def store(self, harness: StoreHarness) -> Iterator[BarStore]:
        """A store handle, closed (with every other handle) after the test."""
        yield harness.open()
        harness.close_all()

    # -- bars -------------------------------------------------------------------------
    def test_empty_store_answers_empty(self, store: BarStore) -> None:
        assert isinstance(store, BarStore)
        assert store.read("AAPL", "1m").schema.equals(BAR_SCHEMA)
        assert store.read("AAPL", "1m").num_rows == 0
        assert store.latest("AAPL", "1m", 5).num_rows == 0
        assert store.series() == []
        assert store.coverage("AAPL", "1m") == []
        assert store.actions("AAPL") == []
        assert store.instrument("AAPL") is None
        assert store.instruments() == []
        assert store.latest_report("AAPL", "1m") is None
        assert store.quarantined("AAPL", "1m").schema.equals(QUARANTINE_SCHEMA)
        assert store.delete_range("AAPL", "1m", None, None) == 0
        assert store.verify().ok
        assert store.write("AAPL", "1m", BAR_SCHEMA.empty_table()) == StoreReceipt()

    def test_write_then_read_round_trips_exactly(self, store: BarStore) -> None:
        table = make_bars(_minutes(0, 50), vwap=True, trade_count=True)
        receipt = store.write("AAPL", "1m", table)
        assert receipt_counts(receipt) == (50, 0, 0, True, table["ts"][0].value, table["ts"][-1].value)
        out = store.read("AAPL", "1m")
        assert out.schema.equals(BAR_SCHEMA)
        assert_bars_equal(out, table)

    def test_awkward_values_round_trip(self, store: BarStore) -> None:
        ts = _minutes(0, 6)
        table = make_bars(ts, vwap=True, trade_count=True)
        close = [1e-8, 123456.123456789, float("nan"), -0.0, 1.0 / 3.0, 7.25]
        vwap = [None, float("inf"), 1.5, None, 2.0**60, -3.75]
        table = table.set_column(4, "close", pa.array(close))
        table = table.set_column(6, "vwap", pa.array(vwap, pa.float64()))
        store.write("AAPL", "1m", table)
        assert_bars_equal(store.read("AAPL", "1m"), table)

    def test_identical_rewrite_writes_nothing(self, harness: StoreHarness, store: BarStore) -> None:
        table = make_bars(_minutes(0, 30))
        store.write("AAPL", "1m", table)
        before = store.series()
        again = store.write("AAPL", "1m", table)
        assert (again.rows_new, again.rows_changed, again.rows_unchanged, again.bytes_written) == (0, 0, 30, 0)
        assert store.series() == before
        store = harness.restart(store)
        again = store.write("AAPL", "1m", table)
        assert (again.rows_new, again.rows_changed, again.rows_unchanged, again.bytes_written) == (0, 0, 30, 0)

    def test_upsert_last_write_wins(self, store: BarStore) -> None:
        store.write("AAPL", "1m", make_bars(_minutes(0, 20)))
        # rows 10..19 change, 20..29 are new; rows 5..9 are re-sent unchanged
        batch = pa.concat_tables([make_bars(_minutes(5, 5)), make_bars(_minutes(10, 20), version=1)])
        receipt = store.write("AAPL", "1m", batch)
        assert receipt_counts(receipt) == (10, 10, 5, True, _minutes(5, 1)[0], _minutes(29, 1)[0])
        expected = pa.concat_tables([make_bars(_minutes(0, 10)), make_bars(_minutes(10, 20), version=1)])
        assert_bars_equal(store.read("AAPL", "1m"), expected)

    def test_duplicates_inside_a_batch_last_wins(self, store: BarStore) -> None:
        ts = _minutes(0, 5)
        batch = pa.concat_tables([make_bars(ts), make_bars(ts[1:3], version=2), make_bars(ts[2:3], version=3)])
        receipt = store.write("AAPL", "1m", batch)
        assert (receipt.rows_new, receipt.rows_changed, receipt.rows_unchanged) == (5, 0, 0)
        expected = pa.concat_tables([make_bars(ts[:1]), make_bars(ts[1:2], version=2),
                                     make_bars(ts[2:3], version=3), make_bars(ts[3:])])
        assert_bars_equal(store.read("AAPL", "1m"), expected)

    def test_unsorted_batch_is_stored_sorted(self, store: BarStore) -> None:
        ts = _minutes(0, 40)
        shuffled = ts[:]
        random.Random(7).shuffle(shuffled)
        store.write("AAPL", "1m", make_bars(shuffled))
        assert_bars_equal(store.read("AAPL", "1m"), make_bars(ts))

    def test_nan_null_and_provider_changes(self, store: BarStore) -> None:
        ts = _minutes(0, 4)
        base = make_bars(ts, vwap=True)
        base = base.set_column(4, "close", pa.array([float("nan"), 1.0, 2.0, 3.0]))
        store.write("AAPL", "1m", base)
        assert store.write("AAPL", "1m", base).rows_unchanged == 4  # NaN rewritten is not a change
        nulled = base.set_column(6, "vwap", pa.array([None, 1.0, 2.0, 3.0], pa.float64()))
        changed = store.write("AAPL", "1m", nulled)
        assert (changed.rows_changed, changed.rows_unchanged) == (4, 0)
        other = make_bars(ts, provider="other").set_column(4, "close", base.column("close"))
        other = other.set_column(6, "vwap", nulled.column("vwap"))
        moved = store.write("AAPL", "1m", other)
        assert (moved.rows_changed, moved.rows_unchanged) == (4, 0)
        assert_bars_equal(store.read("AAPL", "1m"), other)

    def test_read_ranges_are_half_open(self, store: BarStore) -> None:
        ts = _minutes(0, 100)
        table = make_bars(ts)
        store.write("AAPL", "1m", table)
        assert_bars_equal(store.read("AAPL", "1m", ts[10], ts[20]), table.slice(10, 10))
        assert_bars_equal(store.read("AAPL", "1m", ts[90]), table.slice(90))
        assert_bars_equal(store.read("AAPL", "1m", None, ts[5]), table.slice(0, 5))
        assert_bars_equal(store.read("AAPL", "1m", ts[10] + 1, ts[11] + 1), table.slice(11, 1))
        assert store.read("AAPL", "1m", ts[50], ts[50]).num_rows == 0
        assert store.read("AAPL", "1m", ts[-1] + 1).num_rows == 0
        cols = store.read("AAPL", "1m", ts[0], ts[3], columns=["close", "ts"])
        assert cols.column_names == ["close", "ts"]
        assert cols.column("close").to_pylist() == table.column("close").to_pylist()[:3]

    def test_latest_spans_periods(self, store: BarStore) -> None:
        ts = _minutes(-5, 10, first=_YEAR_END_US)  # crosses 2024-01-01: two yearly partitions
        table = make_bars(ts)
        store.write("BTC/USDT", "1m", table)
        assert store.latest("BTC/USDT", "1m", 0).num_rows == 0
        assert_bars_equal(store.latest("BTC/USDT", "1m", 3), table.slice(7))
        assert_bars_equal(store.latest("BTC/USDT", "1m", 7), table.slice(3))
        assert_bars_equal(store.latest("BTC/USDT", "1m", 50), table)

    def test_delete_range(self, store: BarStore) -> None:
        ts = _minutes(0, 30)
        store.write("AAPL", "1m", make_bars(ts))
        assert store.delete_range("AAPL", "1m", ts[10], ts[20]) == 10
        assert store.delete_range("AAPL", "1m", ts[10], ts[20]) == 0
        assert_bars_equal(store.read("AAPL", "1m"), pa.concat_tables([make_bars(ts[:10]), make_bars(ts[20:])]))
        assert store.delete_range("AAPL", "1m", None, ts[5]) == 5
        assert store.delete_range("AAPL", "1m", None, None) == 15
        assert store.read("AAPL", "1m").num_rows == 0
        assert store.series() == []

    def test_series_lists_every_nonempty_series(self, store: BarStore) -> None:
        store.write("MSFT", "1d", make_bars([_YEAR_END_US, _YEAR_END_US + 86_400_000_000]))
        store.write("AAPL", "1m", make_bars(_minutes(0, 3)))
        store.write("AAPL", "5m", make_bars(_minutes(0, 1)))
        info = store.series()
        assert [(s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in info] == [
            ("AAPL", "1m", 3, T0_US, T0_US + 2 * MINUTE_US),
            ("AAPL", "5m", 1, T0_US, T0_US),
            ("MSFT", "1d", 2, _YEAR_END_US, _YEAR_END_US + 86_400_000_000),
        ]
        assert all(s.last_write_us is not None for s in info)

    def test_symbols_are_validated_and_canonical(self, store: BarStore) -> None:
        for bad in ("../etc", "a b", "AAPL;DROP", "", "x/../../y", "A'B", "*"):
            with pytest.raises(InvalidSymbol):
                store.write(bad, "1m", make_bars(_minutes(0, 1)))
            with pytest.raises(InvalidSymbol):
                store.read(bad, "1m")
            with pytest.raises(InvalidSymbol):
                store.coverage(bad, "1m")
            with pytest.raises(InvalidSymbol):
                store.actions(bad)
        store.write("brk.b", "1m", make_bars(_minutes(0, 2)))
        assert store.read("BRK.B", "1m").num_rows == 2
        assert [s.symbol for s in store.series()] == ["BRK.B"]

    def test_persistence_across_restart(self, harness: StoreHarness, store: BarStore) -> None:
        table = make_bars(_minutes(0, 10))
        store.write("AAPL", "1m", table)
        store.mark_covered("AAPL", "1m", [CoverageInterval(T0_US, T0_US + 10 * MINUTE_US)])
        store.add_actions("AAPL", [CorporateAction.split("2024-06-10", 4.0)])
        store.put_instrument(Instrument("AAPL", exchange="XNAS"))
        store = harness.restart(store)
        assert_bars_equal(store.read("AAPL", "1m"), table)
        assert store.coverage("AAPL", "1m") == [CoverageInterval(T0_US, T0_US + 10 * MINUTE_US)]
        assert store.actions("AAPL") == [CorporateAction.split("2024-06-10", 4.0, symbol="AAPL")]
        assert store.instrument("AAPL") == Instrument("AAPL", exchange="XNAS")
        assert store.verify().ok

    def test_compact_keeps_the_data(self, store: BarStore) -> None:
        ts = _minutes(0, 60)
        for i in range(0, 60, 3):
            store.write("AAPL", "1m", make_bars(ts[i:i + 5], version=i % 2))
        before = store.read("AAPL", "1m")
        assert store.compact() >= 0
        assert store.compact("AAPL", "1m") >= 0
        assert_bars_equal(store.read("AAPL", "1m"), before)
        assert store.series()[0].rows == 60
        assert store.size_bytes() > 0

    # -- coverage ---------------------------------------------------------------------
    def test_coverage_latest_mark_wins(self, store: BarStore) -> None:
        a, m = T0_US, MINUTE_US
        store.mark_covered("AAPL", "1m", [CoverageInterval(a, a + 10 * m, CoverageState.FINAL)])
        store.mark_covered("AAPL", "1m", [CoverageInterval(a + 5 * m, a + 15 * m, CoverageState.PROVISIONAL, "x", 9)])
        assert store.coverage("AAPL", "1m") == [
            CoverageInterval(a, a + 5 * m, CoverageState.FINAL),
            CoverageInterval(a + 5 * m, a + 15 * m, CoverageState.PROVISIONAL, "x", 9),
        ]
        store.mark_covered("AAPL", "1m", [CoverageInterval(a + 15 * m, a + 20 * m, CoverageState.PROVISIONAL, "x", 3),
                                          CoverageInterval(a + 30 * m, a + 40 * m, CoverageState.EMPTY)])
        assert store.coverage("AAPL", "1m") == [
            CoverageInterval(a, a + 5 * m, CoverageState.FINAL),
            CoverageInterval(a + 5 * m, a + 20 * m, CoverageState.PROVISIONAL, "x", 9),
            CoverageInterval(a + 30 * m, a + 40 * m, CoverageState.EMPTY),
        ]
        assert store.coverage("AAPL", "5m") == []
        assert store.coverage("MSFT", "1m") == []
        assert store.read("AAPL", "1m").num_rows == 0  # coverage never writes bars

    def test_clear_coverage(self, store: BarStore) -> None:
        a, m = T0_US, MINUTE_US
        store.mark_covered("AAPL", "1m", [CoverageInterval(a, a + 10 * m, provider="p", updated_us=4)])
        store.clear_coverage("AAPL", "1m", a + 3 * m, a + 6 * m)
        assert store.coverage("AAPL", "1m") == [CoverageInterval(a, a + 3 * m, provider="p", updated_us=4),
                                                CoverageInterval(a + 6 * m, a + 10 * m, provider="p", updated_us=4)]
        store.clear_coverage("AAPL", "1m", a + 8 * m, None)
        store.clear_coverage("AAPL", "1m", None, a + m)
        assert store.coverage("AAPL", "1m") == [CoverageInterval(a + m, a + 3 * m, provider="p", updated_us=4),
                                                CoverageInterval(a + 6 * m, a + 8 * m, provider="p", updated_us=4)]
        store.clear_coverage("AAPL", "1m", None, None)
        assert store.coverage("AAPL", "1m") == []

    def test_write_does_not_mark_coverage(self, store: BarStore) -> None:
        store.write("AAPL", "1m", make_bars(_minutes(0, 3)))
        assert store.coverage("AAPL", "1m") == []

    # -- catalog ------------------------------------------------------------------------
    def test_corporate_actions(self, store: BarStore) -> None:
        split = CorporateAction.split("2024-06-10", 4.0, provider="yahoo")
        div = CorporateAction.dividend("2024-02-09", 0.24, currency="USD")
        assert store.add_actions("AAPL", [split, div]) == 2
        assert store.add_actions("AAPL", [split, div]) == 0
        assert store.add_actions("AAPL", [CorporateAction.dividend("2024-02-09", 0.25, currency="USD")]) == 1
        assert store.actions("AAPL") == [
            CorporateAction.dividend("2024-02-09", 0.25, currency="USD", symbol="AAPL"),
            CorporateAction.split("2024-06-10", 4.0, provider="yahoo", symbol="AAPL"),
        ]
        assert store.actions("MSFT") == []
        assert store.actions("aapl") == store.actions("AAPL")

    def test_instruments(self, store: BarStore) -> None:
        a = Instrument("AAPL", exchange="XNAS", currency="USD", listed=dt.date(1980, 12, 12),
                       provider_symbols={"yahoo": "AAPL"})
        b = Instrument.guess("BTC/USDT")
        store.put_instrument(b)
        store.put_instrument(a)
        assert store.instrument("AAPL") == a
        assert store.instruments() == [a, b]
        store.put_instrument(Instrument("AAPL", name="Apple"))
        assert store.instrument("aapl") == Instrument("AAPL", name="Apple")
        assert store.instrument("MSFT") is None

    def test_reports_keep_the_latest(self, store: BarStore) -> None:
        flags = pa.Table.from_pydict({"ts": pa.array([T0_US], pa.timestamp("us", tz="UTC")), "row": [3],
                                      "rule": ["ohlc"], "severity": ["hard"], "reason": ["high < low"]},
                                     schema=FLAGS_SCHEMA)
        first = QualityReport("AAPL", "1m", 10, {"ohlc": 1}, frozenset({"ohlc"}), flags, 0.9, 5)
        second = QualityReport("AAPL", "1m", 12, {"ohlc": 0}, frozenset(), score=1.0, created_us=6)
        store.save_report(first)
        got = store.latest_report("AAPL", "1m")
        assert got is not None
        assert (got.rows, got.counts, got.hard_rules, got.score, got.created_us) == (10, {"ohlc": 1},
                                                                                    frozenset({"ohlc"}), 0.9, 5)
        assert got.flags.to_pylist() == flags.to_pylist()
        store.save_report(second)
        got = store.latest_report("AAPL", "1m")
        assert got is not None
        assert got.rows == 12
        assert store.latest_report("AAPL", "5m") is None

    def test_instruments_can_be_deleted(self, store: BarStore) -> None:
        from tickvault.model import Instrument

        store.put_instrument(Instrument("BRK.B", name="Berkshire"))
        assert store.delete_instrument("BRK.B") is True
        assert store.instrument("BRK.B") is None
        assert store.delete_instrument("BRK.B") is False
        with pytest.raises(InvalidSymbol):
            store.delete_instrument("../x")

    def test_meta_values_persist_and_keys_are_checked(self, harness: StoreHarness, store: BarStore) -> None:
        assert store.get_meta("fundamentals:BRK.B") is None
        store.set_meta("fundamentals:BRK.B", '{"pe_ratio": 9.5}')
        store.set_meta("fundamentals:BTC/USDT", "x" * 1000)
        store.set_meta("schema_version", "user value")  # user keys never clash with the store's own
        reopened = harness.restart(store)
        assert reopened.get_meta("fundamentals:BRK.B") == '{"pe_ratio": 9.5}'
        assert reopened.get_meta("schema_version") == "user value"
        reopened.set_meta("fundamentals:BRK.B", None)
        assert reopened.get_meta("fundamentals:BRK.B") is None
        for bad in ["", "a b", "x;DROP TABLE meta", "k" * 201, "a'b"]:
            with pytest.raises(InvalidInput):
                reopened.set_meta(bad, "v")
        with pytest.raises(InvalidInput):
            reopened.set_meta("big", "x" * 1_000_001)

    def test_quarantine_appends(self, store: BarStore) -> None:
        def rows(ts: list[int], rule: str) -> pa.Table:
            bars = make_bars(ts)
            n = bars.num_rows
            return pa.Table.from_arrays(
                [*bars.columns, pa.array([rule] * n), pa.array(["bad"] * n),
                 pa.array([T0_US] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC"))],
                schema=QUARANTINE_SCHEMA)
        store.quarantine("AAPL", "1m", rows(_minutes(0, 2), "ohlc"))
        store.quarantine("AAPL", "1m", rows(_minutes(5, 1), "gap"))
        got = store.quarantined("AAPL", "1m")
        assert got.schema.equals(QUARANTINE_SCHEMA)
        assert got.column("rule").to_pylist() == ["ohlc", "ohlc", "gap"]
        assert got.column("ts").cast(pa.int64()).to_pylist() == [*_minutes(0, 2), *_minutes(5, 1)]
        assert store.quarantined("AAPL", "5m").num_rows == 0

    # -- write_many -----------------------------------------------------------------------
    def test_write_many_round_trips_and_counts_per_item(self, store: BarStore) -> None:
        store.write("AAPL", "1m", make_bars(_minutes(0, 20)))
        items = [
            ("AAPL", "1m", make_bars(_minutes(10, 20), version=1)),  # 10 changed, 10 new
            ("BTC/USDT", "1m", make_bars(_minutes(0, 5), vwap=True, trade_count=True)),
            ("AAPL", "5m", make_bars(_minutes(0, 3))),
            ("MSFT", "1m", BAR_SCHEMA.empty_table()),
        ]
        receipts = store.write_many(items)
        assert [receipt_counts(r) for r in receipts] == [
            (10, 10, 0, True, _minutes(10, 1)[0], _minutes(29, 1)[0]),
            (5, 0, 0, True, _minutes(0, 1)[0], _minutes(4, 1)[0]),
            (3, 0, 0, True, _minutes(0, 1)[0], _minutes(2, 1)[0]),
            (0, 0, 0, False, None, None),
        ]
        expected = pa.concat_tables([make_bars(_minutes(0, 10)), make_bars(_minutes(10, 20), version=1)])
        assert_bars_equal(store.read("AAPL", "1m"), expected)
        assert_bars_equal(store.read("BTC/USDT", "1m"), items[1][2])
        assert_bars_equal(store.read("AAPL", "5m"), items[2][2])
        assert [(s.symbol, s.timeframe, s.rows) for s in store.series()] == [
            ("AAPL", "1m", 30), ("AAPL", "5m", 3), ("BTC/USDT", "1m", 5)]
        again = store.write_many(items)
        assert [(r.rows_new, r.rows_changed, r.bytes_written) for r in again] == [(0, 0, 0)] * 4
        assert store.write_many([]) == []

    def test_write_many_same_series_twice_later_item_wins(self, store: BarStore) -> None:
        store.write("AAPL", "1m", make_bars(_minutes(0, 10)))
        receipts = store.write_many([
            ("AAPL", "1m", make_bars(_minutes(5, 10), version=1)),  # 5 changed, 5 new
            ("MSFT", "1m", make_bars(_minutes(0, 4))),
            ("AAPL", "1m", make_bars(_minutes(8, 10), version=2)),  # 7 changed (5..14 seen), 3 new
            ("AAPL", "1m", make_bars(_minutes(0, 2))),  # unchanged
        ])
        assert [receipt_counts(r)[:3] for r in receipts] == [(5, 5, 0), (4, 0, 0), (3, 7, 0), (0, 0, 2)]
        expected = pa.concat_tables([make_bars(_minutes(0, 5)), make_bars(_minutes(5, 3), version=1),
                                     make_bars(_minutes(8, 10), version=2)])
        assert_bars_equal(store.read("AAPL", "1m"), expected)
        assert [(s.symbol, s.rows) for s in store.series()] == [("AAPL", 18), ("MSFT", 4)]

    def test_write_many_invalid_item_writes_nothing(self, store: BarStore) -> None:
        store.write("AAPL", "1m", make_bars(_minutes(0, 5)))
        before = [(s.symbol, s.rows) for s in store.series()]
        bad_schema = make_bars(_minutes(0, 3)).drop_columns(["close"])
        for bad in [("MSFT", "1m", bad_schema), ("../etc", "1m", make_bars(_minutes(0, 3)))]:
            with pytest.raises((ValueError, pa.ArrowException)):  # SchemaError / InvalidSymbol are ValueErrors
                store.write_many([("AAPL", "1m", make_bars(_minutes(0, 9), version=1)),
                                  ("MSFT", "1m", make_bars(_minutes(0, 3))), bad])
            assert [(s.symbol, s.rows) for s in store.series()] == before
            assert_bars_equal(store.read("AAPL", "1m"), make_bars(_minutes(0, 5)))

    @pytest.mark.parametrize("seed", [1, 2])
    def test_write_many_matches_sequential_writes(self, harness: StoreHarness, store: BarStore, seed: int) -> None:
        rng = random.Random(seed)
        oracle = MemoryStore()
        keys = [("AAPL", "1m"), ("BTC/USDT", "1m"), ("AAPL", "1h"), ("MSFT", "1m")]
        for step in range(12):
            items = []
            for _ in range(rng.randrange(1, 7)):
                sym, tf = rng.choice(keys)
                start = rng.randrange(-100, 200)
                ts = [T0_US + (start + rng.randrange(0, 40)) * MINUTE_US for _ in range(rng.randrange(0, 20))]
                items.append((sym, tf, make_bars(ts, version=rng.randrange(3), provider=rng.choice(["a", None]))))
            got = [receipt_counts(r) for r in store.write_many(items)]
            assert got == [receipt_counts(oracle.write(*item)) for item in items], f"step {step}"
            if rng.random() < 0.2:
                store = harness.restart(store)
            if rng.random() < 0.2:
                store.compact()
        for sym, tf in keys:
            assert_bars_equal(store.read(sym, tf), oracle.read(sym, tf))
        assert [(s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in store.series()] == [
            (s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in oracle.series()]
        assert store.verify().ok

    def test_readers_never_see_part_of_a_write_many(self, harness: StoreHarness) -> None:
        ts = _minutes(0, 200)
        store = harness.open()
        store.write_many([(sym, "1m", make_bars(ts)) for sym in ("AAPL", "MSFT")])
        done = threading.Event()
        seen: list[set[float]] = []

        def reader() -> None:
            r = harness.open()
            while not done.is_set():
                for sym in ("AAPL", "MSFT"):
                    t = r.read(sym, "1m")
                    closes = np.asarray(t.column("close").to_numpy()) - np.asarray(make_bars(ts).column("close"))
                    seen.append({round(float(x), 6) for x in closes})

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for v in range(1, 6):
                # Each series gets version v in two items (halves), committed together.
                store.write_many([("AAPL", "1m", make_bars(ts[:100], version=v)),
                                  ("MSFT", "1m", make_bars(ts, version=v)),
                                  ("AAPL", "1m", make_bars(ts[100:], version=v))])
        finally:
            done.set()
            thread.join()
        assert seen
        assert all(len(s) == 1 for s in seen), "a reader saw part of a write_many"
        harness.close_all()

    # -- concurrency --------------------------------------------------------------------
    def test_concurrent_writers_lose_nothing(self, harness: StoreHarness) -> None:
        errors: list[BaseException] = []
        receipts: list[StoreReceipt] = []
        guard = threading.Lock()

        def writer(worker: int) -> None:
            store = harness.open()
            try:
                for i in range(6):
                    # overlapping windows: worker k writes minutes [10k + 3i, 10k + 3i + 8)
                    r = store.write("AAPL", "1m", make_bars(_minutes(10 * worker + 3 * i, 8)))
                    with guard:
                        receipts.append(r)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        store = harness.open()
        expected = make_bars(_minutes(0, 30 + 3 * 5 + 8))
        assert_bars_equal(store.read("AAPL", "1m"), expected)
        assert sum(r.rows_new for r in receipts) == expected.num_rows
        assert sum(r.rows_changed for r in receipts) == 0
        assert store.verify().ok
        harness.close_all()

    def test_readers_never_see_a_partial_write(self, harness: StoreHarness) -> None:
        ts = _minutes(0, 300)
        store = harness.open()
        store.write("AAPL", "1m", make_bars(ts, version=0))
        done = threading.Event()
        seen: list[set[float]] = []

        def reader() -> None:
            r = harness.open()
            while not done.is_set():
                t = r.read("AAPL", "1m")
                closes = np.asarray(t.column("close").to_numpy()) - np.asarray(make_bars(ts).column("close"))
                seen.append({round(float(x), 6) for x in closes})

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for v in range(1, 8):
                store.write("AAPL", "1m", make_bars(ts, version=v))
        finally:
            done.set()
            thread.join()
        assert seen
        assert all(len(s) == 1 for s in seen), "a reader saw rows from two different writes"
        harness.close_all()

    # -- identical to the oracle ------------------------------------------------------------
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_matches_the_memory_oracle(self, harness: StoreHarness, store: BarStore, seed: int) -> None:
        rng = random.Random(seed)
        oracle = MemoryStore()
        symbols = ["AAPL", "BTC/USDT"]
        for step in range(40):
            sym = rng.choice(symbols)
            op = rng.random()
            if op < 0.6:
                start = rng.randrange(-200, 400)
                ts = [T0_US + (start + rng.randrange(0, 60)) * MINUTE_US for _ in range(rng.randrange(1, 25))]
                batch = make_bars(ts, version=rng.randrange(3), provider=rng.choice(["a", "b", None]))
                assert receipt_counts(store.write(sym, "1m", batch)) == receipt_counts(oracle.write(sym, "1m", batch))
            elif op < 0.7:
                lo = T0_US + rng.randrange(-200, 400) * MINUTE_US
                hi = lo + rng.randrange(1, 100) * MINUTE_US
                assert store.delete_range(sym, "1m", lo, hi) == oracle.delete_range(sym, "1m", lo, hi)
            elif op < 0.8:
                store.compact()
            elif op < 0.85:
                store = harness.restart(store)
            else:
                n = rng.randrange(0, 30)
                assert_bars_equal(store.latest(sym, "1m", n), oracle.latest(sym, "1m", n))
            lo = T0_US + rng.randrange(-250, 450) * MINUTE_US
            hi = lo + rng.randrange(0, 300) * MINUTE_US
            assert_bars_equal(store.read(sym, "1m", lo, hi), oracle.read(sym, "1m", lo, hi))
            assert [(s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in store.series()] == [
                (s.symbol, s.timeframe, s.rows, s.first_us, s.last_us) for s in oracle.series()], f"step {step}"
        for sym in symbols:
            assert_bars_equal(store.read(sym, "1m"), oracle.read(sym, "1m"))
