"""Fetch-log retention and the feed health report, on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pipeline.airflow.maintenance import feed_health_report, prune_fetches
from pipeline.db.models import Article, Feed, Fetch

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def add_feed(session, url: str, **values) -> Feed:
    feed = Feed(url=url, created_at=NOW - timedelta(days=30), **values)
    session.add(feed)
    session.flush()
    return feed


def add_fetch(session, feed: Feed, started_at: datetime, outcome: str = "ok") -> None:
    session.add(Fetch(feed_id=feed.id, started_at=started_at, outcome=outcome))


@pytest.fixture
def history(db):
    """Two feeds with 40 days of fetches (one a day), one article each."""
    with db.transaction() as session:
        good = add_feed(session, "https://news.example/good.rss", last_success_at=NOW - timedelta(hours=1))
        bad = add_feed(
            session,
            "https://news.example/bad.rss",
            consecutive_failures=4,
            last_error="HTTP 503",
            last_success_at=NOW - timedelta(days=3),
        )
        for day in range(40):
            add_fetch(session, good, NOW - timedelta(days=day, hours=2))
            add_fetch(session, bad, NOW - timedelta(days=day, hours=2), outcome="http_error")
        for feed in (good, bad):
            session.add(
                Article(
                    feed_id=feed.id,
                    item_key=f"k{feed.id}",
                    title="t",
                    published_at=NOW - timedelta(days=35),
                    first_seen_at=NOW - timedelta(days=35),
                    content_hash="0" * 64,
                )
            )
    return good.id, bad.id


def count(db, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.slow
def test_prune_deletes_only_rows_older_than_the_cutoff(db, history) -> None:
    deleted = prune_fetches(db, before=NOW - timedelta(days=30), batch=7)
    # Days 30..39 are older than the cutoff (each at -2h), for two feeds.
    assert deleted == 2 * 10
    assert count(db, Fetch) == 2 * 30
    with db.session() as session:
        oldest = session.execute(select(func.min(Fetch.started_at))).scalar_one()
    assert oldest >= NOW - timedelta(days=30)
    # Articles and feeds are untouched, and a second run deletes nothing.
    assert count(db, Article) == 2 and count(db, Feed) == 2
    assert prune_fetches(db, before=NOW - timedelta(days=30)) == 0


def test_prune_refuses_a_naive_cutoff(db) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        prune_fetches(db, before=datetime(2026, 1, 1))


def test_feed_health_reports_failing_and_stale_feeds(db, history) -> None:
    _, bad_id = history
    with db.transaction() as session:
        add_feed(session, "https://news.example/off.rss", enabled=False)
    report = feed_health_report(db, now=NOW)
    assert (report.enabled, report.disabled) == (2, 1)
    assert [f["id"] for f in report.failing] == [bad_id]
    assert [f["id"] for f in report.stale] == [bad_id]
    assert report.outcomes_last_day == {"ok": 1, "http_error": 1}
    text = report.render()
    assert "1 failing, 1 stale" in text and "HTTP 503" in text
    assert report.as_dict()["as_of"] == NOW.isoformat()


def test_feed_health_is_as_of_the_run_time(db, history) -> None:
    # A backfilled run for 20 days ago sees that day's fetches, not today's.
    report = feed_health_report(db, now=NOW - timedelta(days=20))
    assert report.outcomes_last_day == {"ok": 1, "http_error": 1}
