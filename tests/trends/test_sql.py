"""The sql/ files are what migration 0003 runs, and the views answer as documented."""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text
from trends_helpers import NOW, TODAY, at, clear_trends, seed

from pipeline.paths import REPO_ROOT as REPO
from pipeline.trends.rollups import refresh_rollups

VERSIONS = REPO / "pipeline" / "db" / "migrations" / "versions"
MIGRATION = VERSIONS / "0003_trends.py"

VIEWS = {
    "v_article_sentiment",
    "v_sentiment_hourly",
    "v_sentiment_daily",
    "v_ticker_sentiment_hourly",
    "v_ticker_sentiment_daily",
    "v_feed_sentiment_hourly",
    "v_feed_sentiment_daily",
    "v_market_sentiment_hourly",
    "v_market_sentiment_daily",
    "v_ticker_negative_share_rolling",
    "v_alert_history",
}


def load_migration(path=MIGRATION):
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sql_files_are_the_migrations_sql() -> None:
    migration = load_migration()
    assert (REPO / "sql" / "trends_rollups.sql").read_text() == migration.ROLLUPS_SQL
    # The views as 0003 created them, with v_alert_history as 0014 and then 0016 replaced it.
    alert_history = load_migration(VERSIONS / "0014_alert_history_before_window.py")
    utc_hours = load_migration(VERSIONS / "0016_alert_history_utc_hours.py")
    assert migration.VIEWS_SQL.count(alert_history.BODY_0003) == 1
    assert utc_hours.BODY_0014 == alert_history.BODY
    views = migration.VIEWS_SQL.replace(alert_history.BODY_0003, utc_hours.BODY)
    assert (REPO / "sql" / "trends_views.sql").read_text() == views
    # The downgrade drops every view the upgrade creates.
    assert set(migration.VIEWS) == VIEWS


def test_views_exist(database_url: str, db) -> None:
    assert set(inspect(db.engine).get_view_names()) >= VIEWS


@pytest.fixture
def seeded(db):
    clear_trends(db)
    s = seed(db)
    refresh_rollups(db)
    yield s
    clear_trends(db)


def one(db, sql: str, **params):
    with db.engine.connect() as conn:
        return conn.execute(text(sql), params).mappings().one()


def test_article_sentiment_is_the_latest_model(db, seeded) -> None:
    row = one(db, "SELECT * FROM v_article_sentiment WHERE article_id = :id", id=seeded.articles["a3"])
    assert (row["model_version"], row["label"]) == ("m2", "negative")
    assert row["confidence"] == pytest.approx(0.7)
    with db.engine.connect() as conn:
        unscored = conn.execute(
            text("SELECT count(*) FROM v_article_sentiment WHERE article_id = :id"),
            {"id": seeded.articles["unscored"]},
        ).scalar_one()
    assert unscored == 0


@pytest.mark.slow
def test_ticker_feed_market_views(db, seeded) -> None:
    acme = one(db, "SELECT * FROM v_ticker_sentiment_daily WHERE ticker = 'ACME' AND bucket = :d", d=TODAY)
    assert (acme["n_articles"], acme["n_negative"], acme["n_novel"]) == (4, 3, 3)
    assert acme["negative_share"] == pytest.approx(0.75)
    assert acme["novel_negative_share"] == pytest.approx(2 / 3)
    # mean of -0.88, -0.80, -0.60 and 0.0; weighted by confidence 0.9, 0.85, 0.7, 0.8.
    assert acme["mean_score"] == pytest.approx((-0.88 - 0.80 - 0.60) / 4, abs=1e-5)
    weighted = (-0.88 * 0.9 - 0.80 * 0.85 - 0.60 * 0.7) / (0.9 + 0.85 + 0.7 + 0.8)
    assert acme["weighted_score"] == pytest.approx(weighted, abs=1e-5)

    hour = one(
        db, "SELECT * FROM v_ticker_sentiment_hourly WHERE ticker = 'ACME' AND bucket = :b", b=at(20, 9)
    )
    assert (hour["n_articles"], hour["n_novel"], hour["negative_share"]) == (2, 1, 1.0)

    blog = one(db, "SELECT * FROM v_feed_sentiment_daily WHERE feed_name = 'Blog' AND bucket = :d", d=TODAY)
    assert (blog["feed_id"], blog["feed_url"], blog["n_articles"]) == (
        seeded.feeds["blog"],
        "https://blog.example/rss",
        4,  # a2, a4, b2, c2
    )
    feed_hour = one(
        db,
        "SELECT * FROM v_feed_sentiment_hourly WHERE feed_id = :f AND bucket = :b",
        f=seeded.feeds["wire"],
        b=at(20, 7),
    )
    assert feed_hour["n_articles"] == 1  # the Fed story, which names no ticker

    market = one(db, "SELECT * FROM v_market_sentiment_daily WHERE bucket = :d", d=TODAY)
    assert (market["n_articles"], market["n_negative"], market["n_neutral"], market["n_positive"]) == (
        9,
        4,
        2,
        3,
    )
    assert market["negative_share"] + market["neutral_share"] + market["positive_share"] == pytest.approx(1)
    market_hour = one(db, "SELECT * FROM v_market_sentiment_hourly WHERE bucket = :b", b=at(20, 10))
    assert market_hour["n_articles"] == 2  # a3 and b1


def test_rolling_negative_share(db, seeded) -> None:
    row = one(
        db,
        "SELECT * FROM v_ticker_negative_share_rolling WHERE ticker = 'CRUX' AND bucket = :b",
        b=at(20, 9),
    )
    # 24 h = the 24 hour buckets 10:00 Nov 19 .. 09:00 Nov 20: c1, c2 (crux-19 at 08:00 is out).
    assert (row["n_24h"], row["negative_share_24h"]) == (2, 0.0)
    # 7 d = 168 buckets: crux-16..19 (negative), c1, c2.
    assert (row["n_7d"], row["negative_share_7d"]) == (6, pytest.approx(4 / 6))


def test_alert_history(db, seeded) -> None:
    row = one(db, "SELECT * FROM v_alert_history WHERE alert_id = :id", id=seeded.alerts["crux"])
    assert row["state"] == "resolved"
    assert row["duration"].total_seconds() == 24 * 3600
    assert (row["n_deliveries"], row["n_sent"]) == (2, 1)
    firing = one(db, "SELECT * FROM v_alert_history WHERE alert_id = :id", id=seeded.alerts["acme"])
    assert firing["duration"] == NOW - at(20, 12)  # still firing: up to the last evaluation
    assert (firing["n_articles_24h_before"], firing["negative_share_24h_before"]) == (1, 0.0)


def _acme_alert_of_window_from(db, window_start) -> int:
    """A resolved ACME alert, evaluated at 10:20 Nov 20, whose window starts at ``window_start``."""
    with db.transaction() as s:
        return s.execute(
            text(
                "INSERT INTO alerts (scope_type, scope_key, state, started_at, last_evaluated_at,"
                " resolved_at, window_start, window_end, volume, negative_share, baseline_share, deviation)"
                " VALUES ('ticker', 'ACME', 'resolved', :t, :t, :t, :ws, :t, 2, 1.0, 0.0, 5.0) RETURNING id"
            ),
            {"t": at(20, 10, 20), "ws": window_start},
        ).scalar_one()


def test_alert_history_context_ends_before_the_hour_the_window_starts_in(db, seeded) -> None:
    # Evaluations every 15 minutes give windows that start mid-hour: the hour a window starts
    # in holds the spike (a1, a2 at 09:10 and 09:40), not what came before it.
    alert_id = _acme_alert_of_window_from(db, at(20, 9, 20))
    row = one(db, "SELECT * FROM v_alert_history WHERE alert_id = :id", id=alert_id)
    # 09:00 Nov 19 .. 08:00 Nov 20: only acme-19 (10:00 Nov 19, positive)
    assert (row["n_articles_24h_before"], row["negative_share_24h_before"]) == (1, 0.0)


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/St_Johns", "UTC"])
def test_alert_history_context_is_the_same_in_any_session_time_zone(db, seeded, zone) -> None:
    # The rollups' buckets are UTC hours: a half-hour zone must not move the context's bounds
    # onto the window's own first hour (09:00 UTC, the spike): 09:40 UTC is 15:10 in India,
    # whose hour began at 09:30 UTC.
    alert_id = _acme_alert_of_window_from(db, at(20, 9, 40))
    with db.session() as s:
        s.execute(text(f"SET LOCAL timezone = '{zone}'"))
        row = s.execute(
            text(
                "SELECT n_articles_24h_before, negative_share_24h_before"
                " FROM v_alert_history WHERE alert_id = :id"
            ),
            {"id": alert_id},
        ).one()
    assert tuple(row) == (1, 0.0)


def test_alert_history_maps_source_alerts_and_grouped_emails(db, seeded) -> None:
    """Source alerts carry the feed's name; one grouped email counts for every alert in it."""
    with db.transaction() as s:
        alert_id = s.execute(
            text(
                "INSERT INTO alerts (scope_type, scope_key, state, started_at, last_evaluated_at,"
                " window_start, window_end, volume, negative_share, baseline_share, deviation)"
                " VALUES ('source', 'Wire', 'firing', :t, :t, :t, :t, 5, 0.8, 0.1, 4.0) RETURNING id"
            ),
            {"t": NOW},
        ).scalar_one()
        delivery_id = s.execute(
            text(
                "INSERT INTO alert_deliveries (alert_id, kind, dedup_key, transport, status)"
                " VALUES (:lead, 'firing', 'grouped-1', 'outbox', 'sent') RETURNING id"
            ),
            {"lead": seeded.alerts["acme"]},
        ).scalar_one()
        s.execute(
            text(
                "INSERT INTO alert_delivery_items (delivery_id, alert_id, kind) VALUES"
                " (:d, :lead, 'firing'), (:d, :other, 'firing')"
            ),
            {"d": delivery_id, "lead": seeded.alerts["acme"], "other": alert_id},
        )
    row = one(db, "SELECT * FROM v_alert_history WHERE alert_id = :id", id=alert_id)
    assert (row["n_deliveries"], row["n_sent"]) == (1, 1)
    wire_before = one(
        db,
        "SELECT coalesce(sum(n_articles), 0) AS n FROM sentiment_hourly WHERE scope_type = 'feed'"
        " AND scope_key = :f AND bucket >= :a AND bucket < :b",
        f=str(seeded.feeds["wire"]),
        a=NOW - timedelta(hours=24),
        b=NOW,
    )["n"]
    assert wire_before > 0
    assert row["n_articles_24h_before"] == wire_before
