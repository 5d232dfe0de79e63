"""Fixtures for the shared HTTP layer tests: a replay server and a manual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tickvault.testing.replay import ManualClock, ReplayServer

NOW_US = 1_740_009_600_000_000  # 2025-02-20 00:00 UTC


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    """A started replay server on 127.0.0.1 with no routes (tests add theirs)."""
    with ReplayServer() as srv:
        yield srv


@pytest.fixture
def clock() -> ManualClock:
    """Manual time: sleeps return at once and are recorded."""
    return ManualClock(NOW_US)
