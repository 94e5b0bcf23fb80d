"""Cross-fitted soft targets: K teachers, each blind to one fold of the training rows.

Distilling a student from teachers that trained on the very rows they label teaches it
little beyond the labels: a teacher is confidently right on what it memorised. A cross-fit
trains K models (``--cv-folds K --cv-fold k``), each on all training rows but fold k, and
keeps each model's logits on the fold it never saw. Merged, every training row gets one
honest soft label, which carries how ambiguous the sentence really is: what matters for the
50%-agreement PhraseBank rows. The student then trains with ``--soft-targets``.

    finsent crossfit --folds 5 --jobs 2 --out runs/cf -- \\
        --source fpb-split --epochs 6 --lr 1e-4 --layer-decay 0.9 --max-length 64

(``python -m pipeline.sentiment.crossfit`` takes the same arguments.)

The validation rows stay out of every fold (same split seed), so the student's model
selection remains clean. Folds run as separate processes, ``--jobs`` at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.sentiment.data import LABELS, DataFormatError, check_source_spec
from pipeline.sentiment.train import (
    HELDOUT_FILE,
    TRANSFER_IN_CROSSFIT,
    build_arg_parser,
    config_from_args,
    selection_source,
)

logger = logging.getLogger(__name__)

SOFT_TARGETS_FILE = "soft_targets.jsonl"
FOLD_ARGS_FILE = "crossfit_args.json"
# Training arguments the cross-fit sets itself for each fold.
OWNED_ARGS = ("--out", "--cv-folds", "--cv-fold", "--num-threads")


def fold_command(train_args: list[str], folds: int, fold: int, out: Path, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline.sentiment.train",
        *train_args,
        "--cv-folds",
        str(folds),
        "--cv-fold",
        str(fold),
        "--num-threads",
        str(threads),
        "--no-progress",
        "--out",
        str(out),
    ]


def _fold_record(train_args: list[str], folds: int) -> dict[str, object]:
    """What a finished fold records of its run (FOLD_ARGS_FILE), to recognise it on resume."""
    return {"folds": folds, "train_args": train_args}


def fold_is_done(fold_dir: Path, train_args: list[str], folds: int) -> bool:
    """A fold finished earlier with the same arguments (so an interrupted cross-fit resumes)."""
    try:
        recorded = json.loads((fold_dir / FOLD_ARGS_FILE).read_text())
    except (OSError, ValueError):
        return False
    finished = (fold_dir / HELDOUT_FILE).is_file() and (fold_dir / "metrics.json").is_file()
    return finished and recorded == _fold_record(train_args, folds)


class CrossfitError(RuntimeError):
    """A fold failed or left no held-out logits; the message names the fold and its log."""


def _start_fold(
    train_args: list[str], folds: int, fold_dir: Path, fold: int, threads: int
) -> subprocess.Popen:
    # Whatever an earlier, different run left must not pass for this run's result.
    for name in (HELDOUT_FILE, "metrics.json", FOLD_ARGS_FILE):
        (fold_dir / name).unlink(missing_ok=True)
    cmd = fold_command(train_args, folds, fold, fold_dir, threads)
    logger.info("fold %d: %s", fold, " ".join(cmd))
    with (fold_dir / "train.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def run_folds(train_args: list[str], folds: int, out: Path, jobs: int, threads: int) -> list[Path]:
    """Train every fold (``jobs`` processes at a time); logs go to ``fold-k/train.log``.

    A fold that finished earlier with the same arguments is kept (an interrupted cross-fit
    resumes). The first failure stops the rest: running folds are terminated.
    """
    pending = list(range(folds))
    running: dict[int, tuple[subprocess.Popen, Path]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                fold = pending.pop(0)
                fold_dir = out / f"fold-{fold}"
                fold_dir.mkdir(parents=True, exist_ok=True)
                if fold_is_done(fold_dir, train_args, folds):
                    logger.info("fold %d already trained with these arguments: kept", fold)
                    continue
                running[fold] = (_start_fold(train_args, folds, fold_dir, fold, threads), fold_dir)
            time.sleep(1)
            for fold, (proc, fold_dir) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[fold]
                if proc.returncode != 0:
                    raise CrossfitError(
                        f"fold {fold} failed (exit {proc.returncode}): see {fold_dir / 'train.log'}"
                    )
                # Recorded only now, so a fold that died half-way is never taken as done.
                (fold_dir / FOLD_ARGS_FILE).write_text(json.dumps(_fold_record(train_args, folds)))
                logger.info("fold %d done", fold)
    finally:
        for proc, _ in running.values():
            proc.terminate()
        for proc, _ in running.values():
            proc.wait()
    return [out / f"fold-{k}" for k in range(folds)]


def merge_heldout(fold_dirs: list[Path], target: Path) -> dict[str, float]:
    """Concatenate the folds' held-out logits into one soft-target file; return a summary.

    Written to a temporary file and renamed, so a failed merge leaves no partial file.
    """
    # Rows with the same text share a fold (see cv_fold_split); an exact repeat of a
    # (text, label) row adds nothing and is written once.
    seen: dict[tuple[str, str], Path] = {}
    rows = correct = 0
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for fold_dir in fold_dirs:
            path = fold_dir / HELDOUT_FILE
            if not path.is_file():
                raise CrossfitError(f"{path} is missing: train the fold again (delete {fold_dir})")
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                key = (record["text"], record["label"])
                if key in seen:
                    if seen[key] != fold_dir:
                        raise CrossfitError(
                            f"a row is held out by {seen[key].name} and {fold_dir.name}: "
                            f"{record['text'][:80]!r} (folds from different versions?)"
                        )
                    continue
                seen[key] = fold_dir
                logits = record["logits"]
                predicted = max(range(len(logits)), key=logits.__getitem__)
                correct += LABELS[predicted] == record["label"]
                rows += 1
                out.write(line + "\n")
    tmp.replace(target)
    return {"rows": rows, "heldout_accuracy": correct / rows if rows else 0.0}


def check_train_args(train_args: list[str]) -> None:
    """Parse the fold arguments once up front, so a typo is one line before any fold starts."""

    def fail(message: str) -> None:
        raise CrossfitError(f"training arguments: {message} (see finsent train --help)")

    parser = build_arg_parser()
    parser.error = fail  # type: ignore[method-assign]  # argparse would print usage and exit
    args = parser.parse_args(train_args)
    for spec in args.sources or []:
        try:
            check_source_spec(spec)  # the files themselves are read by the folds
        except DataFormatError as exc:
            fail(str(exc))
    if args.transfer:
        fail(TRANSFER_IN_CROSSFIT)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        fail(str(exc))
        return
    try:
        selection_source(config.select_on, config.sources)
    except ValueError as exc:
        fail(str(exc))


def run_crossfit(
    train_args: list[str], folds: int, out: Path, jobs: int = 1, threads: int = 0
) -> dict[str, object]:
    """Train the folds, merge their held-out logits, write ``crossfit.json``; return its summary."""
    if folds < 2:
        raise CrossfitError(f"--folds must be at least 2, got {folds}")
    if jobs < 1:
        raise CrossfitError(f"--jobs must be at least 1, got {jobs}")
    for flag in OWNED_ARGS:
        if flag in train_args:
            raise CrossfitError(f"{flag} is set by the cross-fit; leave it out of the training arguments")
    check_train_args(train_args)
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    out.mkdir(parents=True, exist_ok=True)
    fold_dirs = run_folds(train_args, folds, out, jobs, threads)
    summary: dict[str, object] = dict(merge_heldout(fold_dirs, out / SOFT_TARGETS_FILE))
    summary["soft_targets"] = str(out / SOFT_TARGETS_FILE)
    (out / "crossfit.json").write_text(
        json.dumps({"folds": folds, "train_args": train_args, **summary}, indent=2) + "\n"
    )
    return summary


def split_train_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """The cross-fit's own arguments, and the training arguments after ``--``."""
    if "--" in argv:
        split = argv.index("--")
        return argv[:split], argv[split + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    own, train_args = split_train_args(list(sys.argv[1:] if argv is None else argv))
    p = argparse.ArgumentParser(
        prog="python -m pipeline.sentiment.crossfit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--folds", type=int, default=5, help="number of folds (>= 2)")
    p.add_argument("--jobs", type=int, default=1, help="folds trained at the same time")
    p.add_argument("--threads", type=int, default=0, help="torch threads per fold (default: cores / jobs)")
    p.add_argument("--out", type=Path, required=True, help="folder for the folds and soft_targets.jsonl")
    args = p.parse_args(own)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = run_crossfit(train_args, args.folds, args.out, args.jobs, args.threads)
    except CrossfitError as exc:
        print(f"crossfit: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
