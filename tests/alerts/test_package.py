"""The alerts package's surface: ``__all__`` declared, no private name imported across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline.alerts
import pipeline.alerts.transports

ALERTS = Path(pipeline.alerts.__file__).parent


def test_packages_declare_what_they_offer():
    for package in (pipeline.alerts, pipeline.alerts.transports):
        assert package.__all__
        for name in package.__all__:
            assert getattr(package, name) is not None


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for path in sorted(ALERTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
                offenders += [
                    f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                ]
    assert offenders == []
