"""The engine: the write path, the coverage-aware read path and the ``Vault`` facade.

It only uses the protocols in ``store/base.py`` and ``providers/base.py``; the concrete
backends are chosen by :func:`tickvault.open`.
"""

from tickvault.engine._copy import CopyReport
from tickvault.engine._imports import ImportResult
from tickvault.engine._read import FetchOutcome
from tickvault.engine._vault import Adjust, Fetch, SeriesStatus, Vault
from tickvault.engine._write import BarEvent

__all__ = ["Adjust", "BarEvent", "CopyReport", "Fetch", "FetchOutcome", "ImportResult", "SeriesStatus", "Vault"]
