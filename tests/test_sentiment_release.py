"""The committed released model, evaluated on the real FPB-50 test rows.

Needs the shared labelled data (FINSENT_TRAINING_DATA_DIR or <repo>/../shared/data);
skipped with a reason when it is absent. Floors are one point under the measured numbers
in models/finsent-minilm-v1/metrics.json, for the precision the pipeline serves on this
machine ("auto": bf16 where the CPU has native bf16, else int8).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.sentiment.gate import RELEASED_MODEL

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FINSENT_TRAINING_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
SPLIT = DATA_DIR / "financial_phrasebank" / "fpb_split.tsv"

# FPB-50 accuracy and macro-F1 measured on the released model per serving precision (see
# its model card); floors are one point lower.
MEASURED_FPB50 = {"bf16": (0.8299, 0.8176), "int8": (0.8392, 0.8213)}

pytestmark = [
    pytest.mark.skipif(not SPLIT.is_file(), reason=f"labelled data not found at {SPLIT}"),
    pytest.mark.skipif(
        not (RELEASED_MODEL / "config.json").is_file(), reason=f"no released model at {RELEASED_MODEL}"
    ),
]


def test_release_layout() -> None:
    config = json.loads((RELEASED_MODEL / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    weights = RELEASED_MODEL / "model.safetensors"
    assert weights.stat().st_size < 50 * 1024 * 1024
    for name in ("README.md", "metrics.json", "calibration.json", "training_config.json"):
        assert (RELEASED_MODEL / name).is_file(), name


def test_released_model_on_fpb50() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    from pipeline.sentiment.classifier import SentimentClassifier
    from pipeline.sentiment.data import load_benchmarks

    test = load_benchmarks(DATA_DIR)["fpb-50"]
    assert len(test) == 970
    clf = SentimentClassifier.load(RELEASED_MODEL, device="cpu")  # the serving path: "auto"
    preds = clf.predict_proba([ex.text for ex in test]).argmax(axis=1)
    labels = np.array([ex.label for ex in test])
    accuracy = accuracy_score(labels, preds)
    macro_f1 = f1_score(labels, preds, average="macro")
    measured_accuracy, measured_f1 = MEASURED_FPB50[clf.precision]
    assert accuracy >= measured_accuracy - 0.01, (clf.precision, accuracy)
    assert macro_f1 >= measured_f1 - 0.01, (clf.precision, macro_f1)


def test_floors_follow_the_numbers_recorded_with_the_release() -> None:
    released = json.loads((RELEASED_MODEL / "metrics.json").read_text())["released"]
    for precision, (accuracy, macro_f1) in MEASURED_FPB50.items():
        recorded = released[precision]["fpb-50"]
        assert (accuracy, macro_f1) == (round(recorded["accuracy"], 4), round(recorded["macro_f1"], 4))
