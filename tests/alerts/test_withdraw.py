"""Alerts whose articles were purged end quietly: no RESOLVED email about news that is gone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alerts_helpers import NOW, add_burst, add_feed, add_history
from sqlalchemy import select

from pipeline.alerts.evaluate import evaluate
from pipeline.alerts.withdraw import withdraw_orphaned_alerts
from pipeline.db.models import Alert, AlertDelivery
from pipeline.ingest.registry import remove_feeds

REASON = "its articles were purged with their feed"


def _state(db) -> tuple[list[Alert], list[AlertDelivery]]:
    with db.session() as s:
        return (
            list(s.scalars(select(Alert).order_by(Alert.id))),
            list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.id))),
        )


def _purge(db, feed: int) -> list[int]:
    with db.transaction() as s:
        (result,) = remove_feeds(s, [str(feed)], purge=True)
        assert result.action == "purged"
        return [a.id for a in withdraw_orphaned_alerts(s, now=NOW + timedelta(minutes=5), reason=REASON)]


@pytest.mark.slow
def test_an_alert_that_stood_only_on_purged_articles_is_withdrawn_without_an_email(db, settings):
    with db.transaction() as s:
        demo, real = add_feed(s, "Demo"), add_feed(s, "Real")
        add_history(s, demo, ticker="VLTA", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, demo, ticker="VLTA", end=NOW, count=12, negatives=10)
        add_history(s, real, ticker=None, end=NOW, hours=48, per_hour=4, negative_share=0.25)
    evaluate(db, settings, now=NOW)
    (alert,), (delivery,) = _state(db)
    assert (alert.scope_key, alert.state, delivery.status) == ("VLTA", "firing", "pending")

    assert _purge(db, demo) == [alert.id]

    (alert,), (delivery,) = _state(db)
    assert alert.state == "resolved" and alert.details["withdrawn"] == REASON
    assert alert.resolved_at == NOW + timedelta(minutes=5)
    assert delivery.status == "withdrawn" and delivery.next_attempt_at is None
    # The next evaluation finds nothing to resolve and queues no email.
    report = evaluate(db, settings, now=NOW + timedelta(minutes=15))
    assert report.notices == [] and report.deliveries == 0
    assert len(_state(db)[1]) == 1


@pytest.mark.slow
def test_an_alert_with_articles_left_after_a_purge_is_left_to_the_next_evaluation(db, settings):
    with db.transaction() as s:
        demo, real = add_feed(s, "Demo"), add_feed(s, "Real")
        add_history(s, real, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, real, ticker="ACME", end=NOW, count=8, negatives=7)
        add_burst(s, demo, ticker="ACME", end=NOW, count=4, negatives=3, title="Copy")
    evaluate(db, settings, now=NOW)
    (alert,), _ = _state(db)
    assert alert.state == "firing"

    assert _purge(db, demo) == []

    (after,), (still,) = _state(db)
    assert after.state == "firing" and "withdrawn" not in after.details
    assert still.status == "pending"
