"""The headline check: how a model does on the register FinSent scores, and whether it is blind.

FPB, the benchmark of record, is sentences from company reports; FinSent scores news
headlines. The TFNS rows that split seed 42 holds out (``data.headline_heldout``) are a
second test in that register. A model chosen on FPB alone can be much worse on headlines
(the model card's A2: best FPB test numbers, 13 points worse on these rows), which users
would pay for in false alarms, so the evaluation gate guards against a headline regression.

A score on rows a model trained on says nothing, so every checkpoint records how many of
these rows it trained on, added to what the checkpoint it was fine-tuned from recorded
(its lineage). The gate applies the headline guard only to a candidate whose lineage is
known to have seen none of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.sentiment.data import DataFormatError, Example, headline_heldout, normalise_text

logger = logging.getLogger(__name__)

HEADLINE_SET = "tfns-heldout"
RECORD_KEY = "headline_check"
SPLIT_SEED = 42
VAL_FRACTION = 0.1


def load_headline_rows(data_dir: Path) -> list[Example]:
    """The check's rows, or [] (with a warning) when the data dir lacks FPB or TFNS."""
    try:
        return headline_heldout(Path(data_dir), SPLIT_SEED, VAL_FRACTION)
    except (DataFormatError, FileNotFoundError) as exc:
        logger.warning("headline check skipped: %s", exc)
        return []


def rows_seen(train_texts: Iterable[str], rows: Sequence[Example]) -> int:
    """How many of ``rows`` are among ``train_texts`` (compared as normalised text)."""
    keys = {normalise_text(text) for text in train_texts}
    return sum(normalise_text(ex.text) in keys for ex in rows)


def recorded_seen(model_dir: str | Path) -> int | None:
    """The rows of the check that a FinSent checkpoint's lineage trained on, as its
    ``metrics.json`` records it; None when it does not say (an older checkpoint, a folder
    that is not one)."""
    path = Path(model_dir).expanduser() / "metrics.json"
    try:
        record = json.loads(path.read_text()).get(RECORD_KEY) or {}
    except (OSError, ValueError, AttributeError):
        return None
    seen = record.get("seen_in_lineage") if isinstance(record, dict) else None
    return seen if isinstance(seen, int) and not isinstance(seen, bool) else None


def inherited_seen(base_model: str, architectures: Sequence[str] | None) -> int | None:
    """Rows of the check that the base model already trained on.

    A FinSent checkpoint says (``recorded_seen``). A pretrained encoder (no classification
    head in its config) has seen no labelled rows: 0. A classifier fine-tuned elsewhere may
    have trained on TFNS, and nothing says: None (unknown).
    """
    folder = Path(base_model).expanduser()
    if (folder / "training_config.json").is_file():
        return recorded_seen(folder)
    if any(name.endswith("ForSequenceClassification") for name in architectures or ()):
        return None
    return 0


def headline_record(rows: Sequence[Example], own: int | None, inherited: int | None) -> dict[str, Any]:
    """The ``metrics.json`` entry describing the check and this checkpoint's blindness."""
    return {
        "set": HEADLINE_SET,
        "rows": len(rows),
        "split_seed": SPLIT_SEED,
        "val_fraction": VAL_FRACTION,
        "seen_in_training": own,
        "seen_in_lineage": own + inherited if own is not None and inherited is not None else None,
    }


def blindness(seen: int | None, n_rows: int | None = None) -> str:
    """One phrase for reports: whether a score on the check can be trusted."""
    if seen is None:
        return "of unknown blindness (it or a checkpoint it was fine-tuned from does not record it)"
    rows = f"the {n_rows} rows" if n_rows else "these rows"
    if seen == 0:
        return f"blind (its lineage trained on none of {rows})"
    return f"not blind (its lineage trained on {seen} of {rows})"
