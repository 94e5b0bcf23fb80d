"""Serving precision on this CPU: what each path costs in accuracy and what it buys in speed.

For fp32, bf16 and int8 (``SentimentClassifier`` as the pipeline loads it, batch 64), on the
FPB-50 test rows, their FPB-all subset and the headline check (the TFNS rows split seed 42
holds out): accuracy, macro-F1, negative recall (what catches a spike), how many labels
differ from fp32, the largest change of a probability against fp32, texts/s over the
same rows, and how far a headline's result moves when it is scored alone instead of in its
batch. fp32 is the baseline, so every other row reads as a ratio against it. Usage::

    .venv/bin/python bench/bench_precision.py [--model models/finsent-minilm-v3] [--precisions fp32,bf16,int8]

``int8-all`` (not a serving option) is the earlier int8 recipe, for comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.paths import MODELS_DIR, SHARED_DATA_DIR


def load(model: str, precision: str, mentions: bool = True):
    """SentimentClassifier at a precision; ``int8-all`` is the earlier int8 recipe (every
    Linear layer, one weight scale per tensor), kept as a baseline."""
    import dataclasses

    from pipeline.score.classifier import SentimentClassifier, backend_measuring

    if precision != "int8-all":
        return SentimentClassifier.load(
            model, device="cpu", precision=precision, mentions=mentions, backend=backend_measuring(precision)
        )
    import torch
    from torch.ao.quantization import quantize_dynamic

    clf = SentimentClassifier.load(model, device="cpu", precision="fp32", backend="torch")
    quantized = quantize_dynamic(clf.model, {torch.nn.Linear}, dtype=torch.qint8)
    return dataclasses.replace(clf, model=quantized, precision="int8-all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODELS_DIR / "finsent-minilm-v3"), help="model folder")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("FINSENT_TRAINING_DATA_DIR", str(SHARED_DATA_DIR)),
        help="labelled data (default: FINSENT_TRAINING_DATA_DIR, else ../shared/data)",
    )
    parser.add_argument(
        "--precisions", default="fp32,bf16,int8", help="comma-separated, fp32 first (the baseline)"
    )
    parser.add_argument(
        "--labels-only",
        action="store_true",
        help="load as `finsent classify` without --entities does (mentions=False: a mention-style "
        "model on OpenVINO's [CLS]-only graph) instead of as `score` does",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch
    from sklearn.metrics import f1_score, recall_score

    from pipeline.errors import FinSentError
    from pipeline.score.classifier import cpu_has_native_bf16, resolve_precision
    from pipeline.sentiment.data import DataFormatError, load_benchmarks
    from pipeline.sentiment.headlines import load_headline_rows

    data_dir = Path(args.data_dir)
    try:
        fpb = load_benchmarks(data_dir)["fpb-50"]
        heads = load_headline_rows(data_dir)  # [] without TFNS
    except (FinSentError, DataFormatError) as exc:
        raise SystemExit(f"bench_precision: {exc} (set FINSENT_TRAINING_DATA_DIR or --data-dir)") from None
    if not heads:
        raise SystemExit(
            f"bench_precision: no headline rows under {data_dir} (TFNS missing): "
            "set FINSENT_TRAINING_DATA_DIR or --data-dir"
        )
    full = np.array([ex.agreement == 100 for ex in fpb])
    sets = {"fpb-50": (fpb, None), "fpb-all": (fpb, full), "tfns-heldout": (heads, None)}
    precisions = args.precisions.split(",")
    if precisions[0] != "fp32":
        raise SystemExit("--precisions must start with fp32 (the baseline)")

    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"native bf16: {cpu_has_native_bf16()}, auto serves {resolve_precision('auto', False)}, "
        f"torch {torch.__version__}"
    )
    n_all = int(full.sum())
    print(f"# model {args.model}; {len(fpb)} FPB-50 rows ({n_all} FPB-all), {len(heads)} headline rows")
    print("| precision | set | accuracy | macro-F1 | negative recall | labels ≠ fp32 | max Δp vs fp32 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    reference: dict[str, np.ndarray] = {}
    speed: dict[str, float] = {}
    moved: dict[str, tuple[int, float]] = {}
    engine: dict[str, str] = {}
    for precision in precisions:
        clf = load(args.model, precision, mentions=not args.labels_only)
        engine[precision] = "OpenVINO" if clf.compiled is not None else "PyTorch"
        clf.predict_proba([ex.text for ex in heads[:64]])  # warm-up: thread pool, allocator
        probs = {}
        start = time.perf_counter()
        for rows in (fpb, heads):
            probs[id(rows)] = clf.predict_proba([ex.text for ex in rows])
        speed[precision] = (len(fpb) + len(heads)) / (time.perf_counter() - start)
        for name, (rows, mask) in sets.items():
            p = probs[id(rows)] if mask is None else probs[id(rows)][mask]
            y = np.array([ex.label for ex in rows])
            y = y if mask is None else y[mask]
            pred = p.argmax(axis=1)
            reference.setdefault(name, p)
            ref = reference[name]
            differ = int((pred != ref.argmax(axis=1)).sum())
            macro_f1 = f1_score(y, pred, average="macro")
            print(
                f"| {precision} | {name} | {(pred == y).mean():.4f} | {macro_f1:.4f} "
                f"| {recall_score(y, pred, labels=[0], average=None)[0]:.4f} "
                f"| {differ} of {len(y)} ({differ / len(y):.1%}) | {np.abs(p - ref).max():.3f} |"
            )
        # A text scored alone against the same text in its batch: int8 scales activations
        # per batch, so its probabilities depend on the batch-mates.
        alone = np.concatenate([clf.predict_proba([ex.text]) for ex in heads])
        batched = probs[id(heads)]
        moved[precision] = (
            int((alone.argmax(axis=1) != batched.argmax(axis=1)).sum()),
            float(np.abs(alone - batched).max()),
        )
    print()
    print(
        "| precision | engine | texts/s (same rows, one run) | vs fp32 "
        f"| headline labels that change scored alone (of {len(heads)}) | max Δp alone vs batched |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for precision, rate in speed.items():
        changed, delta = moved[precision]
        print(
            f"| {precision} | {engine[precision]} | {rate:.0f} | {rate / speed['fp32']:.2f}x "
            f"| {changed} | {delta:.3f} |"
        )


if __name__ == "__main__":
    main()
