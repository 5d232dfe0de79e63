"""Embedded store (in progress)."""

__all__: list[str] = []
