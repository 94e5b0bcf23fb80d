"""Serving-side scoring code (minimal placeholder: the serving package defines the rest)."""

__all__: list[str] = []
