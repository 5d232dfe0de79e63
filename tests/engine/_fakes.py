"""A counting provider stub for read-through tests (a stub, not a mock of our code)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tickvault.calendars import get_calendar
from tickvault.errors import ProviderUnavailable
from tickvault.model import BAR_SCHEMA, AssetClass, CoverageInterval, CoverageState
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, TimeframeSupport


class CountingProvider:
    """Serves a deterministic bar for every expected bar of the calendar; counts calls."""

    def __init__(self, name: str = "stub", *, fail: bool = False) -> None:
        self._name = name
        self.fail = fail
        self.queries: list[BarsQuery] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self._name, frozenset(AssetClass), (TimeframeSupport("1d"), TimeframeSupport("1m")))

    async def bars(self, query: BarsQuery) -> BarsResult:
        self.queries.append(query)
        if self.fail:
            raise ProviderUnavailable("stub is down", provider=self._name)
        cal = get_calendar("XNYS" if "/" not in query.symbol else "24/7")
        starts, _ = cal.bar_bounds(query.timeframe, query.start_us, query.end_us)
        price = 100.0 + (starts % 1_000_000_007) / 1e9
        table = pa.Table.from_arrays(
            [pa.array(starts, pa.int64()).cast(BAR_SCHEMA.field("ts").type), pa.array(price), pa.array(price + 1),
             pa.array(price - 1), pa.array(price + 0.5), pa.array(np.full(starts.size, 1000.0)),
             pa.nulls(starts.size, pa.float64()), pa.nulls(starts.size, pa.int64()),
             pa.array([self._name] * starts.size).dictionary_encode().cast(BAR_SCHEMA.field("provider").type)],
            schema=BAR_SCHEMA)
        cov = [CoverageInterval(query.start_us, query.end_us, CoverageState.FINAL, self._name)]
        return BarsResult(table, cov)

    async def aclose(self) -> None:
        return None
