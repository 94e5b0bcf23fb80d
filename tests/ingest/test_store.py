"""Storing a run's results: batches, savepoints, and a feed the database refuses."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

from ingest_helpers import NOW
from sqlalchemy import func, insert, select, text

from pipeline.companies.linking import EntityMatch
from pipeline.db.models import Article, ArticleEntity, Feed, Fetch
from pipeline.ingest.normalise import normalise_entry
from pipeline.ingest.records import FeedRequest, FeedWork, FetchResult
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.store import FeedWriter, StorePolicy


def _feeds(db, n: int) -> list[int]:
    with db.transaction() as session:
        return [r.feed_id for r in add_feeds(session, [f"https://f{i}.example.com/rss" for i in range(n)])]


def _work(feed_id: int, titles: list[str], *, language: str | None = None) -> FeedWork:
    articles = []
    for i, title in enumerate(titles):
        row = normalise_entry(
            {
                "id": f"{feed_id}-{i}",
                "title": title,
                "published_parsed": (NOW - timedelta(hours=1)).timetuple(),
            },
            now=NOW,
            feed_language=None,
        )
        articles.append(replace(row, language=language) if language else row)
    return FeedWork(
        request=FeedRequest(feed_id=feed_id, url=f"https://f{feed_id}.example.com/rss"),
        fetch=FetchResult("ok", status=200, body=b"<rss/>", headers={"etag": f'"e{feed_id}"'}),
        started_at=NOW,
        outcome="ok",
        entries=len(articles),
        articles=articles,
        entities={a.item_key: [EntityMatch("ACME", "Acme Corp", "name")] for a in articles},
        body_hash=f"{feed_id:064d}",
    )


def test_a_refused_feed_is_isolated_from_its_batch(db):
    a, b, c = _feeds(db, 3)
    story = "Acme Corp wins a five-year defence contract worth $2 billion"
    works = [
        _work(a, [story, "Acme Corp opens a new plant in Ohio next year"]),
        # A language code longer than the column: the database refuses this feed's rows.
        _work(b, ["Acme Corp names a new chief executive officer today"], language="x" * 40),
        _work(c, [story]),
    ]
    with FeedWriter(db, now=NOW, policy=StorePolicy(), batch_feeds=10) as writer:
        outcomes = [o for w in works for o in writer.write(w)]
        outcomes += writer.commit()
    by_feed = {o.feed_id: o for o in outcomes}
    assert (by_feed[a].outcome, by_feed[a].new) == ("ok", 2)
    assert (by_feed[c].outcome, by_feed[c].new) == ("ok", 1)
    assert by_feed[b].outcome == "store_error" and "value too long" in by_feed[b].error
    with db.session() as session:
        rows = {
            r.feed_id: r for r in session.execute(select(Article).where(Article.title == story)).scalars()
        }
        assert rows[a].is_novel and not rows[c].is_novel and rows[c].cluster_id == rows[a].id
        assert session.execute(select(func.count()).select_from(ArticleEntity)).scalar_one() == 3
        feeds = {f.id: f for f in session.execute(select(Feed)).scalars()}
        assert feeds[a].etag == f'"e{a}"' and feeds[a].body_hash == f"{a:064d}"
        assert feeds[b].consecutive_failures == 1 and feeds[b].etag is None
        assert session.execute(select(func.count()).select_from(Fetch)).scalar_one() == 3


def test_same_story_twice_in_one_batch_is_one_cluster(db):
    a, b = _feeds(db, 2)
    story = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    with FeedWriter(db, now=NOW, policy=StorePolicy()) as writer:
        writer.write(_work(a, [story]))
        writer.write(_work(b, [story.upper()]))
        writer.commit()
    with db.session() as session:
        rows = session.execute(select(Article).order_by(Article.id)).scalars().all()
    assert [r.is_novel for r in rows] == [True, False]
    assert rows[0].cluster_id == rows[1].cluster_id == rows[0].id


def test_stories_outside_the_window_are_not_linked(db):
    (a,) = _feeds(db, 1)
    story = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    old = _work(a, [story])
    old.articles[0] = replace(old.articles[0], published_at=NOW - timedelta(days=5), item_key="old")
    with FeedWriter(db, now=NOW, policy=StorePolicy(dedup_window_hours=48)) as writer:
        writer.write(old)
        writer.write(_work(a, [story]))
        writer.commit()
    with db.session() as session:
        assert session.execute(select(func.count()).where(Article.is_novel)).scalar_one() == 2


def test_the_novel_copy_does_not_depend_on_which_feed_answered_first(db):
    a, b = _feeds(db, 2)
    story = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    with FeedWriter(db, now=NOW, policy=StorePolicy()) as writer:
        writer.write(_work(b, [story]))  # b answered first; both were published at once
        writer.write(_work(a, [story]))
        writer.commit()
    with db.session() as session:
        rows = {r.feed_id: r for r in session.execute(select(Article)).scalars()}
    assert rows[a].is_novel and not rows[b].is_novel and rows[b].cluster_id == rows[a].id


def test_failures_are_scheduled_by_the_one_backoff_policy(db):
    from pipeline.ingest.store import backoff_delay

    (a,) = _feeds(db, 1)
    policy = StorePolicy(backoff_base_s=60, backoff_max_s=300)
    failed = replace(_work(a, []), outcome="timeout", error="no answer", articles=[])
    waits = []
    for _ in range(5):
        with FeedWriter(db, now=NOW, policy=policy) as writer:
            (outcome,) = writer.write(failed)
        waits.append(outcome.next_fetch_at - NOW)
        with db.session() as session:
            assert session.get(Feed, a).next_fetch_at == outcome.next_fetch_at
    assert waits == [backoff_delay(n, policy) for n in range(1, 6)]
    assert [w.total_seconds() for w in waits] == [60, 120, 240, 300, 300]
    assert backoff_delay(1, policy, retry_after_s=900).total_seconds() == 900


def test_a_failure_is_committed_at_once_and_holds_no_feed_lock(db):
    """Two runs over the same feeds (a manual ingest beside the scheduled one) deadlocked
    when each held a failed feed's row lock in its open batch: a failure is stored on its
    own, so while the writer waits for more results no feed row stays locked."""
    a, b = _feeds(db, 2)
    failed = replace(_work(a, []), outcome="timeout", error="no answer", articles=[])
    with FeedWriter(db, now=NOW, policy=StorePolicy(), batch_s=60) as writer:
        writer.write(replace(_work(b, ["Acme wins a contract in Ohio"])))  # queued, not stored
        writer.write(failed)
        with db.engine.connect() as other:
            other.execute(text("SET lock_timeout = '1s'"))
            locked = other.execute(
                text("SELECT id FROM feeds WHERE id IN (:a, :b) FOR UPDATE NOWAIT"), {"a": a, "b": b}
            )
            assert sorted(r.id for r in locked) == [a, b]
            assert other.scalar(text("SELECT consecutive_failures FROM feeds WHERE id = :a"), {"a": a}) == 1
            other.rollback()
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 1


def test_a_deadlock_is_reported_as_a_conflict_to_re_run_not_a_lost_database(db):
    """A real deadlock between two transactions (PostgreSQL aborts one after its
    deadlock_timeout): the message sends the operator to re-run, not to check PostgreSQL."""
    import threading

    from sqlalchemy.exc import OperationalError

    from pipeline.ingest.store import _lost

    a, b = _feeds(db, 2)
    lock = text("SELECT id FROM feeds WHERE id = :id FOR UPDATE")
    errors: list[OperationalError] = []
    first_holds_a, second_holds_b = threading.Event(), threading.Event()

    def run(mine: int, theirs: int, holds: threading.Event, wait_for: threading.Event) -> None:
        with db.engine.connect() as conn:
            try:
                conn.execute(lock, {"id": mine})
                holds.set()
                wait_for.wait(10)
                conn.execute(lock, {"id": theirs})
            except OperationalError as exc:
                errors.append(exc)
            finally:
                conn.rollback()

    threads = [
        threading.Thread(target=run, args=(a, b, first_holds_a, second_holds_b)),
        threading.Thread(target=run, args=(b, a, second_holds_b, first_holds_a)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (exc,) = errors
    message = str(_lost(exc, "storing feed #4"))
    assert "deadlock detected" in message
    assert "concurrent run" in message and "re-run" in message and "check PostgreSQL" not in message


def test_two_runs_that_logged_their_fetches_then_lock_the_same_feeds_do_not_deadlock(db):
    """Each run's fetch log rows take KEY SHARE locks on their feeds (the foreign key); the
    lock before the feeds' update must not conflict with those, or two runs that had both
    logged fetches of the same feeds waited on each other (PostgreSQL aborted one)."""
    import threading

    from sqlalchemy.exc import OperationalError

    from pipeline.ingest.store import FETCHES, LOCK_FEEDS

    ids = _feeds(db, 2)
    logged = threading.Barrier(2, timeout=10)
    errors: list[OperationalError] = []

    def run() -> None:
        with db.engine.connect() as conn:
            try:
                conn.execute(
                    insert(FETCHES), [{"feed_id": f, "started_at": NOW, "outcome": "unchanged"} for f in ids]
                )
                logged.wait()  # both have logged before either locks
                conn.execute(LOCK_FEEDS, {"ids": ids})
                time.sleep(0.3)  # hold the lock a moment, as the update and commit do
                conn.commit()
            except OperationalError as exc:
                errors.append(exc)
                conn.rollback()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Fetch)) == 4


def test_a_feed_language_with_a_nul_costs_no_feed_its_articles(db):
    # "en\x00" (from <language>en&#0;</language>) made PostgreSQL refuse the run's commit:
    # every feed of the batch lost its articles. Stored, a language is a tag or nothing.
    a, b = _feeds(db, 2)
    works = [
        replace(_work(a, ["Acme Corp opens a new plant in Ohio next year"]), feed_language="en\x00"),
        replace(_work(b, ["Acme Corp names a new chief executive officer"]), feed_language="EN_gb"),
    ]
    with FeedWriter(db, now=NOW, policy=StorePolicy(), batch_feeds=10) as writer:
        outcomes = [o for w in works for o in writer.write(w)]
        outcomes += writer.commit()
    assert sorted((o.feed_id, o.outcome, o.new) for o in outcomes) == [(a, "ok", 1), (b, "ok", 1)]
    with db.session() as session:
        feeds = {f.id: f for f in session.execute(select(Feed)).scalars()}
        assert (feeds[a].language, feeds[b].language) == (None, "en-gb")
        assert session.execute(select(func.count()).select_from(Article)).scalar_one() == 2


def test_a_guid_with_a_carriage_return_is_stored_as_it_came(db):
    # <guid>a&#13;b</guid>: the bulk COPY wrote the "\r" unquoted, PostgreSQL refused it
    # ("unquoted carriage return found in data") and the feed lost every item, at every run.
    (feed_id,) = _feeds(db, 1)
    work = _work(feed_id, ["Acme Corp opens a new plant in Ohio next year", "Acme Corp names a new CEO"])
    guids = ["a\rb", "c\r\nd\n"]
    work.articles = [replace(a, item_key=g, guid=g) for a, g in zip(work.articles, guids, strict=True)]
    work.entities = {g: [] for g in guids}
    with FeedWriter(db, now=NOW, policy=StorePolicy()) as writer:
        outcomes = writer.write(work) + writer.commit()
    assert [(o.outcome, o.new) for o in outcomes] == [("ok", 2)]
    with db.session() as session:
        stored = session.execute(select(Article.item_key, Article.guid).order_by(Article.id)).all()
    assert stored == [(g, g) for g in guids]
