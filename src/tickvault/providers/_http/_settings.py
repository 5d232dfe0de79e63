"""Typed per-provider settings, built at the edge from a mapping of environment variables.

Library code never reads ``os.environ`` (STYLE.md): the edge (``tickvault.open``, the CLI)
calls :func:`provider_settings_from_env` with ``os.environ`` and hands the result to the
provider. Keys are :class:`pydantic.SecretStr`, so ``repr(settings)`` shows ``'**********'``.

Variables, for a provider called ``name`` (upper-cased, e.g. ``ALPHA_VANTAGE``)::

    TICKVAULT_<NAME>_BASE_URL     where the API lives (tests point it at a replay server)
    TICKVAULT_<NAME>_API_KEY      credential (SecretStr)
    TICKVAULT_<NAME>_API_SECRET   second credential where the vendor has one (SecretStr)
    TICKVAULT_<NAME>_TIMEOUT      seconds per HTTP request
    TICKVAULT_<NAME>_RATE_LIMIT   requests per minute (0 or empty: unlimited)
    TICKVAULT_<NAME>_MAX_RETRIES  retries of a transient failure (429, 5xx, timeout)
    TICKVAULT_<NAME>_<OPTION>     provider-specific options it declares (e.g. ALPACA_FEED)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from tickvault.errors import ConfigError

__all__ = ["ProviderSettings", "provider_settings_from_env"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")


@dataclass(frozen=True)
class ProviderSettings:
    """Configuration of one HTTP provider.

    Parameters
    ----------
    name
        Provider name (``yahoo``, ``polygon``, ``alpha_vantage``): lower-case, ``[a-z0-9_]``.
    base_url
        Scheme and host (and optional path prefix) of the API, e.g. ``https://api.polygon.io``.
    api_key, api_secret
        Credentials; never shown in reprs, logs, exceptions or URLs in messages.
    timeout
        Seconds allowed per HTTP request (connect, read, write, pool).
    rate_limit_per_minute
        Client-side limit on requests per minute (``None``: no limit).
    max_retries
        How many times a transient failure (429, 5xx, timeout, refused connection) is retried.
    options
        Provider-specific string options (``{"feed": "iex"}``).

    Raises
    ------
    ConfigError
        If the name or base URL is malformed or a number is out of range.
    """

    name: str
    base_url: str
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    timeout: float = 10.0
    rate_limit_per_minute: float | None = None
    max_retries: int = 3
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"provider name must match {_NAME_RE.pattern}, got {self.name!r}")
        parts = urlsplit(self.base_url) if isinstance(self.base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            # The URL itself is not echoed: a user may have pasted a key into it.
            raise ConfigError("base URL must be an http(s) URL without a query string", provider=self.name)
        if parts.username or parts.password:
            raise ConfigError("base URL must not carry credentials; use the API key settings",
                              provider=self.name)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        for key_name in ("api_key", "api_secret"):
            value = getattr(self, key_name)
            if isinstance(value, str):
                object.__setattr__(self, key_name, SecretStr(value))
            if getattr(self, key_name) is not None and not getattr(self, key_name).get_secret_value():
                object.__setattr__(self, key_name, None)
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout!r}", provider=self.name)
        if self.rate_limit_per_minute is not None and not self.rate_limit_per_minute > 0:
            raise ConfigError(f"rate limit must be positive, got {self.rate_limit_per_minute!r}",
                              provider=self.name)
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be a non-negative integer, got {self.max_retries!r}",
                              provider=self.name)
        object.__setattr__(self, "options", dict(self.options))

    @property
    def has_credentials(self) -> bool:
        """Whether an API key is configured."""
        return self.api_key is not None

    def secrets(self) -> tuple[str, ...]:
        """The raw secret values (for redaction only; never log them)."""
        return tuple(s.get_secret_value() for s in (self.api_key, self.api_secret) if s is not None)

    def with_changes(self, **changes: Any) -> ProviderSettings:
        """A validated copy with some fields changed."""
        return replace(self, **changes)


def _number(environ: Mapping[str, str], var: str, name: str, kind: type[float] | type[int]) -> Any:
    raw = environ.get(var)
    if raw is None or not raw.strip():
        return None
    try:
        return kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{var} must be a number, got {raw.strip()[:20]!r}", provider=name) from None


def provider_settings_from_env(name: str, environ: Mapping[str, str], *,
                               defaults: ProviderSettings | None = None,
                               options: Iterable[str] = ()) -> ProviderSettings:
    """Build a provider's settings from ``TICKVAULT_<NAME>_*`` variables over its defaults.

    Parameters
    ----------
    name
        Provider name; ``alpha_vantage`` reads ``TICKVAULT_ALPHA_VANTAGE_*``.
    environ
        The environment mapping (the edge passes ``os.environ``; tests pass a dict).
    defaults
        The provider's defaults (at least its public base URL). Each provider class exposes
        them as ``DEFAULT_SETTINGS``; required when ``TICKVAULT_<NAME>_BASE_URL`` is unset.
    options
        Provider-specific option names to read (``feed`` reads ``TICKVAULT_<NAME>_FEED``).

    Returns
    -------
    ProviderSettings

    Raises
    ------
    ConfigError
        If a value is malformed or no base URL is known.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"provider name must match {_NAME_RE.pattern}, got {name!r}")
    prefix = f"TICKVAULT_{name.upper()}_"
    base_url = environ.get(prefix + "BASE_URL") or (defaults.base_url if defaults else None)
    if not base_url:
        raise ConfigError(f"no base URL for provider {name}; set {prefix}BASE_URL", provider=name)
    key = environ.get(prefix + "API_KEY")
    secret = environ.get(prefix + "API_SECRET")
    timeout = _number(environ, prefix + "TIMEOUT", name, float)
    rate = _number(environ, prefix + "RATE_LIMIT", name, float)
    retries = _number(environ, prefix + "MAX_RETRIES", name, int)
    opts = dict(defaults.options) if defaults else {}
    for opt in options:
        value = environ.get(prefix + opt.upper())
        if value is not None and value.strip():
            opts[opt.lower()] = value.strip()
    base = defaults or ProviderSettings(name=name, base_url=base_url)
    return ProviderSettings(
        name=name,
        base_url=base_url,
        api_key=SecretStr(key) if key else base.api_key,
        api_secret=SecretStr(secret) if secret else base.api_secret,
        timeout=timeout if timeout is not None else base.timeout,
        rate_limit_per_minute=(None if rate == 0 else rate) if rate is not None else base.rate_limit_per_minute,
        max_retries=retries if retries is not None else base.max_retries,
        options=opts,
    )
