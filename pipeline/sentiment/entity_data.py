"""Entity-level training rows: (text, target, label) from SEntFiN, synthetic mixed
headlines, and the sentence-level sets with the whole text as target.

SEntFiN (``sentfin/sentfin_split.tsv``) labels each entity a headline names; its fixed
``split`` column keeps ``test`` rows for evaluation only. Few of its headlines name two
companies with opposite sentiment, so :func:`synthetic_mixed` joins two single-entity
``train`` headlines of different labels into one ("A rises on X, while B slumps on Y"),
each entity keeping its own headline's label: the model must read the clause about its
target, not the headline's overall tone.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.sentiment.data import LABEL2ID, DataFormatError, Example

__all__ = [
    "SENTFIN_FILE",
    "EntityRow",
    "read_sentfin",
    "sentence_rows",
    "split_by_text",
    "synthetic_mixed",
]

logger = logging.getLogger(__name__)

SENTFIN_FILE = "sentfin/sentfin_split.tsv"
SENTFIN_COLUMNS = ("id", "title", "entities", "n_entities", "mixed", "split")
# Connectives that join two clauses about different companies; the contrastive ones
# dominate in real mixed headlines ("Sensex falls, but Infosys gains").
CONNECTIVES = (", while ", "; ", ", but ", " even as ", ", whereas ", " as ")


@dataclass(frozen=True)
class EntityRow:
    """One training or test row: the sentiment of ``text`` for ``target``.

    ``target`` None means the whole text (sentence-level rows). ``mixed`` is True when the
    text's entities carry different labels.
    """

    text: str
    target: str | None
    label: int
    source: str
    mixed: bool = False


def read_sentfin(path: Path, split: str | None = None) -> list[EntityRow]:
    """One row per (headline, entity) of a ``sentfin_split.tsv``-shaped file.

    ``split`` keeps only rows of that split (``train`` or ``test``); None keeps all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file; pass the SEntFiN split TSV ({SENTFIN_FILE})")
    rows: list[EntityRow] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in SENTFIN_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(f"{path}: header lacks {', '.join(missing)}; expected {SENTFIN_COLUMNS}")
        for line, raw in enumerate(reader, start=2):
            if split is not None and raw["split"] != split:
                continue
            try:
                entities = json.loads(raw["entities"])
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path}:{line}: entities is not JSON ({exc.msg})") from None
            if not isinstance(entities, dict) or not entities:
                raise DataFormatError(f"{path}:{line}: entities must be a non-empty JSON object")
            mixed = len(set(entities.values())) > 1
            for entity, label in entities.items():
                if label not in LABEL2ID:
                    raise DataFormatError(
                        f"{path}:{line}: label {label!r} for {entity!r}; "
                        f"expected one of {', '.join(LABEL2ID)}"
                    )
                rows.append(EntityRow(raw["title"], entity, LABEL2ID[label], "sentfin", mixed))
    logger.info("read %d (headline, entity) rows from %s (split %s)", len(rows), path, split or "all")
    return rows


def sentence_rows(examples: Iterable[Example]) -> list[EntityRow]:
    """Sentence-level examples as rows whose target is the whole text."""
    return [EntityRow(ex.text, None, ex.label, ex.source) for ex in examples]


def _clause(text: str) -> str:
    """A headline as a clause: trailing punctuation and surrounding space removed."""
    return re.sub(r"[\s.!?;:,]+$", "", text.strip())


def _mentions(text: str, entity: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(entity)}(?!\w)", text, re.IGNORECASE) is not None


def synthetic_mixed(
    rows: Sequence[EntityRow], n: int, seed: int, neutral_share: float = 0.25
) -> list[EntityRow]:
    """``n`` synthetic headlines (2 rows each) joining two single-entity headlines whose
    labels differ, each entity labelled as in its own headline.

    Pairs are positive/negative, except ``neutral_share`` of them pairing a neutral clause
    with a positive or negative one. Both clause orders occur. Only headlines that mention
    their entity, and not the other headline's, are used, so each target is named once.
    """
    single: dict[str, list[EntityRow]] = {}
    by_text: dict[str, list[EntityRow]] = {}
    for row in rows:
        if row.target is not None:
            by_text.setdefault(row.text, []).append(row)
    for text, group in by_text.items():
        if len(group) == 1 and group[0].target and _mentions(text, group[0].target):
            single.setdefault(next(k for k, v in LABEL2ID.items() if v == group[0].label), []).append(
                group[0]
            )
    pools = [single.get(name, []) for name in ("positive", "negative", "neutral")]
    if not pools[0] or not pools[1]:
        raise DataFormatError("synthetic mixed headlines need single-entity positive and negative rows")
    rng = random.Random(seed)
    out: list[EntityRow] = []
    attempts = 0
    while len(out) < 2 * n and attempts < 20 * n:
        attempts += 1
        pos, neg, neu = pools
        if neu and rng.random() < neutral_share:
            a, b = rng.choice(neu), rng.choice(rng.choice([pos, neg]))
        else:
            a, b = rng.choice(pos), rng.choice(neg)
        if rng.random() < 0.5:
            a, b = b, a
        assert a.target is not None and b.target is not None
        if a.target.lower() == b.target.lower() or _mentions(a.text, b.target) or _mentions(b.text, a.target):
            continue
        second = _clause(b.text)
        connective = rng.choice(CONNECTIVES)
        text = f"{_clause(a.text)}{connective}{second}"
        out.append(EntityRow(text, a.target, a.label, "synthetic", True))
        out.append(EntityRow(text, b.target, b.label, "synthetic", True))
    logger.info("built %d synthetic mixed headlines (%d rows)", len(out) // 2, len(out))
    return out


def split_by_text(
    rows: Sequence[EntityRow], fraction: float, seed: int
) -> tuple[list[EntityRow], list[EntityRow]]:
    """(train, validation) with every row of one text on the same side, so no headline
    is validated on after training on another of its entities."""
    texts = sorted({row.text for row in rows})
    rng = random.Random(seed)
    rng.shuffle(texts)
    held = set(texts[: round(len(texts) * fraction)])
    return [r for r in rows if r.text not in held], [r for r in rows if r.text in held]
