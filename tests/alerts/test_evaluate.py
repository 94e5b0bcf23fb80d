"""The alert life cycle on constructed series in the real test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alerts_helpers import NOW, add_article, add_burst, add_feed, add_history
from sqlalchemy import func, select, text

from pipeline.alerts.evaluate import evaluate
from pipeline.alerts.recipients import Routing
from pipeline.db.models import Alert, AlertDelivery, AlertDeliveryItem, AlertSilence, Feed
from pipeline.errors import AlertError


def _alerts(db) -> list[Alert]:
    with db.session() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


def _deliveries(db) -> list[AlertDelivery]:
    with db.session() as s:
        return list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def _kinds(delivery: AlertDelivery) -> list[tuple[str, str]]:
    return [(i["scope_key"] or "market", i["kind"]) for i in delivery.payload["items"]]


@pytest.fixture
def wire(db) -> int:
    with db.transaction() as s:
        return add_feed(s, "Wire", tags=["us"])


def _quiet_ticker(
    db, feed: int, ticker: str = "ACME", share: float = 0.25, hours: int = 48, per_hour: int = 4
):
    with db.transaction() as s:
        add_history(s, feed, ticker=ticker, end=NOW, hours=hours, per_hour=per_hour, negative_share=share)


@pytest.mark.slow
def test_spike_fires_once_with_numbers_and_baseline(db, settings, wire):
    _quiet_ticker(db, wire)
    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW, count=12, negatives=10, company="Acme Corp")

    report = evaluate(db, settings, now=NOW)

    assert [(n.scope_key, n.kind) for n in report.notices] == [("ACME", "fired")]
    (alert,) = _alerts(db)
    assert (alert.scope_type, alert.state, alert.volume) == ("ticker", "firing", 12)
    assert alert.negative_share == pytest.approx(10 / 12)
    assert alert.baseline_share == pytest.approx(0.25)
    assert alert.deviation >= settings.alert_threshold
    (delivery,) = _deliveries(db)
    (item,) = delivery.payload["items"]
    assert item["company"] == "Acme Corp"
    assert item["baseline_source"] == "history"
    assert len(item["headlines"]) == 5 and item["headlines"][0]["title"].startswith("Bad news")
    assert "ACME" in item["sql"]

    # Re-running the same interval, and evaluating again while it still fires, send nothing new.
    again = evaluate(db, settings, now=NOW)
    later = evaluate(db, settings, now=NOW + timedelta(minutes=15))
    assert again.notices == [] and again.deliveries == 0 and again.skipped > 0
    assert later.notices == [] and later.deliveries == 0
    assert len(_alerts(db)) == 1 and len(_deliveries(db)) == 1
    assert report.firing == later.firing == 1


@pytest.mark.slow
@pytest.mark.parametrize(("bystander_relevance", "fires_for"), [(10, ["ACME"]), (80, ["ACME", "BYST"])])
def test_a_passing_mention_is_left_out_of_that_companys_alert(
    db, settings, wire, bystander_relevance, fires_for
):
    """Bad news about ACME that names BYST in passing (relevance below the line) is ACME's
    spike, not BYST's; the same stories about both (high relevance) are both companies'."""
    _quiet_ticker(db, wire, "ACME")
    _quiet_ticker(db, wire, "BYST")
    with db.transaction() as s:
        add_burst(
            s, wire, ticker="ACME", end=NOW, count=12, negatives=10,
            also=["BYST"], relevance={"ACME": 90, "BYST": bystander_relevance},
        )  # fmt: skip
    report = evaluate(db, settings, now=NOW)
    assert sorted(n.scope_key for n in report.notices if n.kind == "fired") == fires_for


def test_a_backfill_reports_what_was_firing_then(db, settings, wire):
    _quiet_ticker(db, wire)
    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW, count=12, negatives=10)
    assert evaluate(db, settings, now=NOW).firing == 1
    earlier = evaluate(db, settings, now=NOW - timedelta(hours=6))  # before the spike began
    assert earlier.firing == 0 and "; 0 firing;" in earlier.render()


def test_a_backfill_before_a_later_evaluation_sends_no_email(db, settings, wire):
    # 14:00 was evaluated (calm) before anyone backfilled 12:00: the spike at 12:00 is
    # history, and a FIRING email now, followed by a RESOLVED one, would be a false alarm.
    _quiet_ticker(db, wire)
    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW, count=12, negatives=10)
    later = NOW + timedelta(hours=3)
    assert evaluate(db, settings, now=later).notices == []
    backfill = evaluate(db, settings, now=NOW)
    assert [n.kind for n in backfill.fired] == ["fired"] and backfill.deliveries == 0
    assert f"no email: {later:%Y-%m-%d %H:%M}Z was already evaluated (a backfill)" in backfill.render()
    (alert,) = _alerts(db)
    assert alert.last_notified_at is None  # recorded, not notified
    resolved = evaluate(db, settings, now=later + timedelta(minutes=15))
    assert [n.kind for n in resolved.notices] == ["resolved"] and resolved.deliveries == 0
    assert _deliveries(db) == []


@pytest.mark.slow
def test_steady_gloom_does_not_page_but_a_usually_quiet_ticker_does(db, settings, wire):
    with db.transaction() as s:
        add_history(s, wire, ticker="GLUM", end=NOW, hours=48, per_hour=10, negative_share=0.7)
        add_history(s, wire, ticker="CALM", end=NOW, hours=48, per_hour=10, negative_share=0.1)
        add_burst(s, wire, ticker="GLUM", end=NOW, count=10, negatives=8)
        add_burst(s, wire, ticker="CALM", end=NOW, count=10, negatives=8)

    report = evaluate(db, settings, now=NOW)

    assert [(n.scope_key, n.kind) for n in report.fired] == [("CALM", "fired")]


@pytest.mark.slow
def test_resolution_has_hysteresis(db, settings, wire):
    _quiet_ticker(db, wire, hours=60)
    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW, count=12, negatives=10)
        # Next hour: still clearly worse than usual, though below the firing threshold.
        add_burst(s, wire, ticker="ACME", end=NOW + timedelta(hours=1), count=12, negatives=7)
    assert [n.kind for n in evaluate(db, settings, now=NOW).notices] == ["fired"]

    middle = evaluate(db, settings, now=NOW + timedelta(hours=1))
    assert middle.notices == []
    assert _alerts(db)[0].state == "firing"

    quiet = evaluate(db, settings, now=NOW + timedelta(hours=2))
    assert [n.kind for n in quiet.notices] == ["resolved"]
    (alert,) = _alerts(db)
    assert alert.state == "resolved" and alert.resolved_at == NOW + timedelta(hours=2)
    assert [_kinds(d) for d in _deliveries(db)] == [[("ACME", "firing")], [("ACME", "resolved")]]

    # A new spike after resolution is a new episode.
    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW + timedelta(hours=5), count=12, negatives=11)
    assert [n.kind for n in evaluate(db, settings, now=NOW + timedelta(hours=5)).notices] == ["fired"]
    assert [a.state for a in _alerts(db)] == ["resolved", "firing"]


@pytest.mark.slow
def test_repeat_interval(db, settings, wire):
    settings = settings.model_copy(update={"alert_repeat_hours": 2.0})
    _quiet_ticker(db, wire, hours=60)
    with db.transaction() as s:
        for h in range(4):
            add_burst(s, wire, ticker="ACME", end=NOW + timedelta(hours=h), count=12, negatives=10)
    kinds = [[n.kind for n in evaluate(db, settings, now=NOW + timedelta(hours=h)).notices] for h in range(4)]
    assert kinds == [["fired"], [], ["repeat"], []]
    assert [_kinds(d) for d in _deliveries(db)] == [[("ACME", "firing")], [("ACME", "repeat")]]


@pytest.mark.slow
def test_simultaneous_alerts_are_grouped_per_recipient(db, settings, wire):
    settings = settings.model_copy(update={"alert_recipients": ["desk@example.com"]})
    for ticker in ("ACME", "BOLT"):
        _quiet_ticker(db, wire, ticker=ticker)
        with db.transaction() as s:
            add_burst(s, wire, ticker=ticker, end=NOW, count=12, negatives=10)
    routing = Routing(defaults=("desk@example.com",), subscribers={"BOLT": ("pm@example.com",)})

    report = evaluate(db, settings, now=NOW, routing=routing)

    assert sorted(n.scope_key for n in report.fired) == ["ACME", "BOLT"]
    by_rcpt = {tuple(d.recipients): sorted(k for k, _ in _kinds(d)) for d in _deliveries(db)}
    assert by_rcpt == {("desk@example.com",): ["ACME", "BOLT"], ("pm@example.com",): ["BOLT"]}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AlertDeliveryItem)) == 3


def test_silence_mutes_notifications_until_it_ends(db, settings, wire):
    _quiet_ticker(db, wire, hours=60)
    with db.transaction() as s:
        for h in range(3):
            add_burst(s, wire, ticker="ACME", end=NOW + timedelta(hours=h), count=12, negatives=10)
        s.add(
            AlertSilence(
                scope_type="ticker",
                scope_key="ACME",
                starts_at=NOW - timedelta(days=1),
                ends_at=NOW + timedelta(hours=1, minutes=30),
                reason="known issue",
            )
        )

    assert [n.kind for n in evaluate(db, settings, now=NOW).notices] == ["silenced"]
    assert _alerts(db)[0].state == "firing" and _deliveries(db) == []
    assert [n.kind for n in evaluate(db, settings, now=NOW + timedelta(hours=1)).notices] == ["silenced"]
    # Silence over, still firing: now the first notice goes out.
    assert [n.kind for n in evaluate(db, settings, now=NOW + timedelta(hours=2)).notices] == ["fired"]
    assert [_kinds(d) for d in _deliveries(db)] == [[("ACME", "firing")]]


def _spike_then_a_silence_set_after_it(db, wire) -> datetime:
    """An ACME spike whose data ends 3 minutes ago, and a silence of ACME set a minute ago
    (after the data's end, before the run that evaluates it). Returns the data's end."""
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=now, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, wire, ticker="ACME", end=now, count=12, negatives=10)
        s.add(
            AlertSilence(
                scope_type="ticker",
                scope_key="ACME",
                starts_at=now + timedelta(minutes=2),
                ends_at=now + timedelta(hours=4),
                reason="earnings call",
            )
        )
    return now


def test_a_silence_set_after_the_evaluated_time_mutes_the_live_run(db, settings, wire):
    """A live run evaluates as of its data's end, minutes behind the clock (Airflow: the
    ingest interval's end): a silence the analyst set since then still mutes its email."""
    now = _spike_then_a_silence_set_after_it(db, wire)

    assert [n.kind for n in evaluate(db, settings, now=now).notices] == ["silenced"]
    assert _alerts(db)[0].state == "firing" and _deliveries(db) == []


def test_a_silence_on_the_clock_does_not_rewrite_a_backfill(db, settings, wire):
    """Without email (a backfill) the record says what happened at that time: a silence set
    later does not mark it silenced."""
    now = _spike_then_a_silence_set_after_it(db, wire)

    assert [n.kind for n in evaluate(db, settings, now=now, notify=False).notices] == ["fired"]
    assert _deliveries(db) == []


def test_no_look_ahead_counts_only_articles_first_seen_before_now(db, settings, wire):
    _quiet_ticker(db, wire)
    with db.transaction() as s:
        for i in range(12):
            add_article(
                s,
                wire,
                published_at=NOW - timedelta(minutes=30 - i),
                label="negative",
                tickers=["ACME"],
                first_seen_at=NOW + timedelta(minutes=20),
            )

    # A backfill of NOW after the articles arrived: they were not known at NOW.
    assert evaluate(db, settings, now=NOW).notices == []
    assert [n.kind for n in evaluate(db, settings, now=NOW + timedelta(minutes=20)).notices] == ["fired"]


@pytest.mark.slow
def test_one_company_burst_is_not_also_a_market_or_source_alert(db, settings, wire):
    with db.transaction() as s:
        other = add_feed(s, "Other", tags=["us"])
    for ticker in ("ACME", "BOLT", "CORE"):
        _quiet_ticker(db, wire, ticker=ticker)
    with db.transaction() as s:
        add_history(s, other, ticker=None, end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, wire, ticker="ACME", end=NOW, count=20, negatives=19)
        add_burst(s, other, ticker=None, end=NOW, count=4, negatives=1)

    report = evaluate(db, settings, now=NOW)

    assert [(n.scope_type, n.scope_key) for n in report.fired] == [("ticker", "ACME")]


def test_broad_negativity_fires_the_market(db, settings, wire):
    with db.transaction() as s:
        add_history(s, wire, ticker=None, end=NOW, hours=48, per_hour=8, negative_share=0.25)
        add_burst(s, wire, ticker=None, end=NOW, count=20, negatives=16)

    fired = {(n.scope_type, n.scope_key) for n in evaluate(db, settings, now=NOW).fired}

    assert ("market", "") in fired and ("source", "Wire") in fired and ("tag", "us") in fired


def test_short_history_falls_back_to_a_prior(db, settings, wire):
    with db.transaction() as s:
        add_history(s, wire, ticker="NEWCO", end=NOW, hours=6, per_hour=1, negative_share=0.0)
        add_burst(s, wire, ticker="NEWCO", end=NOW, count=15, negatives=13)

    report = evaluate(db, settings, now=NOW)

    assert [n.scope_key for n in report.fired] == ["NEWCO"]
    (delivery,) = _deliveries(db)
    assert delivery.payload["items"][0]["baseline_source"] == "prior"


def test_naive_time_is_refused(db, settings):
    with pytest.raises(AlertError, match="no time zone"):
        evaluate(db, settings, now=NOW.replace(tzinfo=None))


def test_backfill_without_notifications_leaves_a_still_firing_episode_to_be_notified(db, settings, wire):
    _quiet_ticker(db, wire, hours=60)
    with db.transaction() as s:
        for h in range(2):
            add_burst(s, wire, ticker="ACME", end=NOW + timedelta(hours=h), count=12, negatives=10)

    backfill = evaluate(db, settings, now=NOW, notify=False)
    assert [n.kind for n in backfill.notices] == ["fired"] and backfill.deliveries == 0
    assert _deliveries(db) == [] and _alerts(db)[0].last_notified_at is None

    live = evaluate(db, settings, now=NOW + timedelta(hours=1))
    assert [n.kind for n in live.notices] == ["fired"]
    assert [_kinds(d) for d in _deliveries(db)] == [[("ACME", "firing")]]


def test_confidence_weighting_discounts_unsure_negatives(db, settings, wire):
    _quiet_ticker(db, wire)
    with db.transaction() as s:
        # Six sure neutral and six barely-negative articles: 50 % by count, 25 % by confidence.
        for i in range(12):
            add_article(
                s,
                wire,
                published_at=NOW - timedelta(minutes=50 - i),
                label="negative" if i < 6 else "neutral",
                confidence=0.35 if i < 6 else 0.95,
                tickers=["ACME"],
            )
    counted = settings.model_copy(update={"alert_min_negative_share": 0.45, "alert_threshold": 1.5})
    weighted = counted.model_copy(update={"alert_weighting": "confidence"})

    assert [n.kind for n in evaluate(db, weighted, now=NOW, notify=False).notices] == []
    assert [n.kind for n in evaluate(db, counted, now=NOW + timedelta(minutes=1)).notices] == ["fired"]


def test_the_web_address_is_frozen_in_the_payload_when_set(db, settings, wire):
    _quiet_ticker(db, wire)
    with db.transaction() as s:
        add_burst(s, wire, ticker="ACME", end=NOW, count=12, negatives=10, company="Acme Corp")
    linked = settings.model_copy(update={"web_url": "https://finsent.example.com/"})
    evaluate(db, linked, now=NOW)
    (delivery,) = _deliveries(db)
    assert delivery.payload["web_url"] == "https://finsent.example.com/"
    assert all(isinstance(h["article_id"], int) for h in delivery.payload["items"][0]["headlines"])


def test_passing_mentions_of_a_firing_ticker_still_count_for_the_market(db, settings, wire):
    """Market-wide stories that only mention VLTA in passing (relevance under 30) count for
    the market: leaving them out with VLTA's own news would count them for no scope."""
    with db.transaction() as s:
        add_history(s, wire, ticker=None, end=NOW, hours=48, per_hour=8, negative_share=0.25)
        add_burst(s, wire, ticker="VLTA", end=NOW, count=8, negatives=7)
        add_burst(s, wire, ticker="VLTA", end=NOW, count=20, negatives=18, relevance={"VLTA": 10})

    fired = {(n.scope_type, n.scope_key) for n in evaluate(db, settings, now=NOW).fired}

    assert ("ticker", "VLTA") in fired and ("market", "") in fired


def test_a_broad_sell_off_naming_companies_fires_the_market(db, settings, wire):
    """Ten companies' bad hour at once is the market's too, though every article names one."""
    tickers = [f"T{i:02d}" for i in range(10)]
    with db.transaction() as s:
        for ticker in tickers:
            add_history(s, wire, ticker=ticker, end=NOW, hours=48, per_hour=2, negative_share=0.2)
            add_burst(s, wire, ticker=ticker, end=NOW, count=6, negatives=5)
        add_burst(s, wire, ticker=None, end=NOW, count=5, negatives=0)

    fired = {(n.scope_type, n.scope_key) for n in evaluate(db, settings, now=NOW).fired}

    assert {("ticker", t) for t in tickers} <= fired and ("market", "") in fired
    # Sources and tags keep the inhibition: the wire's alert would repeat the companies'.
    assert ("source", "Wire") not in fired


def test_a_source_alert_on_a_feed_url_with_a_password_shows_it_nowhere(db, settings):
    """An unnamed feed is its URL as a source; its alert's payload (what emails and webhook
    bodies carry) masks the password, and the ready-to-run SQL matches it by digest and
    still finds the window's articles."""
    url = "https://analyst:Sup3rS3cret@private.example.com/feed.xml?token=abc&password=hunter2"
    with db.transaction() as s:
        feed = Feed(url=url, name=None, tags=[])
        s.add(feed)
        s.flush()
        add_history(s, feed.id, ticker=None, end=NOW, hours=48, per_hour=8, negative_share=0.25)
        add_burst(s, feed.id, ticker=None, end=NOW, count=20, negatives=16)

    evaluate(db, settings, now=NOW)

    (item,) = [i for d in _deliveries(db) for i in d.payload["items"] if i["scope_type"] == "source"]
    carried = json.dumps(item)
    assert "Sup3rS3cret" not in carried and "hunter2" not in carried
    assert item["scope_key"].startswith("https://analyst:***@private.example.com/")
    with db.session() as s:
        rows = s.execute(text(item["sql"])).all()
    assert len(rows) == 20


def test_one_story_naming_three_companies_is_not_a_broad_move(db, settings, wire):
    """A merger naming AAA, BBB and CCC fires the three tickers; the market would repeat
    them: breadth counts each ticker's own articles, and these have none."""
    with db.transaction() as s:
        add_history(s, wire, ticker=None, end=NOW, hours=48, per_hour=10, negative_share=0.2)
        add_burst(s, wire, ticker="AAA", also=["BBB", "CCC"], end=NOW, count=12, negatives=11)
        add_burst(s, wire, ticker=None, end=NOW, count=8, negatives=1)

    fired = {(n.scope_type, n.scope_key) for n in evaluate(db, settings, now=NOW).fired}

    assert {("ticker", "AAA"), ("ticker", "BBB"), ("ticker", "CCC")} <= fired
    assert ("market", "") not in fired


def test_a_market_alert_of_a_broad_move_is_judged_on_all_articles_until_it_resolves(db, settings, wire):
    tickers = [f"T{i:02d}" for i in range(4)]
    with db.transaction() as s:
        add_history(s, wire, ticker=None, end=NOW, hours=48, per_hour=10, negative_share=0.2)
        for ticker in tickers:
            add_burst(s, wire, ticker=ticker, end=NOW, count=8, negatives=7)
        # The next hour the bad news goes on, but only T00 has the volume to fire on its own:
        # without its articles the market's window would be too thin and resolve.
        add_burst(s, wire, ticker="T00", end=NOW + timedelta(hours=1), count=8, negatives=7)
        for ticker in tickers[1:3]:
            add_burst(s, wire, ticker=ticker, end=NOW + timedelta(hours=1), count=1, negatives=1)
    assert ("market", "") in {(n.scope_type, n.scope_key) for n in evaluate(db, settings, now=NOW).fired}

    later = evaluate(db, settings, now=NOW + timedelta(hours=1))

    market = [n for n in later.notices if n.scope_type == "market"]
    assert [n.kind for n in market] != ["resolved"]
    (alert,) = [a for a in _alerts(db) if a.scope_type == "market"]
    assert alert.state == "firing" and alert.details["judged_on_all"] is True


def test_confidence_weighting_does_not_inflate_a_small_windows_count(db, settings, wire):
    """2 confident negatives and 3 unsure neutrals of 5 against 5 %: weighted, 61 % negative;
    the exact tail counts 2 articles of 5 (2.0 σ): no alert."""
    weighted = settings.model_copy(update={"alert_weighting": "confidence"})
    with db.transaction() as s:
        add_history(s, wire, ticker="ACME", end=NOW, hours=60, per_hour=20, negative_share=0.05)
        for i, (label, confidence) in enumerate([("negative", 0.95)] * 2 + [("neutral", 0.4)] * 3):
            add_article(
                s,
                wire,
                published_at=NOW - timedelta(minutes=40 - i),
                label=label,
                confidence=confidence,
                tickers=["ACME"],
            )

    report = evaluate(db, weighted, now=NOW)

    assert ("ticker", "ACME") not in {(n.scope_type, n.scope_key) for n in report.fired}
