"""Ticker alerts count each company's own sentiment: two companies in the same negative
headlines, bad news for one and good news for the other, fire for the right one only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alerts_helpers import MODEL, NOW, add_burst, add_feed, add_history
from sqlalchemy import select, text
from trends_helpers import add_score

from pipeline.alerts.content import headline_verdict
from pipeline.alerts.evaluate import evaluate
from pipeline.alerts.params import AlertParams
from pipeline.alerts.queries import scope_sql, top_headlines
from pipeline.db.models import AlertDelivery

PROBS = {"negative": (0.9, 0.07, 0.03), "neutral": (0.1, 0.8, 0.1), "positive": (0.03, 0.07, 0.9)}


def company_score(session, article_id: int, ticker: str, label: str, model: str = MODEL) -> None:
    add_score(session, article_id, label, ticker=ticker, model=model, probs=PROBS[label])


@pytest.fixture
def rivals(db):
    """VLTA and NRTH with a calm history; then 12 headlines naming both, 10 of them negative
    for the article ("Voltara plunges ... while rival Northwind gains share")."""
    with db.transaction() as s:
        wire = add_feed(s, "Wire", tags=["us"])
        for ticker in ("VLTA", "NRTH"):
            add_history(s, wire, ticker=ticker, end=NOW, hours=48, per_hour=4, negative_share=0.25)
        ids = add_burst(
            s, wire, ticker="VLTA", end=NOW, count=12, negatives=10, also=["NRTH"],
            relevance={"VLTA": 85, "NRTH": 50}, title="Voltara plunges while rival Northwind gains share",
        )  # fmt: skip
    return ids


@pytest.mark.slow
@pytest.mark.parametrize(("company_scores", "fired"), [(True, ["VLTA"]), (False, ["NRTH", "VLTA"])])
def test_an_alert_fires_for_the_company_the_news_is_bad_for(db, settings, rivals, company_scores, fired):
    """With company scores only VLTA fires; an article-level model (no company scores) books
    the article's label for both, as before."""
    if company_scores:
        with db.transaction() as s:
            for i, article in enumerate(rivals):
                company_score(s, article, "VLTA", "negative" if i < 10 else "neutral")
                company_score(s, article, "NRTH", "positive")
    report = evaluate(db, settings, now=NOW)
    assert sorted(n.scope_key for n in report.fired) == fired

    if company_scores:
        with db.session() as s:
            (delivery,) = s.scalars(select(AlertDelivery)).all()
        (item,) = delivery.payload["items"]
        assert item["scope_key"] == "VLTA"
        assert {h["label_of"] for h in item["headlines"]} == {"company"}
        assert headline_verdict(item, item["headlines"][0]) == "90% negative for VLTA"


def test_headlines_are_negative_for_the_company_and_say_whose_label_they_are(db, settings, rivals) -> None:
    with db.transaction() as s:
        for article in rivals[:6]:  # scored for each company; the rest only as whole articles
            company_score(s, article, "VLTA", "negative")
            company_score(s, article, "NRTH", "positive")
        # A company score of another model version is not read: the article's stands in.
        company_score(s, rivals[6], "NRTH", "positive", model="older-model")
    params = AlertParams.from_settings(settings)
    with db.session() as s:
        vlta = top_headlines(s, ("ticker", "VLTA"), now=NOW, window=params.window, limit=20)
        nrth = top_headlines(s, ("ticker", "NRTH"), now=NOW, window=params.window, limit=20)
        market = top_headlines(s, ("market", ""), now=NOW, window=params.window, limit=20)
    assert len(vlta) == 10
    assert sorted(h["label_of"] for h in vlta) == ["article"] * 4 + ["company"] * 6
    # NRTH: only the negative articles it has no company score for, marked as the article's.
    assert {h["article_id"] for h in nrth} == set(rivals[6:10])
    assert {h["label_of"] for h in nrth} == {"article"}
    assert headline_verdict({"scope_type": "ticker", "scope_key": "NRTH"}, nrth[0]).endswith(
        "(whole article)"
    )
    assert len(market) == 10 and {h["label_of"] for h in market} == {"article"}
    assert headline_verdict({"scope_type": "market", "scope_key": ""}, market[0]) == "90% negative"


def test_the_alerts_sql_lists_the_companys_own_labels(db, rivals) -> None:
    with db.transaction() as s:
        company_score(s, rivals[0], "NRTH", "positive")
    sql = scope_sql(("ticker", "NRTH"), start=NOW - timedelta(hours=1), end=NOW)
    with db.session() as s:
        rows = s.execute(text(sql)).mappings().all()
    by_title = {r["title"]: r for r in rows}
    first = by_title["Voltara plunges while rival Northwind gains share 0"]
    assert (first["label"], first["label_of"], first["relevance"]) == ("positive", "company", 50)
    second = by_title["Voltara plunges while rival Northwind gains share 1"]
    assert (second["label"], second["label_of"]) == ("negative", "article")


@pytest.mark.parametrize(
    ("p", "shown"), [(0.995, "99%"), (0.999, "99%"), (1.0, "100%"), (0.29, "29%"), (0.0, "0%")]
)
def test_a_headlines_probability_is_never_rounded_up_to_certainty(p, shown):
    # The web page shows 0.995 as 0.99; the email said "100% negative".
    headline = {"p_negative": p, "label_of": "company"}
    assert (
        headline_verdict({"scope_type": "ticker", "scope_key": "VLTA"}, headline)
        == f"{shown} negative for VLTA"
    )
