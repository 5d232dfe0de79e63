"""The vault's dealings with providers beyond bars: health, fundamentals, actions, symbol search.

- ``providers()`` reports each configured provider's capabilities, credentials and the
  calls/errors this process made.
- ``fundamentals(symbol)`` asks every provider that serves fundamentals for the symbol's
  asset class, in the ranked order (user preference first), and merges field by field: the
  first provider that has a field wins, and each field keeps its source. The merged result
  is kept in the store's catalog for ``Settings.fundamentals_ttl_days`` (default 7), so it
  survives restarts and is shared by processes on the same store.
- ``fetch_actions(symbol)`` fetches splits and dividends from providers that serve them and
  stores them; adjusted reads pick them up at once.
- ``search(query)`` looks through the instrument master by symbol, name and provider
  spelling (``brk-b`` finds ``BRK.B``; ``BTCUSDT`` and ``BTC-USD`` find ``BTC/USDT``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tickvault.engine._providers import ProviderStatus, rank_providers
from tickvault.engine._read import run_sync
from tickvault.errors import InvalidInput, InvalidSymbol, ProviderError, UnsupportedRequest
from tickvault.model import CorporateAction, Instrument, TimeRange, ts_to_us, validate_symbol
from tickvault.providers.base import DataKind, Fundamentals, Provider

if TYPE_CHECKING:
    from tickvault.config import Settings
    from tickvault.engine._read import Fetcher
    from tickvault.store.base import BarStore

__all__ = ["Sources"]

_MAX_QUERY = 64
_DAY_US = 86_400_000_000


class Sources:
    """Mixin giving :class:`~tickvault.engine.Vault` its provider-facing methods."""

    if TYPE_CHECKING:  # provided by Vault
        _store: BarStore
        _settings: Settings
        _fetcher: Fetcher

        def instrument(self, symbol: str) -> Instrument: ...

    def providers(self) -> list[ProviderStatus]:
        """Configured providers: capabilities, credentials, and this process's calls and errors."""
        return [self._fetcher.health.status(p) for p in self._fetcher.providers]

    def _ranked(self, symbol: str, kind: DataKind) -> tuple[Instrument, list[Provider]]:
        inst = self.instrument(symbol)
        return inst, rank_providers(self._fetcher.providers, inst, kind, None, self._settings.provider_preference)

    # -- fundamentals -------------------------------------------------------------------
    def fundamentals(self, symbol: str, *, refresh: bool = False) -> dict[str, tuple[float | str, str]]:
        """Fundamentals merged field by field across providers, each with its source.

        Parameters
        ----------
        symbol
            Canonical symbol.
        refresh
            Ask the providers even if a cached answer is younger than the TTL.

        Raises
        ------
        UnsupportedRequest
            No configured provider serves fundamentals for this symbol.
        ProviderError
            Every provider failed (the first error is raised; the others are in its notes).
        """
        sym = validate_symbol(symbol)
        key = f"fundamentals:{sym}"
        ttl_us = int(self._settings.fundamentals_ttl_days * _DAY_US)
        now = time.time_ns() // 1000
        if not refresh:
            cached = self._store.get_meta(key)
            if cached is not None:
                data = json.loads(cached)
                if now - int(data["fetched_us"]) <= ttl_us:
                    return {k: (v[0], v[1]) for k, v in data["fields"].items()}
        inst, ranked = self._ranked(sym, DataKind.FUNDAMENTALS)
        if not ranked:
            raise UnsupportedRequest("no configured provider serves fundamentals", symbol=sym)
        answers = run_sync(self._gather_fundamentals(ranked, sym, inst))
        merged: Fundamentals = {}
        errors: list[ProviderError] = []
        for provider, answer in zip(ranked, answers, strict=True):
            if isinstance(answer, ProviderError):
                errors.append(answer)
                continue
            for name, value in answer.items():
                merged.setdefault(name, value)
            del provider
        if not merged and errors:
            raise errors[0]
        self._store.set_meta(key, json.dumps({"fetched_us": now, "fields": {k: list(v) for k, v in merged.items()}}))
        return merged

    async def _gather_fundamentals(self, ranked: Sequence[Provider], sym: str,
                                   inst: Instrument) -> list[Fundamentals | ProviderError]:
        import asyncio

        async def one(p: Provider) -> Fundamentals | ProviderError:
            self._fetcher.health.call(p.name)
            try:
                out: Fundamentals = await p.fundamentals(sym, inst)  # type: ignore[attr-defined]
            except ProviderError as exc:
                self._fetcher.health.error(p.name, exc)
                return exc
            self._fetcher.health.ok(p.name)
            return out

        return list(await asyncio.gather(*(one(p) for p in ranked)))

    # -- corporate actions ----------------------------------------------------------------
    def fetch_actions(self, symbol: str, start: Any = "1970-01-01", end: Any = None) -> int:
        """Fetch splits and dividends from the providers that serve them; store them.

        The first provider (in ranked order) that answers wins. Returns how many actions
        were new or changed; adjusted reads reflect them immediately.

        Raises
        ------
        UnsupportedRequest
            No configured provider serves corporate actions for this symbol.
        ProviderError
            Every provider failed.
        """
        sym = validate_symbol(symbol)
        inst, ranked = self._ranked(sym, DataKind.ACTIONS)
        if not ranked:
            raise UnsupportedRequest("no configured provider serves corporate actions", symbol=sym)
        rng = TimeRange.of(start, end)
        first_error: ProviderError | None = None
        for p in ranked:
            self._fetcher.health.call(p.name)
            try:
                actions: list[CorporateAction] = run_sync(
                    p.corporate_actions(sym, ts_to_us(rng.start), ts_to_us(rng.end), inst))  # type: ignore[attr-defined]
            except ProviderError as exc:
                self._fetcher.health.error(p.name, exc)
                first_error = first_error or exc
                continue
            self._fetcher.health.ok(p.name)
            return self._store.add_actions(sym, actions)
        assert first_error is not None
        raise first_error

    # -- symbol master --------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 50) -> list[Instrument]:
        """Instruments whose symbol, name or provider spelling matches ``query``.

        Exact symbol matches (after mapping provider spellings to canonical ones) come first,
        then prefix matches, then substring matches of symbol or name.

        Raises
        ------
        InvalidInput
            For an empty or over-long query.
        """
        q = query.strip() if isinstance(query, str) else ""
        if not q or len(q) > _MAX_QUERY or any(ord(c) < 32 for c in q):
            raise InvalidInput(f"search query must be 1 to {_MAX_QUERY} printable characters")
        wanted = {q.upper()} | {c for c in (_canonical("yahoo", q), _canonical("polygon", q), _exchange_pair(q))
                                if c is not None}
        needle = q.lower()
        scored: list[tuple[int, str, Instrument]] = []
        for inst in self._store.instruments():
            spellings = {inst.symbol.lower(), *(s.lower() for s in inst.provider_symbols.values())}
            if inst.symbol in wanted or needle in spellings:
                rank = 0
            elif inst.symbol.lower().startswith(needle):
                rank = 1
            elif needle in inst.symbol.lower() or needle in (inst.name or "").lower() or any(
                    needle in s for s in spellings):
                rank = 2
            else:
                continue
            scored.append((rank, inst.symbol, inst))
        return [i for _, _, i in sorted(scored, key=lambda t: (t[0], t[1]))[:limit]]


_QUOTES = ("USDT", "USDC", "BUSD", "USD", "EUR", "GBP", "BTC", "ETH")


def _exchange_pair(vendor: str) -> str | None:
    """``BTCUSDT`` (Binance), ``XBTUSDT`` (Kraken), ``BTC-USDT`` (OKX) -> ``BTC/USDT``."""
    v = vendor.upper().replace("-", "").replace("_", "")
    for quote in _QUOTES:
        if v.endswith(quote) and len(v) > len(quote):
            base = v[: -len(quote)]
            base = "BTC" if base in ("XBT", "XXBT") else base
            try:
                return validate_symbol(f"{base}/{quote}")
            except InvalidSymbol:
                return None
    return None


def _canonical(provider: str, vendor: str) -> str | None:
    """The canonical spelling of a provider's symbol, or ``None`` if it does not map."""
    from tickvault.providers._symbols import canonical_symbol

    try:
        return validate_symbol(canonical_symbol(provider, vendor))
    except (InvalidSymbol, InvalidInput, ValueError, KeyError):
        return None
