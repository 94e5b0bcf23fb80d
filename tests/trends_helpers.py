"""A small, hand-built trends data set whose answers are known (used by tests/test_trends_*).

"Today" is Friday 2026-11-20 (UTC); NOW is 12:30. Three tickers with known histories:

* ACME: calm for a week (8 articles, none negative), then today 4 articles of which 3 are
  negative (one of them a syndicated copy, one re-scored negative by model m2): 0.75 vs 0.0.
* BOLT: half negative in the past (4 of 8) and today (1 of 2): no change.
* CRUX: all negative in the past (4 of 4), all positive today (0 of 2).

Plus: one article that mentions ACME and BOLT (counts once for the market), one with no
ticker, one unscored article (counted nowhere), one ACME article older than 30 days, and
two alerts (ACME firing today, CRUX resolved) with deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from pipeline.db.engine import Database
from pipeline.db.models import (
    Alert,
    AlertDelivery,
    Article,
    ArticleEntity,
    EntityScore,
    Feed,
    SentimentScore,
)

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
TODAY = datetime(2026, 11, 20, tzinfo=UTC)

PROBS = {
    "negative": (0.90, 0.08, 0.02),
    "neutral": (0.10, 0.80, 0.10),
    "positive": (0.05, 0.15, 0.80),
}

ROLLUP_TABLES = ("sentiment_hourly", "sentiment_daily", "trends_dirty_hours")


@dataclass
class Seeded:
    feeds: dict[str, int] = field(default_factory=dict)
    articles: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time on November ``day``, 2026 (UTC)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def clear_trends(db: Database) -> None:
    # The shared fixture truncates the ORM tables; be explicit about ours in case it lags.
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(ROLLUP_TABLES)}"))


def add_feed(session, url: str, name: str) -> int:
    return session.execute(insert(Feed).values(url=url, name=name).returning(Feed.id)).scalar_one()


def add_article(
    session,
    feed_id: int,
    key: str,
    title: str,
    published_at: datetime,
    *,
    tickers: tuple[str, ...] = (),
    novel: bool = True,
    cluster_id: int | None = None,
) -> int:
    article_id = session.execute(
        insert(Article)
        .values(
            feed_id=feed_id,
            item_key=key,
            guid=key,
            url=f"https://news.example/{key}",
            title=title,
            published_at=published_at,
            first_seen_at=published_at,
            content_hash=key.ljust(64, "0")[:64],
            is_novel=novel,
            cluster_id=cluster_id,
        )
        .returning(Article.id)
    ).scalar_one()
    for ticker in tickers:
        session.execute(
            insert(ArticleEntity).values(
                article_id=article_id, ticker=ticker, matched_by="cashtag", published_at=published_at
            )
        )
    return article_id


def add_score(
    session,
    article_id: int,
    label: str,
    *,
    ticker: str | None = None,
    model: str = "m1",
    scored_at: datetime | None = None,
    probs: tuple[float, float, float] | None = None,
) -> None:
    """The article's sentiment (a sentiment_scores row) or, with ``ticker``, its sentiment
    for that one company (an entity_scores row, what the target-aware scorer writes);
    ``probs`` defaults to PROBS[label]."""
    p_neg, p_neu, p_pos = probs or PROBS[label]
    table, company = (SentimentScore, {}) if ticker is None else (EntityScore, {"ticker": ticker})
    session.execute(
        insert(table).values(
            article_id=article_id,
            **company,
            model_version=model,
            label=label,
            p_negative=p_neg,
            p_neutral=p_neu,
            p_positive=p_pos,
            score=p_pos - p_neg,
            scored_at=scored_at or NOW - timedelta(minutes=5),
        )
    )


def seed(db: Database) -> Seeded:
    """Insert the data set described in the module docstring (rollups not yet refreshed)."""
    s = Seeded()
    with db.transaction() as session:
        wire = s.feeds["wire"] = add_feed(session, "https://wire.example/rss", "Wire")
        blog = s.feeds["blog"] = add_feed(session, "https://blog.example/rss", "Blog")

        def art(name, feed, title, when, tickers=(), label=None, **kw):
            aid = s.articles[name] = add_article(session, feed, name, title, when, tickers=tickers, **kw)
            if label:
                add_score(session, aid, label)
            return aid

        # --- history: Nov 13..19 ------------------------------------------------------
        acme_past = ["positive", "neutral"] * 3 + ["positive"]
        bolt_past = ["negative", "positive"] * 3 + ["negative"]
        for i, day in enumerate(range(13, 20)):
            art(f"acme-{day}", wire, f"Acme update {day}", at(day, 10), ("ACME",), acme_past[i])
            art(f"bolt-{day}", blog, f"Bolt update {day}", at(day, 12), ("BOLT",), bolt_past[i])
        for day in range(16, 20):
            art(f"crux-{day}", wire, f"Crux slump {day}", at(day, 8), ("CRUX",), "negative")
        art("deal", wire, "Acme and Bolt sign supply deal", at(15, 14), ("ACME", "BOLT"), "positive")
        art("old", wire, "Acme old scandal", datetime(2026, 10, 1, 9, tzinfo=UTC), ("ACME",), "negative")

        # --- today: Nov 20 --------------------------------------------------------------
        art("fed", wire, "Fed holds rates", at(20, 7), (), "neutral")
        a1 = art("a1", wire, "Acme recalls 2 million widgets", at(20, 9, 10), ("ACME",), "negative")
        art(
            "a2",
            blog,
            "Acme recalls 2 million widgets",
            at(20, 9, 40),
            ("ACME",),
            None,
            novel=False,
            cluster_id=a1,
        )
        add_score(session, s.articles["a2"], "negative", probs=(0.85, 0.10, 0.05))
        a3 = art("a3", wire, "Acme CFO resigns", at(20, 10, 15), ("ACME",))
        add_score(session, a3, "neutral", model="m1", scored_at=NOW - timedelta(hours=2))
        add_score(session, a3, "negative", model="m2", probs=(0.70, 0.20, 0.10))
        art("a4", blog, "Acme opens new plant", at(20, 11, 5), ("ACME",), "neutral")
        art("unscored", wire, "Acme annual meeting", at(20, 12), ("ACME",))
        art("b1", wire, "Bolt misses estimates", at(20, 10, 30), ("BOLT",), "negative")
        art("b2", blog, "Bolt wins contract", at(20, 11, 20), ("BOLT",), "positive")
        art("c1", wire, "Crux beats forecasts", at(20, 8, 30), ("CRUX",), "positive")
        art("c2", blog, "Crux raises guidance", at(20, 9, 5), ("CRUX",), "positive")

        # --- alerts -----------------------------------------------------------------------
        def alert(name, scope_key, state, started, window_start, window_end, **kw):
            s.alerts[name] = session.execute(
                insert(Alert)
                .values(
                    scope_type="ticker",
                    scope_key=scope_key,
                    state=state,
                    started_at=started,
                    last_evaluated_at=kw.pop("last_evaluated_at", started),
                    window_start=window_start,
                    window_end=window_end,
                    **kw,
                )
                .returning(Alert.id)
            ).scalar_one()
            return s.alerts[name]

        acme_alert = alert(
            "acme",
            "ACME",
            "firing",
            at(20, 12),
            at(20, 9),
            at(20, 12),
            last_evaluated_at=at(20, 12, 30),
            volume=3,
            negative_share=0.75,
            baseline_share=0.0,
            deviation=5.0,
        )
        crux_alert = alert(
            "crux",
            "CRUX",
            "resolved",
            at(17, 9),
            at(17, 8),
            at(17, 9),
            resolved_at=at(18, 9),
            volume=1,
            negative_share=1.0,
            baseline_share=0.2,
            deviation=3.5,
        )
        for alert_id, kind, status, sent in (
            (acme_alert, "firing", "sent", at(20, 12, 1)),
            (crux_alert, "firing", "sent", at(17, 9, 1)),
            (crux_alert, "resolved", "pending", None),
        ):
            session.execute(
                insert(AlertDelivery).values(
                    alert_id=alert_id,
                    kind=kind,
                    dedup_key=f"{alert_id}-{kind}",
                    transport="outbox",
                    status=status,
                    sent_at=sent,
                )
            )
    return s
