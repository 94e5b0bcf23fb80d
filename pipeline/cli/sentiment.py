"""``finsent train``, ``finsent eval`` and ``finsent classify``.

Registered in the main ``finsent`` group. torch/transformers are imported inside the
commands so ``finsent --help`` stays fast.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from pipeline.errors import FinSentError
from pipeline.sentiment.config import MAX_THREADS, SEED_MAX, SOURCE_HELP
from pipeline.settings import int_bounds

# pipeline.score.classifier.PRECISIONS, repeated so that loading the CLI imports no torch.
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16", "int8")

logger = logging.getLogger(__name__)


def _settings() -> Any:
    """The effective Settings: the ``finsent`` group's (honours --config/--data-dir), else
    freshly loaded (a command invoked on its own, as in tests)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    try:
        if obj is not None and hasattr(obj, "settings"):
            return obj.settings
        from pipeline.settings import load_settings

        return load_settings().settings
    except FinSentError as exc:
        raise click.ClickException(str(exc)) from None


def _training_data_dir(value: Path | None) -> Path:
    return value if value is not None else Path(_settings().training_data_dir)


def _data_dir_hint(value: Path | None) -> str:
    """What to fix when the labelled data is not found: the flag if given, else the setting."""
    if value is not None:
        return "--training-data-dir"
    return (
        "FINSENT_TRAINING_DATA_DIR (labelled data, laid out as docs/model.md#labelled-data says; "
        "or pass --training-data-dir)"
    )


def _training_data_dir_option(help_text: str) -> Any:
    """eval's and augment's labelled-data option, named as train's (TrainConfig.data_dir):
    not --data-dir, which `finsent --data-dir` means FinSent's own data folder; the former
    name stays accepted."""
    return click.option(
        "--training-data-dir",
        "--data-dir",
        "data_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help=f"{help_text}; --data-dir is its former name.",
    )


def _state_settings(state_dir: Path | None, training_data_dir: Path | None = None) -> Any:
    """The settings with --state-dir (and --data-dir) applied: what the gate and the
    registry read."""
    settings = _settings()
    update: dict[str, Path] = {}
    if state_dir is not None:
        update["data_dir"] = state_dir
    if training_data_dir is not None:
        update["training_data_dir"] = training_data_dir
    return settings.model_copy(update=update) if update else settings


def _default_model(state_dir: Path | None) -> str:
    """The model that serves (pipeline.score.registry): FINSENT_MODEL_PATH, else the
    promoted model, else the release."""
    from pipeline.score.registry import resolve_model_path

    return resolve_model_path(_state_settings(state_dir))


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _export_feedback(out: Path, *, alone: bool) -> Path:
    """Snapshot the configured database's corrections into the run's folder, for the
    ``feedback`` source: the rows a model learnt from stay next to it. With no other
    source and no correction there is nothing to train on: refused before anything is
    written."""
    from pipeline.feedback import SNAPSHOT_FILE, training_examples, write_training_snapshot

    ctx = click.get_current_context(silent=True)
    app = ctx.find_root().obj if ctx is not None else None
    if app is None or not hasattr(app, "database"):  # the command invoked on its own (tests)
        from pipeline.cli import AppContext

        app = AppContext()
    path = out / SNAPSHOT_FILE
    try:
        with app.database() as db, db.session() as session:
            rows = training_examples(session)
    except FinSentError as exc:
        raise click.ClickException(f"--source feedback: {exc}") from None
    if not rows and alone:
        raise click.ClickException(
            "--source feedback: no analyst corrections in the database yet: make some on the web "
            "pages (finsent serve) or train on other sources too"
        )
    count = write_training_snapshot(rows, path)
    click.echo(f"feedback: {count} analyst correction(s) from the database ({path})")
    return path


def _check_sources(sources: tuple[str, ...]) -> list[str]:
    from pipeline.sentiment.data import DataFormatError, check_source_spec

    for spec in sources:
        try:
            check_source_spec(spec)
        except DataFormatError as exc:
            raise click.BadParameter(str(exc), param_hint="--source") from None
    return list(sources)


def _click_type(option: Any) -> Any:
    """The click type of a TrainConfig Option (its range checked while parsing)."""
    if option.choices:
        return click.Choice(option.choices)
    if option.file:
        return click.Path(path_type=str, dir_okay=False, exists=True)
    if option.kind is Path:
        return click.Path(path_type=Path, file_okay=False)
    if option.kind in (int, float):
        ranged = click.IntRange if option.kind is int else click.FloatRange
        if option.low is None and option.high is None:
            return option.kind
        return ranged(min=option.low, max=option.high, min_open=option.low_open, max_open=option.high_open)
    return str


def train_options(command: Any) -> Any:
    """finsent train's options, one per TrainConfig field (pipeline.sentiment.config): the
    flag, type, range, help and default shown all come from there.

    An option left at its default does not override a --recipe's value (train_cmd reads
    where each value came from)."""
    from pipeline.sentiment.config import options

    for name, option, default in reversed(options()):
        if option.flag is None:
            continue
        if option.kind is bool:  # an on/off switch: the flag alone turns it on
            command = click.option(
                option.flag, name, is_flag=True, default=default, help=option.help or None
            )(command)
            continue
        command = click.option(
            option.flag,
            *option.aliases,
            name,
            type=_click_type(option),
            multiple=option.multiple,
            default=None if option.multiple else default,
            show_default=default is not None and not option.multiple and not option.required,
            help=option.help or None,
        )(command)
    return command


@click.command(name="train")
@click.option(
    "--recipe",
    default=None,
    help="TOML file of training options (field names of TrainConfig), or a name in recipes/ "
    "(e.g. finsent-minilm-v3-feedback); options given here override its values.",
)
@train_options
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace what --out holds (e.g. retraining the release in place, as its card says).",
)
@click.option(
    "--promote/--no-promote",
    default=False,
    show_default=True,
    help="Run the evaluation gate and make the model the default if it passes.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="FinSent data dir where the promoted model is recorded (default: settings.data_dir).",
)
def train_cmd(**opts: Any) -> None:
    """Fine-tune a 3-class sentiment model and write a self-describing checkpoint.

    Options come from a --recipe file and the command line (which wins). Prints the
    evaluation-gate comparison against the model that serves now.
    """
    from pipeline.sentiment.config import load_recipe, option_of, options

    recipe = opts.pop("recipe")
    promote = opts.pop("promote")
    state_dir = opts.pop("state_dir")
    overwrite = opts.pop("overwrite")
    try:
        values = load_recipe(recipe) if recipe is not None else {}
    except FinSentError as exc:
        raise click.ClickException(str(exc)) from None
    ctx = click.get_current_context()
    for name, value in opts.items():
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            values[name] = list(value) if isinstance(value, tuple) else value
    if "sources" in values:
        values["sources"] = _check_sources(tuple(values["sources"]))
    given_data_dir = values.get("data_dir")
    data_dir = _training_data_dir(given_data_dir)
    if not data_dir.is_dir():
        raise click.BadParameter(f"{data_dir} is not a directory", param_hint=_data_dir_hint(given_data_dir))
    values["data_dir"] = data_dir
    for name, option, _ in options():
        if option.required and name not in values:
            raise click.UsageError(f"Missing option '{option.flag}' (or {name} in a --recipe).")
    out = values["out_dir"] = Path(values["out_dir"])
    if not overwrite and out.is_dir() and any(out.iterdir()):
        # Checked before hours of training, not at save time; the folder may be a model the
        # pipeline serves, or a run a later step of a recipe reads.
        what = "a model" if (out / "config.json").is_file() else "files"
        raise click.BadParameter(
            f"{out} already holds {what}: choose another folder, or pass --overwrite to replace it",
            param_hint="--out",
        )
    state = _state_settings(state_dir, data_dir)  # what the gate reads: the model serving now
    if promote:
        from pipeline.sentiment.gate import gate_baseline

        serving = gate_baseline(state)
        if serving is not None and Path(serving).resolve() == out.resolve():
            # Trained in place, the model the gate must beat would be gone before the gate
            # ran: it would compare the candidate with itself.
            raise click.BadParameter(
                f"{out} is the model that serves now: train into another folder and --promote "
                "from there, so the gate compares the two",
                param_hint="--out",
            )
    _quiet_transformers()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from pipeline.sentiment.data import FEEDBACK_SOURCE, DataFormatError, parse_source_spec
    from pipeline.sentiment.gate import run_gate
    from pipeline.sentiment.train import TrainConfig, selection_source, train, transfer_config_error

    if values.get("select_on") in ("all", ""):
        values["select_on"] = None
    config = TrainConfig(**values)
    # A progress bar on a terminal; in a scheduler's or CI's log it is only noise.
    config.progress = sys.stderr.isatty()
    for name, why in config.problems():  # a recipe's values are checked here too
        raise click.BadParameter(why, param_hint=option_of(name).flag or name)
    names = [parse_source_spec(spec)[0] for spec in config.sources]
    try:
        config.select_on = selection_source(config.select_on, config.sources)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--select-on") from None
    for name in config.teacher_sources:
        if name not in names:
            raise click.BadParameter(
                f"{name!r} is not one of the training sources ({', '.join(names)})",
                param_hint="--teacher-source",
            )
    problem = transfer_config_error(config)
    if problem:
        raise click.BadParameter(problem, param_hint="--transfer")
    for teacher in config.teachers:
        if not (Path(teacher) / "config.json").is_file():
            raise click.BadParameter(f"{teacher} is not a model folder", param_hint="--teacher")
    for name in ("soft_targets", "transfer"):
        for path in getattr(config, name):
            if not Path(path).is_file():
                raise click.BadParameter(f"{path} is not a file", param_hint=option_of(name).flag)
    exported = None
    if FEEDBACK_SOURCE in names and config.feedback_file is None:
        exported = _export_feedback(out, alone=set(names) == {FEEDBACK_SOURCE})
        config.feedback_file = str(exported)
    try:
        result = train(config)
        click.echo(f"checkpoint: {result.out_dir}")
        decision = run_gate(result.out_dir, state, promote=promote)
    except DataFormatError as exc:
        if exported is not None and [*out.iterdir()] == [exported]:
            # Refused before training wrote anything: the snapshot alone would make the
            # same command refuse the folder as "already holds files".
            exported.unlink()
        raise click.ClickException(str(exc)) from None
    except FinSentError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(decision.table())
    if decision.promote and not promote:
        click.echo("(not promoted: run with --promote to make it the default)")


@click.command(name="augment")
@click.option("--source", "sources", multiple=True, help=SOURCE_HELP)
@_training_data_dir_option("Labelled data root (default: FINSENT_TRAINING_DATA_DIR, else ../shared/data)")
@click.option(
    "--per-text", type=click.IntRange(min=1, max=100), default=8, show_default=True, help="Variants per row."
)
@click.option(
    "--seed", type=click.IntRange(0, SEED_MAX), default=42, show_default=True, help="Seed of the edits."
)
@click.option(
    "--split-seed",
    type=click.IntRange(0, SEED_MAX),
    default=None,
    show_default="finsent train's default --seed",
    help="The train/validation split seed of the run that will use the file (its --split-seed, else --seed).",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    show_default="finsent train's default",
)
@click.option(
    "--neighbours",
    "neighbour_model",
    default=None,
    help="Model whose input embeddings give word neighbours (default: the bundled MiniLM-L6; "
    "'none' turns the neighbour edit off).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Transfer file to write (.jsonl).",
)
def augment_cmd(
    sources: tuple[str, ...],
    data_dir: Path | None,
    per_text: int,
    seed: int,
    split_seed: int | None,
    val_fraction: float | None,
    neighbour_model: str | None,
    out: Path,
) -> None:
    """Write unlabelled variants of the training rows for distillation (finsent train --transfer).

    Only rows the training run will train on are varied (same --source, --split-seed and
    --val-fraction); the file records that split and finsent train refuses it under another.
    Example: finsent augment --source fpb-split --out runs/aug.jsonl
    """
    _quiet_transformers()
    from pipeline.sentiment.augment import build_transfer
    from pipeline.sentiment.config import TrainConfig, default_base_model
    from pipeline.sentiment.data import DataFormatError

    # The defaults of a training run, so that a default file suits a default run.
    defaults = TrainConfig()
    specs = _check_sources(sources) or defaults.sources
    root = _training_data_dir(data_dir)
    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a directory", param_hint=_data_dir_hint(data_dir))
    if out.suffix != ".jsonl":
        raise click.BadParameter(
            f"{out}: the transfer file is JSON lines, name it *.jsonl", param_hint="--out"
        )
    if neighbour_model is None:
        neighbour_model = default_base_model()
    elif neighbour_model.lower() == "none":
        neighbour_model = None
    try:
        rows, variants = build_transfer(
            specs,
            root,
            out,
            per_text=per_text,
            val_fraction=defaults.val_fraction if val_fraction is None else val_fraction,
            split_seed=defaults.seed if split_seed is None else split_seed,
            seed=seed,
            neighbour_model=neighbour_model,
        )
    except DataFormatError as exc:
        raise click.ClickException(f"augment: {exc}") from None
    click.echo(f"{out}: {variants} variants of {rows} training rows")


@click.command(name="crossfit")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True, help="Number of folds.")
@click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Folds trained at the same time."
)
@click.option(
    "--threads",
    type=click.IntRange(0, MAX_THREADS),
    default=0,
    help="Torch threads per fold (default: cores / jobs).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the fold models and soft_targets.jsonl.",
)
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED, metavar="-- [TRAIN ARGS]...")
def crossfit_cmd(folds: int, jobs: int, threads: int, out: Path, train_args: Any) -> None:
    """Cross-fitted soft targets for distillation (then: finsent train --soft-targets).

    Trains FOLDS models, each on every training row but one fold, and merges each model's
    logits on the fold it never saw into OUT/soft_targets.jsonl. The arguments after `--`
    go to every fold's training run: the training options of finsent train (not --out,
    --promote or --state-dir); --training-data-dir defaults to FINSENT_TRAINING_DATA_DIR.
    Folds that finished earlier with the same arguments are kept, so an interrupted run
    resumes.

    Example: finsent crossfit --folds 5 --jobs 2 --out runs/cf -- --source fpb-split --epochs 6
    """
    from pipeline.sentiment.crossfit import CrossfitError, run_crossfit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    train_args = list(train_args)
    if not any(a.split("=", 1)[0] in ("--training-data-dir", "--data-dir") for a in train_args):
        train_args += ["--training-data-dir", str(_training_data_dir(None))]
    try:
        summary = run_crossfit(train_args, folds, out, jobs, threads)
    except CrossfitError as exc:
        raise click.ClickException(f"crossfit: {exc}") from None
    click.echo(json.dumps(summary))


@click.command(name="eval")
@click.argument("model", required=False)
@_training_data_dir_option("Labelled data root holding financial_phrasebank/fpb_split.tsv")
@click.option(
    "--png",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Confusion matrix PNG (default: ./<model>-confusion.png).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISION_CHOICES, case_sensitive=False),
    default="fp32",
    show_default=True,
    help="Weight precision; 'auto' evaluates the serving path the pipeline uses on this machine.",
)
@click.option(
    "--headlines",
    is_flag=True,
    help="Also evaluate on the TFNS rows held out by split seed 42 (tfns-heldout): the headline "
    "register FinSent scores; blind for models trained with that split or without TFNS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
def eval_cmd(
    model: str | None,
    data_dir: Path | None,
    png: Path | None,
    precision: str,
    headlines: bool,
    as_json: bool,
) -> None:
    """Evaluate MODEL (default: the pipeline's model) on FPB-50 and FPB-all.

    Prints accuracy, macro-F1, ECE (calibrated) and the per-class report, and writes the
    FPB-50 confusion matrix as PNG. --headlines adds the TFNS held-out rows.
    """
    import numpy as np

    hint = _data_dir_hint(data_dir)
    data_dir = _training_data_dir(data_dir)
    model = model or _default_model(None)
    png = png or Path(f"{Path(model).name}-confusion.png")
    # Checked before the evaluation, which takes a while, rather than failing after it.
    folder = png.parent  # "." for a bare file name
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        problem = "does not exist" if not folder.is_dir() else "is not writable"
        raise click.BadParameter(f"folder {folder} {problem}", param_hint="--png")
    _quiet_transformers()
    from pipeline.score.classifier import SentimentClassifier
    from pipeline.sentiment.data import DataFormatError, headline_heldout, load_benchmarks
    from pipeline.sentiment.evaluate import compute_metrics, format_metrics_table, save_confusion_png

    try:
        benches = load_benchmarks(data_dir)
        headline_rows = headline_heldout(data_dir) if headlines else []
        clf = SentimentClassifier.load(model, device=None, precision=precision)
    except DataFormatError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None
    except FinSentError as exc:
        raise click.ClickException(str(exc)) from None
    test = benches["fpb-50"]
    # predict_proba is already calibrated; log-probabilities act as logits with T = 1.
    logp = np.log(clf.predict_proba([ex.text for ex in test]) + 1e-12)
    labels = np.array([ex.label for ex in test])
    full = np.array([ex.agreement == 100 for ex in test])
    results = {
        "fpb-50": compute_metrics(logp, labels),
        "fpb-all": compute_metrics(logp[full], labels[full]),
    }
    headline_seen = None
    if headline_rows:
        from pipeline.sentiment.data import rows_fingerprint
        from pipeline.sentiment.headlines import HEADLINE_SET, RECORD_KEY, blindness, recorded_seen

        logp_h = np.log(clf.predict_proba([ex.text for ex in headline_rows]) + 1e-12)
        results[HEADLINE_SET] = compute_metrics(logp_h, np.array([ex.label for ex in headline_rows]))
        # The record counts only for the rows it was made with (this data dir's, or not).
        headline_seen = recorded_seen(model, rows_fingerprint(headline_rows))
    save_confusion_png(results["fpb-50"].confusion, png, f"{Path(model).name} on FPB-50")
    if as_json:
        payload: dict[str, Any] = {"model": {"version": clf.model_version, "precision": clf.precision}}
        payload.update({k: m.to_dict() for k, m in results.items()})
        if headline_rows:
            payload[RECORD_KEY] = {
                "rows": len(headline_rows),
                "seen_in_lineage": headline_seen,
                "blind": headline_seen == 0,
            }
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"model: {clf.model_version} ({clf.precision})")
        click.echo(format_metrics_table(results))
        if headline_rows:
            click.echo(f"tfns-heldout: the model is {blindness(headline_seen, len(headline_rows))}")
        for name, m in results.items():
            click.echo(f"\n{name} per class:")
            for label, r in m.per_class.items():
                click.echo(
                    f"  {label:<9} precision {r['precision']:.4f} recall {r['recall']:.4f}"
                    f" f1 {r['f1-score']:.4f} support {int(r['support'])}"
                )
    # With --json, stdout is one JSON document: the PNG's path goes to stderr.
    click.echo(f"confusion matrix: {png}", err=as_json)


#: Input lines scored per round by ``classify``: memory is bounded by this, not by the
#: input, and a few thousand texts are enough for length-sorted batches to pad little.
CLASSIFY_CHUNK_LINES = 4096
_READ_BYTES = 1 << 20
#: The longest input line read, in bytes: a text is a headline, a summary or an article,
#: never megabytes; past this the input is not one text per line (/dev/zero, a binary
#: file, a whole corpus without newlines) and reading on would hold it all in memory.
MAX_LINE_BYTES = 8 << 20
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def iter_text_lines(stream: Any, bad: list[int] | None = None) -> Iterator[str]:
    """Lines of a byte stream as text, read in blocks: UTF-8 (a leading BOM and CRLF
    endings are dropped).

    A line that is not valid UTF-8 (a latin-1 export, say) is kept with U+FFFD for the bad
    bytes and its number appended to ``bad``, rather than failing every other line's output.
    """
    pending = b""
    lineno = 0
    while True:
        try:
            block = stream.read(_READ_BYTES)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise click.ClickException(f"cannot read the input ({reason}): check the file") from None
        if lineno == 0 and not pending and block.startswith(_UTF16_BOMS):
            raise click.ClickException(
                "the input is UTF-16 (it starts with a UTF-16 byte order mark): re-encode it as "
                "UTF-8, e.g. iconv -f UTF-16 -t UTF-8 FILE"
            )
        data = pending + block
        if not data:
            return
        # bytes.splitlines: \n, \r\n and old-Mac \r endings, as text mode read them. The last
        # piece may be cut by the block (or be a \r whose \n is in the next block): kept back.
        pieces = data.splitlines(keepends=True)
        pending = b""
        if block and pieces and not pieces[-1].endswith(b"\n"):
            pending = pieces.pop()
            if len(pending) > MAX_LINE_BYTES:
                raise _too_long(lineno + len(pieces) + 1)
        for raw in pieces:
            lineno += 1
            if len(raw) > MAX_LINE_BYTES + 2:  # its \r\n aside
                raise _too_long(lineno)
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith((b"\n", b"\r")) else raw
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield raw.decode("utf-8", errors="replace")
                if bad is not None:
                    bad.append(lineno)
        if not block:
            return


def _too_long(lineno: int) -> click.ClickException:
    size = f"{MAX_LINE_BYTES >> 20} MiB" if MAX_LINE_BYTES >= 1 << 20 else f"{MAX_LINE_BYTES} bytes"
    return click.ClickException(
        f"input line {lineno} is longer than {size}: classify reads one text per line; "
        "split the input into lines"
    )


def _warn_not_utf8(bad: list[int]) -> None:
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        click.echo(
            f"finsent classify: warning: input not UTF-8 on line(s) {shown}: undecodable bytes "
            "were replaced by U+FFFD (re-encode the input as UTF-8 to score those lines exactly)",
            err=True,
        )


def read_text_lines(stream: Any) -> list[str]:
    """All lines of a byte stream as text (iter_text_lines), with one warning on stderr
    naming the lines that were not UTF-8."""
    bad: list[int] = []
    lines = list(iter_text_lines(stream, bad))
    _warn_not_utf8(bad)
    return lines


@click.command(name="classify")
@click.option(
    "--input",
    "input_file",
    type=click.File("rb"),
    default=None,
    help="Text file, one text per line (default: stdin).",
)
@click.option(
    "--model",
    default=None,
    help="Model folder (default: FINSENT_MODEL_PATH, the promoted or the released model).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(*int_bounds("score_batch_size")),
    default=None,
    help="Texts per batch (default: FINSENT_SCORE_BATCH_SIZE, else 64 on a CPU, 512 on a GPU).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISION_CHOICES, case_sensitive=False),
    default=None,
    help="Weight precision (default: FINSENT_MODEL_PRECISION, 'auto').",
)
@click.option(
    "--entities",
    is_flag=True,
    help="Link each text's companies with the configured universe and score each one "
    '("entities": ticker, name, mention, relevance, label, probabilities, score). relevance: '
    "0-100, how much the text is about the company (80+ the headline's only company; "
    "docs/companies.md#relevance).",
)
def classify_cmd(
    input_file: Any, model: str | None, batch_size: int | None, precision: str | None, entities: bool
) -> None:
    """Classify texts: one per input line in, one JSON object per line out.

    Each output has "label", "probabilities" (negative/neutral/positive) and
    "score" (p_positive - p_negative). Empty lines give empty objects to keep line numbers.
    A line may also be a JSON object {"text": "...", "target": "Tesla"}: the output then
    adds "target" with the sentiment for that target (a mention, a ticker of the universe
    or any span of the text). A line that is not a valid request gives {"line", "error"}
    and the exit status 1 at the end. No database is needed.
    """
    if input_file is None and sys.stdin.isatty():
        raise click.UsageError("no input: pass --input FILE or pipe texts on stdin")
    _quiet_transformers()
    from pipeline.score.classifier import SentimentClassifier
    from pipeline.score.json_lines import plain_lines

    settings = _settings()  # loaded afresh on each call where no `finsent` group holds them
    try:
        clf = SentimentClassifier.load(
            model or _default_model(None),
            precision=precision or settings.model_precision,
            backend=settings.cpu_backend,
            batch_size=batch_size or settings.score_batch_size,
            # Texts alone run on the faster [CLS]-only graph; a JSON line with a target
            # switches to the mention graph when it comes.
            mentions=entities,
        )
    except FinSentError as exc:
        raise click.ClickException(str(exc)) from None
    # Streamed in chunks of lines: memory is bounded by the chunk, whatever the input's size.
    bad: list[int] = []
    lines = iter_text_lines(input_file or sys.stdin.buffer, bad)
    requests: Any = None  # pipeline.score.requests.ChunkScorer, for chunks with JSON lines
    done = 0
    while chunk := list(itertools.islice(lines, CLASSIFY_CHUNK_LINES)):
        done += len(chunk)
        try:
            if entities or _has_requests(chunk):
                requests = requests or _chunk_scorer(clf, entities)
                click.echo("\n".join(requests.score(chunk, first_line=done - len(chunk) + 1)))
                continue
            texts = [line for line in chunk if line.strip()]
            scored = iter(plain_lines(clf.predict_proba(texts)))
        except FinSentError as exc:  # a broken model: lines so far are out, none is guessed
            raise click.ClickException(f"{exc} (input lines {done - len(chunk) + 1}-{done})") from None
        click.echo("\n".join(next(scored) if line.strip() else "{}" for line in chunk))
    _warn_not_utf8(bad)
    warning = requests.plain_text_warning() if requests is not None else None
    if warning:
        click.echo(warning, err=True)
    summary = requests.error_summary() if requests is not None else None
    if summary:
        click.echo(summary, err=True)
        raise SystemExit(1)


def _has_requests(chunk: list[str]) -> bool:
    from pipeline.score.requests import has_requests

    return has_requests(chunk)


def _chunk_scorer(clf: Any, entities: bool) -> Any:
    """classify's scorer for JSON request lines and --entities (pipeline.score.requests),
    reading the company universe from settings when first needed: files, no database."""
    from pipeline.score.requests import ChunkScorer

    def universe() -> Any:
        from pipeline.companies.universe import companies_for

        try:
            return companies_for(_settings())
        except FinSentError as exc:
            raise click.ClickException(str(exc)) from None

    return ChunkScorer(clf, universe, entities=entities, warn=lambda line: click.echo(line, err=True))
