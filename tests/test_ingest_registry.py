"""The feed table: adding many at once, all or nothing, with names and tags."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pipeline.db.models import Feed
from pipeline.errors import ConfigError
from pipeline.ingest.registry import add_feed_entries, add_feeds, enable_feeds, find_feeds, remove_feeds


def test_add_many_keeps_order_and_reports_existing(db, tmp_path):
    local = tmp_path / "f.xml"
    local.write_text("<rss/>")
    with db.transaction() as session:
        first = add_feeds(session, ["https://a.example.com/rss", str(local)], tags=["x"])
        again = add_feeds(session, ["https://a.example.com/rss", "https://a.example.com/rss", local.as_uri()])
    assert [r.added for r in first] == [True, True]
    assert [(r.url, r.added) for r in again] == [
        ("https://a.example.com/rss", False),
        (local.as_uri(), True),  # a file:// URL is its own location
    ]
    with db.session() as session:
        assert session.execute(select(Feed.tags).where(Feed.url == str(local.resolve()))).scalar_one() == [
            "x"
        ]


def test_entries_with_names_and_tags_all_or_nothing(db, tmp_path):
    with db.transaction() as session:
        results = add_feed_entries(session, [("https://w.example.com/rss", "Wire", ["markets"])])
    assert results[0].added
    with pytest.raises(ConfigError) as err, db.transaction() as session:
        add_feed_entries(
            session,
            [("https://ok.example.com/rss", None, []), *[(f"gopher://bad{i}", None, []) for i in range(7)]],
        )
    assert "unsupported scheme 'gopher'" in str(err.value) and "and 2 more" in str(err.value)
    assert "no feed was added" in str(err.value)
    with db.session() as session:
        assert [f.name for f in session.execute(select(Feed)).scalars()] == ["Wire"]


def test_find_and_remove(db):
    with db.transaction() as session:
        (added,) = add_feeds(session, ["https://gone.example.com/rss"])
        assert find_feeds(session, [str(added.feed_id)])[0].url == "https://gone.example.com/rss"
        with pytest.raises(ConfigError, match="no such feed: 999"):
            find_feeds(session, ["999"])
        assert [r.action for r in remove_feeds(session, ["https://gone.example.com/rss"])] == ["deleted"]


def test_a_removed_feed_can_be_switched_back_on(db):
    # remove_feeds only disables a feed with stored articles; adding it again must not
    # silently leave it off, and enable_feeds makes it due at the next run.
    with db.transaction() as session:
        (added,) = add_feeds(session, ["https://back.example.com/rss"])
        feed = session.get(Feed, added.feed_id)
        feed.enabled, feed.consecutive_failures = False, 4
        (again,) = add_feeds(session, ["https://back.example.com/rss"])
        assert (again.added, again.enabled) == (False, False)
        (result,) = enable_feeds(session, [str(added.feed_id)])
        assert result.changed
        assert (feed.enabled, feed.consecutive_failures, feed.next_fetch_at) == (True, 0, None)
        assert not enable_feeds(session, ["https://back.example.com/rss"])[0].changed


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"ticker,price\nACME,12.5\n", "the body is not XML"),
        (b"<!doctype html><html><body>News</body></html>", "served an HTML page"),
        (b"", "empty response body"),
    ],
)
def test_a_local_file_that_is_not_a_feed_is_refused_at_add(db, tmp_path, body, reason):
    bad = tmp_path / "notes.csv"
    bad.write_bytes(body)
    good = tmp_path / "f.xml"
    good.write_text("<rss version='2.0'><channel><title>t</title></channel></rss>")
    with pytest.raises(ConfigError) as err, db.transaction() as session:
        add_feeds(session, [str(good), bad.as_uri()])
    message = str(err.value)
    assert f"feed file '{bad}' is not a usable feed" in message and reason in message
    assert "no feed was added" in message and "\n" not in message
    with db.session() as session:
        assert session.execute(select(Feed)).first() is None
