"""Rollups: exact against the raw tables, incremental, and nothing lost or counted twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from trends_helpers import NOW, TODAY, add_article, add_feed, add_score, at, clear_trends, seed

from pipeline.db.engine import Database, make_engine
from pipeline.errors import FinSentError
from pipeline.trends import rollups
from pipeline.trends.rollups import pending_hours, refresh_rollups

# The definition the rollups must match, computed from the raw tables.
RAW_HOURLY = """
WITH cur AS (
    SELECT DISTINCT ON (s.article_id) s.article_id, a.feed_id, a.is_novel,
           date_trunc('hour', a.published_at, 'UTC') AS bucket, s.label, s.score,
           greatest(s.p_negative, s.p_neutral, s.p_positive) AS conf
    FROM sentiment_scores s JOIN articles a ON a.id = s.article_id
    ORDER BY s.article_id, s.scored_at DESC, s.id DESC
), scoped AS (
    SELECT 'market' AS scope_type, 'all' AS scope_key, cur.* FROM cur
    UNION ALL SELECT 'feed', feed_id::text, cur.* FROM cur
    UNION ALL SELECT 'ticker', e.ticker, cur.* FROM cur JOIN article_entities e USING (article_id)
)
SELECT bucket, scope_type, scope_key, count(*) AS n, count(*) FILTER (WHERE is_novel) AS novel,
       count(*) FILTER (WHERE label = 'negative') AS neg, count(*) FILTER (WHERE label = 'neutral') AS neu,
       count(*) FILTER (WHERE label = 'positive') AS pos,
       count(*) FILTER (WHERE is_novel AND label = 'negative') AS novel_neg,
       round(sum(score)::numeric, 4) AS s, round(sum(conf)::numeric, 4) AS c,
       round(sum(score * conf)::numeric, 4) AS w
FROM scoped GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""

ROLLUP_HOURLY = """
SELECT bucket, scope_type, scope_key, n_articles, n_novel, n_negative, n_neutral, n_positive,
       n_novel_negative, round(sum_score::numeric, 4), round(sum_confidence::numeric, 4),
       round(sum_weighted_score::numeric, 4)
FROM sentiment_hourly ORDER BY 1, 2, 3
"""

RAW_DAILY_FROM_HOURLY = """
SELECT date_trunc('day', bucket, 'UTC'), scope_type, scope_key, sum(n_articles), sum(n_negative),
       round(sum(sum_score)::numeric, 4)
FROM sentiment_hourly GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""

ROLLUP_DAILY = """
SELECT bucket, scope_type, scope_key, n_articles, n_negative, round(sum_score::numeric, 4)
FROM sentiment_daily ORDER BY 1, 2, 3
"""


@pytest.fixture
def tdb(db):
    clear_trends(db)
    yield db
    clear_trends(db)


def rows(db, sql: str, **params) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def assert_exact(db) -> None:
    assert rows(db, ROLLUP_HOURLY) == rows(db, RAW_HOURLY)
    assert rows(db, ROLLUP_DAILY) == rows(db, RAW_DAILY_FROM_HOURLY)


def daily(db, scope_type: str, scope_key: str, day: datetime = TODAY) -> tuple:
    return rows(
        db,
        "SELECT n_articles, n_novel, n_negative, n_neutral, n_positive, n_novel_negative "
        "FROM sentiment_daily WHERE scope_type = :t AND scope_key = :k AND bucket = :d",
        t=scope_type,
        k=scope_key,
        d=day,
    )[0]


def test_refresh_counts_current_scores_once(tdb) -> None:
    seed(tdb)
    assert pending_hours(tdb) > 0
    hours = refresh_rollups(tdb)
    # Every hour with a scored article, plus the unscored article's (queued by its ticker link).
    assert hours == len(rows(tdb, "SELECT DISTINCT bucket FROM sentiment_hourly")) + 1
    assert pending_hours(tdb) == 0
    assert_exact(tdb)
    # Market: 9 scored articles today (the unscored one is not counted), a2 is a copy.
    assert daily(tdb, "market", "all") == (9, 8, 4, 2, 3, 3)
    # ACME: a3's current score is m2's negative, not m1's neutral.
    assert daily(tdb, "ticker", "ACME") == (4, 3, 3, 1, 0, 2)
    # The two-ticker article counts for each ticker, once for the market.
    assert daily(tdb, "ticker", "ACME", at(15, 0))[0] == 2
    assert daily(tdb, "ticker", "BOLT", at(15, 0))[0] == 2
    assert daily(tdb, "market", "all", at(15, 0))[0] == 3
    # A second run has nothing to do.
    assert refresh_rollups(tdb) == 0


def test_new_score_refreshes_only_its_hour(tdb) -> None:
    s = seed(tdb)
    refresh_rollups(tdb)
    with tdb.transaction() as session:
        add_score(session, s.articles["unscored"], "negative")
    assert refresh_rollups(tdb) == 1
    assert daily(tdb, "ticker", "ACME") == (5, 4, 4, 1, 0, 3)
    assert_exact(tdb)


def test_rescoring_with_a_new_model_recomputes_old_buckets(tdb) -> None:
    s = seed(tdb)
    refresh_rollups(tdb)
    with tdb.transaction() as session:
        for name in ("acme-13", "acme-14"):  # positive, neutral under m1
            add_score(session, s.articles[name], "negative", model="m3", scored_at=NOW)
    assert refresh_rollups(tdb) == 2
    assert daily(tdb, "ticker", "ACME", at(13, 0))[2] == 1
    assert daily(tdb, "ticker", "ACME", at(14, 0))[2] == 1
    assert_exact(tdb)


def test_deletes_moves_and_late_links_are_followed(tdb) -> None:
    s = seed(tdb)
    refresh_rollups(tdb)
    with tdb.engine.begin() as conn:
        conn.execute(text("DELETE FROM articles WHERE id = :id"), {"id": s.articles["a4"]})
        conn.execute(
            text("UPDATE articles SET published_at = :t WHERE id = :id"),
            {"t": at(19, 23, 30), "id": s.articles["c1"]},
        )
        conn.execute(
            text("UPDATE article_entities SET published_at = :t WHERE article_id = :id"),
            {"t": at(19, 23, 30), "id": s.articles["c1"]},
        )
        conn.execute(
            text(
                "INSERT INTO article_entities (article_id, ticker, matched_by, published_at) "
                "VALUES (:id, 'DYNA', 'name', :t)"
            ),
            {"id": s.articles["fed"], "t": at(20, 7)},
        )
        # Re-flagging a story as a syndicated copy changes novel counts.
        conn.execute(text("UPDATE articles SET is_novel = false WHERE id = :id"), {"id": s.articles["b2"]})
    assert refresh_rollups(tdb) > 0
    assert_exact(tdb)
    assert daily(tdb, "ticker", "ACME")[:3] == (3, 2, 3)
    assert daily(tdb, "ticker", "CRUX")[0] == 1
    assert daily(tdb, "ticker", "DYNA")[0] == 1
    assert rows(tdb, "SELECT count(*) FROM sentiment_hourly WHERE bucket = :b", b=at(20, 11))[0][0] == 3


def test_uncommitted_change_is_not_lost(tdb) -> None:
    s = seed(tdb)
    refresh_rollups(tdb)
    with tdb.engine.connect() as other:
        trans = other.begin()
        other.execute(
            text(
                "INSERT INTO sentiment_scores (article_id, model_version, label, p_negative, p_neutral,"
                " p_positive, score) VALUES (:id, 'm1', 'negative', 0.9, 0.05, 0.05, -0.85)"
            ),
            {"id": s.articles["unscored"]},
        )
        assert refresh_rollups(tdb) == 0  # not committed yet: not visible, not dropped
        trans.commit()
    assert refresh_rollups(tdb) == 1
    assert daily(tdb, "ticker", "ACME")[0] == 5
    assert_exact(tdb)


def test_since_recomputes_a_range_and_empties_vanished_hours(tdb) -> None:
    seed(tdb)
    refresh_rollups(tdb)
    with tdb.engine.begin() as conn:
        # Change behind the triggers' back (as a restore or manual repair might).
        conn.execute(text("ALTER TABLE sentiment_scores DISABLE TRIGGER USER"))
        conn.execute(
            text(
                "DELETE FROM sentiment_scores WHERE article_id IN (SELECT id FROM articles "
                "WHERE published_at >= :t)"
            ),
            {"t": at(20, 11)},
        )
        conn.execute(text("ALTER TABLE sentiment_scores ENABLE TRIGGER USER"))
    assert refresh_rollups(tdb) == 0
    assert refresh_rollups(tdb, since=at(20, 0)) >= 2
    assert_exact(tdb)


def test_bulk_path_matches_hour_by_hour(tdb, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(tdb)
    monkeypatch.setattr(rollups, "BULK_HOURS", 0)
    monkeypatch.setattr(rollups, "BULK_MIN_DENSITY", 0.0)
    refresh_rollups(tdb)
    assert_exact(tdb)
    bulk = rows(tdb, ROLLUP_HOURLY)
    monkeypatch.setattr(rollups, "BULK_HOURS", 10_000)
    refresh_rollups(tdb, since=datetime(2000, 1, 1, tzinfo=UTC))
    assert rows(tdb, ROLLUP_HOURLY) == bulk


def test_naive_since_is_refused(tdb) -> None:
    with pytest.raises(FinSentError, match="no timezone"):
        refresh_rollups(tdb, since=datetime(2026, 11, 1))


def test_migration_queues_existing_data(tdb) -> None:
    """Data present before 0003 (simulated: rollups emptied) is picked up on the first run."""
    seed(tdb)
    with tdb.engine.begin() as conn:
        conn.execute(text("TRUNCATE trends_dirty_hours"))
    assert refresh_rollups(tdb) == 0
    hours = refresh_rollups(tdb, since=NOW - timedelta(days=3650))
    assert hours > 0
    assert_exact(tdb)


def test_a_scope_that_vanishes_leaves_no_empty_day(tdb) -> None:
    s = seed(tdb)
    refresh_rollups(tdb)
    link = {"id": s.articles["fed"], "t": at(20, 7)}
    with tdb.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO article_entities (article_id, ticker, matched_by, published_at) "
                "VALUES (:id, 'DYNA', 'name', :t)"
            ),
            link,
        )
    refresh_rollups(tdb)
    assert daily(tdb, "ticker", "DYNA")[0] == 1
    with tdb.engine.begin() as conn:
        conn.execute(text("DELETE FROM article_entities WHERE ticker = 'DYNA'"))
    assert refresh_rollups(tdb) == 1
    assert rows(tdb, "SELECT count(*) FROM sentiment_daily WHERE scope_key = 'DYNA'") == [(0,)]
    assert_exact(tdb)


def test_sums_keep_double_precision_in_a_busy_hour(tdb) -> None:
    """Scores are stored as real; summed as real, a busy hour's mean drifts in the sixth
    digit and with the order rows come in (the bulk and hourly paths then disagree)."""
    with tdb.transaction() as session:
        feed = add_feed(session, "https://wire.example/rss", "Wire")
        for i in range(2000):
            add_score(
                session,
                add_article(session, feed, f"busy-{i}", "Busy hour", at(20, 9, i % 60)),
                "positive",
                probs=(0.1, 0.1, 0.8),
            )
    refresh_rollups(tdb)
    exact, mean = rows(
        tdb,
        "SELECT (SELECT avg(score::double precision) FROM sentiment_scores), mean_score "
        "FROM v_market_sentiment_hourly",
    )[0]
    assert mean == pytest.approx(exact, rel=1e-12)


def test_a_refresh_waiting_on_another_works_under_repeatable_read(tdb, database_url: str) -> None:
    """A server whose default isolation is REPEATABLE READ: the waiting refresh's snapshot
    must not date from before the one it waited for, or its every step fails to serialise."""
    s = seed(tdb)
    refresh_rollups(tdb)
    strict = Database(engine=make_engine(database_url, isolation_level="REPEATABLE READ"), display_url="t")
    with tdb.transaction() as session:
        add_score(session, s.articles["unscored"], "negative")
    outcome: list[object] = []
    try:
        with tdb.engine.connect() as first:
            trans = first.begin()
            # A refresh under way: it holds the lock and has taken the queue.
            first.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": rollups.REFRESH_LOCK_KEY})
            hours = rollups._take_hours(first, None)
            rollups._recompute(first, hours, exact_days=False)
            waiter = threading.Thread(target=lambda: outcome.append(_refresh_or_error(strict)))
            waiter.start()
            _wait_for_lock_waiters(tdb, 1)
            trans.commit()
        waiter.join(timeout=30)
        assert outcome == [0]
        assert_exact(tdb)
    finally:
        strict.close()


def _refresh_or_error(db) -> object:
    try:
        return refresh_rollups(db)
    except Exception as exc:  # handed to the test thread to show
        return exc


def _wait_for_lock_waiters(db, n: int) -> None:
    for _ in range(200):
        waiting = rows(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0][0]
        if waiting >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the second refresh never waited for the lock")
