"""Writing one feed's fetch to PostgreSQL: articles, syndication clusters, entities, the
fetch row and the feed's health, all in one transaction per feed.

Articles are upserted in one batched ``INSERT ... ON CONFLICT`` on ``(feed_id, item_key)``:
an unchanged item is a no-op (counted as a duplicate), an edited one is updated in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from pipeline.db.engine import Database
from pipeline.db.models import Article, ArticleEntity, Feed, Fetch
from pipeline.errors import DatabaseError
from pipeline.ingest.fetch import OK_OUTCOMES, FeedRequest, FetchResult
from pipeline.ingest.normalise import ArticleRow, clean_text
from pipeline.ingest.tickers import EntityMatch

log = logging.getLogger(__name__)

# Serialises the "is this story already known?" step between concurrent ingest processes
# (Airflow shards); held only for the few milliseconds of one feed's transaction.
CLUSTER_LOCK_KEY = 0x46534E54_494E4753  # "FSNTINGS"
DEFAULT_DEDUP_WINDOW_HOURS = 48.0
DEFAULT_BACKOFF_BASE_S = 600.0
DEFAULT_BACKOFF_MAX_S = 12 * 3600.0

ARTICLES = Article.__table__
ENTITIES = ArticleEntity.__table__
FEEDS = Feed.__table__
FETCHES = Fetch.__table__


@dataclass
class FeedWork:
    """What a worker thread made of one feed, ready to store."""

    request: FeedRequest
    fetch: FetchResult
    started_at: datetime
    outcome: str
    error: str | None = None
    warning: str | None = None
    entries: int = 0
    articles: list[ArticleRow] = field(default_factory=list)
    entities: dict[str, list[EntityMatch]] = field(default_factory=dict)
    in_batch_duplicates: int = 0
    body_hash: str | None = None
    feed_title: str | None = None
    feed_language: str | None = None


@dataclass
class FeedOutcome:
    feed_id: int
    url: str
    outcome: str
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    entries: int = 0
    error: str | None = None
    warning: str | None = None
    http_status: int | None = None
    name: str | None = None
    next_fetch_at: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.outcome not in OK_OUTCOMES


@dataclass(frozen=True)
class StorePolicy:
    dedup_window_hours: float = DEFAULT_DEDUP_WINDOW_HOURS
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S

    @classmethod
    def from_settings(cls, settings) -> StorePolicy:
        # Not (yet) in Settings: read defensively so older configs keep working.
        return cls(
            dedup_window_hours=float(getattr(settings, "dedup_window_hours", DEFAULT_DEDUP_WINDOW_HOURS)),
            backoff_base_s=float(getattr(settings, "fetch_backoff_base_s", DEFAULT_BACKOFF_BASE_S)),
            backoff_max_s=float(getattr(settings, "fetch_backoff_max_s", DEFAULT_BACKOFF_MAX_S)),
        )


def _upsert_statement():
    ins = pg_insert(ARTICLES)
    return ins.on_conflict_do_update(
        constraint="uq_articles_feed_item",
        set_={
            "title": ins.excluded.title,
            "summary": ins.excluded.summary,
            "url": ins.excluded.url,
            "guid": ins.excluded.guid,
            "content_hash": ins.excluded.content_hash,
            "title_key": ins.excluded.title_key,
            "language": func.coalesce(ins.excluded.language, ARTICLES.c.language),
            "updated_at": ins.excluded.first_seen_at,
        },
        # Unchanged items are not touched (no dead tuple, no RETURNING row): duplicates.
        where=ARTICLES.c.content_hash.is_distinct_from(ins.excluded.content_hash),
    ).returning(
        ARTICLES.c.id,
        ARTICLES.c.item_key,
        ARTICLES.c.published_at,
        literal_column("(xmax = 0)").label("inserted"),
    )


UPSERT = _upsert_statement()
ENTITY_INSERT = pg_insert(ENTITIES).on_conflict_do_nothing()
CLUSTER = text(
    """
    UPDATE articles AS a
    SET cluster_id = COALESCE(m.first_cluster, a.id), is_novel = m.first_cluster IS NULL
    FROM (
        SELECT n.id, (
            SELECT COALESCE(o.cluster_id, o.id) FROM articles AS o
            WHERE o.title_key = n.title_key
              AND o.id < n.id
              AND o.published_at BETWEEN n.published_at - make_interval(hours => :window_h)
                                     AND n.published_at + make_interval(hours => :window_h)
              AND (n.id = ANY(:specific) OR o.content_hash = n.content_hash)
            ORDER BY o.id
            LIMIT 1
        ) AS first_cluster
        FROM articles AS n
        WHERE n.id = ANY(:ids)
    ) AS m
    WHERE a.id = m.id
    """
)
FAIL_FEED = text(
    """
    UPDATE feeds SET
        consecutive_failures = consecutive_failures + 1,
        last_error = :error,
        last_fetched_at = :now,
        next_fetch_at = :now + make_interval(secs => GREATEST(
            LEAST(:base_s * power(2, LEAST(consecutive_failures, 30)), :max_s), :retry_s))
    WHERE id = :feed_id
    RETURNING next_fetch_at, name
    """
)


def store_work(db: Database, work: FeedWork, *, now: datetime, policy: StorePolicy) -> FeedOutcome:
    """Store one feed's result. A database that is down raises DatabaseError (the run
    cannot go on); anything else the database refuses is recorded as this feed's failure."""
    try:
        with db.engine.begin() as conn:
            if work.outcome in OK_OUTCOMES:
                return _store_success(conn, work, now=now, policy=policy)
            return _store_failure(conn, work, now=now, policy=policy)
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseError(
            f"lost the database while storing feed #{work.request.feed_id} "
            f"({str(exc.orig or exc).strip().splitlines()[0]}): check PostgreSQL and re-run"
        ) from exc
    except DBAPIError as exc:
        log.exception("storing feed #%s failed", work.request.feed_id)
        reason = str(exc.orig or exc).strip().splitlines()[0]
        failed = FeedWork(
            request=work.request,
            fetch=work.fetch,
            started_at=work.started_at,
            outcome="store_error",
            error=f"database refused the feed's items ({reason}): nothing of it was stored; please report",
            entries=work.entries,
        )
        with db.engine.begin() as conn:
            return _store_failure(conn, failed, now=now, policy=policy)


def _store_success(conn: Connection, work: FeedWork, *, now: datetime, policy: StorePolicy) -> FeedOutcome:
    req = work.request
    new_ids: list[int] = []
    updated_ids: list[int] = []
    if work.articles:
        conn.execute(select(func.pg_advisory_xact_lock(CLUSTER_LOCK_KEY)))
        params = [
            {
                "feed_id": req.feed_id,
                "item_key": a.item_key,
                "guid": a.guid,
                "url": a.url,
                "title": a.title,
                "summary": a.summary,
                "language": a.language,
                "published_at": a.published_at,
                "first_seen_at": now,
                "date_flag": a.date_flag,
                "content_hash": a.content_hash,
                "title_key": a.title_key,
            }
            for a in work.articles
        ]
        returned = conn.execute(UPSERT, params).all()
        by_key = {a.item_key: a for a in work.articles}
        specific: list[int] = []
        entity_rows = []
        for row in returned:
            (new_ids if row.inserted else updated_ids).append(row.id)
            article = by_key[row.item_key]
            if row.inserted and article.title_is_specific:
                specific.append(row.id)
            for match in work.entities.get(row.item_key, ()):
                entity_rows.append(
                    {
                        "article_id": row.id,
                        "ticker": match.ticker,
                        "company": match.company,
                        "matched_by": match.matched_by,
                        "published_at": row.published_at,
                    }
                )
        if new_ids:
            conn.execute(
                CLUSTER,
                {"ids": new_ids, "specific": specific, "window_h": int(policy.dedup_window_hours)},
            )
        if updated_ids:
            # An edited article is re-linked from its new text.
            conn.execute(delete(ENTITIES).where(ENTITIES.c.article_id.in_(updated_ids)))
        if entity_rows:
            conn.execute(ENTITY_INSERT, entity_rows)
    duplicates = len(work.articles) - len(new_ids) - len(updated_ids) + work.in_batch_duplicates
    if work.outcome in ("not_modified", "unchanged"):
        # The same feed as last stored: every item in it is a duplicate.
        duplicates = (
            conn.execute(
                select(FETCHES.c.entries)
                .where(FETCHES.c.feed_id == req.feed_id, FETCHES.c.outcome == "ok")
                .order_by(FETCHES.c.started_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            or 0
        )
    conn.execute(
        insert(FETCHES).values(
            feed_id=req.feed_id,
            started_at=work.started_at,
            duration_ms=work.fetch.duration_ms,
            outcome=work.outcome,
            http_status=work.fetch.status,
            bytes=len(work.fetch.body) if work.fetch.body is not None else None,
            entries=work.entries if work.outcome == "ok" else None,
            new_articles=len(new_ids),
            updated_articles=len(updated_ids),
            duplicate_articles=duplicates,
            warning=work.warning,
        )
    )
    values: dict = {
        "consecutive_failures": 0,
        "last_error": None,
        "last_fetched_at": now,
        "last_success_at": now,
        "next_fetch_at": None,
    }
    headers = work.fetch.headers
    if work.outcome != "not_modified":
        # Validators are stored only with a body we stored: else a 304 would hide items forever.
        values["etag"] = headers.get("etag")
        values["last_modified"] = headers.get("last-modified")
    if work.body_hash:
        values["body_hash"] = work.body_hash
    title = clean_text(work.feed_title, 200) if work.feed_title else None
    if title:
        values["name"] = func.coalesce(FEEDS.c.name, title)
    if work.feed_language:
        values["language"] = func.coalesce(FEEDS.c.language, work.feed_language[:16])
    name = conn.execute(
        update(FEEDS).where(FEEDS.c.id == req.feed_id).values(**values).returning(FEEDS.c.name)
    ).scalar_one_or_none()
    return FeedOutcome(
        feed_id=req.feed_id,
        url=req.url,
        outcome=work.outcome,
        new=len(new_ids),
        updated=len(updated_ids),
        duplicates=duplicates,
        entries=work.entries,
        warning=work.warning,
        http_status=work.fetch.status,
        name=name,
    )


def _store_failure(conn: Connection, work: FeedWork, *, now: datetime, policy: StorePolicy) -> FeedOutcome:
    req = work.request
    conn.execute(
        insert(FETCHES).values(
            feed_id=req.feed_id,
            started_at=work.started_at,
            duration_ms=work.fetch.duration_ms,
            outcome=work.outcome,
            http_status=work.fetch.status,
            bytes=len(work.fetch.body) if work.fetch.body is not None else None,
            entries=work.entries or None,
            error=work.error,
            warning=work.warning,
        )
    )
    row = conn.execute(
        FAIL_FEED,
        {
            "feed_id": req.feed_id,
            "error": work.error,
            "now": now,
            "base_s": policy.backoff_base_s,
            "max_s": policy.backoff_max_s,
            "retry_s": work.fetch.retry_after_s or 0.0,
        },
    ).one_or_none()
    return FeedOutcome(
        feed_id=req.feed_id,
        url=req.url,
        outcome=work.outcome,
        entries=work.entries,
        error=work.error,
        warning=work.warning,
        http_status=work.fetch.status,
        name=row.name if row else req.name,
        next_fetch_at=row.next_fetch_at if row else None,
    )


def backoff_delay(failures: int, policy: StorePolicy, retry_after_s: float | None = None) -> timedelta:
    """The wait after the ``failures``-th failure in a row (mirrors FAIL_FEED, for display)."""
    base = min(policy.backoff_base_s * 2 ** max(failures - 1, 0), policy.backoff_max_s)
    return timedelta(seconds=max(base, retry_after_s or 0.0))
