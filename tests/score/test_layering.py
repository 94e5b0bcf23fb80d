"""Serving stands apart from the training lab: ``pipeline.score`` imports nothing from
``pipeline.sentiment`` (the lab imports serving, never the reverse).

Checked by parsing imports, as tests/dags/test_integrity.py checks thin DAGs: every
``import``/``from`` in a serving module, at top level or inside a function, counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.paths import REPO_ROOT

SERVING = REPO_ROOT / "pipeline" / "score"
LAB = "pipeline.sentiment"
# Modules outside the package that belong to serving: they must not reach the lab either.
SERVING_MODULES = [*sorted(SERVING.glob("*.py")), REPO_ROOT / "pipeline" / "scoring.py"]


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source`` (relative imports resolved)."""
    found = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            # ``from pipeline import sentiment`` names the lab too.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def lab_imports(path: Path) -> list[str]:
    module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for line, name in imported_modules(path.read_text(), module)
        if name == LAB or name.startswith(LAB + ".")
    ]


@pytest.mark.parametrize("path", SERVING_MODULES, ids=lambda p: p.name)
def test_serving_imports_nothing_from_the_training_lab(path: Path) -> None:
    assert lab_imports(path) == []


def test_the_check_catches_each_form_of_import() -> None:
    for source in (
        "import pipeline.sentiment.gate",
        "from pipeline.sentiment.data import LABELS",
        "from pipeline import sentiment",
        "def f():\n    from pipeline.sentiment import train\n",
    ):
        names = [name for _, name in imported_modules(source, "pipeline.score.service")]
        assert any(n == LAB or n.startswith(LAB + ".") for n in names), source
    relative = imported_modules("from ..sentiment import gate", "pipeline.score.service")
    assert "pipeline.sentiment.gate" in [n for _, n in relative], relative


def test_the_lab_loads_models_through_serving() -> None:
    # The direction the other way round is the point: the gate, the release tool and
    # training share serving's loader instead of calling from_pretrained themselves.
    lab = REPO_ROOT / "pipeline" / "sentiment"
    for name in ("gate.py", "release.py", "train.py"):
        source = (lab / name).read_text()
        assert "load_sequence_classifier" in source, name
        assert "AutoModelForSequenceClassification" not in source, name
