"""classify's plain output lines, written from the probability rows, must be byte for byte
what json.dumps of the classifier's results gave."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.score.json_lines import plain_lines
from pipeline.score.labels import LABELS


def _via_results(probs: np.ndarray) -> list[str]:
    """The former path: SentimentClassifier._results' rounding, then json.dumps."""
    labels = probs.argmax(axis=1).tolist()
    scores = (probs[:, 2] - probs[:, 0]).tolist()
    return [
        json.dumps(
            {
                "label": LABELS[label],
                "probabilities": {name: round(v, 6) for name, v in zip(LABELS, row, strict=True)},
                "score": round(score, 6),
            }
        )
        for label, row, score in zip(labels, probs.tolist(), scores, strict=True)
    ]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_same_bytes_as_json_dumps_on_random_rows() -> None:
    rng = np.random.default_rng(7)
    # Wide logits reach the corners: probabilities like 1e-07 (written 0.0 after rounding),
    # 5e-07 (a rounding tie's neighbourhood), 0.9999996 (written 1.0).
    probs = _softmax(rng.normal(scale=rng.choice([0.1, 3.0, 20.0], size=(20000, 1)), size=(20000, 3)))
    assert plain_lines(probs) == _via_results(probs)


@pytest.mark.parametrize(
    "row",
    [
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [1 / 3, 1 / 3, 1 / 3],  # a three-way tie: argmax takes the first, negative
        [0.5, 0.0, 0.5],  # score 0.0
        [0.25, 0.5, 0.25],
        [5e-07, 0.5, 0.4999995],  # round-half values in binary
        [1e-05, 1e-06, 0.99998900],  # written in exponent form
        [0.1234565, 0.2, 0.6765435],
        [-0.0, 0.0, 1.0],
    ],
)
def test_same_bytes_on_corner_rows(row: list[float]) -> None:
    probs = np.array([row])
    assert plain_lines(probs) == _via_results(probs)
    assert json.loads(plain_lines(probs)[0])["label"] == LABELS[int(np.argmax(probs[0]))]


def test_a_row_that_is_not_finite_is_refused_not_written_as_nan() -> None:
    # "NaN" is not JSON (jq and most readers refuse the line), and its argmax reads "negative".
    probs = np.array([[0.2, 0.3, 0.5], [np.nan, np.nan, np.nan]])
    with pytest.raises(ModelError, match="non-finite probabilities for text 2 of this batch"):
        plain_lines(probs)


def test_no_rows_no_lines() -> None:
    assert plain_lines(np.zeros((0, 3))) == []
