"""The scoring stage: every article scored once per model version, history kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from pipeline.db.models import Article, Feed, SentimentScore
from pipeline.score.registry import released_model
from pipeline.score.service import score_pending

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Verdict:
    label: str
    probabilities: dict[str, float]
    score: float


class KeywordClassifier:
    """A transparent stand-in for the transformer: the storage logic is under test here,
    not the model (the model has its own tests)."""

    def __init__(self, version: str):
        self.model_version = version
        self.calls: list[int] = []

    def score_articles(self, titles, summaries):
        self.calls.append(len(titles))
        out = []
        for title in titles:
            neg = 0.8 if "falls" in title else 0.1
            pos = 0.8 if "rises" in title else 0.1
            neu = 1.0 - neg - pos
            probs = {"negative": neg, "neutral": neu, "positive": pos}
            out.append(Verdict(max(probs, key=probs.get), probs, pos - neg))
        return out


def seed_articles(db, n: int) -> None:
    with db.transaction() as s:
        feed_id = s.execute(insert(Feed).values(url="https://x.example/rss").returning(Feed.id)).scalar_one()
        s.execute(
            insert(Article),
            [
                {
                    "feed_id": feed_id,
                    "item_key": f"g{i}",
                    "title": f"Stock {i} {'falls' if i % 3 == 0 else 'rises'}",
                    "published_at": NOW,
                    "first_seen_at": NOW,
                    "content_hash": f"{i:064d}",
                }
                for i in range(n)
            ],
        )


def count_scores(db, version: str | None = None) -> int:
    stmt = select(func.count()).select_from(SentimentScore)
    if version:
        stmt = stmt.where(SentimentScore.model_version == version)
    with db.session() as s:
        return s.execute(stmt).scalar_one()


def test_scores_every_article_once_across_pages(db, settings, monkeypatch) -> None:
    monkeypatch.setattr("pipeline.score.service.PAGE_SIZE", 7)
    seed_articles(db, 30)
    clf = KeywordClassifier("kw-1")
    report = score_pending(db, settings, classifier=clf, now=NOW)
    assert report.scored == 30 and count_scores(db) == 30
    assert max(clf.calls) <= 7
    again = score_pending(db, settings, classifier=clf, now=NOW)
    assert again.scored == 0 and count_scores(db) == 30
    with db.session() as s:
        row = s.execute(select(SentimentScore).order_by(SentimentScore.article_id)).scalars().first()
    assert row.label == "negative" and row.score == pytest.approx(-0.7)
    assert row.p_negative + row.p_neutral + row.p_positive == pytest.approx(1.0)


def test_new_model_adds_scores_and_keeps_old(db, settings) -> None:
    seed_articles(db, 5)
    score_pending(db, settings, classifier=KeywordClassifier("kw-1"), now=NOW)
    score_pending(db, settings, classifier=KeywordClassifier("kw-2"), now=NOW)
    assert count_scores(db, "kw-1") == 5 and count_scores(db, "kw-2") == 5


def test_the_model_is_loaded_only_when_something_needs_scoring(db, settings, monkeypatch) -> None:
    from pipeline.score.loading import model_version_of

    if released_model() is None:
        pytest.skip("no released model")

    def must_not_load(_settings, _path=None):
        raise AssertionError("the model was loaded with nothing to score")

    monkeypatch.setattr("pipeline.score.service.load_classifier", must_not_load)
    report = score_pending(db, settings)
    assert report.scored == 0 and report.model_version == model_version_of(released_model())
    seed_articles(db, 3)
    keyword = KeywordClassifier(report.model_version)
    monkeypatch.setattr("pipeline.score.service.load_classifier", lambda _s, _path=None: keyword)
    assert score_pending(db, settings).scored == 3
    monkeypatch.setattr("pipeline.score.service.load_classifier", must_not_load)
    assert score_pending(db, settings).scored == 0  # all scored: no load again


def test_limit(db, settings) -> None:
    seed_articles(db, 10)
    assert score_pending(db, settings, classifier=KeywordClassifier("kw"), limit=4).scored == 4
    assert count_scores(db) == 4


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16", "int8"])
def test_model_precision_setting_reaches_the_classifier(settings, precision) -> None:
    import torch

    from pipeline.score.classifier import cpu_has_native_bf16
    from pipeline.score.service import load_classifier

    if released_model() is None:
        pytest.skip("no released model")
    if torch.cuda.is_available():
        pytest.skip("checks the CPU paths; on a GPU auto is fp16 and int8 is refused")
    clf = load_classifier(settings.model_copy(update={"model_precision": precision}))
    auto = "bf16" if cpu_has_native_bf16() else "fp32"
    assert clf.precision == (auto if precision == "auto" else precision)


def test_edited_article_is_rescored_in_place(db, settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    seed_articles(db, 3)
    clf = KeywordClassifier("kw")
    score_pending(db, settings, classifier=clf, now=NOW)
    edited_at = NOW + timedelta(hours=1)
    with db.transaction() as s:
        first = s.execute(select(Article.id).order_by(Article.id)).scalars().first()
        s.execute(
            update(Article)
            .where(Article.id == first)
            .values(title="Stock 0 rises", content_hash="e" * 64, updated_at=edited_at)  # as ingest edits
        )
    report = score_pending(db, settings, classifier=clf, now=edited_at + timedelta(minutes=1))
    assert report.scored == 1
    assert count_scores(db) == 3
    with db.session() as s:
        row = s.execute(select(SentimentScore).where(SentimentScore.article_id == first)).scalar_one()
    assert row.label == "positive"
    assert score_pending(db, settings, classifier=clf, now=edited_at + timedelta(minutes=2)).scored == 0


def test_an_edit_in_a_backfill_is_rescored_although_its_score_is_newer(db, settings) -> None:
    # A backfill stamps edits with its logical time, long before the wall-clock time of the
    # first score: the text decides, not the clocks.
    from sqlalchemy import update

    seed_articles(db, 2)
    clf = KeywordClassifier("kw")
    assert score_pending(db, settings, classifier=clf).scored == 2  # scored_at: the wall clock
    with db.transaction() as s:
        first = s.execute(select(Article.id).order_by(Article.id)).scalars().first()
        s.execute(
            update(Article)
            .where(Article.id == first)
            .values(title="Stock 0 rises", content_hash="e" * 64, updated_at=NOW)  # NOW is in the past
        )
    assert score_pending(db, settings, classifier=clf).scored == 1
    with db.session() as s:
        row = s.execute(select(SentimentScore).where(SentimentScore.article_id == first)).scalar_one()
    assert (row.label, row.content_hash) == ("positive", "e" * 64)
    assert score_pending(db, settings, classifier=clf).scored == 0


def test_scores_from_before_the_hash_keep_the_time_rule(db, settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    seed_articles(db, 2)
    clf = KeywordClassifier("kw")
    score_pending(db, settings, classifier=clf, now=NOW)
    with db.transaction() as s:
        s.execute(update(SentimentScore).values(content_hash=None))  # as rows scored before 0007
        first = s.execute(select(Article.id).order_by(Article.id)).scalars().first()
        s.execute(update(Article).where(Article.id == first).values(updated_at=NOW + timedelta(hours=1)))
    assert score_pending(db, settings, classifier=clf, now=NOW + timedelta(hours=2)).scored == 1
