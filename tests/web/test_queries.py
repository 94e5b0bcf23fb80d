"""The web's own reads agree with the modules they stand in for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from pipeline.alerts.queries import company_names as all_mentions_company_names
from pipeline.db.models import Feed
from pipeline.trends.queries import Scope, load_trend
from pipeline.web import queries

from .conftest import NOW


@pytest.mark.slow
@pytest.mark.parametrize("by", ["hour", "day"])
def test_feed_trends_are_load_trend_for_each_feed_in_one_query(demo_db, by):
    with demo_db.session() as s:
        ids = list(s.scalars(select(Feed.id).order_by(Feed.id)))
    since = NOW - timedelta(days=3)
    together = queries.feed_trends(demo_db, ids, since=since, now=NOW, by=by)
    assert set(together) == set(ids)
    for feed_id in ids:
        alone = load_trend(demo_db, Scope("feed", str(feed_id)), since=since, now=NOW, by=by)
        assert together[feed_id] == alone
    assert any(t.points for t in together.values())
    assert queries.feed_trends(demo_db, [], since=since, now=NOW, by=by) == {}


def test_company_names_from_recent_mentions_match_the_alerts_query(demo_db):
    tickers = ["VLTA", "NOPE"]
    with demo_db.session() as s:
        assert queries.company_names(s, tickers) == all_mentions_company_names(s, tickers)
        assert queries.company_names(s, tickers)["VLTA"] == "Voltara Motors Inc."
        assert queries.company_names(s, []) == {}


def test_company_headlines_pages_cover_every_mention_once_newest_first(demo_db):
    seen = []
    with demo_db.session() as s:
        page = 1
        while True:
            got = queries.company_headlines(s, "VLTA", now=NOW, page=page, size=7)
            seen += got.rows
            if not got.has_next:
                break
            page += 1
    ids = [r.id for r in seen]
    assert len(ids) == len(set(ids)) > 7
    times = [r.published_at for r in seen]
    assert times == sorted(times, reverse=True)
