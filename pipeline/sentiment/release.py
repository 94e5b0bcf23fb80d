"""Turn a training checkpoint into a release folder under ``models/``.

    python -m pipeline.sentiment.release /tmp/run models/finsent-minilm-v3 [--notes NOTES.md]

Writes fp16 safetensors (half the size; served in fp32 or int8 after loading), the
tokenizer, ``calibration.json``, ``training_config.json`` and ``metrics.json`` extended with
the numbers of the released weights on FPB-50, FPB-all and the headline check for every
CPU serving precision (fp32, bf16, int8), then regenerates the model card (with the notes appended).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pipeline.sentiment.data import Example

logger = logging.getLogger(__name__)

COPIED = ("calibration.json",)


def serving_rows(data_dir: Path) -> tuple[list[Example], list[Example]]:
    """The FPB-50 test rows and the headline check's rows ([] when the data dir lacks TFNS):
    read once, scored at every precision."""
    from pipeline.sentiment.data import load_benchmarks
    from pipeline.sentiment.headlines import load_headline_rows

    return load_benchmarks(data_dir)["fpb-50"], load_headline_rows(data_dir)


def served_metrics(
    model_dir: Path, precision: str, test: list[Example], heads: list[Example]
) -> dict[str, Any]:
    """FPB-50, FPB-all and the headline check (``serving_rows``) through SentimentClassifier,
    as the pipeline serves."""
    from pipeline.score.classifier import SentimentClassifier, backend_measuring
    from pipeline.sentiment.evaluate import benchmark_metrics, compute_metrics
    from pipeline.sentiment.headlines import HEADLINE_SET

    backend = backend_measuring(precision)
    clf = SentimentClassifier.load(model_dir, device="cpu", precision=precision, backend=backend)
    logp = np.log(clf.predict_proba([ex.text for ex in test]) + 1e-12)
    labels = np.array([ex.label for ex in test])
    full = np.array([ex.agreement == 100 for ex in test])
    out = {k: m.to_dict() for k, m in benchmark_metrics(logp, labels, full).items()}
    if heads:
        logp = np.log(clf.predict_proba([ex.text for ex in heads]) + 1e-12)
        out[HEADLINE_SET] = compute_metrics(logp, np.array([ex.label for ex in heads])).to_dict()
    return out


def release(src: Path, dest: Path, data_dir: Path, notes: Path | None = None) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from pipeline.score.loading import load_sequence_classifier
    from pipeline.score.target import TARGET_FILE
    from pipeline.sentiment.card import CARD_NOTES_FILE, write_model_card
    from pipeline.sentiment.train import save_weights

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    model, tokenizer = load_sequence_classifier(src)
    save_weights(model.to(torch.float16), tokenizer, dest)
    for name in COPIED:
        shutil.copy2(src / name, dest / name)
    if (src / TARGET_FILE).is_file():  # a target-aware model says how it reads a target
        shutil.copy2(src / TARGET_FILE, dest / TARGET_FILE)

    info = json.loads((src / "training_config.json").read_text())
    # The card's reproduce command should write the release directly.
    info["config"]["out_dir"] = str(dest)
    info["config"]["save_dtype"] = "float16"
    (dest / "training_config.json").write_text(json.dumps(info, indent=2) + "\n")

    metrics = json.loads((src / "metrics.json").read_text())
    rows = serving_rows(data_dir)
    metrics["released"] = {
        precision: served_metrics(dest, precision, *rows) for precision in ("fp32", "bf16", "int8")
    }
    if (dest / TARGET_FILE).is_file():
        from pipeline.score.classifier import SentimentClassifier
        from pipeline.sentiment.entity_eval import ENTITY_SET, entity_test_rows, served_entity_metrics

        entity_rows = entity_test_rows(data_dir)
        for precision in ("fp32", "bf16") if entity_rows else ():
            clf = SentimentClassifier.load(dest, device="cpu", precision=precision)
            metrics["released"][precision][ENTITY_SET] = served_entity_metrics(clf, entity_rows)
    metrics["released"]["note"] = (
        "released fp16 weights loaded in fp32 / bf16 / int8 dynamic quantisation (CPU),"
        " calibrated, max_length 128 with windowing"
    )
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if notes is not None:
        shutil.copy2(notes, dest / CARD_NOTES_FILE)
    write_model_card(dest, info, metrics)
    # The notes are part of the card now; keep the folder in the standard HF layout.
    (dest / CARD_NOTES_FILE).unlink(missing_ok=True)
    for kind, sets in metrics["released"].items():
        if isinstance(sets, dict):
            for name, m in sets.items():
                if "accuracy" not in m:  # the entity check: pairs and baseline, logged below
                    m = m["target"]["all"]
                logger.info(
                    "released %s %s: accuracy %.4f macro-F1 %.4f", kind, name, m["accuracy"], m["macro_f1"]
                )
    return dest


def main(argv: list[str] | None = None) -> int:
    from pipeline.sentiment.config import default_data_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m pipeline.sentiment.release", description=__doc__)
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--notes", type=Path, default=None, help="Markdown appended to the model card")
    args = p.parse_args(argv)
    release(args.src, args.dest, args.data_dir, args.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
