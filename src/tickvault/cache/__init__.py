"""tickvault.cache (see docs/architecture.md)."""

__all__: list[str] = []
