"""The company page labels each headline for that company: its own score, else the article's
(marked), and says which mentions are passing ones."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text
from trends_helpers import add_article, add_feed, add_score

from pipeline.web import create_app, queries

from .conftest import NOW, UI_TOKEN

MIXED = "Voltara plunges on guidance cut while rival Northwind gains share"
PASSING = "Voltara recall widens; suppliers including Northwind named in filing"
OLD_MODEL = "Northwind and Voltara sign supply pact"


def link(session, article_id: int, ticker: str, relevance: int) -> None:
    session.execute(
        text(
            "INSERT INTO article_entities (article_id, ticker, matched_by, published_at, relevance) "
            "SELECT id, :t, 'name', published_at, :r FROM articles WHERE id = :a"
        ),
        {"a": article_id, "t": ticker, "r": relevance},
    )


def seed(db) -> None:
    with db.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        mixed = add_article(s, feed, "mixed", MIXED, NOW - timedelta(minutes=30))
        passing = add_article(s, feed, "passing", PASSING, NOW - timedelta(minutes=20))
        old = add_article(s, feed, "old", OLD_MODEL, NOW - timedelta(minutes=10))
        for article, relevance in ((mixed, 50), (passing, 8), (old, 60)):
            link(s, article, "VLTA", 85)
            link(s, article, "NRTH", relevance)
        add_score(s, mixed, "negative", model="m2")
        add_score(s, mixed, "negative", ticker="VLTA", model="m2")
        add_score(s, mixed, "positive", ticker="NRTH", model="m2")
        add_score(s, passing, "negative", model="m2")
        add_score(s, old, "positive", model="m2")
        add_score(s, old, "negative", ticker="NRTH", model="m1")  # not the current model's


def test_company_headlines_carry_the_companys_own_label(db) -> None:
    seed(db)
    with db.session() as s:
        rows = {r.title: r for r in queries.company_headlines(s, "NRTH", now=NOW, page=1, size=10).rows}
    assert (rows[MIXED].label, rows[MIXED].label_of, rows[MIXED].passing) == ("positive", "company", False)
    assert rows[MIXED].p_positive > 0.5
    assert (rows[PASSING].label, rows[PASSING].label_of, rows[PASSING].passing) == (
        "negative",
        "article",
        True,
    )
    assert (rows[OLD_MODEL].label, rows[OLD_MODEL].label_of) == ("positive", "article")
    with db.session() as s:
        vlta = {r.title: r for r in queries.company_headlines(s, "VLTA", now=NOW, page=1, size=10).rows}
    assert (vlta[MIXED].label, vlta[MIXED].label_of) == ("negative", "company")


def test_company_page_shows_the_label_for_the_company_and_marks_the_rest(db) -> None:
    seed(db)
    app = create_app(db, clock=lambda: NOW, token=UI_TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {UI_TOKEN}"}) as client:
        html = client.get("/company/NRTH").text
    rows = {title: html[html.index(title) :].split("</tr>", 1)[0] for title in (MIXED, PASSING, OLD_MODEL)}
    assert re.search(r'class="label positive">positive</span></td>', rows[MIXED])
    assert "(article)" not in rows[MIXED] and "passing mention" not in rows[MIXED]
    assert "(passing mention)" in rows[PASSING] and "(article)" in rows[PASSING]
    assert "(article)" in rows[OLD_MODEL]
