"""The committed released model, evaluated on the real FPB-50 test rows and the headline check.

Needs the shared labelled data (FINSENT_TRAINING_DATA_DIR or <repo>/../shared/data);
skipped with a reason when it is absent. Floors are one point under the measured numbers
in models/finsent-minilm-v3/metrics.json, for the precision the pipeline serves on this
machine ("auto": bf16 where it outruns fp32, cpu_prefers_bf16, else fp32).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.paths import MODELS_DIR, SHARED_DATA_DIR

# The release these figures were measured on (the registry serves the first models/* folder).
RELEASED_MODEL = MODELS_DIR / "finsent-minilm-v3"
DATA_DIR = Path(os.environ.get("FINSENT_TRAINING_DATA_DIR", SHARED_DATA_DIR))
SPLIT = DATA_DIR / "financial_phrasebank" / "fpb_split.tsv"

# FPB-50 accuracy and macro-F1 measured on the released model per serving precision (see
# its model card); floors are one point lower.
MEASURED_FPB50 = {"fp32": (0.8381, 0.8244), "bf16": (0.8371, 0.8226), "int8": (0.8361, 0.8188)}
# The same on the headline check (the 954 TFNS rows split seed 42 holds out), measured on a
# CPU with native bf16 (AVX512-BF16).
MEASURED_HEADLINES = {"fp32": (0.8732, 0.8391), "bf16": (0.8732, 0.8391), "int8": (0.8711, 0.8353)}

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


def served_scores(rows: list) -> tuple[str, float, float]:
    """(precision, accuracy, macro-F1) of the release on the serving path ("auto")."""
    from sklearn.metrics import accuracy_score, f1_score

    from pipeline.score.classifier import SentimentClassifier

    clf = SentimentClassifier.load(RELEASED_MODEL, device="cpu")
    preds = clf.predict_proba([ex.text for ex in rows]).argmax(axis=1)
    labels = np.array([ex.label for ex in rows])
    return clf.precision, accuracy_score(labels, preds), f1_score(labels, preds, average="macro")


@pytest.mark.slow
def test_released_model_on_fpb50() -> None:
    from pipeline.sentiment.data import load_benchmarks

    test = load_benchmarks(DATA_DIR)["fpb-50"]
    assert len(test) == 970
    precision, accuracy, macro_f1 = served_scores(test)
    measured_accuracy, measured_f1 = MEASURED_FPB50[precision]
    assert accuracy >= measured_accuracy - 0.01, (precision, accuracy)
    assert macro_f1 >= measured_f1 - 0.01, (precision, macro_f1)


@pytest.mark.slow
def test_released_model_on_the_headline_check() -> None:
    from pipeline.sentiment.headlines import load_headline_rows

    rows = load_headline_rows(DATA_DIR)
    assert len(rows) == 954
    precision, accuracy, macro_f1 = served_scores(rows)
    measured_accuracy, measured_f1 = MEASURED_HEADLINES[precision]
    assert accuracy >= measured_accuracy - 0.01, (precision, accuracy)
    assert macro_f1 >= measured_f1 - 0.01, (precision, macro_f1)


def test_floors_follow_the_numbers_recorded_with_the_release() -> None:
    released = json.loads((RELEASED_MODEL / "metrics.json").read_text())["released"]
    for name, measured in (("fpb-50", MEASURED_FPB50), ("tfns-heldout", MEASURED_HEADLINES)):
        for precision, (accuracy, macro_f1) in measured.items():
            recorded = released[precision][name]
            assert (accuracy, macro_f1) == (round(recorded["accuracy"], 4), round(recorded["macro_f1"], 4))


def test_release_records_its_exposure_to_the_headline_rows() -> None:
    # v3 never trained on the headline rows and chose its epoch on SEntFiN rows, but descends
    # from v2 (base model and teacher), which chose its epoch on every validation row, 93 of
    # them headline rows: the lineage counts both (186), and the gate reports the headline
    # check against it instead of applying the guard.
    from pipeline.sentiment.data import rows_fingerprint
    from pipeline.sentiment.headlines import RECORD_KEY, inherited_seen, load_headline_rows, recorded_seen

    fingerprint = rows_fingerprint(load_headline_rows(DATA_DIR))
    record = json.loads((RELEASED_MODEL / "metrics.json").read_text())[RECORD_KEY]
    assert record["seen_in_training"] == 0 and record["seen_in_selection"] == 0
    assert recorded_seen(RELEASED_MODEL, fingerprint) == 186
    assert inherited_seen(str(RELEASED_MODEL), None, fingerprint) == 186


@pytest.mark.slow
def test_int8_stays_within_half_a_point_of_fp32() -> None:
    # The budget for a faster CPU path. int8 is opt-in, so the serving-path tests
    # above never load it; this keeps its recipe honest (it was 1.3 points down on headlines
    # when every Linear layer was quantised with one scale per tensor).
    from pipeline.sentiment.release import served_metrics, serving_rows

    rows = serving_rows(DATA_DIR)
    results = {}
    for precision in ("fp32", "int8"):
        served = served_metrics(RELEASED_MODEL, precision, *rows)
        results[precision] = {name: m["accuracy"] for name, m in served.items()}
    assert set(results["fp32"]) == {"fpb-50", "fpb-all", "tfns-heldout"}
    for name, fp32_accuracy in results["fp32"].items():
        assert results["int8"][name] >= fp32_accuracy - 0.005, (name, results)
