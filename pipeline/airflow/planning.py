"""Which feeds an ingest run fetches, and how they are split across workers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select

from pipeline.db.engine import Database
from pipeline.db.models import Feed


def due_this_interval(db: Database, *, now: datetime) -> list[int]:
    """The due feeds (see ``pipeline.ingest.service.due_feed_ids``) not yet fetched as of
    ``now``.

    The ingest stage marks a successful feed due again at once (the schedule sets the
    pace, unless the feed asked for a longer one with <ttl> or sy:updatePeriod), so
    without this a re-run of the same interval would fetch everything again
    and add a fetch-log row per feed. Each fetch stamps ``last_fetched_at`` with the
    run's ``now``: a feed stamped at or after it was fetched for this interval already.
    """
    from pipeline.ingest.service import due_feed_ids

    due = due_feed_ids(db, now=now)
    if not due:
        return []
    with db.session() as session:
        fetched = set(
            session.execute(
                select(Feed.id).where(
                    Feed.id.in_(due),
                    ~or_(Feed.last_fetched_at.is_(None), Feed.last_fetched_at < now),
                )
            ).scalars()
        )
    return [feed_id for feed_id in due if feed_id not in fetched]


def shard(ids: Sequence[int], shards: int) -> list[list[int]]:
    """Split feed ids into at most ``shards`` non-empty groups of near-equal size.

    Round-robin rather than contiguous ranges: feeds added together (one publisher, often
    slow together) end up on different workers.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1 (got {shards})")
    ordered = sorted(set(ids))
    count = min(shards, len(ordered))
    return [ordered[i::count] for i in range(count)]
