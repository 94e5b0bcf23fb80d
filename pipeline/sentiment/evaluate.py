"""Evaluation: accuracy, macro-F1, per-class report, confusion matrix, calibration.

Temperature scaling: one scalar T divides the logits; it is fitted on the validation part
(never on test) by minimising negative log-likelihood, and stored next to the weights in
``calibration.json`` so the classifier serves calibrated probabilities.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.score.loading import CALIBRATION_FILE, model_label_order
from pipeline.sentiment.data import LABELS, Example

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass
class Metrics:
    n: int
    accuracy: float
    macro_f1: float
    ece: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


#: Fewest validation rows a run fits its temperature on (train's evaluate_run): fewer is noise.
MIN_CALIBRATION_ROWS = 50


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising NLL; a 1-D problem, so a log-spaced grid plus refinement."""
    if len(labels) == 0:
        return 1.0

    def nll(t: float) -> float:
        p = softmax(logits, t)
        return float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())

    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 200))
    best = min(grid, key=nll)
    # Golden-section refinement around the best grid point.
    lo, hi = best / 1.05, best * 1.05
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a = hi - ratio * (hi - lo)
        b = lo + ratio * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float((lo + hi) / 2)


def compute_metrics(
    logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, n_bins: int = 15
) -> Metrics:
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        confusion_matrix,
        f1_score,
    )

    probs = softmax(logits, temperature)
    preds = probs.argmax(axis=1)
    ids = list(range(len(LABELS)))
    report = classification_report(
        labels, preds, labels=ids, target_names=list(LABELS), output_dict=True, zero_division=0
    )
    per_class = {name: {k: float(v) for k, v in report[name].items()} for name in LABELS if name in report}
    return Metrics(
        n=len(labels),
        accuracy=float(accuracy_score(labels, preds)),
        macro_f1=float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0)),
        ece=expected_calibration_error(probs, labels, n_bins),
        per_class=per_class,
        confusion=confusion_matrix(labels, preds, labels=ids).tolist(),
    )


def _mention_logits(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int,
    max_length: int,
    device: str | torch.device,
) -> np.ndarray:
    import torch

    from pipeline.score.mention import encode_reads, mention_logits, pool_weights

    order = model_label_order(model)
    ids, spans = encode_reads(tokenizer, texts, max_length)
    sorted_idx = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(sorted_idx), batch_size):
            idx = sorted_idx[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
            weights = pool_weights(batch["input_ids"].shape[1], [spans[i] for i in idx])
            logits = mention_logits(
                model, batch["input_ids"].to(device), batch["attention_mask"].to(device), weights.to(device)
            )
            out[idx] = logits.float().cpu().numpy()[:, order]
    model.train(was_training)
    return out


def predict_logits(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 128,
    device: str | torch.device = "cpu",
    *,
    mention: bool = False,
) -> np.ndarray:
    """Logits in our label order, batched with dynamic padding over length-sorted texts.

    ``mention``: the model reads a company at its mention (target style ``mention``): a
    marked text is read plain at the mention's tokens (pipeline/score/mention.py)."""
    import torch

    if mention:
        return _mention_logits(model, tokenizer, texts, batch_size, max_length, device)
    order = model_label_order(model)
    sorted_idx = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(sorted_idx), batch_size):
            idx = sorted_idx[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            logits = model(**enc).logits.float().cpu().numpy()
            out[idx] = logits[:, order]
    model.train(was_training)
    return out


def save_confusion_png(confusion: list[list[int]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            color = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_calibration(
    model_dir: Path, temperature: float, ece_before: float, ece_after: float, n: int
) -> None:
    payload = {
        "temperature": temperature,
        # Below MIN_CALIBRATION_ROWS the run keeps 1.0 rather than fit noise.
        "fitted_on": "validation" if n >= MIN_CALIBRATION_ROWS else "none (too few validation rows)",
        "n": n,
        "ece_before": ece_before,
        "ece_after": ece_after,
    }
    (Path(model_dir) / CALIBRATION_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def evaluate_examples(
    model: torch.nn.Module,
    tokenizer: Any,
    examples: Sequence[Example],
    temperature: float = 1.0,
    batch_size: int = 64,
    max_length: int = 128,
    device: str | torch.device = "cpu",
) -> Metrics:
    logits = predict_logits(model, tokenizer, [ex.text for ex in examples], batch_size, max_length, device)
    labels = np.array([ex.label for ex in examples])
    return compute_metrics(logits, labels, temperature)


def benchmark_logits(
    model: torch.nn.Module,
    tokenizer: Any,
    data_dir: Path,
    max_length: int = 128,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, labels, agreement==100 mask) for the canonical FPB test rows."""
    from pipeline.sentiment.data import load_benchmarks

    test = load_benchmarks(data_dir)["fpb-50"]
    logits = predict_logits(model, tokenizer, [ex.text for ex in test], 64, max_length, device)
    labels = np.array([ex.label for ex in test])
    full = np.array([ex.agreement == 100 for ex in test])
    return logits, labels, full


def benchmark_metrics(
    logits: np.ndarray, labels: np.ndarray, full: np.ndarray, temperature: float = 1.0
) -> dict[str, Metrics]:
    """FPB-50 (all test rows) and FPB-all (the agreement-100 subset)."""
    return {
        "fpb-50": compute_metrics(logits, labels, temperature),
        "fpb-all": compute_metrics(logits[full], labels[full], temperature),
    }


def evaluate_benchmarks(
    model: torch.nn.Module,
    tokenizer: Any,
    data_dir: Path,
    temperature: float = 1.0,
    max_length: int = 128,
    device: str | torch.device = "cpu",
) -> dict[str, Metrics]:
    """FPB-50 and FPB-all metrics of a model."""
    logits, labels, full = benchmark_logits(model, tokenizer, data_dir, max_length, device)
    return benchmark_metrics(logits, labels, full, temperature)


def format_metrics_table(results: dict[str, Metrics]) -> str:
    lines = ["| set | n | accuracy | macro-F1 | ECE |", "|---|---:|---:|---:|---:|"]
    for name, m in results.items():
        lines.append(f"| {name} | {m.n} | {m.accuracy:.4f} | {m.macro_f1:.4f} | {m.ece:.4f} |")
    return "\n".join(lines)
