"""The feed table: adding, listing and removing feeds, with validation up front."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from pipeline.db.models import Article, Feed
from pipeline.errors import ConfigError
from pipeline.ingest.sources import FeedSource, source_for
from pipeline.ingest.sources.file import FileSource

log = logging.getLogger(__name__)


def normalise_feed_location(raw: str, sources: Sequence[type[FeedSource]] = ()) -> str:
    """The feed's location in canonical form, as the source kind that reads it gives it
    (see pipeline/ingest/sources/). Raises ConfigError."""
    value = raw.strip()
    if not value:
        raise ConfigError("empty feed URL")
    return source_for(value, sources).location(value)


def check_local_feed(url: str, sources: Sequence[type[FeedSource]] = ()) -> None:
    """The source kind's check of a new feed (a local file must parse as a feed now, not
    at its first ingest). ``url`` as normalise_feed_location gives it."""
    source_for(url, sources).check(url)


def fold_tags(tags: Sequence[str]) -> list[str]:
    """Tags as stored: lower case, each once, in their order. A tag is a label, not a name:
    "Markets" (an OPML folder) and "markets" (`feeds add --tag`) would otherwise be two tag
    scopes, with two alert baselines, and a silence of either would mute only one."""
    return list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))


@dataclass(frozen=True)
class AddResult:
    url: str
    added: bool
    feed_id: int
    enabled: bool = True


def add_feeds(
    session: Session,
    locations: list[str],
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    sources: Sequence[type[FeedSource]] = (),
) -> list[AddResult]:
    """Add feeds; all are validated before any is stored (all or nothing). Existing
    feeds are left as they are and reported with ``added=False``. ``sources``: source
    kinds beyond the built-in ones (see pipeline/ingest/sources/)."""
    return add_feed_entries(session, [(raw, name, list(tags or [])) for raw in locations], sources=sources)


def add_feed_entries(
    session: Session,
    entries: list[tuple[str, str | None, list[str]]],
    *,
    sources: Sequence[type[FeedSource]] = (),
) -> list[AddResult]:
    """Add (location, name, tags) rows, e.g. from an OPML file; all or nothing, like add_feeds."""
    errors: list[str] = []
    rows: dict[str, tuple[str | None, list[str]]] = {}
    stored = _stored_feeds(session) if entries else {}
    for raw, name, tags in entries:
        try:
            url = normalise_feed_location(raw, sources)
        except ConfigError as exc:
            # A registered local file that is gone now (FINSENT_FEEDS re-adds it every run) is
            # that feed's fetch failure at ingest, not a reason to refuse the whole run.
            known = _registered_spelling(raw, stored)
            if known is None:
                errors.append(str(exc).removeprefix("config: "))
                continue
            url = known
        rows.setdefault(url, (name, fold_tags(tags)))  # keeps order, drops repeats within the call
    for url in rows:
        if url not in stored:
            # Only new ones: a registered local feed that is broken now (a writer caught
            # mid-file) is a fetch failure of that feed at ingest, not a reason to stop a run.
            try:
                check_local_feed(url, sources)
            except ConfigError as exc:
                errors.append(str(exc).removeprefix("config: "))
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise ConfigError(shown + " (no feed was added)")
    results: list[AddResult] = []
    for url, (name, tags) in rows.items():
        existing = stored.get(url)
        if existing is not None:
            results.append(AddResult(existing.url, False, existing.id, existing.enabled))
            continue
        stmt = (
            insert(Feed)
            .values(url=url, name=name, tags=list(tags))
            .on_conflict_do_nothing(index_elements=[Feed.url])
            .returning(Feed.id)
        )
        new_id = session.execute(stmt).scalar_one_or_none()
        if new_id is None:  # added by a concurrent process since we looked
            row = session.execute(select(Feed.id, Feed.url, Feed.enabled).where(Feed.url == url)).one()
            results.append(AddResult(row.url, False, row.id, row.enabled))
        else:
            results.append(AddResult(url, True, new_id))
    return results


def _stored_feeds(session: Session) -> dict:
    """Registered feeds by the canonical form of their location, the oldest first, then by
    the URLs permanent redirects moved them from (a feed list that still names the old URL
    names that feed, not a new one).

    Rows stored by earlier versions may be spelt otherwise (a file:// URL, an upper-case
    host, an explicit default port); canonicalising them here, not in a migration, keeps
    their ids and articles as they are. The feeds table holds hundreds of rows, not millions.
    """
    found: dict = {}
    rows = session.execute(select(Feed.id, Feed.url, Feed.enabled, Feed.moved_from).order_by(Feed.id)).all()
    for row in rows:
        found.setdefault(row.url, row)
        with contextlib.suppress(ConfigError):  # e.g. an invalid port: the stored spelling only
            found.setdefault(_canonical(row.url), row)
    for row in rows:  # a feed registered at a URL itself comes first
        for old in row.moved_from or ():
            found.setdefault(old, row)
            with contextlib.suppress(ConfigError):  # spelt as an earlier version stored it
                found.setdefault(_canonical(old), row)
    return found


def _registered_spelling(raw: str, stored: dict) -> str | None:
    """For a local feed file (a path or a file:// URL), the key under which ``stored``
    holds it, worked out without the disk (the file may be gone); None for anything else or
    when no registered feed is at that location (another kind's errors stand as they are)."""
    value = raw.strip()
    if not FileSource.claims(value):
        return None
    candidates = [value, _canonical(value)]
    if urlsplit(value).scheme.lower() != "file":  # a path, as the file source reads it
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            candidates.append(str(Path(value).expanduser().resolve()))
    return next((c for c in candidates if c in stored), None)


def _canonical(stored: str) -> str:
    """The form normalise_feed_location gives a stored location, without touching the disk."""
    try:
        return source_for(stored).canonical(stored)
    except ConfigError:
        return stored


def find_feeds(session: Session, refs: list[str]) -> list[Feed]:
    """Feeds by id or URL/path, each once; ConfigError naming any that do not exist."""
    found: dict[int, Feed] = {}
    missing: list[str] = []
    stored = None
    for ref in refs:
        feed = session.get(Feed, int(ref)) if ref.isascii() and ref.isdigit() else None
        if feed is None:
            stored = _stored_feeds(session) if stored is None else stored
            row = next((stored[k] for k in _lookup_keys(ref) if k in stored), None)
            feed = session.get(Feed, row.id) if row is not None else None
        if feed is None:
            missing.append(ref)
        else:
            found.setdefault(feed.id, feed)  # named twice (by id and by URL): removed once
    if missing:
        raise ConfigError(f"no such feed: {', '.join(missing)} (see `finsent feeds list`)")
    return list(found.values())


def _lookup_keys(ref: str) -> list[str]:
    """The spellings under which ``ref`` may be registered, including a file since deleted."""
    keys = [ref]
    for spell in (normalise_feed_location, _canonical):
        with contextlib.suppress(ConfigError):
            keys.append(spell(ref))
    if not urlsplit(ref).scheme:
        keys.append(str(Path(ref).expanduser().resolve()))
    return keys


def feeds_with_tags(session: Session, tags: list[str]) -> list[int]:
    """Ids of the feeds that carry any of ``tags`` (in any case)."""
    folded = fold_tags(tags)
    return list(session.execute(select(Feed.id).where(Feed.tags.overlap(folded)).order_by(Feed.id)).scalars())


def is_demo_feed(url: str) -> bool:
    """Whether a stored feed is one ``finsent run --demo`` registered, from any data dir: its
    files in a ``demo`` folder (a database several data dirs or machines share holds each one's)."""
    from pipeline.ingest.demo import FEED_FILE_NAMES

    ends = tuple(f"/demo/{name}" for name in FEED_FILE_NAMES)
    return url.endswith(ends) and not urlsplit(url).scheme.startswith("http")


def demo_feeds(session: Session) -> list[int]:
    """Ids of the demo's feeds (see is_demo_feed)."""
    rows = session.execute(select(Feed.id, Feed.url).order_by(Feed.id)).all()
    return [r.id for r in rows if is_demo_feed(r.url)]


@dataclass(frozen=True)
class RemoveResult:
    url: str
    action: str  # deleted | disabled | purged
    articles: int


def remove_feeds(session: Session, refs: list[str], *, purge: bool = False) -> list[RemoveResult]:
    """Remove feeds. A feed with stored articles is only disabled (its history stays in
    the trends) unless ``purge`` deletes it with its articles and scores."""
    results = []
    for feed in find_feeds(session, refs):
        count = session.execute(select(func.count()).where(Article.feed_id == feed.id)).scalar_one()
        if count and not purge:
            feed.enabled = False
            results.append(RemoveResult(feed.url, "disabled", count))
        else:
            # Stories this feed carried first: their copies in other feeds must not lose
            # their first copy, or they would count as novel nowhere (trends, alerts).
            roots = (
                session.execute(
                    select(Article.id).where(
                        Article.feed_id == feed.id,
                        func.coalesce(Article.cluster_id, Article.id) == Article.id,
                    )
                )
                .scalars()
                .all()
            )
            session.delete(feed)
            session.flush()  # the database cascades to the articles, scores and links
            if roots:
                moved = session.execute(REROOT, {"roots": list(roots)}).rowcount
                if moved:
                    log.info(
                        "feed %s purged: %d copies in other feeds re-linked to a surviving first copy",
                        feed.id,
                        moved,
                    )
            results.append(RemoveResult(feed.url, "purged" if count else "deleted", count))
    session.flush()
    return results


# Copies whose first copy was deleted: the earliest surviving copy becomes the story's first
# copy (novel) and the others point at it, as if the deleted feed had never carried it.
REROOT = text(
    """
    WITH orphans AS (
        SELECT a.id, min(a.id) OVER (PARTITION BY a.cluster_id) AS root
        FROM articles AS a
        WHERE a.cluster_id = ANY(CAST(:roots AS bigint[]))
    )
    UPDATE articles AS a
    SET cluster_id = o.root, is_novel = (a.id = o.root)
    FROM orphans AS o
    WHERE a.id = o.id
    """
)


@dataclass(frozen=True)
class EnableResult:
    feed_id: int
    url: str
    changed: bool  # False: it was on already


def enable_feeds(session: Session, refs: list[str]) -> list[EnableResult]:
    """Switch removed (disabled) feeds back on, due at the next run: their articles were
    kept, so the trends continue where they stopped."""
    results = []
    for feed in find_feeds(session, refs):
        results.append(EnableResult(feed.id, feed.url, not feed.enabled))
        if not feed.enabled:
            feed.enabled = True
            feed.consecutive_failures = 0
            feed.next_fetch_at = None
    session.flush()
    return results


def list_feeds(session: Session, *, include_disabled: bool = True) -> list[Feed]:
    stmt = select(Feed).order_by(Feed.id)
    if not include_disabled:
        stmt = stmt.where(Feed.enabled.is_(True))
    return list(session.execute(stmt).scalars())
