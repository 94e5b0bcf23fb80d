"""What the pipeline and the DAGs call: evaluate, deliver, or both."""

from __future__ import annotations

from datetime import datetime

from pipeline.alerts.delivery import DeliveryReport, deliver_pending
from pipeline.alerts.evaluate import EvaluationReport, evaluate
from pipeline.db.engine import Database
from pipeline.settings import Settings

__all__ = ["DeliveryReport", "EvaluationReport", "deliver_pending", "evaluate", "run_alerts"]


def run_alerts(
    db: Database, settings: Settings, *, now: datetime, model_version: str | None = None
) -> tuple[EvaluationReport, DeliveryReport]:
    """Evaluate at ``now`` on ``model_version``'s scores (the run's serving model; None: see
    evaluate), then send whatever is due (this run's emails and earlier retries)."""
    evaluation = evaluate(db, settings, now=now, model_version=model_version)
    return evaluation, deliver_pending(db, settings, now=now)
