"""The score stage's historical entry point: ``from pipeline.scoring import score_pending``.

The serving code lives in :mod:`pipeline.score`; this module only re-exports what users
and deployments import from here.
"""

from __future__ import annotations

from pipeline.score.registry import resolve_model_path
from pipeline.score.service import ScoreReport, load_classifier, score_pending

__all__ = ["ScoreReport", "load_classifier", "resolve_model_path", "score_pending"]
