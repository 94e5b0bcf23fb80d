"""A connection killed inside ingest's transaction loses and doubles nothing (issue 17).

Another session terminates ingest's backend (pg_terminate_backend) at the worst moments:
when it takes the cluster lock, while it records the feeds' health after the articles are
written, and right before COMMIT. The run fails with a one-line error; the next run
stores every item exactly once, with its ticker links.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ingest_helpers import NOW, FeedServer, feed_server_fixture, rss, rss_feed, rss_item  # noqa: F401
from sqlalchemy import event, func, select, text

from pipeline.db.engine import Database, make_engine
from pipeline.db.models import Article, ArticleEntity, Feed, Fetch
from pipeline.errors import DatabaseError
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import ingest

WATCHLIST = "ticker,name,aliases,subscribers\nACME,Acme Corp,Acme,ir@example.com\n"


def _count(db: Database, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("moment", ["INSERT INTO ingest_locks", "UPDATE feeds AS f SET", "COMMIT"])
def test_a_killed_connection_loses_and_doubles_nothing(
    db, settings, database_url, feed_server: FeedServer, tmp_path: Path, moment: str
):
    watchlist = tmp_path / "watchlist.csv"
    watchlist.write_text(WATCHLIST)
    settings = settings.model_copy(update={"watchlist_path": watchlist})
    tickers = [rss_item(f"t{i}", f"Acme Corp ($ACME) story {i} moves the market", when=NOW) for i in range(3)]
    urls = [feed_server.add("/a", rss(tickers)), feed_server.add("/b", rss_feed(40, prefix="b"))]
    with db.transaction() as session:
        add_feeds(session, urls)

    victim = Database(engine=make_engine(database_url), display_url="test")
    admin = make_engine(database_url)
    fired: list[int] = []

    def kill(conn) -> None:
        if fired:
            return
        pid = conn.connection.dbapi_connection.get_backend_pid()
        with admin.begin() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        fired.append(pid)

    locked: list[bool] = []

    def before_statement(conn, cursor, statement, *args) -> None:
        if "INSERT INTO ingest_locks" in statement:
            locked.append(True)  # the writer's transaction, about to write articles
        if moment in statement:
            kill(conn)

    def before_commit(conn) -> None:
        if moment == "COMMIT" and locked:
            kill(conn)

    event.listen(victim.engine, "before_cursor_execute", before_statement)
    event.listen(victim.engine, "commit", before_commit)
    try:
        with pytest.raises(DatabaseError) as info:
            ingest(victim, settings, now=NOW)
    finally:
        victim.close()
        admin.dispose()
    assert fired, f"the scenario never reached {moment!r}"
    assert "\n" not in str(info.value)
    assert _count(db, Article) == 0 and _count(db, Fetch) == 0  # nothing half-committed

    again = ingest(db, settings, now=NOW + timedelta(minutes=1))
    assert (again.new, again.failed) == (43, 0), again.render()
    assert _count(db, Article) == 43 and _count(db, ArticleEntity) == 3 and _count(db, Fetch) == 2
    # And nothing doubles on a further run either.
    feed_server.routes["/a"].body = rss(tickers, title="New bytes")
    feed_server.routes["/b"].body = rss_feed(40, prefix="b", title="New bytes")
    third = ingest(db, settings, now=NOW + timedelta(minutes=2))
    assert (third.new, third.duplicates) == (0, 43)
    with db.session() as session:
        assert all(f.consecutive_failures == 0 for f in session.execute(select(Feed)).scalars())
