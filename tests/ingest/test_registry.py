"""The feed table: adding many at once, all or nothing, with names and tags."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pipeline.db.models import Article, Feed
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
        (str(local.resolve()), False),  # a file:// URL of the same file is the same feed
    ]
    with db.session() as session:
        assert session.execute(select(Feed.tags).where(Feed.url == str(local.resolve()))).scalar_one() == [
            "x"
        ]


def test_tags_are_stored_in_lower_case_and_found_in_any(db):
    """An OPML folder "Markets" and `--tag markets` are one tag: one alert scope, one silence."""
    from pipeline.ingest.registry import feeds_with_tags

    with db.transaction() as session:
        add_feed_entries(session, [("https://o.example.com/rss", "OPML", ["Markets", " US ", "markets", ""])])
        add_feeds(session, ["https://t.example.com/rss"], tags=["markets"])
    with db.session() as session:
        assert session.execute(select(Feed.tags).order_by(Feed.id)).scalars().all() == [
            ["markets", "us"],
            ["markets"],
        ]
        assert len(feeds_with_tags(session, ["MARKETS"])) == 2


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


def test_purging_a_feed_keeps_its_stories_novel_in_the_other_feeds(db):
    # A purged feed may have carried a story first; its copies elsewhere must get a new
    # first copy, or the story counts as novel nowhere (trends, alert volumes).
    from ingest_helpers import NOW

    from pipeline.ingest.normalise import normalise_entry
    from pipeline.ingest.records import FeedRequest, FeedWork, FetchResult
    from pipeline.ingest.store import FeedWriter, StorePolicy

    def work(feed_id: int, titles: list[str]) -> FeedWork:
        rows = [
            normalise_entry(
                {"id": f"{feed_id}-{t}", "title": t, "published_parsed": NOW.timetuple()},
                now=NOW,
                feed_language=None,
            )
            for t in titles
        ]
        return FeedWork(
            request=FeedRequest(feed_id=feed_id, url=f"https://f{feed_id}.example.com/rss"),
            fetch=FetchResult("ok", status=200, body=b"<rss/>", headers={}),
            started_at=NOW,
            outcome="ok",
            entries=len(rows),
            articles=rows,
            entities={},
            body_hash=f"{feed_id:064d}",
        )

    shared = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    only_a = "Bolt Industries opens a new plant in Ohio next year, hiring 900"
    first_in_b = "Crux Mining halts output at its largest copper mine after a flood"
    with db.transaction() as session:
        a, b, c = (r.feed_id for r in add_feeds(session, [f"https://p{i}.example.com/rss" for i in range(3)]))
    with FeedWriter(db, now=NOW, policy=StorePolicy()) as writer:
        writer.write(work(b, [first_in_b]))
        writer.commit()
    with FeedWriter(db, now=NOW, policy=StorePolicy()) as writer:
        writer.write(work(a, [shared, only_a, first_in_b]))
        writer.write(work(b, [shared]))
        writer.write(work(c, [shared]))
        writer.commit()

    with db.transaction() as session:
        (result,) = remove_feeds(session, [str(a)], purge=True)
    assert (result.action, result.articles) == ("purged", 3)
    with db.session() as session:
        rows = {(r.feed_id, r.title): r for r in session.execute(select(Article)).scalars()}
    assert set(rows) == {(b, shared), (c, shared), (b, first_in_b)}
    new_first = rows[(b, shared)]
    assert new_first.is_novel and new_first.cluster_id == new_first.id
    assert not rows[(c, shared)].is_novel and rows[(c, shared)].cluster_id == new_first.id
    assert rows[(b, first_in_b)].is_novel  # b carried it first: untouched


def test_one_feed_under_several_spellings_is_stored_once(db, tmp_path):
    # Two rows for one feed would store (and count) every article twice.
    local = tmp_path / "wire.xml"
    local.write_text("<rss version='2.0'><channel><title>t</title></channel></rss>")
    with db.transaction() as session:
        (first,) = add_feeds(session, ["https://news.example.com/a.rss"])
        same = add_feeds(
            session,
            [
                "HTTPS://News.EXAMPLE.com/a.rss",
                "https://news.example.com:443/a.rss",
                "https://news.example.com:8443/a.rss",  # another port: another feed
                "https://news.example.com/A.rss",  # paths may tell case apart
            ],
        )
        # A local file stored as a file:// URL by an earlier FinSent is found from its path.
        session.add(Feed(url=local.as_uri()))
        session.flush()
        (old,) = add_feeds(session, [str(local)])
    assert [(r.url, r.added) for r in same] == [  # the first two are one feed: reported once
        ("https://news.example.com/a.rss", False),
        ("https://news.example.com:8443/a.rss", True),
        ("https://news.example.com/A.rss", True),
    ]
    assert same[0].feed_id == first.feed_id
    assert (old.url, old.added) == (local.as_uri(), False)
    with db.session() as session:
        assert find_feeds(session, [str(local)])[0].url == local.as_uri()


def test_a_feed_stored_under_an_older_spelling_is_not_added_again(db):
    # Earlier versions stored URLs as given; FINSENT_FEEDS re-adds them on every run.
    legacy = "https://News.Example.com:443/b.rss"
    with db.transaction() as session:
        session.add(Feed(url=legacy))
        session.flush()
        again = add_feeds(session, [legacy, "https://news.example.com/b.rss"])
    assert [(r.url, r.added) for r in again] == [(legacy, False)]
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Feed)).scalar_one() == 1
        assert find_feeds(session, ["https://NEWS.example.com/b.rss"])[0].url == legacy


def test_a_registered_local_feed_that_broke_does_not_block_adding(db, tmp_path):
    # FINSENT_FEEDS is re-added on every run: a feed file caught mid-write is that feed's
    # fetch failure at ingest, not a failed run.
    wire = tmp_path / "wire.xml"
    wire.write_text("<rss version='2.0'><channel><title>t</title></channel></rss>")
    with db.transaction() as session:
        add_feeds(session, [str(wire)])
    wire.write_text("ticker,price\n")
    with db.transaction() as session:
        (again,) = add_feeds(session, [str(wire)])
    assert not again.added


def test_a_registered_local_feed_whose_file_is_gone_does_not_block_adding(db, tmp_path):
    # Deleted (or its disk unmounted) after it was registered: before, every run that
    # re-added FINSENT_FEEDS failed with "neither an http(s) URL nor an existing file".
    wire = tmp_path / "wire.xml"
    wire.write_text("<rss version='2.0'><channel><title>t</title></channel></rss>")
    with db.transaction() as session:
        (first,) = add_feeds(session, [str(wire)])
    wire.unlink()
    with db.transaction() as session:
        again = add_feeds(session, [str(wire), wire.as_uri(), "https://news.example.com/rss"])
    # the path and its file:// URL are one feed: reported once, as already there
    assert [(r.feed_id, r.added) for r in again[:1]] == [(first.feed_id, False)]
    assert len(again) == 2 and again[1].added
    # A file never registered is still refused, with nothing stored.
    with pytest.raises(ConfigError, match="neither an http"), db.transaction() as session:
        add_feeds(session, [str(tmp_path / "never.xml"), "https://other.example.com/rss"])
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Feed)).scalar_one() == 2


def test_a_feed_named_twice_is_removed_once(db):
    with db.transaction() as session:
        (feed,) = add_feeds(session, ["https://twice.example.com/rss"])
        results = remove_feeds(session, [str(feed.feed_id), "https://TWICE.example.com/rss"])
    assert [r.action for r in results] == ["deleted"]


def test_a_file_url_naming_another_host_is_refused(db, tmp_path):
    local = tmp_path / "f.xml"
    local.write_text("<rss version='2.0'><channel><title>t</title></channel></rss>")
    refused = "names host 'fileserver': file:// URLs are read on this machine"
    with pytest.raises(ConfigError, match=refused), db.transaction() as session:
        add_feeds(session, [f"file://fileserver{local}"])
    with db.transaction() as session:
        (same,) = add_feeds(session, [f"file://localhost{local}"])
    assert same.url == str(local.resolve())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "is not a valid URL"),
        ("http://exa mple.com/feed", "holds a space or a control character"),
    ],
)
def test_a_malformed_feed_url_is_refused_in_one_line(db, url, reason):
    with pytest.raises(ConfigError, match=reason) as err, db.transaction() as session:
        add_feeds(session, [url])
    assert "\n" not in str(err.value)
