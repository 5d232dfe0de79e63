"""Per-symbol character of a simulated market: price level, volatility, tick size, volume.

Each (seed, symbol) gets its own stable parameters, drawn from a hash of the pair, within
ranges typical of its asset class (guessed from the symbol like everywhere else in
tickvault: ``BASE/QUOTE`` with two fiat codes is FX, other pairs are crypto, the rest are
exchange-listed). The daily level is a random walk reflected into ``[p0 / 4, 4 * p0]`` so a
seventy-year history keeps prices at sensible tick resolution (FX: ``[p0 / 1.5, 1.5 * p0]``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from tickvault.model import AssetClass

__all__ = ["Profile", "fold", "profile_for"]

#: Half-width of the reflected log-price band around ``log(p0)`` (FX uses a narrower one).
LOG_BAND = math.log(4.0)
FX_LOG_BAND = math.log(1.5)


@dataclass(frozen=True)
class Profile:
    """Parameters of one simulated symbol.

    Attributes
    ----------
    asset_class
        Guessed asset class.
    p0
        Centre of the price band.
    sigma_day
        Close-to-close daily log volatility (calendar days: weekends move the level too).
    sigma_intraday
        Log volatility of the path inside one session.
    gap_sigma
        Extra log volatility of the overnight gap (exchange calendars only; 0 for 24/7, FX).
    decimals
        Price tick is ``10 ** -decimals`` (0.01 for equities; more for cheap crypto, FX).
    volume_per_session
        Typical volume of a full session (shares, coins or FX ticks).
    volume_decimals
        Volume resolution (0: whole shares / ticks).
    trade_size
        Typical volume per trade, for ``trade_count``.
    band
        Half-width of the reflected log-price band around ``log(p0)``.
    """

    asset_class: AssetClass
    p0: float
    sigma_day: float
    sigma_intraday: float
    gap_sigma: float
    decimals: int
    volume_per_session: float
    volume_decimals: int
    trade_size: float
    band: float = LOG_BAND

    @property
    def tick(self) -> float:
        """Smallest price increment."""
        return float(10.0 ** -self.decimals)


def _unit_draws(seed: int, symbol: str) -> list[float]:
    digest = hashlib.blake2b(f"{seed}\x1f{symbol}\x1fprofile".encode(), digest_size=64).digest()
    return [int.from_bytes(digest[i : i + 8], "little") / 2.0**64 for i in range(0, 64, 8)]


def _log_uniform(u: float, lo: float, hi: float) -> float:
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def profile_for(seed: int, symbol: str, asset_class: AssetClass, *, gapped: bool) -> Profile:
    """The stable parameters of ``symbol`` under ``seed``.

    ``gapped`` is whether sessions are separated by closed hours (exchange calendars), which
    is when overnight gaps get their own extra volatility.
    """
    u = _unit_draws(seed, symbol)
    if asset_class == AssetClass.CRYPTO:
        p0 = _log_uniform(u[0], 0.05, 50_000.0)
        decimals = int(min(8, max(2, 4 - math.floor(math.log10(p0 / 4.0)))))
        sigma = 0.03 + 0.03 * u[1]
        notional = _log_uniform(u[2], 1e7, 1e9)
        return Profile(asset_class, p0, sigma, 0.8 * sigma, 0.0, decimals, notional / p0, 4, 800.0 / p0)
    if asset_class == AssetClass.FX:
        jpy = symbol.upper().endswith("/JPY")
        p0 = 80.0 + 80.0 * u[0] if jpy else 0.6 + 1.0 * u[0]
        sigma = 0.004 + 0.004 * u[1]
        ticks = _log_uniform(u[2], 5e4, 5e5)
        return Profile(asset_class, p0, sigma, 0.8 * sigma, 0.0, 3 if jpy else 5, ticks, 0, 1.0, FX_LOG_BAND)
    p0 = _log_uniform(u[0], 500.0, 5000.0) if asset_class == AssetClass.INDEX else _log_uniform(u[0], 10.0, 400.0)
    sigma = 0.012 + 0.018 * u[1]
    shares = _log_uniform(u[2], 3e5, 3e7)
    return Profile(asset_class, p0, sigma, 0.8 * sigma, 0.4 * sigma if gapped else 0.0, 2, shares, 0,
                   60.0 + 140.0 * u[3])


def fold(x: np.ndarray, band: float = LOG_BAND) -> np.ndarray:
    """Reflect log-price offsets into ``[-band, band]`` (a reflected random walk)."""
    a = band
    return np.asarray(a - np.abs(np.mod(x + a, 4.0 * a) - 2.0 * a))
