"""What an evaluation compares: one model version's labels, and the same articles in the
window and in its baseline (the real test database)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alerts_helpers import MODEL, NOW, add_article, add_burst, add_feed, add_history
from sqlalchemy import func, select, text

from pipeline.alerts.evaluate import evaluate, evaluation_model_version
from pipeline.db.models import Alert, AlertDelivery, SentimentScore

V2 = "test-model-v2"


def _alerts_of(db) -> list[Alert]:
    with db.session() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


@pytest.fixture
def wire(db) -> int:
    with db.transaction() as s:
        return add_feed(s, "Wire", tags=["us"])


def _score_with(db, version: str, *, since, negative_per_20: int, scored_at=None) -> int:
    """Score the articles published after ``since`` that ``version`` has not scored: of every 20 consecutive
    ids, ``negative_per_20`` negative (so each hour of 20 articles has exactly that many)."""
    with db.transaction() as s:
        ids = s.scalars(
            text(
                "SELECT id FROM articles a WHERE published_at > :t AND NOT EXISTS (SELECT 1 FROM "
                "sentiment_scores ss WHERE ss.article_id = a.id AND ss.model_version = :v) ORDER BY id"
            ),
            {"t": since, "v": version},
        ).all()
        for article_id in ids:
            label = "negative" if article_id % 20 < negative_per_20 else "neutral"
            p_neg = 0.9 if label == "negative" else 0.05
            s.add(
                SentimentScore(
                    article_id=article_id,
                    model_version=version,
                    label=label,
                    p_negative=p_neg,
                    p_neutral=0.95 - p_neg if label == "negative" else 0.9,
                    p_positive=0.05,
                    score=0.05 - p_neg,
                    scored_at=scored_at or NOW,
                )
            )
    return len(ids)


def _steady(db, wire) -> None:
    """48 hours of ACME news, 20 an hour, and the current hour's 20: 3 of 20 negative under
    the first model (every hour alike)."""
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=48, per_hour=20, negative_share=0.15)
        add_burst(s, wire, ticker="ACME", end=NOW, count=20, negatives=3)


def test_a_rescore_under_way_is_not_a_spike(db, settings, wire):
    """A new model that reads 9 of 20 as negative where the former read 3 has re-scored the
    last two hours (newest first) when alerts are evaluated. Under either model alone every
    hour is alike: comparing the new model's window with the former's history fired."""
    _steady(db, wire)
    _score_with(db, V2, since=NOW - timedelta(hours=2), negative_per_20=9)
    with db.session() as s:
        assert evaluation_model_version(s) == V2

    report = evaluate(db, settings, now=NOW)

    assert report.fired == []
    # Once the re-score is complete, the new model's history is the baseline: still calm.
    _score_with(db, V2, since=NOW - timedelta(days=30), negative_per_20=9)
    assert evaluate(db, settings, now=NOW + timedelta(minutes=15)).fired == []


def test_a_rollback_counts_the_restored_model(db, settings, wire):
    """v2 re-scored everything, then v1 was restored and scored the newest hour again (its
    old scores of the history are still there, stamped earlier than v2's). Counting each
    article's newest score mixed v1's window with v2's history."""
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=48, per_hour=20, negative_share=0.45)
    _score_with(db, V2, since=NOW - timedelta(days=30), negative_per_20=3)
    with db.transaction() as s:  # the newest hour, scored by v1 (MODEL) only
        add_burst(s, wire, ticker="ACME", end=NOW, count=20, negatives=9)
    with db.session() as s:
        assert evaluation_model_version(s) == MODEL

    assert evaluate(db, settings, now=NOW).fired == []


def test_the_last_stored_score_names_the_version_whatever_its_stamp(db, settings, wire):
    """A score run given an earlier ``now`` stamps its rows earlier than the former model's:
    the version is the one stored last, not the one stamped last."""
    _steady(db, wire)
    _score_with(db, V2, since=NOW - timedelta(hours=1), negative_per_20=3, scored_at=NOW - timedelta(days=1))
    with db.session() as s:
        assert evaluation_model_version(s) == V2
    report = evaluate(db, settings, now=NOW)
    assert report.fired == []


@pytest.mark.slow
def test_a_firing_company_leaves_the_markets_baseline_too(db, settings, wire):
    """ACME's news is usually calm (1 of 60 negative an hour), the rest usually 24 of 60.
    ACME's bad hour fires ACME; the rest, unchanged, must not fire the market or the source,
    though without ACME it is more negative than the market's history with ACME in it."""
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=24, per_hour=60, negative_share=1 / 60)
        add_history(s, wire, ticker=None, end=NOW, hours=24, per_hour=60, negative_share=0.4)
        add_burst(s, wire, ticker="ACME", end=NOW, count=60, negatives=30)
        add_burst(s, wire, ticker=None, end=NOW, count=60, negatives=24)

    report = evaluate(db, settings, now=NOW)

    assert [(n.scope_type, n.scope_key) for n in report.fired] == [("ticker", "ACME")]


def test_the_emails_query_lists_what_the_alert_counted(db, settings, wire):
    """The email's ready-to-run SQL returns the alert's volume and negatives: a syndicated
    copy, an article first seen after the evaluation and another model's score are left out
    as the alert leaves them out."""
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, wire, ticker="ACME", end=NOW, count=12, negatives=10)
        late = add_burst(s, wire, ticker="ACME", end=NOW, count=1, negatives=1, title="Late")
        copy = add_burst(s, wire, ticker="ACME", end=NOW, count=1, negatives=1, title="Copy")
        s.execute(
            text("UPDATE articles SET first_seen_at = :t WHERE id = :id"),
            {"t": NOW + timedelta(minutes=5), "id": late[0]},
        )
        s.execute(text("UPDATE articles SET is_novel = false WHERE id = :id"), {"id": copy[0]})

    report = evaluate(db, settings, now=NOW)

    assert [n.scope_key for n in report.fired] == ["ACME"]
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
        (item,) = s.scalars(select(AlertDelivery)).one().payload["items"]
        rows = s.execute(text(item["sql"])).all()
        versions = s.scalars(select(func.count(func.distinct(SentimentScore.model_version)))).one()
    assert item["model_version"] == MODEL and versions == 1
    # The alert's page lists what the latest evaluation counted: its details say so.
    assert (alert.details["model_version"], alert.details["excluded_tickers"]) == (MODEL, [])
    assert len(rows) == alert.volume == 12
    assert sum(r.label == "negative" for r in rows) == 10


def test_a_backfill_opened_episode_is_emailed_only_once_it_fires_live(db, settings, wire):
    """A backfill of 10:00 found a spike and opened an episode (no email: it is history).
    A minute later ACME is somewhat negative, inside the hysteresis band but under the threshold:
    an email saying FIRING about it would be a false alarm. When a live run finds it over
    the threshold, it is emailed as the episode's first notice."""
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, wire, ticker="ACME", end=NOW - timedelta(hours=5), count=12, negatives=10)
        add_burst(s, wire, ticker="ACME", end=NOW, count=16, negatives=8)
    assert evaluate(db, settings, now=NOW).fired == []  # live: under the threshold
    backfill = evaluate(db, settings, now=NOW - timedelta(hours=5))
    assert [n.scope_key for n in backfill.fired] == ["ACME"] and backfill.deliveries == 0

    later = evaluate(db, settings, now=NOW + timedelta(minutes=1))

    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.state == "firing" and alert.last_notified_at is None
        assert alert.deviation < settings.alert_threshold, alert.deviation
    assert later.notices == [] and later.deliveries == 0

    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW + timedelta(minutes=30), count=20, negatives=20, minutes=10)
    live = evaluate(db, settings, now=NOW + timedelta(minutes=30))
    assert [(n.scope_key, n.kind) for n in live.notices] == [("ACME", "fired")], live.render()
    assert live.deliveries == 1


def _late_burst(db, wire, *, lag: timedelta) -> None:
    """48 hours of ACME at 25 % negative, then 12 stories between 14:00 and 14:55, 10 of them
    negative, each reaching FinSent ``lag`` after its publication stamp."""
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        for i in range(12):
            published = NOW - timedelta(hours=1) + timedelta(minutes=5 * i)
            add_article(
                s, wire, published_at=published, first_seen_at=published + lag, tickers=["ACME"],
                label="negative" if i < 10 else "neutral",
            )  # fmt: skip


def test_a_spike_seen_late_in_its_hour_still_fires(db, settings, wire):
    """Stories seen 40 minutes after their stamp: cut by publication time, each evaluation
    (every 15 minutes) saw only the 20 minutes of the hour already seen, and none fired."""
    _late_burst(db, wire, lag=timedelta(minutes=40))
    fired = []
    for quarter in range(9):  # 14:00 .. 16:00
        report = evaluate(db, settings, now=NOW - timedelta(hours=1) + timedelta(minutes=15 * quarter))
        fired += [n.scope_key for n in report.fired]
    assert fired == ["ACME"]


def test_a_back_catalogue_seen_at_once_stays_in_the_history(db, settings, wire):
    """A new feed's first fetch brings stories of the last hours, all seen now: they count at
    their publication (history), not in the current window, whose 12 stories fire on their own."""
    _late_burst(db, wire, lag=timedelta(0))
    with db.transaction() as s:
        for i in range(30):
            published = NOW - timedelta(hours=10) + timedelta(minutes=15 * i)
            add_article(
                s, wire, published_at=published, first_seen_at=NOW, tickers=["ACME"], label="negative"
            )
    report = evaluate(db, settings, now=NOW)
    (alert,) = _alerts_of(db)
    assert [n.scope_key for n in report.fired] == ["ACME"] and alert.volume == 11  # 14:05 .. 14:55
