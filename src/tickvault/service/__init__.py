"""tickvault.service: the HTTP/WebSocket API over a vault (docs/service.md).

>>> import tickvault
>>> from tickvault.service import ServiceSettings, create_app
>>> app = create_app(tickvault.open(":memory:"), ServiceSettings())   # any ASGI server runs it

Key management (:func:`add_key`, :func:`hash_key`, ...) and the settings load without the web
framework, so ``tickvault keys`` works without the ``service`` extra; :func:`create_app` and
:class:`JsonLogFormatter` load FastAPI on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tickvault.service._keys import (
    KEY_PREFIX,
    KeyRing,
    Principal,
    add_key,
    default_keys_file,
    generate_key,
    hash_key,
    load_keys_file,
    remove_key,
)
from tickvault.service._settings import ApiKeyEntry, Role, ServiceSettings

if TYPE_CHECKING:
    from tickvault.service._app import STATIC_DIR, create_app
    from tickvault.service._logging import JsonLogFormatter, configure_logging

__all__ = [
    "KEY_PREFIX",
    "STATIC_DIR",
    "ApiKeyEntry",
    "JsonLogFormatter",
    "KeyRing",
    "Principal",
    "Role",
    "ServiceSettings",
    "add_key",
    "configure_logging",
    "create_app",
    "default_keys_file",
    "generate_key",
    "hash_key",
    "load_keys_file",
    "remove_key",
]

_LAZY = {
    "STATIC_DIR": "tickvault.service._app",
    "create_app": "tickvault.service._app",
    "JsonLogFormatter": "tickvault.service._logging",
    "configure_logging": "tickvault.service._logging",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tickvault.service' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
