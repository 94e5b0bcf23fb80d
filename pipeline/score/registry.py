"""Which model serves: the one place that answers it.

In this order: ``FINSENT_MODEL_PATH`` (the user's pin), else the model the evaluation gate
promoted (recorded in ``<data_dir>/models/current.json``), else the released model
committed under ``models/``. Scoring, ``finsent run``, the evaluation CLI and the gate's
baseline all ask here, and a run resolves and checks the folder once (:func:`serving_model`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ModelError
from pipeline.paths import MODELS_DIR
from pipeline.score.loading import check_labels, check_model_dir, check_weights, model_version_of

if TYPE_CHECKING:
    from pipeline.settings import Settings

__all__ = [
    "PROMOTION_FILE",
    "ServingModel",
    "promoted_model",
    "released_model",
    "resolve_model_path",
    "serving_model",
    "write_promotion",
]

log = logging.getLogger(__name__)

#: The promotion record, relative to the data dir.
PROMOTION_FILE = Path("models") / "current.json"


@dataclass(frozen=True)
class ServingModel:
    """A checked model folder and the version its scores are stored under."""

    path: Path
    version: str


def released_model(models_dir: Path = MODELS_DIR) -> Path | None:
    """The released model committed under ``models/`` (None if there is none).

    One release is committed; an older one restored beside it from git (a recipe that trains
    from it does) must not take over serving or the gate's comparison: the newest by version
    number wins (finsent-minilm-v10 after v9). Only a release counts, a folder whose
    ``metrics.json`` holds the served figures the release tool records: a model trained or
    copied into ``models/`` (``--out models/my-model``) would otherwise serve, ungated,
    whenever its name sorts after the release's."""
    if not models_dir.is_dir():
        return None
    found = sorted(
        (p.parent for p in models_dir.glob("*/config.json") if _is_release(p.parent)), key=_version_order
    )
    return found[-1] if found else None


def _is_release(folder: Path) -> bool:
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and isinstance(metrics.get("released"), dict)


def _version_order(path: Path) -> list[tuple[int, int | str]]:
    """A folder name's natural order: its runs of digits compare as numbers."""
    return [(1, int(part)) if part.isdigit() else (0, part) for part in re.split(r"(\d+)", path.name) if part]


def promoted_model(data_dir: Path, *, strict: bool = False) -> str | None:
    """The promoted model path from ``<data_dir>/models/current.json``, if any.

    A malformed record is ignored with a warning, or with ``strict`` raises ModelError
    (the pipeline's choice: scoring with an unintended model is worse than stopping)."""
    path = Path(data_dir) / PROMOTION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return str(record.get("path") or record["model_path"])
    except (ValueError, KeyError, TypeError, AttributeError):
        if strict:
            raise ModelError(
                f"{path} is not a valid promotion record: delete it or re-run `finsent train --promote`"
            ) from None
        log.warning("ignoring malformed %s", path)
        return None


def write_promotion(data_dir: Path, model_path: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    """Atomically record ``model_path`` as the model that serves (unless pinned)."""
    target = Path(data_dir) / PROMOTION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    resolved = str(Path(model_path).resolve())
    # "path" is what promoted_model reads; "model_path" is kept for older readers.
    payload = {
        "path": resolved,
        "model_path": resolved,
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
    }
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as fh:
        json.dump(payload, fh, indent=2)
        tmp = fh.name
    os.replace(tmp, target)
    return target


def resolve_model_path(settings: Settings, *, strict: bool = True) -> str:
    """FINSENT_MODEL_PATH, else the promoted model while its folder exists, else the released
    model. Raises ModelError when none exists (and, with ``strict``, on a malformed
    promotion record)."""
    if settings.model_path:
        return settings.model_path
    path = promoted_model(settings.data_dir, strict=strict)
    if path is not None:
        if Path(path).is_dir():
            return path
        log.warning("promoted model %s is gone; falling back to the released model", path)
    released = released_model()
    if released is None:
        raise ModelError("no sentiment model: set FINSENT_MODEL_PATH, or train one with `finsent train`")
    return str(released)


def serving_model(settings: Settings, model_path: str | Path | None = None) -> ServingModel:
    """The model to serve (``model_path``, else :func:`resolve_model_path`), checked and
    versioned from its folder alone (no model load). Call once per run and pass it on.

    The checks are the cheap ones (config labels, weight-file headers): a bad folder stops a
    run before it ingests articles it could not score."""
    folder = check_model_dir(model_path or resolve_model_path(settings))
    check_labels(folder)
    check_weights(folder)
    return ServingModel(path=folder, version=model_version_of(folder))
