"""Serving: score stored articles with the model that serves.

- :mod:`pipeline.score.registry`: which model serves (FINSENT_MODEL_PATH, else the
  promoted model, else the released one), resolved and checked once per run.
- :mod:`pipeline.score.loading`: check a model folder, name its version, load any Hugging
  Face sequence classifier (the one loader serving, the gate, releases and training share).
- :mod:`pipeline.score.classifier`: inference (windows, precision, article scores).
- :mod:`pipeline.score.bert_graph`: a BERT's forward pass written for OpenVINO's graph
  (the last layer at [CLS] only where only the logits are read).
- :mod:`pipeline.score.service`: the score stage (``score_pending``).
- :mod:`pipeline.score.target`: how a text is scored for one company (the mention marked).
- :mod:`pipeline.score.requests`: ``finsent classify``'s JSON request lines (a text and
  its target) and ``--entities``: parsing, target resolution, one model call per chunk.

Serving imports nothing from the training lab (:mod:`pipeline.sentiment`); the lab imports
serving (tests/score/test_layering.py enforces it). Importing this package loads no model
and no torch.
"""

from __future__ import annotations

from pipeline.score.labels import LABELS
from pipeline.score.registry import ServingModel, resolve_model_path, serving_model
from pipeline.score.service import ScoreReport, load_classifier, score_pending

__all__ = [
    "LABELS",
    "ScoreReport",
    "ServingModel",
    "load_classifier",
    "resolve_model_path",
    "score_pending",
    "serving_model",
]
