"""Cross-fitted soft targets: K teachers, each blind to one fold of the training rows.

Distilling a student from teachers that trained on the very rows they label teaches it
little beyond the labels: a teacher is confidently right on what it memorised. A cross-fit
trains K models (``--cv-folds K --cv-fold k``), each on all training rows but fold k, and
keeps each model's logits on the fold it never saw. Merged, every training row gets one
honest soft label, which carries how ambiguous the sentence really is: what matters for the
50%-agreement PhraseBank rows. The student then trains with ``--soft-targets``.

    python -m pipeline.sentiment.crossfit --folds 5 --jobs 2 --out runs/cf -- \\
        --source fpb-split --epochs 6 --lr 1e-4 --layer-decay 0.9 --max-length 64

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

from pipeline.sentiment.train import HELDOUT_FILE

logger = logging.getLogger(__name__)

SOFT_TARGETS_FILE = "soft_targets.jsonl"
FOLD_ARGS_FILE = "crossfit_args.json"


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


def fold_is_done(fold_dir: Path, train_args: list[str], folds: int) -> bool:
    """A fold finished earlier with the same arguments (so an interrupted cross-fit resumes)."""
    try:
        recorded = json.loads((fold_dir / FOLD_ARGS_FILE).read_text())
    except (OSError, ValueError):
        return False
    finished = (fold_dir / HELDOUT_FILE).is_file() and (fold_dir / "metrics.json").is_file()
    return finished and recorded == {"folds": folds, "train_args": train_args}


def run_folds(train_args: list[str], folds: int, out: Path, jobs: int, threads: int) -> list[Path]:
    """Train every fold (``jobs`` processes at a time); logs go to ``fold-k/train.log``."""
    pending = list(range(folds))
    running: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
    failed: list[int] = []
    while pending or running:
        while pending and len(running) < jobs:
            fold = pending.pop(0)
            fold_dir = out / f"fold-{fold}"
            fold_dir.mkdir(parents=True, exist_ok=True)
            if fold_is_done(fold_dir, train_args, folds):
                logger.info("fold %d already trained with these arguments: kept", fold)
                continue
            (fold_dir / HELDOUT_FILE).unlink(missing_ok=True)
            (fold_dir / FOLD_ARGS_FILE).write_text(json.dumps({"folds": folds, "train_args": train_args}))
            log = (fold_dir / "train.log").open("wb")
            cmd = fold_command(train_args, folds, fold, fold_dir, threads)
            logger.info("fold %d: %s", fold, " ".join(cmd))
            running[fold] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), fold_dir)
        time.sleep(2)
        for fold, (proc, fold_dir) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[fold]
            if proc.returncode != 0:
                failed.append(fold)
                logger.error(
                    "fold %d failed (exit %d): see %s", fold, proc.returncode, fold_dir / "train.log"
                )
            else:
                logger.info("fold %d done", fold)
    if failed:
        raise RuntimeError(f"cross-fit folds {sorted(failed)} failed: see their train.log under {out}")
    return [out / f"fold-{k}" for k in range(folds)]


def merge_heldout(fold_dirs: list[Path], target: Path) -> dict[str, float]:
    """Concatenate the folds' held-out logits into one soft-target file; return a summary."""
    # Keyed by (text, label): the PhraseBank has sentences carrying two labels, whose rows
    # land in different folds; the soft-target reader averages their logits.
    seen: set[tuple[str, str]] = set()
    rows = correct = 0
    with target.open("w", encoding="utf-8") as out:
        for fold_dir in fold_dirs:
            path = fold_dir / HELDOUT_FILE
            if not path.is_file():
                raise RuntimeError(f"cross-fit: {path} is missing; was the fold trained with --cv-folds?")
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                key = (record["text"], record["label"])
                if key in seen:
                    raise RuntimeError(
                        f"cross-fit: a row is held out by two folds ({fold_dir}): {record['text']!r}"
                    )
                seen.add(key)
                logits = record["logits"]
                predicted = max(range(len(logits)), key=logits.__getitem__)
                correct += ["negative", "neutral", "positive"][predicted] == record["label"]
                rows += 1
                out.write(line + "\n")
    return {"rows": rows, "heldout_accuracy": correct / rows if rows else 0.0}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        split = argv.index("--")
        own, train_args = argv[:split], argv[split + 1 :]
    else:
        own, train_args = argv, []
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
    if args.folds < 2:
        p.error("--folds must be at least 2")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    for flag in ("--out", "--cv-folds", "--cv-fold", "--num-threads"):
        if flag in train_args:
            p.error(f"{flag} is set by the cross-fit; leave it out of the training arguments")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    fold_dirs = run_folds(train_args, args.folds, args.out, args.jobs, threads)
    summary = merge_heldout(fold_dirs, args.out / SOFT_TARGETS_FILE)
    summary["soft_targets"] = str(args.out / SOFT_TARGETS_FILE)
    (args.out / "crossfit.json").write_text(
        json.dumps({"folds": args.folds, "train_args": train_args, **summary}, indent=2) + "\n"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
