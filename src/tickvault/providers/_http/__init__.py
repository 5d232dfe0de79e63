"""The shared toolkit of HTTP providers: client, limits, redaction, payload readers, paging.

Every network provider (Yahoo, Polygon, Alpaca and later Alpha Vantage, Tiingo, FMP, ccxt)
is built from these pieces so that rate limiting, retries with backoff and jitter honouring
``Retry-After``, the circuit breaker, timeouts and key redaction behave the same everywhere.
See ``docs/providers.md`` for the architecture and ``providers/_template`` for a copy-me
provider.
"""

from tickvault.providers._http._canonical import (
    DAY_US,
    bars_table,
    calendar_for,
    coverage_for,
    finish,
    local_days,
    regular_hours_in_window,
    regular_hours_mask,
    session_keys,
    settled_before,
    unadjust,
)
from tickvault.providers._http._client import Auth, AuthTransport, HttpClient, HttpSession, Params, Reply
from tickvault.providers._http._limits import CircuitBreaker, RateLimiter, RetryPolicy, parse_retry_after
from tickvault.providers._http._paging import DEFAULT_MAX_PAGES, follow_pages
from tickvault.providers._http._payload import (
    column,
    epoch_to_us,
    expect_dict,
    expect_list,
    float_column,
    int_column,
    iso_to_us,
    optional,
    record_columns,
    require,
    same_length,
)
from tickvault.providers._http._provider import HttpProvider
from tickvault.providers._http._redact import MASK, Redactor, scrub_error
from tickvault.providers._http._settings import ProviderSettings, provider_settings_from_env
from tickvault.providers._http._timing import SYSTEM_CLOCK, Clock

__all__ = [
    "DAY_US",
    "DEFAULT_MAX_PAGES",
    "MASK",
    "SYSTEM_CLOCK",
    "Auth",
    "AuthTransport",
    "CircuitBreaker",
    "Clock",
    "HttpClient",
    "HttpProvider",
    "HttpSession",
    "Params",
    "ProviderSettings",
    "RateLimiter",
    "Redactor",
    "Reply",
    "RetryPolicy",
    "bars_table",
    "calendar_for",
    "column",
    "coverage_for",
    "epoch_to_us",
    "expect_dict",
    "expect_list",
    "finish",
    "float_column",
    "follow_pages",
    "int_column",
    "iso_to_us",
    "local_days",
    "optional",
    "parse_retry_after",
    "provider_settings_from_env",
    "record_columns",
    "regular_hours_in_window",
    "regular_hours_mask",
    "require",
    "same_length",
    "scrub_error",
    "session_keys",
    "settled_before",
    "unadjust",
]
