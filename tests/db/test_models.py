"""Unique keys make re-ingesting and re-scoring no-ops; scores keep their history."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from pipeline.db.models import Article, ArticleEntity, Feed, SentimentScore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def make_feed(session) -> int:
    return session.execute(
        insert(Feed).values(url="https://news.example/rss").returning(Feed.id)
    ).scalar_one()


def article_values(feed_id: int, **extra) -> dict:
    values = {
        "feed_id": feed_id,
        "item_key": "guid-1",
        "guid": "guid-1",
        "title": "Acme recalls 2 million widgets",
        "published_at": NOW,
        "first_seen_at": NOW,
        "content_hash": "a" * 64,
    }
    values.update(extra)
    return values


def test_same_article_twice_stores_one_row(db) -> None:
    with db.transaction() as s:
        feed_id = make_feed(s)
        for _ in range(2):
            s.execute(insert(Article).values(article_values(feed_id)).on_conflict_do_nothing())
        # The same guid in another feed is another item (syndication is linked, not merged).
        other = s.execute(
            insert(Feed).values(url="https://other.example/rss").returning(Feed.id)
        ).scalar_one()
        s.execute(insert(Article).values(article_values(other)).on_conflict_do_nothing())
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Article)).scalar_one() == 2
        assert s.execute(select(Article.is_novel)).scalars().first() is True


def test_same_score_twice_stores_one_and_new_model_keeps_old(db) -> None:
    with db.transaction() as s:
        feed_id = make_feed(s)
        article_id = s.execute(
            insert(Article).values(article_values(feed_id)).returning(Article.id)
        ).scalar_one()
        score = {
            "article_id": article_id,
            "model_version": "m1",
            "label": "negative",
            "p_negative": 0.9,
            "p_neutral": 0.08,
            "p_positive": 0.02,
            "score": -0.88,
        }
        for _ in range(2):
            s.execute(insert(SentimentScore).values(score).on_conflict_do_nothing())
        s.execute(insert(SentimentScore).values({**score, "model_version": "m2"}).on_conflict_do_nothing())
    with db.session() as s:
        versions = s.execute(select(SentimentScore.model_version).order_by(SentimentScore.id)).scalars().all()
    assert versions == ["m1", "m2"]


def test_entities_one_row_per_article_and_ticker(db) -> None:
    with db.transaction() as s:
        feed_id = make_feed(s)
        article_id = s.execute(
            insert(Article).values(article_values(feed_id)).returning(Article.id)
        ).scalar_one()
        for matched_by in ("cashtag", "name"):
            s.execute(
                insert(ArticleEntity)
                .values(article_id=article_id, ticker="ACME", matched_by=matched_by, published_at=NOW)
                .on_conflict_do_nothing()
            )
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(ArticleEntity)).scalar_one() == 1


def test_deleting_a_feed_cascades(db) -> None:
    with db.transaction() as s:
        feed_id = make_feed(s)
        s.execute(insert(Article).values(article_values(feed_id)))
    with db.transaction() as s:
        s.delete(s.get(Feed, feed_id))
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Article)).scalar_one() == 0
