"""Entity-level evaluation: the sentiment of a headline *for each company it names*, on the
``test`` rows of SEntFiN (``sentfin/sentfin_split.tsv``), overall and on the mixed rows
(headlines whose companies carry different labels), next to the baseline the pipeline had
before company-level scores: each company gets its headline's label.

Training reports it for runs with targeted sources; the release measures it through the
serving classifier (``served_entity_metrics``), and the model card shows that.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.sentiment.entity_data import SENTFIN_FILE, EntityRow, read_sentfin

__all__ = ["ENTITY_SET", "entity_metrics", "entity_test_rows", "served_entity_metrics"]

logger = logging.getLogger(__name__)

# The metrics.json key of the check (checkpoint and released numbers alike).
ENTITY_SET = "sentfin-test"


def entity_test_rows(data_dir: Path) -> list[EntityRow]:
    """SEntFiN ``test`` rows, [] when the data dir has no SEntFiN (reporting only)."""
    path = Path(data_dir) / SENTFIN_FILE
    if not path.is_file():
        logger.warning("entity-level check skipped: %s not found", path)
        return []
    return read_sentfin(path, split="test")


def entity_metrics(preds: np.ndarray, rows: list[EntityRow]) -> dict[str, Any]:
    """Accuracy and macro-F1 over all rows and over mixed rows, from label ids."""
    from sklearn.metrics import f1_score

    labels = np.array([r.label for r in rows])
    mixed = np.array([r.mixed for r in rows], dtype=bool)
    out: dict[str, Any] = {}
    for name, mask in (("all", np.ones_like(mixed)), ("mixed", mixed)):
        y, p = labels[mask], np.asarray(preds)[mask]
        out[name] = {
            "n": int(mask.sum()),
            "accuracy": float((y == p).mean()) if len(y) else 0.0,
            "macro_f1": float(f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0)),
        }
    return out


def served_entity_metrics(classifier: Any, rows: list[EntityRow]) -> dict[str, Any]:
    """Through a ``SentimentClassifier`` as the pipeline serves: the label for each
    (headline, company) pair, and the headline's own label copied to each company."""
    pairs = classifier.predict_targets_proba([r.text for r in rows], [r.target for r in rows])
    texts = sorted({r.text for r in rows})
    whole = dict(zip(texts, classifier.predict_proba(texts).argmax(axis=1), strict=True))
    return {
        "target": entity_metrics(pairs.argmax(axis=1), rows),
        "copy_article_label": entity_metrics(np.array([whole[r.text] for r in rows]), rows),
    }
