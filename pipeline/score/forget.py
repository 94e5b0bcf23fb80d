"""Deleting one model version's stored scores: the way back to an earlier model.

Scores are stored per model version and the trend views read each article's newest, so
after going back to an earlier model the articles the later one scored keep its verdicts in
the trends. Deleting the later version's article and company scores, in one transaction,
puts the earlier model's back: the triggers queue the hours they touched for the next
rollup refresh, and alerts already count the serving model's (pipeline/alerts/queries.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from pipeline.db.engine import Database
from pipeline.db.models import EntityScore, SentimentScore
from pipeline.errors import ModelError
from pipeline.score.service import one_scorer

__all__ = ["Forgotten", "forget_model_scores", "stored_versions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forgotten:
    version: str
    articles: int
    companies: int

    def render(self) -> str:
        return f"deleted {self.articles} article scores and {self.companies} company scores of {self.version}"


def stored_versions(db: Database) -> dict[str, int]:
    """The model versions with stored article scores, and how many each has."""
    with db.session() as session:
        rows = session.execute(
            select(SentimentScore.model_version, func.count())
            .group_by(SentimentScore.model_version)
            .order_by(func.max(SentimentScore.scored_at))
        )
        return {version: n for version, n in rows}


def forget_model_scores(db: Database, version: str, *, serving: str) -> Forgotten:
    """Delete every article and company score of model ``version`` (one transaction).

    ModelError when ``version`` is ``serving`` (the next run would score it all again) or
    has no stored scores (the message lists those stored). Holds the version's scoring lock,
    so a `finsent score` of that version cannot store rows meanwhile."""
    if version == serving:
        raise ModelError(
            f"{version} is the model that serves: pin or promote the model to go back to first "
            "(FINSENT_MODEL_PATH, or the gate), then delete its scores"
        )
    with one_scorer(db, version), db.transaction() as session:
        articles = session.execute(delete(SentimentScore).where(SentimentScore.model_version == version))
        companies = session.execute(delete(EntityScore).where(EntityScore.model_version == version))
        if not articles.rowcount and not companies.rowcount:
            stored = ", ".join(f"{v} ({n})" for v, n in stored_versions(db).items()) or "none"
            raise ModelError(f"no scores of model {version} are stored (stored: {stored})")
        done = Forgotten(version, articles.rowcount, companies.rowcount)
    log.info("%s", done.render())
    return done
