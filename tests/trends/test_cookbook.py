"""Every cookbook query runs against the hand-built data set and returns the known rows."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from trends_helpers import NOW, TODAY, add_article, add_feed, add_score, at, clear_trends, seed

from pipeline.errors import FinSentError
from pipeline.trends.cookbook import COOKBOOK_PATH, load_cookbook
from pipeline.trends.rollups import refresh_rollups

COOKBOOK = load_cookbook()
D = Decimal


@pytest.fixture
def conn(db):
    clear_trends(db)
    seeded = seed(db)
    refresh_rollups(db)
    with db.engine.connect() as connection:
        connection.info["seeded"] = seeded
        yield connection
        connection.rollback()
    clear_trends(db)


def run(conn, name: str, **params) -> list[dict]:
    defaults = {"now": NOW, "since": at(13, 0), "days": 7, "min_articles": 1, "limit": 20, "ticker": "ACME"}
    return COOKBOOK[name].run(conn, **{**defaults, **params})


def pick(rows: list[dict], *keys: str) -> list[tuple]:
    return [tuple(r[k] for k in keys) for r in rows]


def test_cookbook_has_ten_or_more_documented_queries() -> None:
    assert len(COOKBOOK) >= 10
    for query in COOKBOOK.values():
        assert query.description, f"{query.name} has no comment"
        assert query.params, f"{query.name} takes no parameters"


def test_most_negative_vs_norm(conn) -> None:
    rows = run(conn, "most_negative_vs_norm")
    assert pick(rows, "ticker", "articles_today", "negative_share_today", "articles_30d", "change", "z") == [
        ("ACME", 4, D("0.750"), 8, D("0.750"), D("15.00")),
        ("BOLT", 2, D("0.500"), 8, D("0.000"), D("0.00")),
        ("CRUX", 2, D("0.000"), 4, D("-1.000"), D("-14.14")),
    ]
    # The article from October is outside the 30-day norm; a volume floor drops small days.
    assert [r["ticker"] for r in run(conn, "most_negative_vs_norm", min_articles=3)] == ["ACME"]
    assert [r["ticker"] for r in run(conn, "most_negative_vs_norm", limit=1)] == ["ACME"]


def test_ticker_hourly(conn) -> None:
    rows = run(conn, "ticker_hourly")
    assert len(rows) == 7 * 24 + 1
    assert rows[0]["bucket"] == datetime(2026, 11, 13, 12, tzinfo=UTC)
    with_news = [r for r in rows if r["articles"]]
    assert pick(with_news[-3:], "bucket", "articles", "novel", "negative_share", "mean_score") == [
        (at(20, 9), 2, 1, D("1.000"), D("-0.840")),
        (at(20, 10), 1, 1, D("1.000"), D("-0.600")),
        (at(20, 11), 1, 1, D("0.000"), D("0.000")),
    ]
    assert len(with_news) == 10  # Nov 13 10:00 is before the 7-day window
    quiet = next(r for r in rows if not r["articles"])
    assert quiet["negative_share"] is None


def test_top_negative_headlines(conn) -> None:
    rows = run(conn, "top_negative_headlines", since=TODAY)
    # a2 is a syndicated copy of a1; a3 is negative under m2 (m1 said neutral).
    assert pick(rows, "title", "feed", "p_negative", "model_version") == [
        ("Acme recalls 2 million widgets", "Wire", D("0.90"), "m1"),
        ("Acme CFO resigns", "Wire", D("0.70"), "m2"),
    ]


def test_most_negative_sources(conn) -> None:
    rows = run(conn, "most_negative_sources")
    assert pick(rows, "feed_name", "articles", "negative_share") == [
        ("Blog", 11, D("0.455")),
        ("Wire", 17, D("0.412")),
    ]
    assert [r["feed_name"] for r in run(conn, "most_negative_sources", min_articles=12)] == ["Wire"]


def test_alerts_with_context(conn) -> None:
    rows = run(conn, "alerts_with_context", since=datetime(2026, 11, 1, tzinfo=UTC))
    keys = ("scope_key", "state", "n_articles_24h_before", "negative_share_24h_before", "notifications_sent")
    assert pick(rows, *keys) == [
        ("ACME", "firing", 1, D("0.000"), 1),
        ("CRUX", "resolved", 1, D("1.000"), 1),
    ]
    assert rows[0]["headlines"] == ["Acme recalls 2 million widgets", "Acme CFO resigns"]
    assert rows[1]["headlines"] == ["Crux slump 17"]
    assert [r["scope_key"] for r in run(conn, "alerts_with_context", since=TODAY)] == ["ACME"]


def test_price_join(conn) -> None:
    conn.execute(text("CREATE TEMP TABLE prices (ticker text, ts timestamptz, close numeric)"))
    conn.execute(
        text(
            "INSERT INTO prices VALUES ('ACME', '2026-11-20 09:30Z', 101),"
            " ('ACME', '2026-11-20 09:59Z', 100), ('ACME', '2026-11-20 10:59Z', 95),"
            " ('ACME', '2026-11-20 11:59Z', 96), ('BOLT', '2026-11-20 12:59Z', 7)"
        )
    )
    rows = run(conn, "price_join", since=TODAY)
    assert pick(rows, "bucket", "articles", "close", "next_hour_return") == [
        (at(20, 9), 2, D("100"), D("-0.0500")),
        (at(20, 10), 1, D("95"), D("0.0105")),
        (at(20, 11), 1, D("96"), None),
    ]


def test_market_daily(conn) -> None:
    rows = run(conn, "market_daily", since=at(19, 0))
    assert pick(rows, "articles", "novel", "negative_share") == [
        (3, 3, D("0.667")),
        (9, 8, D("0.444")),  # the unscored article is not counted
    ]
    assert str(rows[-1]["day"]) == "2026-11-20"


def test_ticker_rolling_negative_share(conn) -> None:
    rows = run(conn, "ticker_rolling_negative_share", since=TODAY)
    keys = ("bucket", "articles_24h", "negative_share_24h", "articles_7d", "negative_share_7d")
    assert pick(rows, *keys) == [
        (at(20, 9), 3, D("0.667"), 10, D("0.200")),
        (at(20, 10), 3, D("1.000"), 10, D("0.300")),
        (at(20, 11), 4, D("0.750"), 11, D("0.273")),
    ]


def test_most_mentioned_today(conn) -> None:
    rows = run(conn, "most_mentioned_today")
    # Averages over the 7 days with news before today (Nov 13-19), not over 30: ACME had 8
    # articles then (one a day and the deal), BOLT 8, CRUX 4.
    assert pick(rows, "ticker", "articles_today", "per_day_30d", "volume_ratio", "days_with_news_30d") == [
        ("ACME", 4, D("1.14"), D("3.5"), 7),
        ("BOLT", 2, D("1.14"), D("1.8"), 7),
        ("CRUX", 2, D("0.57"), D("3.5"), 7),
    ]


def test_model_disagreements(conn) -> None:
    rows = run(conn, "model_disagreements", since=TODAY)
    assert pick(rows, "title", "previous_model", "previous_label", "current_model", "current_label") == [
        ("Acme CFO resigns", "m1", "neutral", "m2", "negative")
    ]


def test_who_is_negative_about(conn) -> None:
    rows = run(conn, "who_is_negative_about", since=TODAY)
    assert pick(rows, "feed", "articles", "negative", "negative_share") == [
        ("Wire", 2, 2, D("1.000")),
        ("Blog", 2, 1, D("0.500")),
    ]


def test_sentiment_flips_week_over_week(conn) -> None:
    rows = run(conn, "sentiment_flips_week_over_week")
    assert pick(rows, "ticker", "articles_prev_week", "mean_score_prev_week", "articles_this_week") == [
        ("BOLT", 1, D("-0.880"), 9)
    ]
    assert run(conn, "sentiment_flips_week_over_week", min_articles=2) == []


def test_every_query_is_tested() -> None:
    tested = {name[len("test_") :] for name in globals() if name.startswith("test_")}
    assert set(COOKBOOK) <= tested


def test_missing_parameter_is_named(conn) -> None:
    with pytest.raises(FinSentError, match="needs ticker"):
        COOKBOOK["ticker_hourly"].run(conn, now=NOW, days=7)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_file_runs_in_psql(db, database_url: str) -> None:
    """The file as analysts use it: psql variables, every query, no error."""
    clear_trends(db)
    seed(db)
    refresh_rollups(db)
    with db.engine.begin() as c:
        c.execute(text("CREATE TABLE prices (ticker text, ts timestamptz, close numeric)"))
    try:
        url = make_url(database_url)
        env = {**os.environ, "PGPASSWORD": url.password or ""}
        variables = {
            "ticker": "ACME",
            "now": NOW.isoformat(),
            "since": "2026-11-13",
            "days": "7",
            "min_articles": "1",
            "limit": "20",
        }
        host = url.host or url.query.get("host") or "localhost"  # embedded: a socket folder
        args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(host)]
        args += ["-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", url.database]
        for key, value in variables.items():
            args += ["-v", f"{key}={value}"]
        outputs = []
        # A bare date (since=2026-11-13) is a UTC day whatever the analyst's session zone.
        for zone in ("UTC", "Europe/Berlin", "Asia/Kolkata"):
            result = subprocess.run(
                [*args, "-f", str(COOKBOOK_PATH)],
                env={**env, "PGTZ": zone},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
        assert "Acme CFO resigns" in outputs[0]
        assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    finally:
        with db.engine.begin() as c:
            c.execute(text("DROP TABLE prices"))
        clear_trends(db)


def test_company_queries_read_the_companys_own_score(conn) -> None:
    """top_negative_headlines and who_is_negative_about: a company score of the article's
    current model replaces the article's label for that company; another model's does not."""
    articles = conn.info["seeded"].articles
    insert = text(
        "INSERT INTO entity_scores (article_id, ticker, model_version, label, p_negative, p_neutral, "
        "p_positive, score) VALUES (:a, 'ACME', :m, :l, :n, 0.1, :p, :p - :n)"
    )
    conn.execute(insert, {"a": articles["a1"], "m": "m1", "l": "positive", "n": 0.05, "p": 0.85})
    conn.execute(insert, {"a": articles["a4"], "m": "m1", "l": "negative", "n": 0.8, "p": 0.1})
    conn.execute(
        insert, {"a": articles["a3"], "m": "m1", "l": "positive", "n": 0.05, "p": 0.85}
    )  # a3 is m2's
    rows = run(conn, "top_negative_headlines", since=TODAY)
    assert pick(rows, "title", "p_negative", "label_of") == [
        ("Acme opens new plant", D("0.80"), "company"),
        ("Acme CFO resigns", D("0.70"), "article"),
    ]
    rows = run(conn, "who_is_negative_about", since=TODAY)
    assert pick(rows, "feed", "articles", "negative") == [("Blog", 2, 2), ("Wire", 2, 1)]


# 30 days before 2026-04-10 reach back across London's spring clock change (March 29) and
# Sydney's autumn one (April 5): "30 days" reckoned in those zones is 719 or 721 hours.
SPRING_NOW = datetime(2026, 4, 10, 12, 30, tzinfo=UTC)


@pytest.fixture
def spring(db):
    """ACME news on the first day of the 30-day norm (March 11) and today (April 10), and
    market news the day before the norm starts."""
    clear_trends(db)
    with db.transaction() as session:
        feed = add_feed(session, "https://wire.example/rss", "Wire")
        for key, when, tickers, label in (
            ("before", datetime(2026, 3, 10, 20, tzinfo=UTC), (), "neutral"),
            ("first-day", datetime(2026, 3, 11, 0, 30, tzinfo=UTC), ("ACME",), "neutral"),
            ("today", datetime(2026, 4, 10, 9, tzinfo=UTC), ("ACME",), "negative"),
        ):
            add_score(session, add_article(session, feed, key, f"Acme {key}", when, tickers=tickers), label)
    refresh_rollups(db)
    yield db
    clear_trends(db)


SPRING_PARAMS = {
    "now": SPRING_NOW,
    "since": datetime(2026, 3, 11, tzinfo=UTC),
    "days": 30,
    "min_articles": 1,
    "limit": 20,
    "ticker": "ACME",
}


@pytest.mark.parametrize("zone", ["Europe/London", "Australia/Sydney"])
def test_queries_do_not_depend_on_the_session_time_zone(spring, zone: str) -> None:
    """BI tools (JDBC) and servers set up in local time run sessions in a zone with clock
    changes: day arithmetic there must not drop the first day of a norm or add an hour."""
    names = [n for n in COOKBOOK if n != "price_join"]
    with spring.engine.connect() as conn:
        in_utc = {n: run(conn, n, **SPRING_PARAMS) for n in names}
        assert len(in_utc["ticker_hourly"]) == 30 * 24 + 1
        assert pick(in_utc["most_negative_vs_norm"], "ticker", "articles_30d") == [("ACME", 1)]
        conn.execute(text(f"SET timezone = '{zone}'"))
        for name in names:
            query = COOKBOOK[name]
            used = {k: v for k, v in SPRING_PARAMS.items() if k in query.params}
            rows = [dict(r) for r in conn.execute(query.statement(), used).mappings()]
            assert rows == in_utc[name], name
        conn.rollback()


def test_runner_reads_a_bare_date_as_utc_in_any_session_zone(spring) -> None:
    """since=2026-03-11 is the UTC day, as in psql (the file sets UTC), whatever the zone of
    the connection it is given (the web pages pass theirs); the zone is left as it was."""
    with spring.engine.connect() as conn:
        conn.execute(text("SET timezone = 'Asia/Tokyo'"))
        rows = COOKBOOK["market_daily"].run(conn, since="2026-03-11")
        assert [r["day"].isoformat() for r in rows] == ["2026-03-11", "2026-04-10"]
        assert conn.execute(text("SHOW timezone")).scalar_one() == "Asia/Tokyo"
        conn.rollback()


def test_a_failing_query_keeps_its_own_error(conn) -> None:
    with pytest.raises(DBAPIError, match='relation "prices" does not exist'):
        run(conn, "price_join", since=TODAY)
    conn.rollback()
