"""Each package's __init__ says what it offers (__all__), and every name it lists exists."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

PACKAGES = ["pipeline.db", "pipeline.trends", "pipeline.cli", "pipeline.airflow"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_declares_what_it_offers(name: str) -> None:
    package = importlib.import_module(name)
    offered = getattr(package, "__all__", None)
    assert offered, f"{name}/__init__.py declares no __all__"
    for item in offered:
        # A listed submodule is imported on use; anything else must be defined already.
        assert hasattr(package, item) or importlib.util.find_spec(f"{name}.{item}"), f"{name}.{item}"
