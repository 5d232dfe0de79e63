"""Test-wide fixtures: a hermetic runtime and the shared data folder.

- Every ``TICKVAULT_*`` and proxy variable is cleared for each test (config is read at the
  edge; tests pass what they need explicitly).
- ``shared_data`` points at the real third-party data in ``../shared/data`` (override with
  ``TICKVAULT_SHARED_DATA``, read once at import time, before the environment is cleared).
- Warnings are errors (pyproject), and Hypothesis prints its seed on failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TICKVAULT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()

settings.register_profile("ci", deadline=None, print_blob=True, derandomize=False)
settings.register_profile("nightly", deadline=None, print_blob=True, max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
               "no_proxy")


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("TICKVAULT_") or key in _PROXY_VARS:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TICKVAULT_HOME", str(tmp_path / "tickvault-home"))
    # Never the network by default: tests that want providers pass them explicitly.
    monkeypatch.setenv("TICKVAULT_PROVIDERS", "none")
    return


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared third-party data folder; tests fail loudly if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED_DATA}; set TICKVAULT_SHARED_DATA")
    return SHARED_DATA
