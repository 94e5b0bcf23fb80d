"""The bundled demo: realistic structure, one negative burst, rendered once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ingest_helpers import NOW
from sqlalchemy import func, select

from pipeline.companies.watchlist import load_watchlist
from pipeline.db.models import Article, ArticleEntity
from pipeline.ingest.demo import BURST_TICKER, PUBLISHERS, load_stories, prepare_demo
from pipeline.ingest.parse import parse_feed
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import ingest


def test_stories_have_one_negative_burst_and_ordinary_history():
    stories = load_stories()
    items = sum(len(s.publishers) for s in stories)
    assert len(stories) >= 200 and 300 <= items <= 500
    assert {p for s in stories for p in s.publishers} == {p.key for p in PUBLISHERS}
    assert sum(len(s.publishers) > 1 for s in stories) >= 30  # syndicated across feeds
    assert max(s.minutes_ago for s in stories) >= 2 * 24 * 60  # a few days of history

    last_hour = [s for s in stories if s.minutes_ago <= 60]
    burst = [s for s in last_hour if s.ticker == BURST_TICKER]
    assert 15 <= len(burst) <= 25
    assert min(s.minutes_ago for s in burst) >= 2  # ends a few minutes before now
    assert all(s.ticker in (BURST_TICKER, "") for s in last_hour)  # only market news besides
    earlier = [s for s in stories if s.ticker == BURST_TICKER and s.minutes_ago > 6 * 60]
    assert len(earlier) >= 8
    negative = ("recall", "probe", "cut", "downgrade", "lawsuit", "plunge", "halts", "resigns", "inquiry")
    assert sum(any(w in s.title.lower() for w in negative) for s in burst) >= 8
    assert not any(any(w in s.title.lower() for w in negative) for s in earlier)

    watchlist = load_watchlist(prepare_demo.__globals__["_data"]("watchlist.csv"))
    assert len(watchlist) == 12 and BURST_TICKER in watchlist
    assert {s.ticker for s in stories} - {""} == set(watchlist.tickers())


def test_prepare_demo_renders_once_with_dates_relative_to_now(tmp_path):
    bundle = prepare_demo(tmp_path, NOW)
    assert len(bundle.feed_paths) == len(PUBLISHERS)
    assert {p.suffix for p in bundle.feed_paths} == {".rss", ".atom"}
    dates = []
    for path in bundle.feed_paths:
        parsed = parse_feed(path.read_bytes())
        assert parsed.warning is None and parsed.entries
        dates += [e.published_parsed for e in parsed.entries]
    assert max(dates)[:5] == (NOW - timedelta(minutes=3)).timetuple()[:5]

    before = {p: p.read_bytes() for p in bundle.feed_paths}
    again = prepare_demo(tmp_path, NOW + timedelta(hours=5))
    assert again.feed_paths == bundle.feed_paths and again.rendered_at == NOW
    assert {p: p.read_bytes() for p in again.feed_paths} == before


@pytest.mark.slow
def test_demo_ingests_then_is_all_duplicates(db, settings, tmp_path):
    bundle = prepare_demo(tmp_path, NOW)
    with db.transaction() as session:
        add_feeds(session, [str(p) for p in bundle.feed_paths])
    settings = settings.model_copy(update={"watchlist_path": bundle.watchlist})
    first = ingest(db, settings, now=NOW)
    items = sum(len(s.publishers) for s in load_stories())
    assert (first.new, first.failed) == (items, 0)
    second = ingest(db, settings, now=NOW + timedelta(minutes=10))
    assert (second.new, second.updated, second.duplicates, second.failed) == (0, 0, items, 0)

    with db.session() as session:
        novel = session.execute(select(func.count()).where(Article.is_novel)).scalar_one()
        burst = session.execute(
            select(func.count(func.distinct(Article.cluster_id)))
            .join(ArticleEntity, ArticleEntity.article_id == Article.id)
            .where(ArticleEntity.ticker == BURST_TICKER, Article.published_at >= NOW - timedelta(hours=1))
        ).scalar_one()
    assert novel == len(load_stories())  # each syndicated story counted once
    assert 15 <= burst <= 25
