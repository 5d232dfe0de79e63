"""Fixtures of the Polygon provider tests."""

from __future__ import annotations

import pytest
from _polygon_helpers import NOW_US

from tickvault.testing.replay import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """Manual time (2025-02-20)."""
    return ManualClock(NOW_US)
