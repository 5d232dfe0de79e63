"""tickvault.service (see docs/architecture.md)."""

__all__: list[str] = []
