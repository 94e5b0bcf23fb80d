"""Where the checkout is: the one definition of the repository root and what lives in it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS_DIR", "RECIPES_DIR", "REPO_ROOT", "SHARED_DATA_DIR"]

#: The checkout (or installed source tree) FinSent runs from.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Released models, committed with the code.
MODELS_DIR = REPO_ROOT / "models"
#: Training recipes (``finsent train --recipe``).
RECIPES_DIR = REPO_ROOT / "recipes"
#: Labelled data next to the checkout, the default FINSENT_TRAINING_DATA_DIR.
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
