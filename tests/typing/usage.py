"""Documented usage, type-checked by `mypy --strict` in `make typecheck` (not executed by pytest).

If a documented example stops type-checking, the docs or the API drifted.
"""

from __future__ import annotations

import pandas as pd

import tickvault
from tickvault import CorporateAction, Timeframe, WriteReceipt


def readme_example(frame: pd.DataFrame) -> pd.DataFrame:
    with tickvault.open("/tmp/tickvault-example") as vault:
        receipt: WriteReceipt = vault.write("AAPL", "1m", frame)
        assert receipt.rows_quarantined >= 0
        vault.add_actions("AAPL", [CorporateAction.split("2020-08-31", 4.0)])
        bars: pd.DataFrame = vault.bars("AAPL", "1m", "2024-01-02", "2024-01-31", adjust="splits", fetch="never")
        tf: Timeframe = Timeframe.parse("5m")
        assert tf.is_intraday
        return bars
