"""End to end on the bundled demo: one alert for the company with the burst, none twice.

The transformer is replaced by a keyword classifier (the model has its own tests): what is
under test is ingest -> store -> alerts on the demo's timeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pipeline.db.models import Alert, AlertDelivery, Article

run_module = pytest.importorskip("pipeline.run")
pytest.importorskip("pipeline.ingest.demo")

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
NEGATIVE = re.compile(
    r"recall|probe|plunge|cut|downgrad|lawsuit|suspend|resign|halt|low\b|withdraw|cancel|charge|inquiry|"
    r"delay|short sell|higher .*cost|miss|fall|drop|slump|warn|loss|layoff|fine[sd]?\b|investigat|weak|"
    r"decline|pressure|default|strike",
    re.IGNORECASE,
)
POSITIVE = re.compile(
    r"climb|rise|beat|record|raise|win|approv|surge|jump|upgrade|expand|strong|gain|rall", re.I
)


@dataclass
class Verdict:
    label: str
    probabilities: dict[str, float]
    score: float


class KeywordClassifier:
    model_version = "demo-keywords-v1"

    def score_articles(self, titles, summaries):
        out = []
        for title in titles:
            label = (
                "negative" if NEGATIVE.search(title) else "positive" if POSITIVE.search(title) else "neutral"
            )
            probs = {k: (0.9 if k == label else 0.05) for k in ("negative", "neutral", "positive")}
            out.append(Verdict(label, probs, probs["positive"] - probs["negative"]))
        return out


def _counts(db) -> tuple[int, int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Article)),
            s.scalar(select(func.count()).select_from(Alert)),
            s.scalar(select(func.count()).select_from(AlertDelivery)),
        )


@pytest.mark.slow
def test_demo_raises_one_alert_for_the_burst_company_and_nothing_twice(db, settings):
    first = run_module.run_once(db, settings, now=NOW, demo=True, classifier=KeywordClassifier())

    fired = [(n.scope_type, n.scope_key) for n in first.evaluation.fired]
    assert fired == [("ticker", "VLTA")], first.render()
    assert len(first.delivery.sent) == 1
    (eml,) = settings.outbox_dir.glob("*.eml")
    text = eml.read_bytes().decode()
    assert "Voltara" in text and "autos-desk@example.com" in text

    before = _counts(db)
    second = run_module.run_once(
        db, settings, now=NOW + timedelta(minutes=5), demo=True, classifier=KeywordClassifier()
    )
    assert second.evaluation.notices == [] and second.delivery.sent == []
    assert _counts(db) == before
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1
