"""ProviderSettings and provider_settings_from_env: config read at the edge, keys hidden."""

from __future__ import annotations

import pytest

from tickvault.errors import ConfigError
from tickvault.providers import ProviderSettings, provider_settings_from_env
from tickvault.providers.alpaca import AlpacaProvider
from tickvault.providers.polygon import PolygonProvider
from tickvault.providers.yahoo import YahooProvider

KEY = "sk-TEST-SECRET-123"


def test_settings_from_env_override_the_defaults() -> None:
    env = {
        "TICKVAULT_POLYGON_BASE_URL": "http://127.0.0.1:9/",
        "TICKVAULT_POLYGON_API_KEY": KEY,
        "TICKVAULT_POLYGON_TIMEOUT": "2.5",
        "TICKVAULT_POLYGON_RATE_LIMIT": "120",
        "TICKVAULT_POLYGON_MAX_RETRIES": "0",
        "TICKVAULT_POLYGON_EXTENDED_HOURS": "true",
        "TICKVAULT_YAHOO_API_KEY": "not-for-polygon",
    }
    s = provider_settings_from_env("polygon", env, defaults=PolygonProvider.DEFAULT_SETTINGS,
                                   options=PolygonProvider.OPTIONS)
    assert s.base_url == "http://127.0.0.1:9"
    assert s.api_key is not None
    assert s.api_key.get_secret_value() == KEY
    assert (s.timeout, s.rate_limit_per_minute, s.max_retries) == (2.5, 120.0, 0)
    assert s.options == {"extended_hours": "true"}


def test_defaults_apply_when_the_environment_is_silent() -> None:
    s = provider_settings_from_env("alpaca", {}, defaults=AlpacaProvider.DEFAULT_SETTINGS)
    assert s == AlpacaProvider.DEFAULT_SETTINGS
    assert not s.has_credentials


def test_rate_limit_zero_means_unlimited() -> None:
    s = provider_settings_from_env("yahoo", {"TICKVAULT_YAHOO_RATE_LIMIT": "0"},
                                   defaults=YahooProvider.DEFAULT_SETTINGS)
    assert s.rate_limit_per_minute is None


def test_provider_from_env_reads_its_own_prefix_only() -> None:
    p = AlpacaProvider.from_env({"TICKVAULT_ALPACA_API_KEY": KEY, "TICKVAULT_ALPACA_API_SECRET": "s3",
                                 "TICKVAULT_ALPACA_FEED": "iex", "TICKVAULT_POLYGON_API_KEY": "other"})
    assert p.settings.has_credentials
    assert p.provenance == "alpaca:iex"
    assert KEY not in repr(p)
    assert KEY not in repr(p.settings)
    assert KEY not in str(p.settings)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"TICKVAULT_YAHOO_TIMEOUT": "soon"}, "TIMEOUT must be a number"),
        ({"TICKVAULT_YAHOO_TIMEOUT": "-1"}, "timeout must be positive"),
        ({"TICKVAULT_YAHOO_MAX_RETRIES": "1.5"}, "MAX_RETRIES must be a number"),
        ({"TICKVAULT_YAHOO_BASE_URL": "ftp://example.com"}, "http(s) URL"),
        ({"TICKVAULT_YAHOO_BASE_URL": f"https://example.com/?apikey={KEY}"}, "without a query string"),
        ({"TICKVAULT_YAHOO_BASE_URL": f"https://user:{KEY}@example.com"}, "must not carry credentials"),
    ],
)
def test_malformed_settings_raise_config_error_without_echoing_secrets(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        provider_settings_from_env("yahoo", env, defaults=YahooProvider.DEFAULT_SETTINGS)
    assert fragment in str(info.value)
    assert KEY not in str(info.value)


def test_unknown_provider_without_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TICKVAULT_NEWCO_BASE_URL"):
        provider_settings_from_env("newco", {})
    s = provider_settings_from_env("newco", {"TICKVAULT_NEWCO_BASE_URL": "https://api.newco.test"})
    assert s.name == "newco"


def test_bad_provider_names_are_rejected() -> None:
    with pytest.raises(ConfigError):
        provider_settings_from_env("Bad-Name", {})
    with pytest.raises(ConfigError):
        ProviderSettings("x y", "https://example.com")


def test_settings_for_another_provider_are_refused() -> None:
    with pytest.raises(ConfigError, match="not 'yahoo'"):
        YahooProvider(ProviderSettings("polygon", "https://api.polygon.io"))


def test_empty_keys_count_as_absent() -> None:
    assert not ProviderSettings("polygon", "https://api.polygon.io", api_key="").has_credentials  # type: ignore[arg-type]
