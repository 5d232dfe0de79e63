"""Vault fixtures over both the in-memory oracle and the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tickvault
from tickvault.engine import Vault


@pytest.fixture(params=["memory", "local"])
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    path = ":memory:" if request.param == "memory" else str(tmp_path / "vault")
    with tickvault.open(path) as v:
        yield v
