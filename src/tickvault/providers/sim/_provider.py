"""``SimProvider``: :func:`simulate_bars` behind the :class:`~tickvault.providers.base.Provider` protocol.

There is no network, so there is no extract step: the query goes straight to the pure
generator. The provider is what the engine, the CLI demo and the benchmarks talk to.
"""

from __future__ import annotations

from tickvault.errors import InvalidTimeframe, UnsupportedRequest
from tickvault.model import AssetClass, Timeframe
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport
from tickvault.providers.sim._simulate import PROVIDER, simulate_bars

__all__ = ["SimProvider"]

_TIMEFRAMES = tuple(TimeframeSupport(tf) for tf in Timeframe.CANONICAL)


class SimProvider:
    """Deterministic simulated bars for any symbol (see :func:`simulate_bars`).

    Parameters
    ----------
    seed
        Market seed; providers with the same seed return identical data.
    bad_ticks
        Probability per bar of an injected bad tick (0 by default).
    no_trade_prob
        Override the default no-trade probability of intraday bars (``None``: the
        :func:`simulate_bars` default).

    Notes
    -----
    The calendar comes from ``query.instrument`` when the engine passes one, otherwise from
    :meth:`~tickvault.model.Instrument.guess`. Generation is CPU-bound and fast (a year of
    minute bars in well under a second), so it runs inline in the event loop.
    """

    def __init__(self, seed: int = 0, bad_ticks: float = 0.0, no_trade_prob: float | None = None) -> None:
        self._seed = int(seed)
        self._bad_ticks = float(bad_ticks)
        self._no_trade_prob = no_trade_prob
        self._caps = Capabilities(
            name=PROVIDER,
            asset_classes=frozenset(AssetClass),
            timeframes=_TIMEFRAMES,
            kinds=frozenset({DataKind.BARS}),
            needs_credentials=False,
            rate_limit_per_minute=None,
        )

    def __repr__(self) -> str:
        return f"SimProvider(seed={self._seed}, bad_ticks={self._bad_ticks})"

    @property
    def name(self) -> str:
        """``"sim"``."""
        return PROVIDER

    @property
    def seed(self) -> int:
        """The market seed."""
        return self._seed

    @property
    def capabilities(self) -> Capabilities:
        """Every asset class, canonical timeframes 1m..1mo (any intraday ``N<unit>`` also works)."""
        return self._caps

    async def bars(self, query: BarsQuery) -> BarsResult:
        """Simulated bars for ``query`` with their coverage.

        Raises
        ------
        UnsupportedRequest
            For a timeframe no trading calendar defines (``2d``, ``3mo``).
        InvalidSymbol, InvalidRange
            For a malformed symbol or range.
        """
        calendar = query.instrument.calendar if query.instrument is not None else None
        try:
            table, coverage = simulate_bars(
                query.symbol, query.timeframe, query.start_us, query.end_us, seed=self._seed, calendar=calendar,
                bad_ticks=self._bad_ticks, no_trade_prob=self._no_trade_prob,
            )
        except InvalidTimeframe as exc:
            raise UnsupportedRequest(str(exc), provider=PROVIDER, symbol=query.symbol,
                                     timeframe=query.timeframe) from None
        return BarsResult(table, coverage)

    async def aclose(self) -> None:
        """Nothing to release (idempotent)."""
