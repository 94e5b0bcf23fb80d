"""A connection killed (pg_terminate_backend) inside the score stage's write transaction or the
trends rollup's: the stage fails, and a re-run gives the counts of one clean run, nothing lost
or doubled."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from pipeline.db.models import Article, Feed, SentimentScore
from pipeline.score.service import PAGE_SIZE, score_pending
from pipeline.trends.rollups import pending_hours, refresh_rollups

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
VERSION = "killed-connection-test"


@dataclass
class Verdict:
    label: str
    probabilities: dict[str, float]
    score: float


class Classifier:
    model_version = VERSION

    def score_articles(self, titles, summaries):
        verdicts = []
        for title in titles:
            neg = 0.7 if "falls" in title else 0.1
            probs = {"negative": neg, "neutral": 0.2, "positive": 0.8 - neg}
            verdicts.append(Verdict(max(probs, key=probs.get), probs, probs["positive"] - neg))
        return verdicts


def _seed(db, n: int) -> list[int]:
    with db.transaction() as s:
        feed_id = s.execute(
            insert(Feed).values(url="https://kill.example/rss").returning(Feed.id)
        ).scalar_one()
        ids = s.execute(
            insert(Article).returning(Article.id),
            [
                {
                    "feed_id": feed_id,
                    "item_key": f"k{i}",
                    "title": f"Stock {i} {'falls' if i % 3 == 0 else 'rises'}",
                    "published_at": NOW - timedelta(hours=i % 30),
                    "first_seen_at": NOW,
                    "content_hash": f"{i:064d}",
                }
                for i in range(n)
            ],
        ).scalars()
        return sorted(ids)


class Killer:
    """Holds a lock the stage's transaction will wait on, then kills the waiting backend."""

    def __init__(self, url: str, waiting_on: str):
        self.engine = create_engine(url)
        self.waiting_on = waiting_on
        self.killed: list[int] = []
        self.blocker = self.engine.connect()

    def _kill_when_waiting(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self.killed:
                self.killed = list(
                    conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND wait_event_type = 'Lock' AND query ILIKE :q"
                        ),
                        {"q": f"%{self.waiting_on}%"},
                    ).scalars()
                )
                time.sleep(0.05)

    def __enter__(self) -> Killer:
        self.thread = threading.Thread(target=self._kill_when_waiting, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=35)
        self.blocker.rollback()
        self.blocker.close()
        self.engine.dispose()


def _scores(db) -> tuple[int, int]:
    with db.session() as s:
        rows = s.execute(select(func.count(), func.count(func.distinct(SentimentScore.article_id)))).one()
    return rows[0], rows[1]


def test_kill_inside_the_score_transaction_then_rerun(db, settings, database_url: str) -> None:
    ids = _seed(db, PAGE_SIZE + 40)
    killer = Killer(database_url, "INSERT INTO sentiment_scores")
    # An uncommitted score of an article on the second page (pages go newest first: the 40
    # oldest): the stage's INSERT of that page waits on it, inside its transaction, and is
    # killed there.
    killer.blocker.execute(
        insert(SentimentScore).values(
            article_id=ids[5],
            model_version=VERSION,
            label="neutral",
            p_negative=0.1,
            p_neutral=0.8,
            p_positive=0.1,
            score=0.0,
        )
    )
    with killer, pytest.raises(DBAPIError):
        score_pending(db, settings, classifier=Classifier(), now=NOW)
    assert killer.killed == [True]
    assert _scores(db) == (PAGE_SIZE, PAGE_SIZE)  # the first page committed, the killed one not

    again = score_pending(db, settings, classifier=Classifier(), now=NOW)
    assert again.scored == 40
    assert _scores(db) == (len(ids), len(ids))
    assert score_pending(db, settings, classifier=Classifier(), now=NOW).scored == 0


def _rollups(db) -> list[tuple]:
    with db.engine.connect() as conn:
        return [
            tuple(r)
            for table in ("sentiment_hourly", "sentiment_daily")
            for r in conn.execute(
                text(
                    f"SELECT '{table}', scope_type, scope_key, bucket, n_articles, n_novel, n_negative, "
                    f"n_neutral, n_positive, round(sum_score::numeric, 6) FROM {table} ORDER BY 1, 2, 3, 4"
                )
            )
        ]


def test_kill_inside_the_rollup_refresh_then_rerun(db, settings, database_url: str) -> None:
    ids = _seed(db, 120)
    score_pending(db, settings, classifier=Classifier(), now=NOW)
    queued = pending_hours(db)
    assert queued > 0
    killer = Killer(database_url, "sentiment_hourly")
    # Writes to the hourly rollup wait on this lock: the refresh has already taken the queued
    # hours (deleted them from the queue) when it is killed.
    killer.blocker.execute(text("LOCK TABLE sentiment_hourly IN EXCLUSIVE MODE"))
    with killer, pytest.raises(DBAPIError):
        refresh_rollups(db)
    assert killer.killed == [True]
    assert pending_hours(db) == queued  # the killed transaction's take of the queue is undone

    assert refresh_rollups(db) == queued
    after_rerun = _rollups(db)
    market = [r for r in after_rerun if r[0] == "sentiment_daily" and r[1] == "market"]
    assert sum(r[4] for r in market) == len(ids)  # every article counted once
    refresh_rollups(db, since=NOW - timedelta(days=30))  # a full recompute agrees
    assert _rollups(db) == after_rerun
