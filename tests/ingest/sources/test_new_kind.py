"""A new feed source kind is one new file: this one, a JSON Feed (jsonfeed.org) read from
a ``jsonfeed+file://`` location, defined here and handed to ``feeds add`` and ``ingest``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from ingest_helpers import NOW
from sqlalchemy import select

from pipeline.db.models import Article, Feed
from pipeline.errors import ConfigError
from pipeline.ingest.parse import FeedParseError, ParsedFeed
from pipeline.ingest.records import FeedRequest, FetchResult
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import ingest
from pipeline.ingest.sources import FeedSource, builtin_sources


class JsonFeedSource(FeedSource):
    kind = "jsonfeed"

    @classmethod
    def claims(cls, location: str) -> bool:
        return location.startswith("jsonfeed+file://")

    @classmethod
    def location(cls, raw: str) -> str:
        path = Path(unquote(urlsplit(raw).path))
        if not path.is_file():
            raise ConfigError(f"JSON Feed file '{raw}' does not exist")
        return cls.canonical(raw)

    def fetch(self, request: FeedRequest) -> FetchResult:
        path = Path(unquote(urlsplit(request.url).path))
        try:
            return FetchResult("ok", body=path.read_bytes()[: self.limits.max_bytes])
        except OSError as exc:
            return FetchResult("connection_error", error=f"cannot read {path} ({exc.strerror})")

    def parse(self, body: bytes, headers: dict[str, str]) -> ParsedFeed:
        try:
            feed = json.loads(body)
        except ValueError as exc:
            raise FeedParseError("not_a_feed", f"not a JSON Feed ({exc})") from None
        # The normalised feed object: entries in the shape normalise_entry reads.
        entries = [
            {
                "id": item["id"],
                "title": item.get("title"),
                "summary": item.get("content_text"),
                "link": item.get("url"),
                "published": item.get("date_published"),
                "published_parsed": _parsed(item.get("date_published")),
            }
            for item in feed.get("items", [])
        ]
        return ParsedFeed(
            entries=entries, title=feed.get("title"), language=feed.get("language"), version="json1"
        )


def _parsed(value: str | None):
    from datetime import datetime

    return datetime.fromisoformat(value).utctimetuple() if value else None


def test_a_source_kind_defined_in_one_file_is_added_and_ingested(db, settings, tmp_path: Path):
    path = tmp_path / "feed.json"
    items = [
        {
            "id": f"j{i}",
            "title": f"Acme Corp story {i} from a JSON Feed",
            "content_text": "Text.",
            "url": f"https://j.example.com/{i}",
            "date_published": (NOW - timedelta(hours=i + 1)).isoformat(),
        }
        for i in range(3)
    ]
    path.write_text(json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items}))
    location = f"jsonfeed+file://{path}"
    with db.transaction() as session:
        (added,) = add_feeds(session, [location], sources=[JsonFeedSource])
    assert added.added and added.url == location
    report = ingest(db, settings, now=NOW, sources=[JsonFeedSource])
    assert (report.new, report.failed) == (3, 0), report.render()
    with db.session() as session:
        assert sorted(session.execute(select(Article.item_key)).scalars()) == ["j0", "j1", "j2"]
        assert session.get(Feed, added.feed_id).name == "J"
    # Without the kind, the location is refused by name, and a stored one fails as a fetch.
    with (
        db.transaction() as session,
        pytest.raises(ConfigError, match="unsupported scheme 'jsonfeed\\+file'"),
    ):
        add_feeds(session, [location])
    assert ingest(db, settings, now=NOW + timedelta(hours=1)).failed == 1


def test_the_builtin_kinds_are_found_by_module():
    assert [s.kind for s in builtin_sources()] == ["http", "file"]
