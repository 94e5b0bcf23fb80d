"""Readers for the labelled sentiment data and the train/validation/test plumbing.

Label order everywhere is ``negative, neutral, positive`` (ids 0, 1, 2). Every reader
returns :class:`Example` objects carrying an integer label in that order, so sources can be
mixed freely.

Source names (as used by ``finsent train --source``):

- ``fpb-split``: the ``train`` rows of ``financial_phrasebank/fpb_split.tsv`` (canonical).
- ``fpb-50``, ``fpb-66``, ``fpb-75``, ``fpb-all``: the original PhraseBank release files.
  Sentences that are in the canonical test split are dropped from them, because the
  original files contain every test sentence.
- ``tfns``: ``tfns/sent_train.csv`` (Twitter Financial News Sentiment).
- ``csv:PATH``: a user CSV with a ``text,label`` header; labels are names.
- ``feedback``: analysts' corrections (docs/feedback.md), from a JSON-lines snapshot of the
  database's ``corrections`` table (``finsent train`` and the fine-tune DAG write it; or
  ``--feedback-file`` names one, e.g. ``finsent feedback export`` output). Each line's
  ``title`` (the headline corrected) and ``label`` make a row.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.score.labels import LABEL2ID, LABELS
from pipeline.score.target import unmark

logger = logging.getLogger(__name__)

# The label of a transfer row (``finsent train --transfer``): it learns from a teacher only.
NO_LABEL = -1

FPB_DIR = "financial_phrasebank"
FPB_SPLIT_FILE = f"{FPB_DIR}/fpb_split.tsv"
FPB_ORIGINAL_FILES = {
    "fpb-50": f"{FPB_DIR}/Sentences_50Agree.txt",
    "fpb-66": f"{FPB_DIR}/Sentences_66Agree.txt",
    "fpb-75": f"{FPB_DIR}/Sentences_75Agree.txt",
    "fpb-all": f"{FPB_DIR}/Sentences_AllAgree.txt",
}
TFNS_FILE = "tfns/sent_train.csv"
# TFNS uses market words and its own id order: 0 bearish, 1 bullish, 2 neutral.
TFNS_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}

FEEDBACK_SOURCE = "feedback"

# Entity-level sources (pipeline.sentiment.entity_data): SEntFiN's train headlines, one row
# per (headline, company), and synthetic headlines joining two clauses of opposite
# sentiment about two companies. Their rows are read with the company's mention marked
# (pipeline.score.target), so a model trained on them scores a text for a company.
SENTFIN_SOURCE = "sentfin"
SENTFIN_MIXED_SOURCE = "sentfin-mixed"
TARGETED_SOURCES = (SENTFIN_SOURCE, SENTFIN_MIXED_SOURCE)
SENTFIN_SPLIT_FILE = "sentfin/sentfin_split.tsv"
# Synthetic mixed headlines per run (two rows each), from a fixed seed: the measured recipe
# (docs/model-target-aware.md).
SYNTHETIC_MIXED_HEADLINES = 5000
SYNTHETIC_MIXED_SEED = 13

KNOWN_SOURCES = ("fpb-split", *FPB_ORIGINAL_FILES, "tfns", *TARGETED_SOURCES, "csv:PATH", FEEDBACK_SOURCE)


class DataFormatError(ValueError):
    """A data file is missing or malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    source: str = ""
    # Highest annotator agreement for PhraseBank rows (50/66/75/100); None elsewhere.
    agreement: int | None = None


@dataclass
class SourceInfo:
    """Where a training source came from, recorded in the checkpoint."""

    name: str
    path: str
    sha256: str
    rows: int
    weight: float = 1.0
    label_counts: dict[str, int] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_label(raw: str, path: Path, line: int) -> int:
    name = raw.strip().lower()
    if name not in LABEL2ID:
        raise DataFormatError(f"{path}:{line}: label {raw.strip()!r} is not one of {', '.join(LABELS)}")
    return LABEL2ID[name]


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")


def read_fpb_original(path: Path, source: str = "fpb") -> list[Example]:
    """Read a PhraseBank release file: latin-1, ``sentence@label``, CRLF or bare CR lines.

    Splits on the last ``@`` because sentences themselves may contain ``@``.
    Exact duplicate lines (the release has a few) are kept once.
    """
    _require_file(path)
    text = path.read_bytes().decode("latin-1")
    examples: list[Example] = []
    seen: set[tuple[str, int]] = set()
    # splitlines() handles \r\n, bare \r and \n alike.
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        if not sep or not sentence.strip():
            raise DataFormatError(f"{path}:{lineno}: expected 'sentence@label', got {line[:60]!r}")
        example = Example(sentence.strip(), parse_label(label, path, lineno), source)
        key = (example.text, example.label)
        if key not in seen:
            seen.add(key)
            examples.append(example)
    return examples


def read_fpb_split(
    path: Path, split: str | None = None, min_agreement: int = 0, source: str = "fpb-split"
) -> list[Example]:
    """Read ``fpb_split.tsv`` rows, optionally only one split and a minimum agreement."""
    _require_file(path)
    examples: list[Example] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"sentence", "label", "agreement", "split"} - set(reader.fieldnames or [])
        if missing:
            raise DataFormatError(f"{path}:1: missing columns {', '.join(sorted(missing))}")
        for lineno, row in enumerate(reader, start=2):
            if split is not None and row["split"] != split:
                continue
            try:
                agreement = int(row["agreement"])
            except (TypeError, ValueError):
                raise DataFormatError(
                    f"{path}:{lineno}: agreement {row['agreement']!r} is not a number"
                ) from None
            if agreement < min_agreement:
                continue
            examples.append(
                Example(row["sentence"], parse_label(row["label"], path, lineno), source, agreement)
            )
    return examples


def read_tfns(path: Path, source: str = "tfns") -> list[Example]:
    """Read TFNS ``text,label`` with 0 bearish, 1 bullish, 2 neutral."""
    _require_file(path)
    examples: list[Example] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["text", "label"]:
            raise DataFormatError(f"{path}:1: expected header 'text,label', got {header}")
        for row in reader:
            lineno = reader.line_num
            if len(row) != 2 or row[1].strip() not in TFNS_LABELS:
                raise DataFormatError(f"{path}:{lineno}: expected 'text,0|1|2', got {row!r:.80}")
            label = LABEL2ID[TFNS_LABELS[row[1].strip()]]
            examples.append(Example(row[0].strip(), label, source))
    return examples


def read_label_csv(path: Path, source: str | None = None) -> list[Example]:
    """Read a generic CSV with header ``text,label`` and label names (any case)."""
    _require_file(path)
    source = source or f"csv:{path.name}"
    examples: list[Example] = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["text", "label"]:
            raise DataFormatError(f"{path}:1: expected header 'text,label', got {','.join(header)!r}")
        for row in reader:
            lineno = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise DataFormatError(f"{path}:{lineno}: expected 2 columns 'text,label'")
            if not row[0].strip():
                raise DataFormatError(f"{path}:{lineno}: empty text")
            examples.append(Example(row[0].strip(), parse_label(row[1], path, lineno), source))
    return examples


@dataclass(frozen=True)
class _Correction:
    """One line of a corrections snapshot, as read_feedback groups it."""

    lineno: int
    text: str
    label: int
    target: str | None
    when: datetime | None


def _corrected_at(value: object) -> datetime | None:
    # Export writes ISO times; a hand-made file may have none (then file order says which is later).
    try:
        when = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo is not None else when.replace(tzinfo=UTC)


def _one_per_question(corrections: list[_Correction]) -> _Correction:
    """The correction that speaks for one (article, company): its label is the majority's,
    a tie going to the latest correction among the tied labels."""
    votes = Counter(c.label for c in corrections)
    most = max(votes.values())

    def latest(c: _Correction) -> tuple[bool, datetime, int]:
        return (c.when is not None, c.when or datetime.min.replace(tzinfo=UTC), c.lineno)

    return max((c for c in corrections if votes[c.label] == most), key=latest)


def read_feedback(path: Path, source: str = FEEDBACK_SOURCE, *, for_companies: bool = False) -> list[Example]:
    """Corrections as rows: JSON lines with the headline (``title``, or ``text``) and the
    analyst's ``label`` (``finsent feedback export``'s shape).

    One row per question asked, an article (its ``article_id``, else its headline) for a
    company (``ticker``) or as a whole: several analysts' corrections of it give the label
    most of them chose, a tie going to the latest correction. Forty names saying "positive"
    are one row, not forty, and contradictory labels do not all train.

    ``for_companies`` (a run that trains a target-aware model): a company's correction (a
    ``ticker``) is a label for that company, not for the whole headline ("Tesla jumps, while
    Ford slumps" is negative for Ford only), so it is read as such a model reads a company,
    its ``mention`` (else the ticker) marked in the headline; one whose company is not
    written in the headline (named in the summary only) cannot be marked and is left out,
    counted in the log, like SEntFiN rows of that kind. An article-level run reads every
    correction as a label of its headline, the only reading such a model has.
    """
    from pipeline.score.target import format_target_input

    _require_file(path)
    questions: dict[tuple[object, str | None], list[_Correction]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, label = row.get("title") or row.get("text"), row["label"]
            except (json.JSONDecodeError, AttributeError, KeyError):
                raise DataFormatError(
                    f"{path}:{lineno}: not a correction (a JSON object with title and label)"
                ) from None
            if not isinstance(text, str) or not text.strip():
                raise DataFormatError(f"{path}:{lineno}: the correction has no title")
            label_id = parse_label(str(label), path, lineno)
            target = row.get("mention") or row.get("ticker")
            article = row.get("article_id") or ("title", text.strip())
            company = str(row.get("ticker") or target or "") or None
            correction = _Correction(
                lineno,
                text.strip(),
                label_id,
                str(target) if target else None,
                _corrected_at(row.get("corrected_at")),
            )
            questions.setdefault((article, company), []).append(correction)
    examples = []
    unmarked = 0
    for corrections in questions.values():  # in the order each question was first corrected
        chosen = _one_per_question(corrections)
        text = chosen.text
        if chosen.target and for_companies:
            text, second = format_target_input(text, chosen.target)
            if second is not None:
                unmarked += 1
                continue
        examples.append(Example(text.strip(), chosen.label, source))
    merged = sum(len(c) for c in questions.values()) - len(questions)
    if merged:
        logger.info(
            "source %s: %d corrections of a question another correction also answers merged into its "
            "row (one per article and company, the majority's label)",
            source,
            merged,
        )
    if unmarked:
        logger.info(
            "source %s: %d company corrections left out (the company is not written in the headline)",
            source,
            unmarked,
        )
    return examples


def normalise_text(text: str) -> str:
    """The key two sentences are compared by: a company's mark removed, whitespace runs
    collapsed, lower case.

    A company row (a SEntFiN headline, an analyst's company correction in a target-aware run)
    is stored with its mention marked (``<< Nokia >>``): compared as written it missed the same
    sentence among the FPB test rows and the headline check's rows, so it was trained on and
    not counted. Every comparison with held-out rows goes through this key.
    """
    plain = unmark(text)
    return re.sub(r"\s+", " ", text if plain is None else plain[0]).strip().lower()


def near_duplicate_key(text: str) -> str:
    """The key a text is compared with held-out rows by: its letters alone, lower case, the
    company's mark removed. Sentences that differ only in figures, punctuation or spacing
    ("profit rose 5 %" and "profit rose 7%") share it: FPB has 17 training sentences that
    are such near-copies of test sentences, and SEntFiN 44 training headlines of its test
    headlines, which an exact comparison kept in training."""
    return "".join(c for c in normalise_text(text) if c.isalpha())


@dataclass(frozen=True)
class HeldOut:
    """The rows no source may train on: the canonical FPB test sentences and SEntFiN's test
    headlines (the entity check's), compared by :func:`near_duplicate_key`. ``text in
    held_out`` says whether a text is one of them or a near-copy; a text without letters
    matches nothing."""

    keys: frozenset[str] = frozenset()

    def __contains__(self, text: object) -> bool:
        key = near_duplicate_key(str(text))
        return bool(key) and key in self.keys


def canonical_test_sentences(data_dir: Path) -> set[str]:
    """Normalised sentences of the canonical FPB test split (empty if the file is absent):
    what every source loses before the split. Near-copies of test rows (:class:`HeldOut`)
    are left out of training after it, so the split stays the one earlier models had."""
    path = data_dir / FPB_SPLIT_FILE
    if not path.is_file():
        return set()
    return {normalise_text(ex.text) for ex in read_fpb_split(path, split="test")}


def without_held_out(examples: list[Example], indices: list[int], held_out: HeldOut) -> list[int]:
    """``indices`` without the rows that are test rows of FPB or SEntFiN or near-copies of
    them (logged with their count): what training and augmentation read. Applied after the
    split, so the validation rows, and the headline check built from the same split, stay
    those earlier models were trained and measured with."""
    kept = [i for i in indices if examples[i].text not in held_out]
    if len(kept) < len(indices):
        logger.info(
            "left %d near-copies of FPB or SEntFiN test rows out of training", len(indices) - len(kept)
        )
    return kept


def held_out_rows(data_dir: Path) -> HeldOut:
    """The held-out test rows of the labelled data in ``data_dir`` (a file that is absent
    adds none)."""
    texts: list[str] = []
    fpb = data_dir / FPB_SPLIT_FILE
    if fpb.is_file():
        texts += [ex.text for ex in read_fpb_split(fpb, split="test")]
    sentfin = data_dir / SENTFIN_SPLIT_FILE
    if sentfin.is_file():
        from pipeline.sentiment.entity_data import read_sentfin

        texts += [row.text for row in read_sentfin(sentfin, split="test")]
    return HeldOut(frozenset(k for k in map(near_duplicate_key, texts) if k))


def source_path(spec: str, data_dir: Path, feedback_file: str | Path | None = None) -> Path:
    """Map a source name to its file (raises DataFormatError for unknown names, and for
    ``feedback`` without its snapshot)."""
    if spec == FEEDBACK_SOURCE:
        if feedback_file is None:
            raise DataFormatError(
                "source 'feedback' reads analysts' corrections from the database: run it through "
                "`finsent train --source feedback` or the fine-tune DAG, or pass --feedback-file "
                "with `finsent feedback export` output"
            )
        return Path(feedback_file).expanduser()
    if spec == "fpb-split":
        return data_dir / FPB_SPLIT_FILE
    if spec in FPB_ORIGINAL_FILES:
        return data_dir / FPB_ORIGINAL_FILES[spec]
    if spec == "tfns":
        return data_dir / TFNS_FILE
    if spec in TARGETED_SOURCES:
        return data_dir / SENTFIN_SPLIT_FILE
    if spec.startswith("csv:") and len(spec) > 4:
        path = Path(spec[4:]).expanduser()
        return path if path.is_absolute() else (Path.cwd() / path)
    raise DataFormatError(f"unknown source {spec!r}; use one of {', '.join(KNOWN_SOURCES)}")


def has_company_source(specs: Iterable[str]) -> bool:
    """Whether any of the source specs names a company-labelled source (TARGETED_SOURCES)."""
    return any(parse_source_spec(str(spec))[0] in TARGETED_SOURCES for spec in specs)


def parse_source_spec(spec: str) -> tuple[str, float]:
    """``name`` or ``name*WEIGHT`` (e.g. ``fpb-split*2``) -> (name, weight)."""
    name, star, weight = spec.rpartition("*")
    if not star:
        return spec, 1.0
    try:
        value = float(weight)
    except ValueError:
        raise DataFormatError(f"source {spec!r}: weight {weight!r} is not a number") from None
    # float() also reads "nan" and "inf": a NaN weight passes "<= 0" and turns the loss, then
    # every weight of the checkpoint, into NaN; an infinite one does the same via inf/inf.
    if not math.isfinite(value) or value <= 0:
        raise DataFormatError(
            f"source {spec!r}: weight must be a positive finite number (e.g. 'fpb-split*2')"
        )
    return name, value


def check_source_spec(spec: str) -> None:
    """A well-formed spec naming a known source (its file is not read); else DataFormatError."""
    name, _ = parse_source_spec(spec)
    if name != FEEDBACK_SOURCE:  # its snapshot is written when the run starts
        source_path(name, Path("."))


def read_source(
    spec: str, data_dir: Path, feedback_file: str | Path | None = None, *, for_companies: bool = False
) -> list[Example]:
    path = source_path(spec, data_dir, feedback_file)
    if spec == FEEDBACK_SOURCE:
        return read_feedback(path, for_companies=for_companies)
    if spec == "fpb-split":
        return read_fpb_split(path, split="train")
    if spec in FPB_ORIGINAL_FILES:
        return read_fpb_original(path, source=spec)
    if spec == "tfns":
        return read_tfns(path)
    if spec in TARGETED_SOURCES:
        return read_targeted(path, spec)
    return read_label_csv(path, source=spec)


def read_targeted(path: Path, source: str) -> list[Example]:
    """SEntFiN ``train`` rows (``sentfin``) or synthetic mixed headlines built from them
    (``sentfin-mixed``), each as the model reads it: the company's mention marked.

    A row whose company is not written in its headline (an abbreviation the annotators
    expanded) cannot be marked and is left out, counted in the log: the model is served
    mentions as written.
    """
    from pipeline.score.target import format_target_input
    from pipeline.sentiment.entity_data import read_sentfin, synthetic_mixed

    rows = read_sentfin(path, split="train")
    if source == SENTFIN_MIXED_SOURCE:
        rows = synthetic_mixed(rows, SYNTHETIC_MIXED_HEADLINES, SYNTHETIC_MIXED_SEED)
    out = []
    for row in rows:
        text, second = format_target_input(row.text, row.target)
        if second is None:
            out.append(Example(text, row.label, source))
    if len(out) < len(rows):
        logger.info("source %s: %d of %d rows name their company as written", source, len(out), len(rows))
    return out


def load_sources(
    specs: list[str],
    data_dir: Path,
    *,
    log_level: int = logging.INFO,
    feedback_file: str | Path | None = None,
    for_companies: bool | None = None,
) -> tuple[list[Example], list[float], list[SourceInfo]]:
    """Load and mix training sources.

    Returns the examples, a per-example loss weight (from ``name*WEIGHT``), and a
    description of each source with its sha256 for the checkpoint. Canonical FPB test
    sentences are removed from every source so the benchmark stays clean (their near-copies,
    and SEntFiN's test headlines, leave training after the split: :func:`without_held_out`). ``log_level``
    lowers the per-source lines for loads that only rebuild a split (the headline check).
    ``feedback_file`` is the corrections snapshot the ``feedback`` source reads;
    ``for_companies`` says whether its company corrections are read for the company (see
    read_feedback; default: when a company source is among ``specs``).
    """
    if for_companies is None:
        for_companies = has_company_source(specs)
    test_sentences = canonical_test_sentences(data_dir)
    examples: list[Example] = []
    weights: list[float] = []
    infos: list[SourceInfo] = []
    for raw_spec in specs:
        name, weight = parse_source_spec(raw_spec)
        rows = read_source(name, data_dir, feedback_file, for_companies=for_companies)
        if not rows and name == FEEDBACK_SOURCE:
            logger.warning(
                "source feedback: no analyst corrections yet (make some on the web pages; "
                "`finsent feedback list` shows them)"
            )
        kept = [ex for ex in rows if normalise_text(ex.text) not in test_sentences]
        if len(kept) != len(rows):
            logger.log(
                logging.WARNING if log_level >= logging.INFO else log_level,
                "source %s: dropped %d sentences that are in the FPB test split",
                name,
                len(rows) - len(kept),
            )
        path = source_path(name, data_dir, feedback_file)
        counts = {label: 0 for label in LABELS}
        for ex in kept:
            counts[LABELS[ex.label]] += 1
        infos.append(SourceInfo(name, str(path), sha256_file(path), len(kept), weight, counts))
        examples.extend(kept)
        weights.extend([weight] * len(kept))
        logger.log(log_level, "source %s: %d rows (weight %.2g) %s", name, len(kept), weight, counts)
    return examples, weights, infos


def rows_fingerprint(examples: list[Example]) -> str:
    """sha256 over the sorted (source, label, text) of a set of rows: identifies them
    whatever their order (validation rows, the headline check)."""
    digest = hashlib.sha256()
    for source, label, text in sorted((ex.source, ex.label, ex.text) for ex in examples):
        digest.update(f"{source}\t{label}\t{text}\n".encode())
    return digest.hexdigest()


def stratified_split(examples: list[Example], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, validation), stratified by (source, label), deterministic per seed."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups[(ex.source, ex.label)].append(i)
    rng = random.Random(seed)
    train_idx: list[int] = []
    val_idx: list[int] = []
    for key in sorted(groups):
        idx = groups[key]
        rng.shuffle(idx)
        n_val = round(len(idx) * val_fraction)
        if val_fraction > 0 and n_val == 0 and len(idx) > 1:
            n_val = 1
        val_idx.extend(idx[:n_val])
        train_idx.extend(idx[n_val:])
    return sorted(train_idx), sorted(val_idx)


def cv_fold_split(
    examples: list[Example], indices: list[int], folds: int, fold: int, seed: int
) -> tuple[list[int], list[int]]:
    """Split ``indices`` into (kept, held-out fold ``fold`` of ``folds``).

    Stratified by (source, label) and deterministic per seed, so the ``folds`` runs of a
    cross-fit partition the training rows: every row is held out exactly once.
    """
    if folds < 2 or not 0 <= fold < folds:
        raise ValueError(f"need folds >= 2 and 0 <= fold < folds, got fold {fold} of {folds}")
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i in indices:
        groups[(examples[i].source, examples[i].label)].append(i)
    # Its own stream: the same seed must not replay the validation split's shuffle.
    rng = random.Random(f"cv-{seed}")
    fold_of: dict[int, int] = {}
    for key in sorted(groups):
        idx = sorted(groups[key])
        rng.shuffle(idx)
        for pos, i in enumerate(idx):
            fold_of[i] = pos % folds
    # A text repeated in the data (a PhraseBank sentence with two labels, a tweet posted
    # twice, overlapping sources) must sit in one fold, or a fold model would label a
    # sentence it trained on: every copy follows the first one's fold.
    first_fold: dict[str, int] = {}
    kept: list[int] = []
    held: list[int] = []
    for i in sorted(fold_of):
        fold_of[i] = first_fold.setdefault(normalise_text(examples[i].text), fold_of[i])
        (held if fold_of[i] == fold else kept).append(i)
    return kept, held


def load_benchmarks(data_dir: Path) -> dict[str, list[Example]]:
    """The canonical benchmark: FPB-50 (all 970 test rows) and FPB-all (agreement 100)."""
    path = data_dir / FPB_SPLIT_FILE
    test = read_fpb_split(path, split="test", source="fpb-test")
    return {"fpb-50": test, "fpb-all": [ex for ex in test if ex.agreement == 100]}


def headline_heldout(data_dir: Path, split_seed: int = 42, val_fraction: float = 0.1) -> list[Example]:
    """TFNS rows that a run on ``fpb-split`` and ``tfns`` with this split holds out for validation.

    A check in the register FinSent scores (headline-like financial news tweets) beside the
    PhraseBank benchmark: blind for every model whose training used this split (the released
    chain: split seed 42, fraction 0.1) or no TFNS at all. A model trained on other TFNS rows
    has seen some of these.
    """
    # Rebuilding the split, not training: the per-source lines stay at DEBUG.
    examples, _, _ = load_sources(["fpb-split", "tfns"], data_dir, log_level=logging.DEBUG)
    _, val_idx = stratified_split(examples, val_fraction, split_seed)
    return [examples[i] for i in val_idx if examples[i].source == "tfns"]
