"""Which provider serves a request: selection rules, the user's preference, health.

Rules (issue 4, DESIGN §5), applied in this order:

1. Only providers that serve the asset class, the data kind and — for bars — the timeframe
   natively are candidates; a provider that needs credentials and has none is skipped.
2. The user's preference order for the data kind (``Settings.provider_preference``:
   ``{"bars": ["polygon", "yahoo"], "fundamentals": [...], "*": [...]}``) comes first.
3. Then the built-in defaults: crypto → an exchange through ccxt; daily and longer equity
   bars → Yahoo; intraday equity bars → the first configured key-based provider (Polygon,
   Alpaca, Tiingo, Alpha Vantage, FMP), Yahoo after them.
4. Ties keep the configured order.

Health is per process: calls, errors, the last error and the last success, shown by
``tickvault providers``. A provider that fails is not removed: the next request tries it
again in its place (its own circuit breaker decides whether to send anything).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from tickvault.model import AssetClass, Instrument, Timeframe
from tickvault.providers.base import DataKind, Provider

__all__ = ["KEYED_INTRADAY_ORDER", "ProviderHealth", "ProviderStatus", "has_credentials", "rank_providers"]

KEYED_INTRADAY_ORDER: tuple[str, ...] = ("polygon", "alpaca", "tiingo", "alpha_vantage", "fmp")


def has_credentials(provider: Provider) -> bool:
    """Whether ``provider`` has the credentials it needs (keyless providers always do)."""
    if not provider.capabilities.needs_credentials:
        return True
    settings = getattr(provider, "settings", None)
    return bool(getattr(settings, "has_credentials", False))


def _serves(provider: Provider, instrument: Instrument, kind: DataKind, timeframe: Timeframe | None) -> bool:
    caps = provider.capabilities
    if kind not in caps.kinds or instrument.asset_class not in caps.asset_classes:
        return False
    if kind == DataKind.BARS and timeframe is not None and caps.supports(timeframe) is None:
        return False
    if kind == DataKind.ACTIONS and not callable(getattr(provider, "corporate_actions", None)):
        return False
    return not (kind == DataKind.FUNDAMENTALS and not callable(getattr(provider, "fundamentals", None)))


def _default_rank(provider: Provider, instrument: Instrument, kind: DataKind, timeframe: Timeframe | None) -> int:
    name = provider.name
    if instrument.asset_class is AssetClass.CRYPTO:
        return 0 if name == "ccxt" else 1
    if kind == DataKind.BARS and timeframe is not None and not timeframe.is_intraday:
        return 0 if name == "yahoo" else 1
    if kind == DataKind.BARS and timeframe is not None and timeframe.is_intraday:
        if name in KEYED_INTRADAY_ORDER:
            return KEYED_INTRADAY_ORDER.index(name)
        return len(KEYED_INTRADAY_ORDER) + (0 if name == "yahoo" else 1)
    return 0


def rank_providers(providers: Sequence[Provider], instrument: Instrument, kind: DataKind | str,
                   timeframe: Timeframe | None = None,
                   preference: Mapping[str, Sequence[str]] | None = None) -> list[Provider]:
    """Candidates for a request, best first (see the module docstring for the rules)."""
    kind = DataKind(kind)
    pref = list((preference or {}).get(str(kind)) or (preference or {}).get("*") or ())
    usable = [(i, p) for i, p in enumerate(providers)
              if _serves(p, instrument, kind, timeframe) and has_credentials(p)]

    def key(item: tuple[int, Provider]) -> tuple[int, int, int]:
        i, p = item
        return (pref.index(p.name) if p.name in pref else len(pref),
                _default_rank(p, instrument, kind, timeframe), i)

    return [p for _, p in sorted(usable, key=key)]


@dataclass
class _Counters:
    calls: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ok_us: int | None = None


@dataclass(frozen=True)
class ProviderStatus:
    """One row of ``tickvault providers``."""

    name: str
    kinds: tuple[str, ...]
    asset_classes: tuple[str, ...]
    timeframes: tuple[str, ...]
    needs_credentials: bool
    credentials_set: bool
    calls: int
    errors: int
    last_error: str | None
    last_ok: pd.Timestamp | None


@dataclass
class ProviderHealth:
    """Per-process call/error counters of every provider (thread-safe)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _by_name: dict[str, _Counters] = field(default_factory=dict)

    def call(self, name: str) -> None:
        """Count one call."""
        with self._lock:
            self._by_name.setdefault(name, _Counters()).calls += 1

    def ok(self, name: str) -> None:
        """Record a success now."""
        with self._lock:
            self._by_name.setdefault(name, _Counters()).last_ok_us = time.time_ns() // 1000

    def error(self, name: str, exc: BaseException) -> None:
        """Record a failure (its message is already free of secrets: provider errors are scrubbed)."""
        with self._lock:
            c = self._by_name.setdefault(name, _Counters())
            c.errors += 1
            c.last_error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__

    def calls(self) -> dict[str, int]:
        """Provider name -> calls so far."""
        with self._lock:
            return {k: v.calls for k, v in self._by_name.items() if v.calls}

    def status(self, provider: Provider) -> ProviderStatus:
        """The status row of ``provider``."""
        caps = provider.capabilities
        with self._lock:
            c = self._by_name.get(provider.name, _Counters())
            counters = _Counters(c.calls, c.errors, c.last_error, c.last_ok_us)
        return ProviderStatus(
            name=provider.name,
            kinds=tuple(sorted(str(k) for k in caps.kinds)),
            asset_classes=tuple(sorted(str(a) for a in caps.asset_classes)),
            timeframes=tuple(t.timeframe for t in caps.timeframes),
            needs_credentials=caps.needs_credentials,
            credentials_set=has_credentials(provider) if caps.needs_credentials else False,
            calls=counters.calls,
            errors=counters.errors,
            last_error=counters.last_error,
            last_ok=pd.Timestamp(counters.last_ok_us * 1000, tz="UTC") if counters.last_ok_us else None,
        )
