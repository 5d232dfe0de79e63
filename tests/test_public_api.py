"""Pin the public names so the API cannot drift by accident (update deliberately, with a changelog entry)."""

from __future__ import annotations

import importlib

import pytest

import tickvault

EXPECTED = {
    "tickvault": [
        "BarEvent", "CopyReport", "CorporateAction", "CorruptData", "CoverageInterval", "CoverageState", "FetchOutcome",
        "FileFormatError", "ImportResult", "Instrument", "InvalidInput", "InvalidSymbol", "InvalidTimeframe",
        "MissingData", "Provider", "ProviderError", "QualityReport", "SchemaError", "SeriesStatus", "Settings",
        "StorageError", "StoreLocked", "TickvaultError", "TimeRange", "Timeframe", "Vault", "WriteReceipt",
        "__version__", "errors", "migrate", "open",
    ],
    "tickvault.engine": ["Adjust", "BarEvent", "CopyReport", "Fetch", "FetchOutcome", "ImportResult", "SeriesStatus",
                         "Vault"],
    "tickvault.store": ["QUARANTINE_SCHEMA", "BarStore", "MemoryStore", "SeriesInfo", "VerifyReport"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_public_names_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPECTED[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_every_package_declares_all() -> None:
    for pkg in ["model", "calendars", "quality", "transform", "providers", "store", "cache", "engine", "cli",
                "testing"]:
        mod = importlib.import_module(f"tickvault.{pkg}")
        assert isinstance(mod.__all__, list | tuple), pkg


def test_errors_form_one_tree() -> None:
    from tickvault import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.TickvaultError)
    assert issubclass(errors.InvalidSymbol, ValueError)
    assert issubclass(errors.RateLimited, errors.RetryableProviderError)
    assert not issubclass(errors.AuthenticationFailed, errors.RetryableProviderError)


def test_error_messages_carry_context() -> None:
    from tickvault import errors

    e = errors.ProviderUnavailable("server error", provider="yahoo", status=503)
    assert str(e) == "server error (provider=yahoo, status=503)"
    assert e.status == 503
    f = errors.FileFormatError("bad number 'x' in column open", path="a.csv", line=12)
    assert str(f) == "a.csv:12: bad number 'x' in column open"


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        tickvault.NoSuchThing  # noqa: B018


def test_catalog_keys_and_vendor_symbols_reject_a_trailing_newline() -> None:
    from tickvault.errors import InvalidInput, InvalidSymbol
    from tickvault.providers._symbols import canonical_symbol
    from tickvault.store.base import check_meta_key

    with pytest.raises(InvalidInput):
        check_meta_key("key\n")
    with pytest.raises(InvalidSymbol):
        canonical_symbol("yahoo", "AAPL\n")
