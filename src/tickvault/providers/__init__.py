"""tickvault.providers (see docs/architecture.md and docs/providers.md).

The network providers and their settings load on first use (``tickvault.providers.YahooProvider``),
so importing the protocol in :mod:`tickvault.providers.base` does not pull in httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickvault.providers._http import HttpProvider, ProviderSettings, provider_settings_from_env
    from tickvault.providers.alpaca import AlpacaProvider
    from tickvault.providers.polygon import PolygonProvider
    from tickvault.providers.yahoo import YahooProvider

__all__: list[str] = [
    "AlpacaProvider",
    "HttpProvider",
    "PolygonProvider",
    "ProviderSettings",
    "YahooProvider",
    "provider_settings_from_env",
]

_LAZY = {
    "AlpacaProvider": "tickvault.providers.alpaca",
    "HttpProvider": "tickvault.providers._http",
    "PolygonProvider": "tickvault.providers.polygon",
    "ProviderSettings": "tickvault.providers._http",
    "YahooProvider": "tickvault.providers.yahoo",
    "provider_settings_from_env": "tickvault.providers._http",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tickvault.providers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
