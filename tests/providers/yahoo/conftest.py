"""Fixtures of the Yahoo provider tests."""

from __future__ import annotations

import pytest
from _yahoo_helpers import RECORDED_US

from tickvault.testing.replay import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """Manual time set to the day the payloads were recorded."""
    return ManualClock(RECORDED_US)
