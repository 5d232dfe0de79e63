"""Fixtures for the files provider tests: the real OHLCV folder and a tiny file writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ohlcv(shared_data: Path) -> Path:
    """The shared third-party OHLCV folder (read in place, never copied into the repo)."""
    return shared_data / "ohlcv"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    """Write ``content`` to ``tmp_path/name`` and return the path."""

    def _write(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return _write
