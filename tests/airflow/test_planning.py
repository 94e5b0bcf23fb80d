"""Which feeds an ingest run fetches, and the shards the mapped task gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.airflow.planning import due_this_interval, shard
from pipeline.db.models import Feed

NOW = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def test_shards_are_balanced_round_robin_and_cover_every_feed() -> None:
    groups = shard([5, 1, 2, 3, 4, 6, 7], 3)
    assert groups == [[1, 4, 7], [2, 5], [3, 6]]
    assert sorted(i for g in groups for i in g) == [1, 2, 3, 4, 5, 6, 7]


def test_fewer_feeds_than_shards_gives_one_shard_per_feed() -> None:
    assert shard([9, 8], 4) == [[8], [9]]


def test_no_due_feeds_gives_no_shards() -> None:
    # An empty list makes Airflow skip the mapped fetch; scoring still runs.
    assert shard([], 4) == []


def test_duplicate_ids_are_fetched_once() -> None:
    assert shard([3, 3, 1], 2) == [[1], [3]]


def test_shard_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard([1], 0)


def test_feeds_fetched_for_this_interval_are_not_fetched_again(db) -> None:
    with db.transaction() as session:
        rows = {
            "new": Feed(url="https://n.example/new.rss"),
            "earlier": Feed(url="https://n.example/earlier.rss", last_fetched_at=NOW - timedelta(minutes=15)),
            "this_run": Feed(url="https://n.example/this.rss", last_fetched_at=NOW),
            "later_run": Feed(url="https://n.example/later.rss", last_fetched_at=NOW + timedelta(minutes=15)),
            "backing_off": Feed(
                url="https://n.example/off.rss",
                last_fetched_at=NOW - timedelta(minutes=5),
                next_fetch_at=NOW + timedelta(minutes=30),
            ),
            "disabled": Feed(url="https://n.example/disabled.rss", enabled=False),
        }
        session.add_all(rows.values())
    due = due_this_interval(db, now=NOW)
    assert due == sorted([rows["new"].id, rows["earlier"].id])


def test_nothing_due_is_an_empty_plan(db) -> None:
    assert due_this_interval(db, now=NOW) == []
