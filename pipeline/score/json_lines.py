"""``finsent classify``'s output line for a plain text, written straight from the
probability rows.

Byte for byte what ``json.dumps({"label", "probabilities", "score"})`` gives for the values
:meth:`SentimentClassifier.predict` returns (probabilities and score rounded to 6 places by
Python's ``round``, floats written by ``float.__repr__`` as ``json`` writes them), without
building a result object and two dicts per text: those took about half of the host's
serial time per text, which bounds what a GPU can deliver end to end (BENCHMARKS.md,
"host side").
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import ModelError
from pipeline.score.labels import LABELS

__all__ = ["non_finite_error", "plain_lines"]

# str.format fields: the label, the three probabilities, the score ({{ and }} are braces).
_TEMPLATE = (
    '{{"label": "{}", "probabilities": {{'
    + ", ".join(f'"{name}": {{!r}}' for name in LABELS)
    + '}}, "score": {!r}}}'
)


def plain_lines(probs: np.ndarray) -> list[str]:
    """One JSON object per row of ``probs`` ((n, 3), negative/neutral/positive)."""
    if len(probs) == 0:
        return []
    labels = [LABELS[i] for i in probs.argmax(axis=1).tolist()]
    values = [round(v, 6) for v in probs.ravel().tolist()]
    scores = [round(s, 6) for s in (probs[:, 2] - probs[:, 0]).tolist()]
    if not np.isfinite(probs).all():
        raise non_finite_error(int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0]))
    fmt = _TEMPLATE.format
    return [
        fmt(label, values[3 * i], values[3 * i + 1], values[3 * i + 2], score)
        for i, (label, score) in enumerate(zip(labels, scores, strict=True))
    ]


def non_finite_error(row: int) -> ModelError:
    """The error for a model that gave NaN or infinite probabilities (broken weights or
    calibration, an overflow in half precision) for the ``row``-th text of a call: written,
    they would not be JSON (``NaN``), and would read as "negative"."""
    return ModelError(
        f"the model gave non-finite probabilities for text {row + 1} of this batch: its weights or "
        "calibration are broken, or its precision overflows; try --precision fp32 or another model"
    )
