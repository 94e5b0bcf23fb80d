"""A slow feed must not hold ingest's lock or hide the others' articles (issue 17, §3).

A feed server on 127.0.0.1 answers one feed after 8 s. While the first ingest waits for
it, the articles of its fast feed must already be visible to readers, and a second
ingest of another feed (an Airflow shard) must finish without waiting for the slow one.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from ingest_helpers import NOW, FeedServer, feed_server_fixture, rss_feed  # noqa: F401
from sqlalchemy import func, select

from pipeline.db.engine import Database, make_engine
from pipeline.db.models import Article
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import IngestReport, ingest

SLOW_S = 8.0
FAST_ITEMS = 300


def _count(db: Database, feed_id: int) -> int:
    with db.session() as session:
        return session.execute(
            select(func.count()).select_from(Article).where(Article.feed_id == feed_id)
        ).scalar_one()


def test_a_slow_feed_holds_nothing_while_ingest_waits(db, settings, database_url, feed_server: FeedServer):
    settings = settings.model_copy(update={"fetch_timeout_s": SLOW_S + 5})
    fast = feed_server.add("/fast", rss_feed(FAST_ITEMS, prefix="fast"))
    slow = feed_server.add("/slow", rss_feed(3, prefix="slow"), delay_s=SLOW_S)
    other = feed_server.add("/other", rss_feed(5, prefix="other"))
    with db.transaction() as session:
        fast_id, slow_id, other_id = (r.feed_id for r in add_feeds(session, [fast, slow, other]))

    first: list[IngestReport] = []
    runner = threading.Thread(
        target=lambda: first.append(ingest(db, settings, now=NOW, feed_ids=[fast_id, slow_id])), daemon=True
    )
    started = time.monotonic()
    runner.start()
    try:
        # Readers see the fast feed's articles while the slow feed is still pending.
        while _count(db, fast_id) < FAST_ITEMS and time.monotonic() - started < SLOW_S - 2:
            time.sleep(0.1)
        assert _count(db, fast_id) == FAST_ITEMS, "the fast feed's articles stayed uncommitted"
        assert runner.is_alive() and feed_server.routes["/slow"].hits == 1

        # Another shard, over its own connection pool, as another process would be.
        shard = Database(engine=make_engine(database_url), display_url="test")
        try:
            clock = time.monotonic()
            second = ingest(shard, settings, now=NOW + timedelta(minutes=1), feed_ids=[other_id])
            took = time.monotonic() - clock
        finally:
            shard.close()
        assert (second.new, second.failed) == (5, 0)
        # Far below the slow feed's stall: the second ingest did not wait for it.
        assert took < SLOW_S / 2, f"the second ingest took {took:.1f} s: it waited for the slow feed"
        assert runner.is_alive(), "the slow feed answered early: the scenario proved nothing"
    finally:
        runner.join(timeout=SLOW_S + 10)
    (report,) = first
    assert (report.new, report.failed) == (FAST_ITEMS + 3, 0)
    assert _count(db, slow_id) == 3 and _count(db, other_id) == 5
