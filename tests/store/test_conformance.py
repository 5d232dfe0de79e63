"""The BarStore conformance suite, run unchanged against every backend we ship."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickvault.store.base import BarStore
from tickvault.store.local import LocalStore
from tickvault.testing.conformance import BarStoreConformance, MemoryHarness, StoreHarness


class LocalHarness(StoreHarness):
    """LocalStore on one folder; a restart closes the handle and opens the folder again."""

    def __init__(self, root: Path, **options: object) -> None:
        super().__init__()
        self.root = root
        self.options = options

    def _open(self) -> BarStore:
        return LocalStore(self.root, **self.options)  # type: ignore[arg-type]


class TestMemoryStore(BarStoreConformance):
    @pytest.fixture
    def harness(self) -> StoreHarness:
        return MemoryHarness()


class TestLocalStore(BarStoreConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> StoreHarness:
        return LocalHarness(tmp_path / "store")


class TestLocalStoreEagerCompaction(BarStoreConformance):
    """Compaction after every write, without the decoded-file cache: the other code paths."""

    @pytest.fixture
    def harness(self, tmp_path: Path) -> StoreHarness:
        return LocalHarness(tmp_path / "store", compact_threshold=1, cache_bytes=0, durable=False)


class TestLocalStoreInlineCompaction(BarStoreConformance):
    """Compaction after every write, run by the write itself (no background thread)."""

    @pytest.fixture
    def harness(self, tmp_path: Path) -> StoreHarness:
        return LocalHarness(tmp_path / "store", compact_threshold=1, durable=False, background_compaction=False)
