"""The headline check: how a model does on the register FinSent scores, and whether it is blind.

FPB, the benchmark of record, is sentences from company reports; FinSent scores news
headlines. The TFNS rows that split seed 42 holds out (``data.headline_heldout``) are a
second test in that register. A model chosen on FPB alone can be much worse on headlines
(A2 in docs/model-experiments.md: best FPB test numbers, 13 points worse on these rows), which users
would pay for in false alarms, so the evaluation gate guards against a headline regression.

A score on rows a model trained on, or was selected on, says nothing, so every checkpoint
records how many of these rows it trained on and selected its best step with, added to
what the checkpoint it was fine-tuned from and its teachers recorded (its lineage). The
record names the rows by fingerprint, so it only counts for the same rows. The gate
applies the headline guard only when the candidate and the current model are both known
to be blind. Exact copies are what is counted: a paraphrase of a check row in a user's
transfer file, or a teacher's knowledge of it that is not recorded, is not seen here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.sentiment.data import (
    DataFormatError,
    Example,
    headline_heldout,
    normalise_text,
    rows_fingerprint,
)

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


def rows_seen(texts: Iterable[str], rows: Sequence[Example]) -> int:
    """How many of ``rows`` are among ``texts`` (compared as normalised text)."""
    keys = {normalise_text(text) for text in texts}
    return sum(normalise_text(ex.text) in keys for ex in rows)


def recorded_seen(model_dir: str | Path, rows_sha256: str | None = None) -> int | None:
    """Exposures to the check rows in a FinSent checkpoint's lineage, as its ``metrics.json``
    records them; None when it does not say (an older checkpoint, a folder that is not one)
    or, given ``rows_sha256``, when the record was made for other rows."""
    path = Path(model_dir).expanduser() / "metrics.json"
    try:
        record = json.loads(path.read_text()).get(RECORD_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(record, dict):
        return None
    if rows_sha256 is not None and record.get("rows_sha256") != rows_sha256:
        return None
    seen = record.get("seen_in_lineage")
    return seen if isinstance(seen, int) and not isinstance(seen, bool) else None


def _architectures(model: str) -> list[str] | None:
    try:
        config = json.loads((Path(model).expanduser() / "config.json").read_text())
    except (OSError, ValueError):
        return None
    archs = config.get("architectures") if isinstance(config, dict) else None
    return archs if isinstance(archs, list) else None


def inherited_seen(
    model: str, architectures: Sequence[str] | None = None, rows_sha256: str | None = None
) -> int | None:
    """Exposures to the check rows that a base model or teacher brings along.

    A FinSent checkpoint says (``recorded_seen``). A pretrained encoder (no classification
    head in its config) has seen no labelled rows: 0. A classifier trained elsewhere may
    have trained on TFNS, and nothing says: None (unknown). ``architectures`` defaults to
    those of the folder's ``config.json`` (a Hub id's come from the loaded model).
    """
    folder = Path(model).expanduser()
    if (folder / "training_config.json").is_file():
        return recorded_seen(folder, rows_sha256)
    archs = architectures if architectures is not None else _architectures(model)
    if any(name.endswith("ForSequenceClassification") for name in archs or ()):
        return None
    return 0


def headline_record(
    rows: Sequence[Example],
    trained: int,
    selected: int,
    inherited: int | None,
    rows_sha256: str | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` entry describing the check and this checkpoint's exposure to it.

    ``seen_in_lineage`` adds up exposures (rows trained on, rows used to select the best
    step, and what the base model and teachers recorded): a row seen in two generations
    counts twice. Only whether it is 0 matters to the gate. ``rows_sha256``: the rows'
    fingerprint when the caller has it already.
    """
    return {
        "set": HEADLINE_SET,
        "rows": len(rows),
        "rows_sha256": rows_sha256 or rows_fingerprint(list(rows)),
        "split_seed": SPLIT_SEED,
        "val_fraction": VAL_FRACTION,
        "seen_in_training": trained,
        "seen_in_selection": selected,
        "seen_in_lineage": trained + selected + inherited if inherited is not None else None,
    }


def blindness(seen: int | None, n_rows: int | None = None) -> str:
    """One phrase for reports: whether a score on the check can be trusted."""
    if seen is None:
        return (
            "of unknown blindness (it, a checkpoint it was fine-tuned from or a teacher does "
            "not record it for these rows)"
        )
    rows = f"the {n_rows} rows" if n_rows else "these rows"
    if seen == 0:
        return f"blind (its lineage never trained or selected on {rows})"
    return f"not blind ({seen} exposures to {rows} in its lineage, training or selection)"
