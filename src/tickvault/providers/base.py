"""The ``Provider`` boundary: one async interface over every data source.

A provider is built as query -> extract -> transform (STYLE.md): only ``extract`` does
I/O; ``transform`` is a pure function from the vendor payload to canonical Arrow
(:data:`~tickvault.model.BAR_SCHEMA`, DESIGN §3 time and label conventions). The engine
only ever sees complete canonical ranges or a typed :class:`~tickvault.errors.ProviderError`.

Contract
    ``bars(query)`` returns every bar the provider has in ``[start_us, end_us)`` plus the
    coverage it vouches for: ``final`` for settled history, ``provisional`` for data that
    may still change (open session, revision window), ``empty`` for intervals it confirms
    have no bars (no trades, halted, not yet listed). A short or truncated answer raises
    :class:`~tickvault.errors.IncompleteData`; it is never silently returned.
    Providers are stateless between calls apart from connection pools and rate limiters,
    and ``aclose()`` releases those (idempotent).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa

from tickvault.model import AssetClass, CorporateAction, CoverageInterval, Instrument, Timeframe

__all__ = [
    "ActionsProvider",
    "BarsQuery",
    "BarsResult",
    "Capabilities",
    "DataKind",
    "Fundamentals",
    "FundamentalsProvider",
    "Provider",
    "TimeframeSupport",
]


class DataKind(enum.StrEnum):
    """Kinds of data a provider can serve."""

    BARS = "bars"
    ACTIONS = "actions"
    FUNDAMENTALS = "fundamentals"
    QUOTE = "quote"


@dataclass(frozen=True)
class TimeframeSupport:
    """One timeframe a provider serves natively.

    Parameters
    ----------
    timeframe
        Canonical timeframe string.
    max_history_days
        How far back the provider goes for this timeframe (``None``: unlimited).
    page_size
        Maximum bars per request (``None``: the provider pages internally / unlimited).
    """

    timeframe: str
    max_history_days: int | None = None
    page_size: int | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; used by selection rules."""

    name: str
    asset_classes: frozenset[AssetClass]
    timeframes: tuple[TimeframeSupport, ...]
    kinds: frozenset[DataKind] = frozenset({DataKind.BARS})
    needs_credentials: bool = False
    rate_limit_per_minute: float | None = None

    def supports(self, timeframe: str | Timeframe) -> TimeframeSupport | None:
        """The native support entry for ``timeframe``, if any."""
        tf = str(Timeframe.parse(timeframe))
        return next((t for t in self.timeframes if t.timeframe == tf), None)


@dataclass(frozen=True)
class BarsQuery:
    """A request for bars of one symbol and timeframe over ``[start_us, end_us)``."""

    symbol: str
    timeframe: str
    start_us: int
    end_us: int
    instrument: Instrument | None = None


@dataclass(frozen=True)
class BarsResult:
    """Canonical bars plus the coverage the provider vouches for."""

    table: pa.Table
    coverage: list[CoverageInterval] = field(default_factory=list)
    actions: list[CorporateAction] = field(default_factory=list)


@runtime_checkable
class Provider(Protocol):
    """A source of market data (see the module contract)."""

    @property
    def name(self) -> str:
        """Short lower-case identifier (``yahoo``, ``sim``)."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this provider serves."""
        ...

    async def bars(self, query: BarsQuery) -> BarsResult:
        """Bars for ``query`` (complete, canonical) or a typed error."""
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


@runtime_checkable
class ActionsProvider(Protocol):
    """Optional capability: a provider that serves splits and dividends on their own.

    Providers that declare :attr:`DataKind.ACTIONS` implement it. Contract: every split and
    cash dividend with an ex-date in ``[start_us, end_us)`` (epoch µs, session-date keys),
    in the conventions of :class:`~tickvault.model.CorporateAction` (split ratio = new
    shares per old share; dividend amount as paid at the time, not split-adjusted), or a
    typed :class:`~tickvault.errors.ProviderError`.
    """

    async def corporate_actions(self, symbol: str, start_us: int, end_us: int,
                                instrument: Instrument | None = None) -> list[CorporateAction]:
        """Splits and dividends of ``symbol`` with ex-dates in ``[start_us, end_us)``."""
        ...


#: Fundamentals as field -> (value, source); ``source`` names the vendor, endpoint and period.
Fundamentals = dict[str, tuple[float | str, str]]


@runtime_checkable
class FundamentalsProvider(Protocol):
    """Optional capability: company fundamentals and reference data.

    Providers that declare :attr:`DataKind.FUNDAMENTALS` implement it. Field names follow the
    shared vocabulary in docs/providers-more.md (``market_cap``, ``pe_ratio``, ``revenue``,
    ``shares_outstanding``, ...); each value carries its source. Raises a typed
    :class:`~tickvault.errors.ProviderError` on failure.
    """

    async def fundamentals(self, symbol: str, instrument: Instrument | None = None) -> Fundamentals:
        """Fundamentals of ``symbol``."""
        ...
