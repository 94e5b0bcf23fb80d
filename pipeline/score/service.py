"""Score stored articles that have no score yet for the current model version.

Scores are keyed by (article, model version): re-running scores nothing twice, and a new
model adds its own rows next to the old ones (point-in-time history).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from pipeline.db.engine import Database
from pipeline.db.models import Article, SentimentScore
from pipeline.score.registry import ServingModel, serving_model
from pipeline.settings import Settings

__all__ = ["PAGE_SIZE", "Classifier", "ScoreReport", "load_classifier", "score_pending"]

log = logging.getLogger(__name__)

# What a re-score of the same (article, model) replaces: the verdict on the edited text.
RESCORED_COLUMNS = ("label", "p_negative", "p_neutral", "p_positive", "score", "scored_at", "content_hash")

#: Articles fetched from the database per round trip; the classifier batches inside it.
PAGE_SIZE = 512


class Classifier(Protocol):
    model_version: str

    def score_articles(self, titles: Sequence[str], summaries: Sequence[str | None]) -> list[Any]: ...


@dataclass
class ScoreReport:
    scored: int
    model_version: str | None

    def render(self) -> str:
        if not self.scored:
            return f"scoring: nothing new to score (model {self.model_version})"
        return f"scoring: {self.scored} articles scored with {self.model_version}"


def load_classifier(settings: Settings, model_path: str | Path | ServingModel | None = None) -> Classifier:
    """The pipeline's classifier: ``model_path`` (a folder, or a run's checked
    ServingModel), else the model that serves (pipeline.score.registry)."""
    from transformers.utils import logging as hf_logging

    from pipeline.score.classifier import SentimentClassifier

    # transformers draws a "Loading weights" bar on stderr: noise in scheduled runs' logs,
    # which report the model version themselves.
    hf_logging.disable_progress_bar()
    model = model_path if isinstance(model_path, ServingModel) else serving_model(settings, model_path)
    return SentimentClassifier.load(model.path, precision=settings.model_precision, version=model.version)


def score_pending(
    db: Database,
    settings: Settings,
    *,
    classifier: Classifier | None = None,
    limit: int | None = None,
    progress: bool = False,
    now: datetime | None = None,
    model_path: str | None = None,
    model: ServingModel | None = None,
) -> ScoreReport:
    """Score every article without a score for the classifier's model version.

    Without a classifier given, ``model`` (a run's checked serving model), else the one at
    ``model_path``, else the one the registry picks, is loaded only when something needs
    scoring (its version comes from the folder alone): a scheduled run with no new
    articles skips the seconds a model load takes.
    """
    pending: int | None = None
    if classifier is None:
        # Resolved and checked once per run: the caller may have done it already.
        model = model or serving_model(settings, model_path)
        version = model.version
        pending = _count_pending(db, version)
        if not pending:
            log.info("nothing to score with %s; model not loaded", version)
            return ScoreReport(0, version)
        classifier = load_classifier(settings, model)
    version = classifier.model_version  # the same as above: both come from the folder
    total = _count_pending(db, version) if pending is None else pending
    if limit is not None:
        total = min(total, limit)
    scored = 0
    last_id = 0
    bar = _progress(total, progress)
    try:
        while limit is None or scored < limit:
            page = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - scored)
            with db.session() as session:
                rows = session.execute(
                    select(Article.id, Article.title, Article.summary, Article.content_hash)
                    .where(Article.id > last_id, ~_has_score(version))
                    .order_by(Article.id)
                    .limit(page)
                ).all()
            if not rows:
                break
            results = classifier.score_articles([r.title for r in rows], [r.summary for r in rows])
            stamp = now or datetime.now(UTC)
            values = [
                {
                    "article_id": row.id,
                    "model_version": version,
                    "label": res.label,
                    "p_negative": float(res.probabilities["negative"]),
                    "p_neutral": float(res.probabilities["neutral"]),
                    "p_positive": float(res.probabilities["positive"]),
                    "score": float(res.score),
                    "scored_at": stamp,
                    "content_hash": row.content_hash,
                }
                for row, res in zip(rows, results, strict=True)
            ]
            stmt = insert(SentimentScore).values(values)
            with db.transaction() as session:
                session.execute(
                    stmt.on_conflict_do_update(
                        constraint="uq_sentiment_scores_article_model",
                        set_={col: stmt.excluded[col] for col in RESCORED_COLUMNS},
                    )
                )
            scored += len(rows)
            last_id = rows[-1].id
            bar.update(len(rows))
    finally:
        bar.close()
    log.info("scored %d articles with %s", scored, version)
    return ScoreReport(scored, version)


def _has_score(version: str):
    """A current score by this model: one of the article's present text (an edited headline
    is scored again, replacing that model's verdict on the old text).

    The text is compared by hash, not by time: edits carry the run's logical time and
    scores the wall clock, so in a backfill an edit never looked newer than its old score.
    A score without a hash keeps the time rule; migration 0007 gave every score that was
    current then its hash, so only stale ones (and rows written by other tools) lack it."""
    return (
        select(SentimentScore.id)
        .where(
            SentimentScore.article_id == Article.id,
            SentimentScore.model_version == version,
            or_(
                SentimentScore.content_hash == Article.content_hash,
                and_(
                    SentimentScore.content_hash.is_(None),
                    or_(Article.updated_at.is_(None), SentimentScore.scored_at >= Article.updated_at),
                ),
            ),
        )
        .exists()
    )


def _count_pending(db: Database, version: str) -> int:
    with db.session() as session:
        return session.execute(
            select(func.count()).select_from(Article).where(~_has_score(version))
        ).scalar_one()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="scoring", unit="article", disable=not enabled or total == 0)
