"""The ``sim`` provider: deterministic, seeded, calendar-aware random-walk bars.

For demos, tests and benchmarks without network or credentials: any symbol, any timeframe
from one minute to one month, on the symbol's trading calendar, the same bar for the same
(seed, symbol, timeframe, timestamp) whatever range is asked. Optional no-trade minutes
(reported as ``empty`` coverage) and injected bad ticks exercise the coverage ledger and the
quality rules. See ``docs/sim-provider.md``.
"""

from tickvault.providers.sim._bad_ticks import BAD_TICK_KINDS, injected_bad_ticks
from tickvault.providers.sim._provider import SimProvider
from tickvault.providers.sim._simulate import DEFAULT_NO_TRADE_PROB, simulate_bars

__all__ = ["BAD_TICK_KINDS", "DEFAULT_NO_TRADE_PROB", "SimProvider", "injected_bad_ticks", "simulate_bars"]
