"""FilesProvider: a folder of per-symbol files behind the Provider protocol."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tickvault.errors import InvalidInput, ProviderResponseError, SymbolNotFound, UnsupportedRequest
from tickvault.model import ActionKind, CoverageInterval, CoverageState, ts_to_us
from tickvault.providers.base import ActionsProvider, BarsQuery, DataKind, Provider
from tickvault.providers.files import FilesProvider


def _us(text: str) -> int:
    return ts_to_us(pd.Timestamp(text, tz="UTC"))


@pytest.fixture
def root(tmp_path: Path, ohlcv: Path) -> Path:
    folder = tmp_path / "files"
    (folder / "1m").mkdir(parents=True)
    shutil.copy(ohlcv / "zipline-reloaded/AAPL.csv.gz", folder / "AAPL.csv.gz")
    shutil.copy(ohlcv / "freqtrade/XRP_USDT_USDT-5m-futures.feather", folder / "XRP%2FUSDT.feather")
    shutil.copy(ohlcv / "nautilus_trader/ADABTC-1m-2021-11-27.csv", folder / "1m" / "ADABTC.csv")
    (folder / "BROKEN.csv").write_text("date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,x,0.5,1.5\n")
    (folder / "notes.txt").write_text("not market data\n")
    return folder


def test_is_a_provider_with_scanned_capabilities(root: Path) -> None:
    provider = FilesProvider(root)
    assert isinstance(provider, Provider)
    assert provider.name == "files"
    caps = provider.capabilities
    assert [t.timeframe for t in caps.timeframes] == ["1m", "5m", "1d"]  # unreadable files are left out
    assert caps.kinds == frozenset({DataKind.BARS, DataKind.ACTIONS})
    assert not caps.needs_credentials
    asyncio.run(provider.aclose())
    asyncio.run(provider.aclose())  # idempotent


def test_bars_in_range_with_final_coverage_and_actions(root: Path) -> None:
    result = asyncio.run(FilesProvider(root).bars(
        BarsQuery("AAPL", "1d", _us("2014-06-01"), _us("2014-07-01"))))
    table = result.table
    assert table.num_rows == 21  # June 2014 sessions
    ts = table.column("ts").to_pylist()
    assert ts == sorted(ts)
    assert ts[0] == pd.Timestamp("2014-06-02", tz="UTC")
    assert result.coverage == [CoverageInterval(_us("2014-06-01"), _us("2014-07-01"), CoverageState.FINAL, "files")]
    assert [(a.ex_date, a.kind, a.value, a.symbol) for a in result.actions] == [
        (dt.date(2014, 6, 9), ActionKind.SPLIT, 7.0, "AAPL")]


def test_coverage_is_clipped_to_the_file_span(root: Path) -> None:
    result = asyncio.run(FilesProvider(root).bars(BarsQuery("AAPL", "1d", _us("2010-01-01"), _us("2030-01-01"))))
    assert result.table.num_rows == 754
    # From the first session to the end of the last one: the file vouches for nothing outside.
    assert result.coverage == [CoverageInterval(_us("2012-01-03"), _us("2015-01-01"), CoverageState.FINAL, "files")]
    outside = asyncio.run(FilesProvider(root).bars(BarsQuery("AAPL", "1d", _us("2020-01-01"), _us("2021-01-01"))))
    assert outside.table.num_rows == 0
    assert outside.coverage == []


def test_quoted_symbol_names_and_timeframe_folders(root: Path) -> None:
    provider = FilesProvider(root)
    xrp = asyncio.run(provider.bars(BarsQuery("XRP/USDT", "5m", _us("2021-11-15"), _us("2021-11-15 01:00"))))
    assert xrp.table.num_rows == 12
    assert xrp.coverage[0].end_us == _us("2021-11-15 01:00")
    ada = asyncio.run(provider.bars(BarsQuery("ADABTC", "1m", _us("2021-11-27"), _us("2021-11-28"))))
    assert ada.table.num_rows == 10
    assert ada.coverage == [CoverageInterval(_us("2021-11-27 00:00"), _us("2021-11-27 00:10"), CoverageState.FINAL,
                                             "files")]
    assert provider.find("ADABTC", "1m") == (root / "1m" / "ADABTC.csv", "1m")


def test_corporate_actions_on_their_own(root: Path) -> None:
    provider = FilesProvider(root)
    assert isinstance(provider, ActionsProvider)
    actions = asyncio.run(provider.corporate_actions("AAPL", _us("2014-01-01"), _us("2015-01-01")))
    assert [(a.ex_date, a.kind, a.value) for a in actions] == [
        (dt.date(2014, 2, 6), ActionKind.DIVIDEND, 0.43571), (dt.date(2014, 5, 8), ActionKind.DIVIDEND, 0.47),
        (dt.date(2014, 6, 9), ActionKind.SPLIT, 7.0), (dt.date(2014, 8, 7), ActionKind.DIVIDEND, 0.47),
        (dt.date(2014, 11, 6), ActionKind.DIVIDEND, 0.47)]
    assert asyncio.run(provider.corporate_actions("ADABTC", 0, _us("2030-01-01"))) == []  # in the 1m folder
    with pytest.raises(SymbolNotFound):
        asyncio.run(provider.corporate_actions("MSFT", 0, _us("2030-01-01")))


def test_errors_are_typed(root: Path) -> None:
    provider = FilesProvider(root)
    with pytest.raises(SymbolNotFound):
        asyncio.run(provider.bars(BarsQuery("MSFT", "1d", 0, _us("2030-01-01"))))
    with pytest.raises(UnsupportedRequest, match="holds 1d bars"):
        asyncio.run(provider.bars(BarsQuery("AAPL", "1h", 0, _us("2030-01-01"))))
    with pytest.raises(ProviderResponseError, match=r"BROKEN\.csv:3: non-numeric high value 'x'"):
        asyncio.run(provider.bars(BarsQuery("BROKEN", "1d", 0, _us("2030-01-01"))))
    (root / "AAPL.parquet").write_bytes(b"PAR1")
    with pytest.raises(UnsupportedRequest, match="several files"):
        asyncio.run(provider.bars(BarsQuery("AAPL", "1d", 0, _us("2030-01-01"))))
    with pytest.raises(InvalidInput):
        FilesProvider(root / "missing")


def test_tz_option_applies_to_every_file(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text("time,open,high,low,close\n2024-01-02 09:30,1,2,0.5,1.5\n"
                                      "2024-01-02 09:31,1,2,0.5,1.5\n")
    result = asyncio.run(FilesProvider(tmp_path, tz="America/New_York").bars(
        BarsQuery("SPY", "1m", _us("2024-01-02"), _us("2024-01-03"))))
    assert result.table.column("ts")[0].as_py() == pd.Timestamp("2024-01-02 14:30", tz="UTC")
    assert result.table.schema.field("provider").type == pa.dictionary(pa.int32(), pa.string())
