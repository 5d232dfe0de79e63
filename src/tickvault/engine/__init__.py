"""tickvault.engine (see docs/architecture.md)."""

__all__: list[str] = []
