"""A read-only session cannot stall ingest (issue 17, §7); a stuck writer is named.

Advisory locks need no privilege, so ingest no longer serialises on one: its lock is a
row of ingest_locks, which only a role with UPDATE can lock. A session that does hold it
for too long makes the run fail with a one-line error naming its pid, application_name
and user.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from ingest_helpers import NOW, FeedServer, feed_server_fixture, rss_feed  # noqa: F401
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from pipeline.db.engine import make_engine
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import ingest
from pipeline.ingest.store import FeedWriter, LockWaitTimeout, StorePolicy

# The advisory-lock key ingest used before: a read-only session could take it.
OLD_ADVISORY_KEY = 0x46534E54_494E4753


@pytest.fixture
def readonly_url(database_url: str) -> Iterator[str]:
    """A login role that can only read FinSent's tables (what `db create-readonly-role` makes)."""
    role = f"finsent_ro_{uuid.uuid4().hex[:8]}"
    admin = make_engine(database_url)
    database = make_url(database_url).database
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"'))
    try:
        yield make_url(database_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"), {"r": role}
            )
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_a_readonly_session_cannot_stall_ingest(db, settings, readonly_url, feed_server: FeedServer):
    url = feed_server.add("/rss", rss_feed(5))
    with db.transaction() as session:
        add_feeds(session, [url])
    reader = create_engine(readonly_url)
    try:
        with reader.connect() as conn:
            # Every lock a read-only session could try: the old advisory key (a session
            # lock: it outlives the rollbacks below), and the row or table ingest now locks.
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": OLD_ADVISORY_KEY})
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("SELECT name FROM ingest_locks FOR UPDATE"))
            conn.rollback()
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("LOCK TABLE ingest_locks IN EXCLUSIVE MODE"))
            conn.rollback()

            reports = []
            runner = threading.Thread(
                target=lambda: reports.append(ingest(db, settings, now=NOW)), daemon=True
            )
            runner.start()
            runner.join(timeout=15)
            stalled = runner.is_alive()
        runner.join(timeout=30)  # the reader's session is closed: a stalled ingest goes on
    finally:
        reader.dispose()
    assert not stalled, "ingest waited on a lock the read-only session held"
    assert reports[0].new == 5


def test_a_session_holding_the_lock_too_long_is_named(db, settings, database_url):
    from pipeline.ingest.normalise import normalise_entry
    from pipeline.ingest.records import FeedRequest, FeedWork, FetchResult

    with db.transaction() as session:
        (feed_id,) = (r.feed_id for r in add_feeds(session, ["https://a.example.com/rss"]))
    row = normalise_entry(
        {"id": "1", "title": "Acme Corp wins a defence contract", "published_parsed": NOW.timetuple()},
        now=NOW,
        feed_language=None,
    )
    work = FeedWork(
        request=FeedRequest(feed_id=feed_id, url="https://a.example.com/rss"),
        fetch=FetchResult("ok", status=200, headers={}),
        started_at=NOW,
        outcome="ok",
        entries=1,
        articles=[row],
    )
    holder = create_engine(database_url, connect_args={"application_name": "stuck-operator"})
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT name FROM ingest_locks WHERE name = 'clusters' FOR UPDATE"))
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with (
                pytest.raises(LockWaitTimeout) as info,
                FeedWriter(db, now=NOW, policy=StorePolicy(lock_wait_s=0.5)) as writer,
            ):
                writer.write(work)
                writer.commit()
            conn.rollback()
    finally:
        holder.dispose()
    message = str(info.value)
    assert "\n" not in message
    assert f"pid {pid}" in message and "stuck-operator" in message and "'postgres'" in message
    # Nothing was half-written: the same work stores cleanly once the lock is free.
    with FeedWriter(db, now=NOW, policy=StorePolicy()) as writer:
        writer.write(work)
        (outcome,) = writer.commit()
    assert outcome.new == 1
