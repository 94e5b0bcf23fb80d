"""Transfer texts for distillation: label-free variants of the training sentences.

A 22M-parameter student copies a teacher's function better from many texts than from the
3,500 labelled PhraseBank rows alone (TinyBERT's finding for small tasks). The variants
written here carry no label: the teacher labels them during training
(``finsent train --transfer FILE --teacher T``), so an edit that flips the meaning
("rose" -> "fell") is a useful contrast, not label noise.

Each variant applies one or two edits, chosen at random among those that fit the sentence:

- ``direction``: a direction word becomes its opposite (rose/fell, profit/loss, ...);
- ``numbers``: two numbers trade places ("from 8.7 to 13.1" reverses), or one is rescaled;
- ``neighbour``: a word becomes one of its nearest words in the encoder's input embeddings;
- ``delete``: a short span of words is dropped.

Only training rows are varied. The file's first line records the fingerprint of the
validation rows of the split it was made from; ``finsent train`` refuses a transfer file
made from another split, since variants of validation rows would leak into training.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.sentiment.data import (
    DataFormatError,
    canonical_test_sentences,
    held_out_rows,
    load_sources,
    normalise_text,
    stratified_split,
    without_held_out,
)

logger = logging.getLogger(__name__)

FORMAT = "finsent-transfer/1"

# Opposites, one pair per word: every word appears once, so the table is its own inverse
# (a test checks it). Words with several opposites ("cut", "lower", "missed") or none
# ("record") are left out rather than mapped to a wrong one.
_OPPOSITES = [
    ("rose", "fell"),
    ("rise", "fall"),
    ("rises", "falls"),
    ("risen", "fallen"),
    ("rising", "falling"),
    ("increased", "decreased"),
    ("increase", "decrease"),
    ("increases", "decreases"),
    ("increasing", "decreasing"),
    ("grew", "declined"),
    ("growth", "decline"),
    ("up", "down"),
    ("higher", "lower"),
    ("high", "low"),
    ("profit", "loss"),
    ("profits", "losses"),
    ("profitable", "unprofitable"),
    ("gain", "drop"),
    ("gains", "drops"),
    ("gained", "dropped"),
    ("improved", "deteriorated"),
    ("improve", "deteriorate"),
    ("improvement", "deterioration"),
    ("strong", "weak"),
    ("stronger", "weaker"),
    ("strengthened", "weakened"),
    ("positive", "negative"),
    ("beat", "missed"),
    ("upgrade", "downgrade"),
    ("upgraded", "downgraded"),
    ("expanded", "contracted"),
    ("expand", "shrink"),
    ("surged", "plunged"),
    ("jumped", "slumped"),
    ("climbed", "slipped"),
    ("raised", "lowered"),
    ("best", "worst"),
    ("above", "below"),
    ("won", "lost"),
    ("good", "poor"),
    ("better", "worse"),
]
OPPOSITES: dict[str, str] = {**dict(_OPPOSITES), **{b: a for a, b in _OPPOSITES}}

_AFFIXES = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*$")
# Words a neighbour edit leaves alone: their nearest embeddings are other function words
# or they carry the sentence's structure.
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "from",
        "by",
        "with",
        "at",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "has",
        "have",
        "had",
        "not",
        "no",
        "will",
        "would",
        "said",
        "says",
        "company",
        "group",
        "year",
        "quarter",
    ]
)


@dataclass(frozen=True)
class Word:
    """A whitespace-separated word: the edits change ``core`` and keep its punctuation."""

    prefix: str
    core: str
    suffix: str

    def replace(self, core: str) -> Word:
        return Word(self.prefix, core, self.suffix)

    def __str__(self) -> str:
        return self.prefix + self.core + self.suffix


def words_of(text: str) -> list[Word]:
    out = []
    for chunk in text.split():
        m = _AFFIXES.match(chunk)
        assert m is not None  # the pattern matches any string
        out.append(Word(*m.groups()))
    return out


def join_words(words: Sequence[Word]) -> str:
    return " ".join(str(w) for w in words)


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


@dataclass
class NeighbourTable:
    """Nearest whole words in an encoder's input embedding space (cosine), computed lazily."""

    words: list[str]
    vectors: np.ndarray  # unit rows, one per word
    k: int = 8
    _index: dict[str, int] = field(default_factory=dict, repr=False)
    _cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_model(cls, model: str, k: int = 8) -> NeighbourTable:
        """Whole-word vocabulary entries of a Hugging Face encoder and their input embeddings."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(model)
            encoder = AutoModel.from_pretrained(model, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataFormatError(f"neighbour model {model}: {first}") from None
        weights = encoder.get_input_embeddings().weight.detach().numpy()
        vocab = tokenizer.get_vocab()
        words, rows = [], []
        for word, idx in sorted(vocab.items(), key=lambda kv: kv[1]):
            if word.isalpha() and word.islower() and len(word) >= 3:
                words.append(word)
                rows.append(idx)
        vectors = weights[rows]
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-8)
        return cls(words, vectors.astype(np.float32), k)

    def neighbours(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self._cache:
            i = self._index.get(key)
            if i is None:
                self._cache[key] = []
            else:
                sims = self.vectors @ self.vectors[i]
                sims[i] = -1.0
                top = np.argpartition(-sims, self.k)[: self.k]
                self._cache[key] = [self.words[j] for j in top[np.argsort(-sims[top])]]
        return self._cache[key]


Edit = Callable[[list[Word], random.Random], list[Word] | None]


def edit_direction(words: list[Word], rng: random.Random) -> list[Word] | None:
    spots = [i for i, w in enumerate(words) if w.core.lower() in OPPOSITES]
    if not spots:
        return None
    out = list(words)
    for i in rng.sample(spots, k=rng.randint(1, len(spots))):
        out[i] = words[i].replace(_match_case(OPPOSITES[words[i].core.lower()], words[i].core))
    return out


def _is_year(core: str) -> bool:
    return len(core) == 4 and core[:2] in ("19", "20")


_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+$")
_DECIMAL_COMMA = re.compile(r"\d+,\d{1,2}$")


def rescale_number(core: str, factor: float) -> str | None:
    """``core`` times ``factor``, written the way ``core`` is: "1,200" -> "2,400" (thousands
    separator), "5,2" -> "10,4" (decimal comma), "8.7" -> "17.4"; None if it is no number."""
    if _THOUSANDS.match(core):
        return f"{round(int(core.replace(',', '')) * factor):,}"
    if _DECIMAL_COMMA.match(core):
        decimals = len(core.split(",")[1])
        return f"{float(core.replace(',', '.')) * factor:.{decimals}f}".replace(".", ",")
    if "," in core:
        return None  # "1,2,3" and friends: not a number we can rewrite faithfully
    try:
        value = float(core)
    except ValueError:
        return None
    decimals = len(core.split(".")[1]) if "." in core else 0
    return f"{value * factor:.{decimals}f}"


def edit_numbers(words: list[Word], rng: random.Random) -> list[Word] | None:
    # Years keep their place: "2007" swapped with "5.2" reads as nonsense, not a contrast.
    spots = [i for i, w in enumerate(words) if _NUMBER.match(w.core) and not _is_year(w.core)]
    if not spots:
        return None
    out = list(words)
    if len(spots) >= 2 and rng.random() < 0.6:
        i, j = rng.sample(spots, 2)
        out[i], out[j] = words[i].replace(words[j].core), words[j].replace(words[i].core)
        return out
    i = rng.choice(spots)
    rescaled = rescale_number(words[i].core, rng.choice([0.25, 0.5, 0.8, 1.25, 2.0, 4.0]))
    if rescaled is None:
        return None
    out[i] = words[i].replace(rescaled)
    return out


def edit_delete(words: list[Word], rng: random.Random) -> list[Word] | None:
    if len(words) < 8:
        return None
    span = rng.randint(1, 3)
    # The last words are never dropped: they carry the final punctuation (and often the
    # "from X" half of a comparison).
    start = rng.randrange(0, len(words) - span)
    return words[:start] + words[start + span :]


def make_edit_neighbour(table: NeighbourTable, p: float = 0.15) -> Edit:
    def edit_neighbour(words: list[Word], rng: random.Random) -> list[Word] | None:
        out, changed = list(words), False
        for i, w in enumerate(words):
            core = w.core
            if not (core.isalpha() and len(core) >= 4) or core.isupper() or core.lower() in _STOP:
                continue
            if rng.random() < p:
                near = table.neighbours(core)
                if near:
                    out[i] = w.replace(_match_case(rng.choice(near), core))
                    changed = True
        return out if changed else None

    return edit_neighbour


@dataclass
class Augmenter:
    """Makes variants of a sentence with one or two random edits (seeded, reproducible)."""

    seed: int = 42
    neighbours: NeighbourTable | None = None
    edits: list[Edit] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.edits:
            self.edits = [edit_direction, edit_numbers, edit_delete]
            if self.neighbours is not None:
                self.edits.append(make_edit_neighbour(self.neighbours))

    def variants(self, text: str, n: int, rng: random.Random) -> list[str]:
        """Up to ``n`` distinct variants of ``text`` (fewer when few edits fit it)."""
        words = words_of(text)
        original = normalise_text(text)
        found: dict[str, None] = {}
        for _ in range(n * 4):
            if len(found) >= n:
                break
            out = words
            for edit in rng.sample(self.edits, k=min(len(self.edits), rng.choice([1, 1, 2]))):
                edited = edit(out, rng)
                out = edited if edited is not None else out
            candidate = join_words(out)
            if normalise_text(candidate) != original:
                found.setdefault(candidate)
        return list(found)

    def augment(self, texts: Iterable[str], per_text: int, exclude: Set[str] = frozenset()) -> list[str]:
        """Variants of every text, deduplicated, none equal to an input or an excluded text."""
        rng = random.Random(self.seed)
        texts = list(texts)
        taken = {normalise_text(t) for t in texts} | set(exclude)
        out: list[str] = []
        for text in texts:
            for variant in self.variants(text, per_text, rng):
                key = normalise_text(variant)
                if key not in taken:
                    taken.add(key)
                    out.append(variant)
        return out


@dataclass
class TransferFile:
    texts: list[str]
    meta: dict[str, Any]


def write_transfer(path: Path, texts: Sequence[str], meta: dict[str, Any]) -> None:
    """JSON lines: a header ``{"format", "meta"}``, then one ``{"text"}`` per variant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"format": FORMAT, "meta": meta}) + "\n")
        for text in texts:
            fh.write(json.dumps({"text": text}) + "\n")
    tmp.replace(path)


def read_transfer(path: Path) -> TransferFile:
    """Unlabelled texts for distillation.

    ``.jsonl``: objects with ``text`` (an optional first line ``{"format", "meta"}`` as
    written by ``finsent augment``); ``.csv``: a ``text`` column; anything else: one text
    per line (UTF-8).
    """
    if not path.is_file():
        raise DataFormatError(f"transfer file {path}: no such file")
    texts: list[str] = []
    meta: dict[str, Any] = {}
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8-sig") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise DataFormatError(f"transfer file {path}:{line_no}: not JSON ({exc})") from None
                if line_no == 1 and isinstance(record, dict) and "format" in record:
                    if record["format"] != FORMAT:
                        raise DataFormatError(
                            f"transfer file {path}:1: format {record['format']!r} is not {FORMAT!r}; "
                            "write it again with this version's 'finsent augment'"
                        )
                    meta = dict(record.get("meta") or {})
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise DataFormatError(
                        f"transfer file {path}:{line_no}: expected a JSON object with a 'text' string"
                    )
                texts.append(record["text"])
    elif path.suffix == ".csv":
        import csv

        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if "text" not in (reader.fieldnames or []):
                raise DataFormatError(f"transfer file {path}:1: expected a 'text' column")
            texts = [row["text"] for row in reader if row.get("text")]
    else:
        texts = path.read_text(encoding="utf-8").splitlines()
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise DataFormatError(f"transfer file {path}: no texts")
    return TransferFile(texts, meta)


def split_meta(sources: list[str], val_fraction: float, split_seed: int, fingerprint: str) -> dict[str, Any]:
    return {
        "sources": list(sources),
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "validation_rows_sha256": fingerprint,
    }


def build_transfer(
    sources: list[str],
    data_dir: Path,
    out: Path,
    *,
    per_text: int = 8,
    val_fraction: float = 0.1,
    split_seed: int = 42,
    seed: int = 42,
    neighbour_model: str | None = None,
) -> tuple[int, int]:
    """Write variants of the training rows of ``sources`` (split as ``finsent train`` splits
    them) to ``out``; returns (training rows, variants)."""
    from pipeline.sentiment.data import rows_fingerprint

    examples, _, _ = load_sources(sources, data_dir)
    if not examples:
        raise DataFormatError("no training rows: check --source and --training-data-dir")
    train_idx, val_idx = stratified_split(examples, val_fraction, split_seed)
    val_ex = [examples[i] for i in val_idx]
    exclude = {normalise_text(ex.text) for ex in val_ex} | canonical_test_sentences(data_dir)
    table = NeighbourTable.from_model(neighbour_model) if neighbour_model else None
    augmenter = Augmenter(seed=seed, neighbours=table)
    # Training reads no near-copy of a test row (pipeline.sentiment.train.load_data); an
    # edit of figures can also make one.
    held_out = held_out_rows(data_dir)
    train_texts = [examples[i].text for i in without_held_out(examples, train_idx, held_out)]
    texts = [t for t in augmenter.augment(train_texts, per_text, exclude) if t not in held_out]
    meta = split_meta(sources, val_fraction, split_seed, rows_fingerprint(val_ex))
    meta.update({"per_text": per_text, "seed": seed, "neighbour_model": neighbour_model})
    write_transfer(out, texts, meta)
    logger.info("wrote %d variants of %d training rows to %s", len(texts), len(train_idx), out)
    return len(train_idx), len(texts)
