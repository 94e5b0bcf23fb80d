"""Which item is which: an item's key within its feed, the stored row it is, and the
stored story it is a copy of.

Pure functions, no database: store.py reads the candidates and applies these rules, and
the tests check the rules without PostgreSQL.

Item identity within a feed (``articles.item_key``):

- the guid, when the feed gives one; where one fetch gives the same guid to items whose
  link or title differ (a broken CMS), each of those is keyed by the guid, its link and its
  title, so no story hides behind another's guid;
- else the link (canonical form, uncut), when no other item of the same fetch has it;
- else, for feeds that give every item the same link (a home or section page), the link
  and the title, and where even those repeat with different text, the link and the
  content hash; items identical in every respect are one item;
- else the content hash.

A key longer than KEY_MAX is stored as its hash, never cut. Because whether a link is
shared can change from one fetch to the next, each link-keyed item also carries the other
forms (``alt_keys``): a lone link, the link with its title and the link with its content
hash (the form it had while it shared link and title with other text); a shared link, the
plain link; and both, the content hash alone (the key of an item whose link was missing or
unusable before: a relative link, resolved since) and the link as stored before its unsafe
characters were percent-encoded. A stored row found under one of them is the same item
when its title matches.
Guid-keyed items carry the same pair: the plain guid and the guid with link and title.

An item the feed gives a new guid while its old one has left the feed, with the same link,
title and text, is the stored article, which takes the new key (:func:`rekeyed`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pipeline.ingest.normalise import ArticleRow, bounded_key, unencoded_path

__all__ = [
    "StoredCopy",
    "assign_item_keys",
    "cluster_roots",
    "copy_order",
    "match_stored",
    "rekeyed",
]


def _link_title_key(link: str, title: str) -> str:
    # A newline never occurs in a canonical URL: this cannot be mistaken for a link key.
    return bounded_key(f"{link}\n{title}")


def _guid_link_title_key(row: ArticleRow) -> str:
    return bounded_key(f"{row.item_key}\n{row.full_url or ''}\n{row.title}")


def _link_content_key(link: str, content_hash: str) -> str:
    return bounded_key(f"{link}\nsha256:{content_hash}")


def _content_key(row: ArticleRow) -> str:
    # The key normalise_entry gives an item with neither guid nor link.
    return bounded_key(f"sha256:{row.content_hash}")


def _unencoded_keys(link: str, row: ArticleRow) -> tuple[str, ...]:
    """The keys a link with percent-encoded unsafe characters had before canonical_url
    encoded them (a space or "|" in the path was stored as it came): the plain link, and
    the link with the title; none when nothing was encoded."""
    old = unencoded_path(link)
    return () if old == link else (bounded_key(old), _link_title_key(old, row.title))


def assign_item_keys(rows: Sequence[ArticleRow]) -> list[ArticleRow]:
    """The rows of one fetch with their final ``item_key`` and ``alt_keys`` (see the
    module docstring). Rows with neither guid nor link are unchanged."""
    by_link: dict[str, list[int]] = defaultdict(list)
    by_guid: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if row.guid is not None:
            by_guid[row.item_key].append(i)
        elif row.full_url:
            by_link[row.full_url].append(i)
    out = list(rows)
    for members in by_guid.values():
        if len({(rows[i].full_url, rows[i].title) for i in members}) == 1:
            # One item (listed once, or again with the same link and title, edited or not:
            # the last copy stands, as ever): the guid; the other form kept for a fetch where
            # the guid was shared.
            for i in members:
                out[i] = replace(rows[i], alt_keys=(_guid_link_title_key(rows[i]),))
            continue
        for i in members:  # items that differ in link or title: one story each
            out[i] = replace(rows[i], item_key=_guid_link_title_key(rows[i]), alt_keys=(rows[i].item_key,))
    for link, members in by_link.items():
        if len(members) == 1:
            (i,) = members
            row = rows[i]
            alt = (_link_title_key(link, row.title), _link_content_key(link, row.content_hash))
            out[i] = replace(row, alt_keys=(*alt, _content_key(row), *_unencoded_keys(link, row)))
            continue
        by_title: dict[str, set[str]] = defaultdict(set)
        for i in members:
            by_title[rows[i].title].add(rows[i].content_hash)
        for i in members:
            row = rows[i]
            key = _link_title_key(link, row.title)
            if len(by_title[row.title]) > 1:  # same link, same title, different text
                key = _link_content_key(link, row.content_hash)
            alt = (bounded_key(link), _content_key(row), *_unencoded_keys(link, row))
            out[i] = replace(row, item_key=key, alt_keys=alt)
    return out


def match_stored(
    items: Sequence[tuple[int, ArticleRow]], stored: Mapping[tuple[int, str], Any]
) -> list[Any | None]:
    """For each (feed id, article), the stored row it is, or None for a new item.

    ``stored`` maps (feed id, item_key) to rows with ``id`` and ``title_key`` for every
    key and alt key of ``items``. A row found under its exact key is that item, unless its
    title differs and an alt key holds a row with the item's own title: then that row is
    the item (a story stored under the shared form while its guid or link was shared, now
    alone again under the plain one, whose row is another story that has left the feed).
    A row found under an alt key only (the first, in order) is the item when its title is
    the same and no other item of the batch claimed it (under a shared link, a stored row is
    at most one of the items)."""

    def own(feed_id: int, article: ArticleRow, taken: set[int]) -> Any | None:
        for key in article.alt_keys:
            row = stored.get((feed_id, key))
            if row is not None and row.title_key == article.title_key and row.id not in taken:
                return row
        return None

    out: list[Any | None] = []
    for feed_id, article in items:
        row = stored.get((feed_id, article.item_key))
        if row is not None and row.title_key != article.title_key:
            row = own(feed_id, article, set()) or row
        out.append(row)
    claimed = {row.id for row in out if row is not None}
    for i, (feed_id, article) in enumerate(items):
        if out[i] is None:
            out[i] = own(feed_id, article, claimed)
            if out[i] is not None:
                claimed.add(out[i].id)
    return out


def rekeyed(
    fresh: Sequence[tuple[int, ArticleRow]],
    stored: Mapping[tuple[int, str], Sequence[Any]],
    live_keys: Mapping[int, set[str]],
    window: timedelta,
) -> list[Any | None]:
    """For each new (feed id, article), the stored article of that feed it is under an
    earlier guid, or None.

    Some CMSs give an item a new guid when they republish it or rebuild the feed: the same
    link, title and text under a new key would be a second article. A stored row (``stored``
    maps (feed id, title_key) to rows with ``id``, ``item_key``, ``url``, ``content_hash``
    and ``published_at``) is the item when both have a guid, its key is no longer in the
    feed (``live_keys``: the keys of this fetch per feed; were both live, they are two
    items), its link and its text are the article's, and it was published within ``window``
    of it. A daily report under a section's link ("Market close") has other text each day,
    so it stays one article a day. Each stored row is claimed once."""
    claimed: set[int] = set()
    out: list[Any | None] = []
    for feed_id, article in fresh:
        found = None
        if article.guid is not None and article.url is not None:
            for row in stored.get((feed_id, article.title_key), ()):
                if (
                    row.id not in claimed
                    and row.item_key not in live_keys.get(feed_id, set())
                    and row.url == article.url
                    and row.content_hash == article.content_hash
                    and abs(row.published_at - article.published_at) <= window
                ):
                    found = row
                    claimed.add(row.id)
                    break
        out.append(found)
    return out


def copy_order(feed_id: int, article: ArticleRow) -> tuple[datetime, int, str]:
    """The order in which new copies of one story are considered: the earliest published
    first, then by feed id, then by item key, so which copy is novel never depends on
    which feed answered first."""
    return article.published_at, feed_id, article.item_key


@dataclass(frozen=True)
class StoredCopy:
    """A stored (or earlier in the batch) article that later copies may join."""

    published_at: datetime
    content_hash: str
    root: int  # the cluster's first copy


def cluster_roots(
    fresh: Sequence[ArticleRow],
    ids: Sequence[int],
    stored: Mapping[str, Sequence[StoredCopy]],
    window: timedelta,
) -> list[int]:
    """For new articles (in copy_order, with their new ids), the id of the first copy of
    the story each one is: a stored copy's cluster, an earlier article of this list, or
    itself (it is novel). ``stored`` maps a title_key to the stored copies near in time.

    Copies are the same normalised title within ``window`` of each other; a short,
    generic title ("Market update") also needs the same text."""
    copies: dict[str, list[StoredCopy]] = {k: list(v) for k, v in stored.items()}
    roots: list[int] = []
    for article, article_id in zip(fresh, ids, strict=True):
        candidates = [
            c.root
            for c in copies.get(article.title_key, ())
            if abs(c.published_at - article.published_at) <= window
            and (article.title_is_specific or c.content_hash == article.content_hash)
        ]
        root = min(candidates) if candidates else article_id
        copies.setdefault(article.title_key, []).append(
            StoredCopy(article.published_at, article.content_hash, root)
        )
        roots.append(root)
    return roots
