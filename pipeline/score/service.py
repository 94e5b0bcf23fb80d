"""Score stored articles that have no score yet for the current model version.

Scores are keyed by (article, model version): re-running scores nothing twice, and a new
model adds its own rows next to the old ones (point-in-time history).

A target-aware model (a folder with target.json, pipeline/score/target.py) also scores each
article for each company it is linked to: one ``entity_scores`` row per (article, ticker,
model version), written in the same transaction as the article's score, and backfilled
for articles scored before (before migration 0012, or by an article-level model). An
article-level model writes no company scores: company trends then read the article's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from pipeline.companies.watchlist import Company
from pipeline.db.engine import Database
from pipeline.db.models import Article, ArticleEntity, EntityScore, SentimentScore
from pipeline.db.sessions import ACTIVITY_COLUMNS, describe_session
from pipeline.errors import DatabaseError, ModelError
from pipeline.ingest.normalise import linkable_text
from pipeline.score.registry import ServingModel, serving_model
from pipeline.score.target import mark_target, normalise_target, read_target_style
from pipeline.settings import Settings

__all__ = ["PAGE_SIZE", "Classifier", "ScoreReport", "load_classifier", "score_pending"]

log = logging.getLogger(__name__)

# What a re-score of the same (article, model) replaces: the verdict on the edited text.
RESCORED_COLUMNS = ("label", "p_negative", "p_neutral", "p_positive", "score", "scored_at", "content_hash")

#: Articles fetched from the database per round trip; the classifier batches inside it.
PAGE_SIZE = 512


class Classifier(Protocol):
    """What the score stage needs of a model. A target-aware one (``target_aware`` true)
    also has ``score_articles_with_targets`` and ``score_article_targets``
    (pipeline.score.classifier.SentimentClassifier)."""

    model_version: str

    def score_articles(self, titles: Sequence[str], summaries: Sequence[str | None]) -> list[Any]: ...


@dataclass
class ScoreReport:
    scored: int
    model_version: str | None
    # (article, company) scores written: those of the articles scored now, and the
    # backfill of articles scored before (0 with an article-level model).
    entity_scored: int = 0

    def render(self) -> str:
        companies = f", {self.entity_scored} company scores" if self.entity_scored else ""
        if not self.scored:
            if self.entity_scored:
                return f"scoring: no new articles{companies} with {self.model_version}"
            return f"scoring: nothing new to score (model {self.model_version})"
        return f"scoring: {self.scored} articles scored{companies} with {self.model_version}"


def load_classifier(settings: Settings, model_path: str | Path | ServingModel | None = None) -> Classifier:
    """The pipeline's classifier: ``model_path`` (a folder, or a run's checked
    ServingModel), else the model that serves (pipeline.score.registry)."""
    from transformers.utils import logging as hf_logging

    from pipeline.score.classifier import SentimentClassifier

    # transformers draws a "Loading weights" bar on stderr: noise in scheduled runs' logs,
    # which report the model version themselves.
    hf_logging.disable_progress_bar()
    model = model_path if isinstance(model_path, ServingModel) else serving_model(settings, model_path)
    return SentimentClassifier.load(
        model.path,
        precision=settings.model_precision,
        backend=settings.cpu_backend,
        batch_size=settings.score_batch_size,
        version=model.version,
    )


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
    """Score every article without a score for the classifier's model version, and, with a
    target-aware model, each of its (article, company) pairs; then backfill the pairs of
    articles scored before that lack one (``limit`` counts the articles of both passes).

    Without a classifier given, ``model`` (a run's checked serving model), else the one at
    ``model_path``, else the one the registry picks, is loaded only when something needs
    scoring (its version comes from the folder alone): a scheduled run with no new
    articles skips the seconds a model load takes.

    Each page is one transaction, so an interrupted run keeps what it wrote and the next
    one goes on from there; a re-run writes nothing.
    """
    if classifier is not None:
        with one_scorer(db, classifier.model_version):
            return _score_all(
                db, classifier, classifier.model_version, limit=limit, progress=progress, now=now
            )
    # Resolved and checked once per run: the caller may have done it already.
    model = model or serving_model(settings, model_path)
    version = model.version
    # The lock first, then the counts and the load: a run that waited for another counts
    # what is left (usually nothing) and loads no model for it.
    with one_scorer(db, version):
        pending = _count_pending(db, version)
        pairs_pending = _count_backfill(db, version) if read_target_style(model.path) is not None else 0
        if not pending and not pairs_pending:
            log.info("nothing to score with %s; model not loaded", version)
            return ScoreReport(0, version)
        classifier = load_classifier(settings, model)
        return _score_all(
            db,
            classifier,
            version,
            limit=limit,
            progress=progress,
            now=now,
            pending=pending,
            pairs_pending=pairs_pending,
        )


#: How long a score run waits for another run of the same model before it fails (transient:
#: Airflow retries it), naming the session that holds the lock.
SCORE_LOCK_WAIT_S = 1800.0
_HOLDER = text(
    f"SELECT {ACTIVITY_COLUMNS} FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :c AND l.objid = :o AND l.objsubid = 1"
)


@contextmanager
def one_scorer(db: Database, version: str) -> Iterator[None]:
    """Hold the model version's scoring lock (a session advisory lock, on a connection of
    its own, in autocommit so it holds no transaction open): a second `finsent score` or a
    DAG run beside a manual one waits for the first instead of running the model over the
    same pages again. The wait polls, so a signal (Ctrl-C, Airflow's execution timeout)
    ends it, and it gives up after SCORE_LOCK_WAIT_S with a transient
    DatabaseError naming the holder."""
    digest = hashlib.sha256(f"finsent-score:{version}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + SCORE_LOCK_WAIT_S
        waiting = False
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            if time.monotonic() >= deadline:
                raise DatabaseError(
                    f"another run has been scoring with {version} for over {SCORE_LOCK_WAIT_S:.0f} s "
                    f"({_holder(conn, key)}): let it finish, or end it, and re-run"
                )
            if not waiting:
                log.info("another run is scoring with %s: waiting for it to finish", version)
                waiting = True
            time.sleep(0.5)
        yield
    finally:
        # The connection is discarded, not returned to the pool: closing its session releases
        # the lock whatever happened (an interrupt as the lock was granted, a connection lost
        # meanwhile, whose unlock would fail a run whose work is committed).
        conn.invalidate()
        conn.close()


def _holder(conn: Any, key: int) -> str:
    """Who holds the advisory lock ``key`` (describe_session, as ingest names the holder of
    its lock)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    try:
        row = conn.execute(_HOLDER, {"c": unsigned >> 32, "o": unsigned & 0xFFFFFFFF}).first()
    except DBAPIError:
        row = None
    if row is None:
        return "holder unknown"
    return describe_session(row)


def _score_all(
    db: Database,
    classifier: Classifier,
    version: str,
    *,
    limit: int | None,
    progress: bool,
    now: datetime | None,
    pending: int | None = None,
    pairs_pending: int | None = None,
) -> ScoreReport:
    """score_pending's work under the model's scoring lock (``pending``, ``pairs_pending``:
    counted under it already, else counted here)."""
    aware = bool(getattr(classifier, "target_aware", False))
    if not aware:
        log.info(
            "model %s is not target-aware: no company scores written (company trends and "
            "alerts read the article's score)",
            version,
        )
    total = _count_pending(db, version) if pending is None else pending
    if limit is not None:
        total = min(total, limit)
    scored = 0
    entity_scored = 0
    bar = _progress(total, progress, "scoring", "article")
    try:
        pages = _article_pages(db, limit, ~_has_score(version), links_of=_links_of if aware else None)
        for rows, links in pages:
            titles, summaries = [r.title for r in rows], [r.summary for r in rows]
            stamp = now or datetime.now(UTC)
            entity_values: list[dict[str, Any]] = []
            if aware:
                targets = [[_target(r, link) for link in links.get(r.id, ())] for r in rows]
                results, per_target = classifier.score_articles_with_targets(titles, summaries, targets)
                entity_values = _entity_values(rows, links, per_target, version, stamp)
            else:
                results = classifier.score_articles(titles, summaries)
            values = [
                {"article_id": row.id, "model_version": version, **_verdict(res, stamp, row.content_hash)}
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
                # The article's company scores commit with its own: never one without the other.
                _store_entity_scores(session, entity_values)
            scored += len(rows)
            entity_scored += len(entity_values)
            bar.update(len(rows))
    finally:
        bar.close()
    if aware and (limit is None or scored < limit):
        entity_scored += _backfill(
            db,
            classifier,
            version,
            limit=None if limit is None else limit - scored,
            progress=progress,
            now=now,
            total=pairs_pending,
        )
    log.info("scored %d articles and %d (article, company) pairs with %s", scored, entity_scored, version)
    return ScoreReport(scored, version, entity_scored)


def _backfill(
    db: Database,
    classifier: Any,
    version: str,
    *,
    limit: int | None,
    progress: bool,
    now: datetime | None,
    total: int | None,
) -> int:
    """Score the (article, company) pairs that lack a current company score, of articles
    whose own score is current: those scored before 0012 or by an article-level model,
    and links added since (a relink). Returns the pairs written."""
    if total is None:
        total = _count_backfill(db, version)
    if not total:
        return 0
    written = 0
    articles = 0
    bar = _progress(total, progress, "company scores", "pair")
    try:
        pages = _article_pages(
            db,
            limit,
            _has_score(version),
            _lacks_entity_score(version),
            links_of=partial(_links_of, missing=version),
        )
        for rows, links in pages:
            targets = [[_target(r, link) for link in links.get(r.id, ())] for r in rows]
            per_target = classifier.score_article_targets(
                [r.title for r in rows], [r.summary for r in rows], targets
            )
            values = _entity_values(rows, links, per_target, version, now or datetime.now(UTC))
            with db.transaction() as session:
                _store_entity_scores(session, values)
            written += len(values)
            articles += len(rows)
            bar.update(len(values))
    finally:
        bar.close()
    log.info("backfilled %d (article, company) pairs of %d articles with %s", written, articles, version)
    return written


def _target(row: Any, link: Any) -> str:
    """What the scorer looks for in the article for a link: the mention as written, else
    (a link made before 0012, until `finsent feeds relink`) the company's name or its short
    form or the cashtag when the text has one of them, else the name, read as a second
    segment. Bare tickers are not tried: "IT" or "A" would match ordinary words."""
    if link.mention and normalise_target(link.mention):
        return link.mention
    names = [name for name, _ in Company(link.ticker, link.company).names()] if link.company else []
    candidates = [*names, f"${link.ticker}"]
    text = linkable_text(row.title or "", row.summary)
    for candidate in candidates:
        target = normalise_target(candidate)
        if target and mark_target(text, target) is not None:
            return candidate
    return names[-1] if names else link.ticker


def _links_of(session: Any, article_ids: list[int], *, missing: str | None = None) -> dict[int, list[Any]]:
    """The links of these articles, in ticker order; with ``missing`` (a model version),
    only those without a current company score by that model."""
    stmt = (
        select(ArticleEntity.article_id, ArticleEntity.ticker, ArticleEntity.company, ArticleEntity.mention)
        .where(ArticleEntity.article_id.in_(article_ids))
        .order_by(ArticleEntity.article_id, ArticleEntity.ticker)
    )
    if missing is not None:
        stmt = stmt.join(Article, Article.id == ArticleEntity.article_id).where(
            ~_has_entity_score(missing, ArticleEntity.ticker)
        )
    out: dict[int, list[Any]] = {}
    for link in session.execute(stmt):
        out.setdefault(link.article_id, []).append(link)
    return out


def _entity_values(
    rows: Sequence[Any],
    links: dict[int, list[Any]],
    per_target: Sequence[Sequence[Any]],
    version: str,
    stamp: datetime,
) -> list[dict[str, Any]]:
    """entity_scores rows for the pairs of a page (``per_target[i]`` follows
    ``links[rows[i].id]``); content_hash is the text that was read."""
    values = []
    for row, results in zip(rows, per_target, strict=True):
        for link, res in zip(links.get(row.id, ()), results, strict=True):
            values.append(
                {
                    "article_id": row.id,
                    "ticker": link.ticker,
                    "model_version": version,
                    "mention": res.mention,
                    **_verdict(res, stamp, row.content_hash),
                }
            )
    return values


def _verdict(res: Any, stamp: datetime, content_hash: str | None) -> dict[str, Any]:
    """The RESCORED_COLUMNS of a score row (article or company): the result, when it was
    scored and the hash of the text that was read. A model that gives NaN or infinite
    probabilities (broken weights) stops the run: stored, they would read as negative in
    every trend and break the alert tables' JSON."""
    values = [float(res.probabilities[name]) for name in ("negative", "neutral", "positive")]
    if not all(math.isfinite(v) for v in (*values, float(res.score))):
        raise ModelError(
            f"the model gave non-finite probabilities ({values}): its weights or "
            "calibration are broken; this page of articles was not stored, serve another model"
        )
    return {
        "label": res.label,
        "p_negative": values[0],
        "p_neutral": values[1],
        "p_positive": values[2],
        "score": float(res.score),
        "scored_at": stamp,
        "content_hash": content_hash,
    }


def _store_entity_scores(session: Any, values: list[dict[str, Any]]) -> None:
    """Insert company scores; a pair scored before on older text gets the new verdict
    (as sentiment_scores: the row is only written again when its text changed)."""
    if not values:
        return
    stmt = insert(EntityScore).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_entity_scores_article_ticker_model",
            set_={col: stmt.excluded[col] for col in ("mention", *RESCORED_COLUMNS)},
        )
    )


def _article_pages(
    db: Database,
    limit: int | None,
    *where: Any,
    links_of: Callable[[Any, list[int]], dict[int, list[Any]]] | None,
) -> Iterator[tuple[list[Any], dict[int, list[Any]]]]:
    """The articles meeting ``where``, newest first (by id), ``limit`` at most, as pages of
    up to PAGE_SIZE with their links by article (``links_of``; none without it). Each page
    is read in its own short session, and the next only once the caller has written this
    one (its own transaction): the model never runs inside a database transaction.

    Newest first: after a new model is promoted, its first runs score the whole history
    again; oldest first, the news of the hour waited behind years of it (past a task's time
    limit, for several runs), and alerts could not see it meanwhile."""
    read = 0
    last_id: int | None = None
    while limit is None or read < limit:
        page = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - read)
        with db.session() as session:
            rows = _article_page(session, last_id, page, *where)
            links = links_of(session, [r.id for r in rows]) if links_of and rows else {}
        if not rows:
            return
        yield rows, links
        read += len(rows)
        last_id = rows[-1].id


def _article_page(session: Any, before: int | None, n: int, *where: Any) -> list[Any]:
    """The next ``n`` articles below id ``before`` (None: from the newest) meeting ``where``
    (keyset paging: each page is an index range, so an interrupted run resumes without
    rescanning)."""
    below = () if before is None else (Article.id < before,)
    return session.execute(
        select(Article.id, Article.title, Article.summary, Article.content_hash)
        .where(*below, *where)
        .order_by(Article.id.desc())
        .limit(n)
    ).all()


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


def _has_entity_score(version: str, ticker: Any):
    """A current company score by this model for (Article, ticker): of the article's present
    text, as ``_has_score`` decides for the article's own score."""
    return (
        select(EntityScore.id)
        .where(
            EntityScore.article_id == Article.id,
            EntityScore.ticker == ticker,
            EntityScore.model_version == version,
            or_(
                EntityScore.content_hash == Article.content_hash,
                and_(
                    EntityScore.content_hash.is_(None),
                    or_(Article.updated_at.is_(None), EntityScore.scored_at >= Article.updated_at),
                ),
            ),
        )
        # Articles (and links) come from the enclosing query, also two levels up
        # (_lacks_entity_score): auto-correlation only looks one level up.
        .correlate_except(EntityScore)
        .exists()
    )


def _lacks_entity_score(version: str):
    """The article has a link without a current company score by this model."""
    return (
        select(ArticleEntity.ticker)
        .where(ArticleEntity.article_id == Article.id, ~_has_entity_score(version, ArticleEntity.ticker))
        .exists()
    )


def _count_pending(db: Database, version: str) -> int:
    with db.session() as session:
        return session.execute(
            select(func.count()).select_from(Article).where(~_has_score(version))
        ).scalar_one()


def _count_backfill(db: Database, version: str) -> int:
    """(article, company) pairs of articles with a current score that lack a company score."""
    with db.session() as session:
        return session.execute(
            select(func.count())
            .select_from(ArticleEntity)
            .join(Article, Article.id == ArticleEntity.article_id)
            .where(_has_score(version), ~_has_entity_score(version, ArticleEntity.ticker))
        ).scalar_one()


def _progress(total: int, enabled: bool, desc: str = "scoring", unit: str = "article"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled or total == 0)
