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

import json

import numpy as np

from pipeline.score.labels import LABELS

__all__ = ["plain_lines"]

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
    if np.isfinite(probs).all():
        fmt = _TEMPLATE.format
        return [
            fmt(label, values[3 * i], values[3 * i + 1], values[3 * i + 2], score)
            for i, (label, score) in enumerate(zip(labels, scores, strict=True))
        ]
    # json writes NaN / Infinity where repr writes nan / inf: the rare broken rows (a model
    # gone wrong) take json's own writer, on the same values, so the output is as it was.
    return [
        json.dumps(
            {
                "label": label,
                "probabilities": dict(zip(LABELS, values[3 * i : 3 * i + 3], strict=True)),
                "score": score,
            }
        )
        for i, (label, score) in enumerate(zip(labels, scores, strict=True))
    ]
