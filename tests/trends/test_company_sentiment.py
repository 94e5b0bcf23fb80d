"""Ticker rollups read each company's own sentiment; feed and market rollups the article's."""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy import text
from trends_helpers import add_article, add_feed, add_score, at, clear_trends

from pipeline.paths import REPO_ROOT as REPO
from pipeline.trends import rollups
from pipeline.trends.rollups import pending_hours, refresh_rollups

MIGRATION = REPO / "pipeline" / "db" / "migrations" / "versions" / "0013_entity_score_triggers.py"


def test_sql_file_is_the_migrations_sql() -> None:
    spec = importlib.util.spec_from_file_location("migration_0013", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO / "sql" / "trends_company.sql").read_text() == module.COMPANY_SQL


@pytest.fixture
def tdb(db):
    clear_trends(db)
    yield db
    clear_trends(db)


def hourly(db, scope_type: str, scope_key: str) -> tuple[int, int, int, int] | None:
    with db.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT n_articles, n_negative, n_neutral, n_positive FROM sentiment_hourly "
                "WHERE scope_type = :t AND scope_key = :k AND bucket = :b"
            ),
            {"t": scope_type, "k": scope_key, "b": at(20, 9)},
        ).first()
    return None if row is None else tuple(row)


def link(session, article_id: int, ticker: str, relevance: int | None) -> None:
    session.execute(
        text(
            "INSERT INTO article_entities (article_id, ticker, matched_by, published_at, relevance) "
            "SELECT id, :t, 'name', published_at, :r FROM articles WHERE id = :a"
        ),
        {"a": article_id, "t": ticker, "r": relevance},
    )


@pytest.mark.parametrize("bulk", [False, True], ids=["per-range", "bulk"])
def test_two_companies_in_one_headline_count_with_their_own_labels(tdb, monkeypatch, bulk) -> None:
    if bulk:  # the one-scan path of a backfill reads company scores the same way
        monkeypatch.setattr(rollups, "BULK_HOURS", 0)
        monkeypatch.setattr(rollups, "BULK_MIN_DENSITY", 0.0)
    with tdb.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        a = add_article(
            s,
            feed,
            "mixed",
            "Voltara plunges on guidance cut while rival Northwind gains share",
            at(20, 9, 5),
        )
        link(s, a, "VLTA", 80)
        link(s, a, "NRTH", 50)
        add_score(s, a, "negative")
        add_score(s, a, "negative", ticker="VLTA")
        add_score(s, a, "positive", ticker="NRTH")
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "VLTA") == (1, 1, 0, 0)
    assert hourly(tdb, "ticker", "NRTH") == (1, 0, 0, 1)  # not the article's negative
    assert hourly(tdb, "market", "all") == (1, 1, 0, 0)  # the article's own score
    assert hourly(tdb, "feed", str(feed)) == (1, 1, 0, 0)


def test_company_score_of_another_model_is_not_read_and_the_article_score_stands_in(tdb) -> None:
    with tdb.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        a = add_article(s, feed, "a", "Voltara and Northwind", at(20, 9, 5))
        link(s, a, "VLTA", 80)
        link(s, a, "NRTH", None)  # linked before relevance: counts
        add_score(s, a, "neutral", model="m2")  # the current score: an article-level model
        add_score(s, a, "negative", ticker="VLTA", model="m1")  # an older model's verdict
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "VLTA") == (1, 0, 1, 0)
    assert hourly(tdb, "ticker", "NRTH") == (1, 0, 1, 0)


def test_passing_mention_does_not_count_with_its_company_score_either(tdb) -> None:
    with tdb.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        a = add_article(s, feed, "a", "Voltara recalls SUVs", at(20, 9, 5))
        link(s, a, "VLTA", 90)
        link(s, a, "AERW", 8)
        add_score(s, a, "negative")
        add_score(s, a, "negative", ticker="AERW")
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "AERW") is None


def test_company_scores_written_changed_and_removed_queue_their_hours(tdb) -> None:
    with tdb.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        a = add_article(s, feed, "a", "Voltara plunges while Northwind gains", at(20, 9, 5))
        link(s, a, "VLTA", 80)
        link(s, a, "NRTH", 50)
        add_score(s, a, "negative")
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "NRTH") == (1, 1, 0, 0)  # no company score yet: the article's

    # The scorer writes the company scores later (a backfill): the hour is queued and redone.
    with tdb.transaction() as s:
        add_score(s, a, "positive", ticker="NRTH")
    assert pending_hours(tdb) == 1
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "NRTH") == (1, 0, 0, 1)

    with tdb.engine.begin() as conn:
        conn.execute(text("UPDATE entity_scores SET label = 'neutral' WHERE ticker = 'NRTH'"))
    assert pending_hours(tdb) == 1
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "NRTH") == (1, 0, 1, 0)

    with tdb.engine.begin() as conn:
        conn.execute(text("DELETE FROM entity_scores"))
    assert pending_hours(tdb) == 1
    refresh_rollups(tdb)
    assert hourly(tdb, "ticker", "NRTH") == (1, 1, 0, 0)
    with tdb.engine.connect() as conn:
        daily = conn.execute(
            text("SELECT n_negative FROM sentiment_daily WHERE scope_type = 'ticker' AND scope_key = 'NRTH'")
        ).scalar_one()
    assert daily == 1
