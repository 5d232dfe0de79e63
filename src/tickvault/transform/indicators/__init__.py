"""Technical indicators over many symbols at once (numpy and compiled kernels), batch and incremental.

Layout: every function takes 1-D arrays ``(bars,)`` or a stacked 2-D layout
``(symbols, bars)`` (one row per symbol, aligned on the same bar timestamps, time on the last
axis) and returns arrays of the same shape. Leading NaNs in a row mean "no data yet" (a
symbol listed later); each row's warm-up starts at its own first value.

Incremental form: ``state = ema_state(history, 20)`` then ``value, state = ema_update(state,
new_close)`` for each appended bar (a float for a 1-D series, a ``(symbols,)`` array for a
stacked one). The incremental form reproduces the batch form to rounding.

Names: :func:`parse_indicator` and :func:`compute` understand ``"rsi_14"``,
``"macd_12_26_9"``, ``"bb_20_2"``, ``"sma_200"``, ``"ema_50"``, ``"wma_20"``, ``"atr_14"``,
``"stoch_14_3_3"``, ``"adx_14"``, ``"obv"`` and ``"vwap"``.

Warm-up and seeding conventions per indicator, and parity with TA-Lib, StockCharts and
Tulip, are in docs/analytics.md.
"""

from tickvault.transform.indicators._ma import (
    EMAState,
    Seed,
    SMAState,
    WMAState,
    ema,
    ema_state,
    ema_update,
    sma,
    sma_state,
    sma_update,
    wilder,
    wilder_state,
    wilder_update,
    wma,
    wma_state,
    wma_update,
)
from tickvault.transform.indicators._oscillators import (
    MACD,
    MACDState,
    RSIState,
    Stoch,
    StochState,
    macd,
    macd_state,
    macd_update,
    rsi,
    rsi_state,
    rsi_update,
    stoch,
    stoch_state,
    stoch_update,
)
from tickvault.transform.indicators._registry import IndicatorSpec, compute, parse_indicator
from tickvault.transform.indicators._trend import ADX, ADXState, adx, adx_state, adx_update
from tickvault.transform.indicators._volatility import (
    ATRState,
    BBState,
    Bollinger,
    BollingerBands,
    atr,
    atr_state,
    atr_update,
    bbands,
    bbands_state,
    bbands_update,
    true_range,
)
from tickvault.transform.indicators._volume import (
    OBVState,
    VWAPState,
    obv,
    obv_state,
    obv_update,
    session_starts,
    vwap,
    vwap_state,
    vwap_update,
)

__all__ = [
    "ADX",
    "MACD",
    "ADXState",
    "ATRState",
    "BBState",
    "Bollinger",
    "BollingerBands",
    "EMAState",
    "IndicatorSpec",
    "MACDState",
    "OBVState",
    "RSIState",
    "SMAState",
    "Seed",
    "Stoch",
    "StochState",
    "VWAPState",
    "WMAState",
    "adx",
    "adx_state",
    "adx_update",
    "atr",
    "atr_state",
    "atr_update",
    "bbands",
    "bbands_state",
    "bbands_update",
    "compute",
    "ema",
    "ema_state",
    "ema_update",
    "macd",
    "macd_state",
    "macd_update",
    "obv",
    "obv_state",
    "obv_update",
    "parse_indicator",
    "rsi",
    "rsi_state",
    "rsi_update",
    "session_starts",
    "sma",
    "sma_state",
    "sma_update",
    "stoch",
    "stoch_state",
    "stoch_update",
    "true_range",
    "vwap",
    "vwap_state",
    "vwap_update",
    "wilder",
    "wilder_state",
    "wilder_update",
    "wma",
    "wma_state",
    "wma_update",
]
