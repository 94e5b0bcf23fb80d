"""Writing fetch results to PostgreSQL: articles, syndication clusters, ticker links, one
fetches row per attempt and each feed's health.

Identity is ``(feed_id, item_key)``: an item seen before with the same content is a
duplicate (nothing written), with new content it is updated in place, otherwise it is
inserted, linked to the first copy of the same story from any feed (``cluster_id``,
``is_novel``). Feeds are written in batches over one connection (see FeedWriter).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    bindparam,
    delete,
    func,
    insert,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from pipeline.db.engine import Database
from pipeline.db.models import Article, ArticleEntity, Feed, Fetch
from pipeline.db.sessions import ACTIVITY_COLUMNS, describe_session
from pipeline.errors import DatabaseError
from pipeline.ingest.identity import StoredCopy, cluster_roots, copy_order, match_stored, rekeyed
from pipeline.ingest.normalise import ArticleRow, clean_text
from pipeline.ingest.parse import MAX_POLL_HINT_S
from pipeline.ingest.records import OK_OUTCOMES, FeedOutcome, FeedWork

log = logging.getLogger(__name__)

# Serialises the "is this story already known?" step between concurrent ingest processes
# (Airflow shards). A row lock, not an advisory lock: taking it needs UPDATE on
# ingest_locks, so a read-only session cannot hold it to stall ingest (advisory locks need
# no privilege at all). It is taken just before a batch of articles is written and
# released by that batch's commit, which comes before ingest waits on the network again.
CLUSTER_LOCK = "clusters"
# How long a batch waits for the lock before the run fails naming the session that holds
# it: another ingest holds it for the milliseconds of one batch, so a long wait means a
# stuck session (an operator's open transaction), not a busy one.
DEFAULT_LOCK_WAIT_S = 60.0
DEFAULT_DEDUP_WINDOW_HOURS = 48.0
DEFAULT_BACKOFF_BASE_S = 600.0
DEFAULT_BACKOFF_MAX_S = 12 * 3600.0

ARTICLES = Article.__table__
ENTITIES = ArticleEntity.__table__
FEEDS = Feed.__table__
FETCHES = Fetch.__table__


@dataclass(frozen=True)
class StorePolicy:
    dedup_window_hours: float = DEFAULT_DEDUP_WINDOW_HOURS
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    max_poll_hint_s: float = MAX_POLL_HINT_S
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S

    @classmethod
    def from_settings(cls, settings) -> StorePolicy:
        # Not (yet) in Settings: read defensively so older configs keep working.
        return cls(
            dedup_window_hours=float(getattr(settings, "dedup_window_hours", DEFAULT_DEDUP_WINDOW_HOURS)),
            backoff_base_s=float(getattr(settings, "fetch_backoff_base_s", DEFAULT_BACKOFF_BASE_S)),
            backoff_max_s=float(getattr(settings, "fetch_backoff_max_s", DEFAULT_BACKOFF_MAX_S)),
        )


# Articles already stored for a batch's (feed, item) keys: what is new, edited or a duplicate.
EXISTING = text(
    """
    SELECT a.id, a.feed_id, a.item_key, a.content_hash, a.published_at, a.title_key
    FROM unnest(CAST(:feed_ids AS integer[]), CAST(:keys AS text[])) AS k (feed_id, item_key)
    JOIN articles AS a ON a.feed_id = k.feed_id AND a.item_key = k.item_key
    """
)
# Earlier copies of the batch's new stories (same normalised title, near in time).
CANDIDATES = text(
    """
    SELECT a.title_key, a.published_at, a.content_hash, COALESCE(a.cluster_id, a.id) AS root
    FROM unnest(CAST(:title_keys AS text[])) AS k (title_key)
    JOIN articles AS a ON a.title_key = k.title_key
    WHERE a.published_at BETWEEN :lo AND :hi
    """
)
# Stored guid-keyed articles of the same feeds and titles as the batch's new ones: an item
# the feed now gives another guid (identity.rekeyed).
SAME_TITLE_IN_FEED = text(
    """
    SELECT a.id, a.feed_id, a.item_key, a.url, a.content_hash, a.published_at, a.title_key
    FROM unnest(CAST(:feed_ids AS integer[]), CAST(:title_keys AS text[])) AS k (feed_id, title_key)
    JOIN articles AS a ON a.title_key = k.title_key AND a.feed_id = k.feed_id
    WHERE a.guid IS NOT NULL
    """
)
REKEY = (
    update(ARTICLES)
    .where(ARTICLES.c.id == bindparam("b_id"))
    .values(item_key=bindparam("b_key"), guid=bindparam("b_guid"))
)
# Ids are drawn up front so a story's first copy can name itself as its cluster in the
# INSERT: a clustering UPDATE afterwards would rewrite every new row (and fire the
# trends triggers on articles) for nothing.
NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence('articles', 'id')) FROM generate_series(1, :n)")
EDIT = (
    update(ARTICLES)
    .where(ARTICLES.c.id == bindparam("b_id"))
    .values(
        title=bindparam("b_title"),
        summary=bindparam("b_summary"),
        url=bindparam("b_url"),
        guid=bindparam("b_guid"),
        content_hash=bindparam("b_content_hash"),
        title_key=bindparam("b_title_key"),
        language=func.coalesce(bindparam("b_language", type_=String), ARTICLES.c.language),
        updated_at=bindparam("b_now"),
    )
)
# A failure: counted, then the next attempt is scheduled by backoff_delay (in the same
# transaction, so the count it reads is this failure's).
FAIL_FEED = text(
    """
    UPDATE feeds SET
        consecutive_failures = consecutive_failures + 1,
        last_error = :error,
        last_fetched_at = :now
    WHERE id = :feed_id
    RETURNING consecutive_failures, name
    """
)
SCHEDULE_RETRY = text("UPDATE feeds SET next_fetch_at = :next WHERE id = :feed_id")
# NO KEY UPDATE, the lock the UPDATE itself takes: it does not conflict with the KEY SHARE
# locks the fetch log's foreign key takes on the same rows (FOR UPDATE did, and two runs
# that had each logged their fetches then deadlocked on each other's).
LOCK_FEEDS = text(
    "SELECT id FROM feeds WHERE id = ANY(CAST(:ids AS integer[])) ORDER BY id FOR NO KEY UPDATE"
)
# One statement for many feeds (executemany would be a round trip per feed). A feed that
# gives no polling hint is due again at once (delay NULL: the schedule sets the pace); one
# that does is due after its hint, capped (see FeedWriter._success).
FEED_SUCCESS = text(
    """
    UPDATE feeds AS f SET
        consecutive_failures = 0,
        last_error = NULL,
        last_fetched_at = :now,
        last_success_at = :now,
        next_fetch_at = :now + make_interval(secs => v.delay_s),
        poll_interval_s = v.hint,
        etag = v.etag,
        last_modified = v.last_modified,
        body_hash = COALESCE(v.body_hash, f.body_hash),
        name = COALESCE(f.name, v.name),
        language = COALESCE(f.language, v.language)
    FROM unnest(
        CAST(:ids AS integer[]), CAST(:etags AS text[]), CAST(:last_modifieds AS text[]),
        CAST(:body_hashes AS text[]), CAST(:names AS text[]), CAST(:languages AS text[]),
        CAST(:hints AS integer[]), CAST(:delays AS double precision[])
    ) AS v (id, etag, last_modified, body_hash, name, language, hint, delay_s)
    WHERE f.id = v.id
    """
)
# A permanent redirect: the feed takes its new URL unless another feed already has it, and
# remembers the old one, under which a configured feed list still names it (registry.py).
MOVE_FEED = text(
    """
    UPDATE feeds
    SET url = :new, moved_from = array_append(array_remove(array_remove(moved_from, :old), :new), :old)
    WHERE id = :feed_id AND url = :old AND NOT EXISTS (SELECT 1 FROM feeds WHERE url = :new)
    """
)
# The feed at a redirect's target learns the old URL too, so that once the duplicate at the
# old URL is removed, a feed list that still names it does not register it again.
REMEMBER_MOVED_FROM = text(
    """
    UPDATE feeds SET moved_from = array_append(moved_from, :old)
    WHERE id = :feed_id AND NOT (:old = ANY (moved_from))
    """
)
FEED_AT_URL = text("SELECT id FROM feeds WHERE url = :url AND id <> :feed_id")
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout
# Who holds a row lock: the row's xmax is the holder's transaction id, and every
# transaction holds a lock on its own id.
LOCK_HOLDER = text(
    f"""
    SELECT {ACTIVITY_COLUMNS}
    FROM ingest_locks AS l
    JOIN pg_locks AS k ON k.locktype = 'transactionid' AND k.transactionid = l.xmax AND k.granted
    JOIN pg_stat_activity AS a ON a.pid = k.pid
    WHERE l.name = :name AND a.pid <> pg_backend_pid()
    """
)


class LockWaitTimeout(DatabaseError):
    """Another session held ingest's lock for longer than ``lock_wait_s``."""


def take_cluster_lock(conn: Connection, db: Database, *, wait_s: float) -> None:
    """Lock CLUSTER_LOCK until the end of ``conn``'s transaction, waiting at most ``wait_s``.

    An upsert locks the row and recreates it if someone deleted it; lock_timeout applies
    to this statement only (reset right after).

    Raises LockWaitTimeout naming the holder (pid, application_name, user), read over a
    separate connection since a lock timeout aborts this one's transaction."""
    timeout = f"{max(1, round(wait_s * 1000))}ms"
    try:
        conn.exec_driver_sql(
            "SELECT set_config('lock_timeout', %(timeout)s, true); "
            "INSERT INTO ingest_locks (name) VALUES (%(name)s) "
            "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name; "
            "SET LOCAL lock_timeout = DEFAULT",
            {"timeout": timeout, "name": CLUSTER_LOCK},
        )
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        raise LockWaitTimeout(
            f"waited {wait_s:g} s for ingest's lock (row '{CLUSTER_LOCK}' of ingest_locks), held by "
            f"{describe_lock_holder(db)}: end that session's transaction (pg_terminate_backend) and re-run"
        ) from None


def describe_lock_holder(db: Database) -> str:
    """'pid 123 (application_name 'psql', user 'bob', idle in transaction since ...)' or a
    note that the holder is gone."""
    try:
        with db.engine.connect() as other:
            row = other.execute(LOCK_HOLDER, {"name": CLUSTER_LOCK}).first()
    except DBAPIError as exc:
        return f"an unknown session (could not ask: {str(exc.orig or exc).strip().splitlines()[0]})"
    if row is None:
        return "a session that has released it since"
    return describe_session(row)


@dataclass
class Deferred:
    """Bookkeeping of successful fetches (fetch rows, feed health), written in bulk."""

    fetch_rows: list[dict] = field(default_factory=list)
    feed_updates: list[dict] = field(default_factory=list)
    moves: list[tuple[int, str, str]] = field(default_factory=list)  # (feed id, old URL, new URL)

    def flush(self, conn: Connection, now: datetime) -> None:
        if self.fetch_rows:
            conn.execute(insert(FETCHES), self.fetch_rows)
        for feed_id, old, new in self.moves:
            move_feed(conn, feed_id, old, new)
        if self.feed_updates:
            # Row locks in one order (by id) in every run, so that two runs committing
            # overlapping feeds wait for each other instead of deadlocking.
            self.feed_updates.sort(key=lambda u: u["id"])
            conn.execute(LOCK_FEEDS, {"ids": [u["id"] for u in self.feed_updates]})
            params = {
                param: [u[column] for u in self.feed_updates]
                for param, column in (
                    ("ids", "id"),
                    ("etags", "etag"),
                    ("last_modifieds", "last_modified"),
                    ("body_hashes", "body_hash"),
                    ("names", "name"),
                    ("languages", "language"),
                    ("hints", "hint"),
                    ("delays", "delay_s"),
                )
            }
            conn.execute(FEED_SUCCESS, {"now": now, **params})
        self.clear()

    def clear(self) -> None:
        self.fetch_rows.clear()
        self.feed_updates.clear()
        self.moves.clear()

    def __bool__(self) -> bool:
        return bool(self.fetch_rows or self.feed_updates or self.moves)


def move_feed(conn: Connection, feed_id: int, old: str, new: str) -> bool:
    """Give a feed the URL it permanently moved to; False (and a warning) when another
    feed already has that URL. Articles are keyed by feed id, not URL: none is touched."""
    # A savepoint: a concurrent ingest (another Airflow shard) may take the URL between
    # the check and the update, and the unique violation must not abort the whole batch.
    savepoint = conn.begin_nested()
    try:
        moved = conn.execute(MOVE_FEED, {"feed_id": feed_id, "old": old, "new": new}).rowcount == 1
    except IntegrityError:
        savepoint.rollback()
        moved = False
    else:
        savepoint.commit()
    if moved:
        log.info("feed #%s moved permanently: %s → %s", feed_id, old, new)
        return True
    other = conn.execute(FEED_AT_URL, {"url": new, "feed_id": feed_id}).scalar_one_or_none()
    if other is not None:
        conn.execute(REMEMBER_MOVED_FROM, {"feed_id": other, "old": old})
        log.warning(
            "feed #%s (%s) moved permanently to %s, which is already feed #%s: kept the old URL "
            "(remove one of the two with `finsent feeds remove`)",
            feed_id,
            old,
            new,
            other,
        )
    else:  # renamed or removed since this run read it: nothing to do
        log.debug("feed #%s: not moved to %s (its URL is no longer %s)", feed_id, new, old)
    return False


class FeedWriter:
    """Writes the results of one run over one connection, in few round trips.

    Feeds with articles are stored together: for a batch of feeds, one lookup of the
    items already stored, one of earlier copies of the new stories, and one COPY each for
    the new articles (clusters decided beforehand) and their ticker links (a round trip
    per statement per feed dominated ingestion on a busy machine). If the database
    refuses a batch, it is rolled back to its savepoint and each feed is retried alone,
    so only the culprit is recorded as failed. What is queued is committed when a batch
    is full and at most ``batch_s`` after it arrived (the caller waits on the network no
    longer than ``due_in()``): a crash loses at most that, and with it those feeds'
    validators, so they are simply fetched again. The cluster lock lives only from a
    batch's first article write to its commit, never across a network wait.
    """

    def __init__(
        self,
        db: Database,
        *,
        now: datetime,
        policy: StorePolicy,
        batch_feeds: int = 32,
        batch_articles: int = 2000,
        batch_s: float = 0.5,
    ):
        self.db = db
        self.now = now
        self.policy = policy
        self.batch_feeds = batch_feeds
        self.batch_articles = batch_articles
        self.batch_s = batch_s
        self._conn: Connection | None = None
        self._tx = None
        self._opened: float | None = None  # when the oldest result still uncommitted arrived
        self._batch: list[FeedWork] = []
        self._batch_articles = 0
        self._deferred = Deferred()

    def __enter__(self) -> FeedWriter:
        try:
            self._conn = self.db.engine.connect()
        except (OperationalError, InterfaceError) as exc:
            raise _lost(exc, "connecting") from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self._rollback()
        finally:
            assert self._conn is not None
            self._conn.close()

    def write(self, work: FeedWork) -> list[FeedOutcome]:
        """Queue or store one feed's result; returns the outcomes stored by this call.

        A full batch is stored and committed at once; a failure is stored and committed
        at once, on its own. Anything else stays queued, holding no lock, until
        ``due_in()`` says it is time to commit: the caller commits then, instead of waiting
        on the network."""
        conn = self._conn
        assert conn is not None, "use FeedWriter as a context manager"
        out: list[FeedOutcome] = []
        if self._opened is None:
            self._opened = time.monotonic()
        try:
            if work.outcome in OK_OUTCOMES and work.articles:
                self._batch.append(work)
                self._batch_articles += len(work.articles)
            elif work.outcome in OK_OUTCOMES:
                out.append(self._success(work, 0, 0))
            else:
                # Committed at once, on its own: a failure locks its feed's row, and a row
                # lock held while the batch waits on the network let two runs over the same
                # feeds (a manual `ingest` beside the scheduled one) each hold a feed the
                # other wanted next (PostgreSQL then aborts one: a deadlock).
                with conn.begin():
                    out.append(_store_failure(conn, work, now=self.now, policy=self.policy))
        except (OperationalError, InterfaceError) as exc:
            raise _lost(exc, f"storing feed #{work.request.feed_id}") from exc
        if (
            len(self._batch) >= self.batch_feeds
            or self._batch_articles >= self.batch_articles
            or self.due_in() == 0.0
        ):
            out += self.commit()
        return out

    def due_in(self) -> float | None:
        """Seconds until what is queued must be committed (0: now); None when nothing is."""
        if self._opened is None:
            return None
        return max(0.0, self.batch_s - (time.monotonic() - self._opened))

    def commit(self) -> list[FeedOutcome]:
        """Store what is queued and commit; returns the outcomes stored by this call.

        The cluster lock, taken when the batch's articles are written, is released here."""
        self._opened = None
        if self._tx is None and not self._batch and not self._deferred:
            return []
        conn = self._conn
        assert conn is not None
        if self._tx is None:
            self._tx = conn.begin()
        try:
            out = self._flush_batch()
            self._deferred.flush(conn, self.now)
            self._tx.commit()
        except (OperationalError, InterfaceError) as exc:
            self._rollback()
            raise _lost(exc, "committing") from exc
        except BaseException:
            self._rollback()
            raise
        finally:
            self._tx = None
        return out

    def _rollback(self) -> None:
        self._batch, self._batch_articles = [], 0
        self._deferred.clear()
        if self._tx is not None and self._tx.is_active:
            try:
                self._tx.rollback()
            except DBAPIError:
                log.debug("rollback after a lost connection failed", exc_info=True)

    def _flush_batch(self) -> list[FeedOutcome]:
        works, self._batch, self._batch_articles = self._batch, [], 0
        if not works:
            return []
        conn = self._conn
        assert conn is not None
        take_cluster_lock(conn, self.db, wait_s=self.policy.lock_wait_s)
        return self._store_batch(works)

    def _store_batch(self, works: list[FeedWork]) -> list[FeedOutcome]:
        conn = self._conn
        assert conn is not None
        savepoint = conn.begin_nested()
        try:
            counts = _store_articles(conn, works, now=self.now, policy=self.policy)
        except (OperationalError, InterfaceError):
            raise
        except DBAPIError as exc:
            savepoint.rollback()
            if len(works) > 1:
                out: list[FeedOutcome] = []
                for work in works:  # find the culprit: each feed alone
                    out += self._store_batch([work])
                return out
            work = works[0]
            log.error("storing feed #%s failed", work.request.feed_id, exc_info=True)
            reason = str(exc.orig or exc).strip().splitlines()[0]
            failed = FeedWork(
                request=work.request,
                fetch=work.fetch,
                started_at=work.started_at,
                outcome="store_error",
                error=f"database refused the feed's items ({reason}): none of them was stored; please report",
                entries=work.entries,
            )
            return [_store_failure(conn, failed, now=self.now, policy=self.policy)]
        savepoint.commit()
        return [self._success(work, *counts[work.request.feed_id]) for work in works]

    def _success(self, work: FeedWork, new: int, updated: int) -> FeedOutcome:
        req = work.request
        duplicates = len(work.articles) - new - updated + work.in_batch_duplicates
        if work.outcome in ("not_modified", "unchanged"):
            duplicates = req.last_entries  # the same feed as last stored: every item is a duplicate
        if work.outcome == "not_modified":
            etag, last_modified = req.etag, req.last_modified
        else:
            # Validators are stored only with a body we stored: else a 304 would hide items forever.
            etag, last_modified = work.fetch.headers.get("etag"), work.fetch.headers.get("last-modified")
        title = clean_text(work.feed_title, 200) if work.feed_title else None
        # A 304 or an unchanged body says nothing new about the polling hint: the stored one
        # still applies. Only a parsed body can set or clear it.
        hint = work.poll_interval_s if work.outcome == "ok" else req.poll_interval_s
        self._deferred.fetch_rows.append(
            {
                "feed_id": req.feed_id,
                "started_at": work.started_at,
                "duration_ms": work.fetch.duration_ms,
                "outcome": work.outcome,
                "http_status": work.fetch.status,
                "bytes": work.fetch.size,
                "entries": work.entries if work.outcome == "ok" else None,
                "new_articles": new,
                "updated_articles": updated,
                "duplicate_articles": duplicates,
                "warning": work.warning,
                "error": None,
            }
        )
        self._deferred.feed_updates.append(
            {
                "id": req.feed_id,
                "etag": etag,
                "last_modified": last_modified,
                "body_hash": work.body_hash,
                "name": title or None,
                "language": work.feed_language,  # a tag or None (FeedWork)
                "hint": hint,
                "delay_s": min(float(hint), self.policy.max_poll_hint_s) if hint else None,
            }
        )
        moved_to = work.fetch.moved_to
        if moved_to and moved_to != req.url:
            self._deferred.moves.append((req.feed_id, req.url, moved_to))
        return FeedOutcome(
            feed_id=req.feed_id,
            url=req.url,
            outcome=work.outcome,
            new=new,
            updated=updated,
            duplicates=duplicates,
            entries=work.entries,
            warning=work.warning,
            http_status=work.fetch.status,
            name=req.name or title,
        )


def copy_rows(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Bulk-insert rows (dicts with the same keys) with COPY, inside the connection's
    transaction. About three times cheaper than multi-row INSERTs, on both sides; the
    rows are known to be new (ids drawn under the advisory lock), so no ON CONFLICT is
    needed. Statement triggers (the trends queue) fire as for an INSERT."""
    columns = list(rows[0])
    buffer = io.StringIO()
    # "\r\n" as the line end makes the writer quote every field holding a "\r" or a "\n": with
    # "\n" alone a carriage return (a guid "a&#13;b") went out unquoted, which COPY refuses,
    # and the whole feed failed to store at every run.
    writer = csv.writer(buffer, lineterminator="\r\n")
    # CSV: an unquoted empty field is NULL; text is never empty here (normalise ensures it).
    writer.writerows([None if v is None else v for v in row.values()] for row in rows)
    buffer.seek(0)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.copy_expert(sql, buffer)
    except dbapi_error as exc:
        # The driver's own exception, wrapped as SQLAlchemy would (DataError, OperationalError...).
        raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
    finally:
        cursor.close()


# PostgreSQL aborted the transaction because of another one (deadlock detected,
# serialization failure): nothing is wrong with the server, and a re-run goes through.
_CONFLICTS = {"40P01", "40001"}


def _lost(exc: DBAPIError, doing: str) -> DatabaseError:
    reason = str(exc.orig or exc).strip().splitlines()[0]
    if getattr(exc.orig, "pgcode", None) in _CONFLICTS:
        return DatabaseError(
            f"a concurrent run over the same feeds conflicted while {doing} ({reason}); "
            "nothing of this batch was stored: re-run"
        )
    return DatabaseError(f"lost the database while {doing} ({reason}): check PostgreSQL and re-run")


def _store_articles(
    conn: Connection, works: list[FeedWork], *, now: datetime, policy: StorePolicy
) -> dict[int, tuple[int, int]]:
    """Store the articles of several feeds: insert the new ones (clustered with earlier
    copies of the same story), update edited ones in place, skip duplicates, link tickers.
    Returns (new, updated) per feed id."""
    items = [(w, a) for w in works for a in w.articles]
    lookups = [(w.request.feed_id, k) for w, a in items for k in (a.item_key, *a.alt_keys)]
    existing = {
        (row.feed_id, row.item_key): row
        for row in conn.execute(
            EXISTING, {"feed_ids": [f for f, _ in lookups], "keys": [k for _, k in lookups]}
        )
    }
    stored = match_stored([(w.request.feed_id, a) for w, a in items], existing)
    counts = {w.request.feed_id: [0, 0] for w in works}
    fresh: list[tuple[FeedWork, ArticleRow]] = []
    edits: list[tuple[FeedWork, ArticleRow, Any]] = []
    for (work, article), old in zip(items, stored, strict=True):
        if old is None:
            fresh.append((work, article))
        elif old.content_hash != article.content_hash:
            edits.append((work, article, old))

    entity_rows: list[dict] = []

    def link(work: FeedWork, article: ArticleRow, article_id: int, published_at: datetime) -> None:
        for match in work.entities.get(article.item_key, ()):
            entity_rows.append(
                {
                    "article_id": article_id,
                    "ticker": match.ticker,
                    "company": match.company,
                    "matched_by": match.matched_by,
                    "relevance": match.relevance,
                    # What the company-level scorer marks; "" (no mention known) is NULL.
                    "mention": match.mention or None,
                    "published_at": published_at,
                }
            )

    window = timedelta(hours=policy.dedup_window_hours)
    if fresh:
        fresh = _without_rekeyed(conn, fresh, window=window)
    if fresh:
        # Ids drawn in copy order: which copy of a story is novel never depends on which
        # feed answered first.
        fresh.sort(key=lambda item: copy_order(item[0].request.feed_id, item[1]))
        ids = list(conn.execute(NEXT_IDS, {"n": len(fresh)}).scalars())
        copies: dict[str, list[StoredCopy]] = {}
        for row in conn.execute(
            CANDIDATES,
            {
                "title_keys": sorted({a.title_key for _, a in fresh}),
                "lo": min(a.published_at for _, a in fresh) - window,
                "hi": max(a.published_at for _, a in fresh) + window,
            },
        ):
            copies.setdefault(row.title_key, []).append(
                StoredCopy(row.published_at, row.content_hash, row.root)
            )
        roots = cluster_roots([a for _, a in fresh], ids, copies, window)
        rows = []
        for (work, article), article_id, root in zip(fresh, ids, roots, strict=True):
            rows.append(
                {
                    "id": article_id,
                    "feed_id": work.request.feed_id,
                    "item_key": article.item_key,
                    "guid": article.guid,
                    "url": article.url,
                    "title": article.title,
                    "summary": article.summary,
                    "language": article.language,
                    "published_at": article.published_at,
                    "first_seen_at": now,
                    "date_flag": article.date_flag,
                    "content_hash": article.content_hash,
                    "title_key": article.title_key,
                    "cluster_id": root,
                    "is_novel": root == article_id,
                }
            )
            counts[work.request.feed_id][0] += 1
            link(work, article, article_id, article.published_at)
        copy_rows(conn, "articles", rows)

    if edits:
        conn.execute(
            EDIT,
            [
                {
                    "b_id": old.id,
                    "b_title": article.title,
                    "b_summary": article.summary,
                    "b_url": article.url,
                    "b_guid": article.guid,
                    "b_content_hash": article.content_hash,
                    "b_title_key": article.title_key,
                    "b_language": article.language,
                    "b_now": now,
                }
                for _, article, old in edits
            ],
        )
        # An edited article is re-linked from its new text.
        conn.execute(delete(ENTITIES).where(ENTITIES.c.article_id.in_([old.id for _, _, old in edits])))
        for work, article, old in edits:
            counts[work.request.feed_id][1] += 1
            link(work, article, old.id, old.published_at)

    if entity_rows:
        copy_rows(conn, "article_entities", entity_rows)
    return {feed_id: (c[0], c[1]) for feed_id, c in counts.items()}


def _without_rekeyed(
    conn: Connection, fresh: list[tuple[FeedWork, ArticleRow]], *, window: timedelta
) -> list[tuple[FeedWork, ArticleRow]]:
    """The new articles less those that are stored ones under a new guid (identity.rekeyed):
    those get the new key, so the next fetch knows them, and count as duplicates."""
    with_guid = [(w.request.feed_id, a) for w, a in fresh if a.guid is not None and a.url is not None]
    if not with_guid:
        return fresh
    stored: dict[tuple[int, str], list[Any]] = {}
    for row in conn.execute(
        SAME_TITLE_IN_FEED,
        {"feed_ids": [f for f, _ in with_guid], "title_keys": [a.title_key for _, a in with_guid]},
    ):
        stored.setdefault((row.feed_id, row.title_key), []).append(row)
    if not stored:
        return fresh
    live: dict[int, set[str]] = {}
    for work, _ in fresh:
        live.setdefault(work.request.feed_id, {a.item_key for a in work.articles})
    found = rekeyed([(w.request.feed_id, a) for w, a in fresh], stored, live, window)
    moved = [(article, row) for (_, article), row in zip(fresh, found, strict=True) if row is not None]
    if moved:
        conn.execute(REKEY, [{"b_id": row.id, "b_key": a.item_key, "b_guid": a.guid} for a, row in moved])
        for article, row in moved:
            log.info(
                "article #%s is now keyed by its new guid %s (was %s)", row.id, article.item_key, row.item_key
            )
    return [item for item, row in zip(fresh, found, strict=True) if row is None]


def _store_failure(conn: Connection, work: FeedWork, *, now: datetime, policy: StorePolicy) -> FeedOutcome:
    req = work.request
    conn.execute(
        insert(FETCHES).values(
            feed_id=req.feed_id,
            started_at=work.started_at,
            duration_ms=work.fetch.duration_ms,
            outcome=work.outcome,
            http_status=work.fetch.status,
            bytes=work.fetch.size,
            entries=work.entries or None,
            error=work.error,
            warning=work.warning,
        )
    )
    row = conn.execute(FAIL_FEED, {"feed_id": req.feed_id, "error": work.error, "now": now}).one_or_none()
    next_fetch_at = None
    if row is not None:
        next_fetch_at = now + backoff_delay(row.consecutive_failures, policy, work.fetch.retry_after_s)
        conn.execute(SCHEDULE_RETRY, {"feed_id": req.feed_id, "next": next_fetch_at})
    return FeedOutcome(
        feed_id=req.feed_id,
        url=req.url,
        outcome=work.outcome,
        entries=work.entries,
        error=work.error,
        warning=work.warning,
        http_status=work.fetch.status,
        name=row.name if row else req.name,
        next_fetch_at=next_fetch_at,
    )


def backoff_delay(failures: int, policy: StorePolicy, retry_after_s: float | None = None) -> timedelta:
    """The one backoff policy: the wait after the ``failures``-th failure in a row is
    ``backoff_base_s`` doubled for each failure after the first, at most ``backoff_max_s``,
    and never shorter than the server's Retry-After."""
    doublings = min(max(failures - 1, 0), 30)  # 2**30 times any base is past any maximum
    base = min(policy.backoff_base_s * 2**doublings, policy.backoff_max_s)
    return timedelta(seconds=max(base, retry_after_s or 0.0))
