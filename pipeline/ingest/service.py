"""One ingestion run: every due feed fetched once, concurrently, and stored.

Worker threads fetch, parse, normalise and link (network waits and parsing overlap);
the calling thread alone writes to the database, in batches (see store.FeedWriter), so
a failing feed never takes the others down and the database sees one writer per process.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import or_, select, text

from pipeline.companies.linking import TickerLinker
from pipeline.companies.universe import companies_for
from pipeline.companies.watchlist import Watchlist
from pipeline.db.engine import Database
from pipeline.db.models import Feed
from pipeline.ingest.fetch import Fetcher, utc_now
from pipeline.ingest.identity import assign_item_keys
from pipeline.ingest.normalise import normalise_entry
from pipeline.ingest.parse import FeedParseError
from pipeline.ingest.records import FeedOutcome, FeedRequest, FeedWork, FetchResult
from pipeline.ingest.sources import FeedSource
from pipeline.ingest.store import FeedWriter, StorePolicy
from pipeline.masking import mask_secrets

log = logging.getLogger(__name__)

URL_WIDTH = 48
NOTE_WIDTH = 90


@dataclass
class IngestReport:
    now: datetime
    feeds: list[FeedOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def new(self) -> int:
        return sum(f.new for f in self.feeds)

    @property
    def updated(self) -> int:
        return sum(f.updated for f in self.feeds)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.feeds)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.feeds if f.failed)

    def summary(self) -> str:
        return (
            f"ingest: {len(self.feeds)} feeds, {self.new} new, {self.updated} updated, "
            f"{self.duplicates} duplicates, {self.failed} failed ({self.seconds:.1f} s)"
        )

    def render(self) -> str:
        """The per-feed table the CLI prints (feeds in id order)."""
        lines = [self.summary()]
        if not self.feeds:
            lines.append("  no feed was due (see `finsent feeds list`)")
            return "\n".join(lines)
        lines.append(f"  {'feed':<{URL_WIDTH + 6}} {'outcome':<16} {'new':>5} {'upd':>5} {'dup':>5}  note")
        for f in sorted(self.feeds, key=lambda f: f.feed_id):
            label = f.name or mask_secrets(f.url)
            if len(label) > URL_WIDTH:
                label = "…" + label[-(URL_WIDTH - 1) :]
            note = f.error or f.warning or ""
            if f.failed and f.next_fetch_at is not None:
                note += f"; next try {f.next_fetch_at:%Y-%m-%d %H:%M} UTC"
            elif f.warning:
                note = f"warning: {note}"
            if len(note) > NOTE_WIDTH:
                note = note[: NOTE_WIDTH - 1] + "…"
            counts = (
                f"{'-':>5} {'-':>5} {'-':>5}" if f.failed else f"{f.new:>5} {f.updated:>5} {f.duplicates:>5}"
            )
            lines.append(f"  #{f.feed_id:<4} {label:<{URL_WIDTH}} {f.outcome:<16} {counts}  {note}".rstrip())
        return "\n".join(lines)


def due_feed_ids(db: Database, *, now: datetime) -> list[int]:
    """Enabled feeds whose next fetch time has come (or was never set), by id."""
    with db.session() as session:
        stmt = (
            select(Feed.id)
            .where(Feed.enabled.is_(True), or_(Feed.next_fetch_at.is_(None), Feed.next_fetch_at <= now))
            .order_by(Feed.id)
        )
        return list(session.execute(stmt).scalars())


LAST_ENTRIES = text(
    """
    SELECT f.id, last.entries
    FROM unnest(CAST(:ids AS integer[])) AS f(id)
    CROSS JOIN LATERAL (
        SELECT entries FROM fetches
        WHERE feed_id = f.id AND outcome = 'ok'
        ORDER BY started_at DESC
        LIMIT 1
    ) AS last
    """
)


def _requests(db: Database, *, now: datetime, feed_ids: Sequence[int] | None) -> list[FeedRequest]:
    with db.session() as session:
        stmt = select(Feed).where(Feed.enabled.is_(True)).order_by(Feed.id)
        if feed_ids is None:
            stmt = stmt.where(or_(Feed.next_fetch_at.is_(None), Feed.next_fetch_at <= now))
        else:
            # Explicit ids (an Airflow shard, `--feed`): fetched even if backing off.
            stmt = stmt.where(Feed.id.in_(list(feed_ids)))
        feeds = list(session.execute(stmt).scalars())
        last_entries = dict(
            session.execute(LAST_ENTRIES, {"ids": [f.id for f in feeds]}).tuples().all() if feeds else []
        )
    if feed_ids is not None:
        missing = set(feed_ids) - {f.id for f in feeds}
        if missing:
            log.info("feeds %s are gone or disabled: skipped", sorted(missing))
    return [
        FeedRequest(
            feed_id=f.id,
            url=f.url,
            etag=f.etag,
            last_modified=f.last_modified,
            body_hash=f.body_hash,
            language=f.language,
            name=f.name,
            last_entries=last_entries.get(f.id) or 0,
            poll_interval_s=f.poll_interval_s,
        )
        for f in feeds
    ]


def prepare_feed(
    fetcher: Fetcher,
    linker: TickerLinker,
    request: FeedRequest,
    *,
    now: datetime,
    started_at: datetime,
    wall_clock: datetime | None = None,
) -> FeedWork:
    """Fetch, parse, normalise and link one feed (runs in a worker thread; no database)."""
    fetch = FetchResult("internal_error")
    try:
        fetch = fetcher.fetch(request)
        body, fetch.body = fetch.body, None  # parsed below; not kept while waiting to be stored
        if fetch.outcome != "ok":
            return FeedWork(request, fetch, started_at, fetch.outcome, error=fetch.error)
        body = body or b""
        body_hash = hashlib.sha256(body).hexdigest()
        if body and body_hash == request.body_hash:
            # The server ignores conditional GET but the bytes are the same: nothing to parse.
            return FeedWork(request, fetch, started_at, "unchanged", body_hash=body_hash)
        parsed = fetcher.parse(request, body, fetch.headers)
        feed_language = parsed.language or request.language
        rows = []
        empty = 0
        for entry in parsed.entries:  # dates up to wall_clock are real in a backfill, not "future"
            row = normalise_entry(entry, now=now, feed_language=feed_language, latest=wall_clock)
            if row is None:
                empty += 1
            else:
                rows.append(row)
        # A repeated item (same key: see identity.py) is one item: the last copy in the feed wins.
        kept = list({row.item_key: row for row in assign_item_keys(rows)}.values())
        warning = parsed.warning
        if empty:
            note = f"{empty} entries without title or text skipped"
            warning = f"{warning}; {note}" if warning else note
        if not kept and parsed.warning:
            return FeedWork(
                request,
                fetch,
                started_at,
                "parse_error",
                error=f"malformed feed with no usable entries ({parsed.warning})",
                entries=len(parsed.entries),
            )
        repeats = len(parsed.entries) - empty - len(kept)
        return FeedWork(
            request,
            fetch,
            started_at,
            "ok",
            warning=warning,
            entries=len(parsed.entries),
            articles=kept,
            # Linked on the full text: a ticker past the stored copy's length still counts.
            entities={a.item_key: linker.link(a.full_text()) for a in kept},
            in_batch_duplicates=repeats,
            body_hash=body_hash,
            feed_title=parsed.title,
            feed_language=parsed.language,
            poll_interval_s=parsed.poll_interval_s,
        )
    except FeedParseError as exc:
        return FeedWork(request, fetch, started_at, exc.outcome, error=exc.args[0])
    except Exception as exc:  # a bug must not cost the other feeds their run
        log.exception("feed #%s (%s) failed unexpectedly", request.feed_id, request.url)
        return FeedWork(
            request,
            fetch,
            started_at,
            "internal_error",
            error=f"unexpected {type(exc).__name__}: {str(exc)[:200]} (a FinSent bug: please report it)",
        )


def ingest(
    db: Database,
    settings,  # pipeline.settings.Settings
    *,
    now: datetime | None = None,
    feed_ids: Sequence[int] | None = None,
    progress: bool = False,
    watchlist: Watchlist | None = None,
    wall_clock: datetime | None = None,
    sources: Sequence[type[FeedSource]] = (),
) -> IngestReport:
    """Fetch every due, enabled feed once (or only ``feed_ids``) and store what is new.

    Per-feed failures are recorded (fetches row, feed health, backoff) and reported; only
    a failure of the run itself (database down, bad watchlist) raises. ``watchlist``
    overrides ``settings.watchlist_path`` for callers that loaded it already.
    ``wall_clock`` (default: read now) bounds the item dates a backfill keeps (entry_date).
    ``sources``: feed source kinds beyond the built-in ones (see pipeline/ingest/sources/).
    """
    wall_clock = wall_clock or utc_now()
    now = now or wall_clock
    # An explicit watchlist is the exact list to link with (callers that built their own);
    # otherwise the configured universe, extended and overridden by the configured watchlist.
    linker = TickerLinker(watchlist if watchlist is not None else companies_for(settings))
    policy = StorePolicy.from_settings(settings)
    requests = _requests(db, now=now, feed_ids=feed_ids)
    report = IngestReport(now=now)
    clock = time.monotonic()
    if not requests:
        return report

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(requests), unit="feed", desc="ingest", file=sys.stderr, leave=False)

    def work(request: FeedRequest) -> FeedWork:
        # Fetch times are the run's `now` plus the time elapsed in the run: honest and testable.
        started_at = now + timedelta(seconds=time.monotonic() - clock)
        return prepare_feed(fetcher, linker, request, now=now, started_at=started_at, wall_clock=wall_clock)

    workers = max(1, min(settings.fetch_concurrency, len(requests)))
    with (
        Fetcher.from_settings(settings, sources) as fetcher,
        ThreadPoolExecutor(workers, "ingest") as pool,
        FeedWriter(db, now=now, policy=policy) as writer,
    ):
        # Backpressure: a bounded number of feeds in flight, so results waiting for the
        # database never pile up in memory when fetching outruns storing.
        queue = iter(requests)
        pending: set[Future[FeedWork]] = {pool.submit(work, r) for r in islice(queue, 4 * workers)}

        def record(outcomes: list[FeedOutcome]) -> None:
            for outcome in outcomes:
                report.feeds.append(outcome)
                if outcome.failed:
                    log.warning("feed #%s %s: %s", outcome.feed_id, outcome.outcome, outcome.error)
            if bar is not None and outcomes:
                bar.update(len(outcomes))

        try:
            while pending:
                # Wait on the network no longer than the writer may keep results uncommitted:
                # a slow feed must not hide the others' articles from readers, nor keep
                # their rows locked while other ingests (Airflow shards) wait.
                done, pending = wait(pending, timeout=writer.due_in(), return_when=FIRST_COMPLETED)
                if not done:
                    record(writer.commit())
                    continue
                for future in done:
                    record(writer.write(future.result()))
                    for request in islice(queue, 1):
                        pending.add(pool.submit(work, request))
            record(writer.commit())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
    report.seconds = time.monotonic() - clock
    log.info(report.summary())
    return report
