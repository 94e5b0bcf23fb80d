"""Fetch-log retention and the feed health report, on the real database."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.airflow.maintenance import feed_health_report, prune_checkpoints, prune_fetches
from pipeline.db.models import Article, Feed, Fetch

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def add_feed(session, url: str, **values) -> Feed:
    feed = Feed(url=url, created_at=NOW - timedelta(days=30), **values)
    session.add(feed)
    session.flush()
    return feed


def add_fetch(session, feed: Feed, started_at: datetime, outcome: str = "ok") -> None:
    session.add(Fetch(feed_id=feed.id, started_at=started_at, outcome=outcome))


@pytest.fixture
def history(db):
    """Two feeds with 40 days of fetches (one a day), one article each."""
    with db.transaction() as session:
        good = add_feed(session, "https://news.example/good.rss", last_success_at=NOW - timedelta(hours=1))
        bad = add_feed(
            session,
            "https://news.example/bad.rss",
            consecutive_failures=4,
            last_error="HTTP 503",
            last_success_at=NOW - timedelta(days=3),
        )
        for day in range(40):
            add_fetch(session, good, NOW - timedelta(days=day, hours=2))
            add_fetch(session, bad, NOW - timedelta(days=day, hours=2), outcome="http_error")
        for feed in (good, bad):
            session.add(
                Article(
                    feed_id=feed.id,
                    item_key=f"k{feed.id}",
                    title="t",
                    published_at=NOW - timedelta(days=35),
                    first_seen_at=NOW - timedelta(days=35),
                    content_hash="0" * 64,
                )
            )
    return good.id, bad.id


def count(db, model) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.slow
def test_prune_deletes_only_rows_older_than_the_cutoff(db, history) -> None:
    deleted = prune_fetches(db, before=NOW - timedelta(days=30), batch=7)
    # Days 30..39 are older than the cutoff (each at -2h), for two feeds.
    assert deleted == 2 * 10
    assert count(db, Fetch) == 2 * 30
    with db.session() as session:
        oldest = session.execute(select(func.min(Fetch.started_at))).scalar_one()
    assert oldest >= NOW - timedelta(days=30)
    # Articles and feeds are untouched, and a second run deletes nothing.
    assert count(db, Article) == 2 and count(db, Feed) == 2
    assert prune_fetches(db, before=NOW - timedelta(days=30)) == 0


def test_prune_refuses_a_naive_cutoff(db) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        prune_fetches(db, before=datetime(2026, 1, 1))


def test_feed_health_reports_failing_and_stale_feeds(db, history) -> None:
    _, bad_id = history
    with db.transaction() as session:
        add_feed(session, "https://news.example/off.rss", enabled=False)
    report = feed_health_report(db, now=NOW)
    assert (report.enabled, report.disabled) == (2, 1)
    assert [f["id"] for f in report.failing] == [bad_id]
    assert [f["id"] for f in report.stale] == [bad_id]
    assert report.outcomes_last_day == {"ok": 1, "http_error": 1}
    text = report.render()
    assert "1 failing, 1 stale" in text and "HTTP 503" in text
    assert report.as_dict()["as_of"] == NOW.isoformat()


def test_feed_health_is_as_of_the_run_time(db, history) -> None:
    # A backfilled run for 20 days ago sees that day's fetches, not today's.
    report = feed_health_report(db, now=NOW - timedelta(days=20))
    assert report.outcomes_last_day == {"ok": 1, "http_error": 1}


def _checkpoint(runs: Path, name: str, age: timedelta, now: datetime, *, complete: bool = True) -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    if complete:
        (folder / "metrics.json").write_text("{}")
    stamp = (now - age).timestamp()
    os.utime(folder, (stamp, stamp))
    return folder


def test_old_checkpoints_go_but_the_newest_the_serving_and_a_running_one_stay(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    runs = tmp_path / "models" / "runs"
    weeks = [_checkpoint(runs, f"scheduled__week{i}", timedelta(weeks=i, days=2), now) for i in range(7)]
    promoted = weeks[5]  # an older run the gate promoted: it serves, whatever its age
    pinned = weeks[6] / "config.json"  # a pinned model_path inside a run folder
    deleted = prune_checkpoints(runs, keep=2, protected=[promoted, pinned], now=now)
    assert sorted(deleted) == sorted(weeks[2:5])
    assert sorted(p.name for p in runs.iterdir()) == sorted(w.name for w in (*weeks[:2], *weeks[5:]))
    # A run still writing its folder is never taken and holds no place among those kept; a
    # run that failed before completing is garbage once quiet.
    running = _checkpoint(runs, "manual__now", timedelta(hours=2), now, complete=False)
    failed = _checkpoint(runs, "manual__failed", timedelta(days=3), now, complete=False)
    assert prune_checkpoints(runs, keep=1, protected=[promoted, pinned], now=now) == [failed, weeks[1]]
    assert running.is_dir() and weeks[0].is_dir() and weeks[5].is_dir() and weeks[6].is_dir()
    assert prune_checkpoints(runs, keep=0, protected=[], now=now) == []
    assert prune_checkpoints(tmp_path / "absent", keep=2, protected=[], now=now) == []
