"""End to end: real HTTP server -> ingest -> real PostgreSQL. Nothing lost, nothing doubled."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import pytest
from ingest_helpers import NOW, FeedServer, atom, feed_server_fixture, http_date, rss, rss_feed, rss_item  # noqa: F401
from sqlalchemy import delete, func, select, text, update

from pipeline.companies.watchlist import load_watchlist
from pipeline.db.models import Article, ArticleEntity, Feed, Fetch
from pipeline.ingest.registry import add_feeds, find_feeds
from pipeline.ingest.service import due_feed_ids, ingest

WATCHLIST = "ticker,name,aliases,subscribers\nACME,Acme Corp,Acme|Acme Industries,ir@example.com\n"


def _add(db, *urls: str) -> list[int]:
    with db.transaction() as session:
        return [r.feed_id for r in add_feeds(session, list(urls))]


def _count(db, model, *where) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _feed(db, feed_id: int) -> Feed:
    with db.session() as session:
        return session.get(Feed, feed_id)


@pytest.mark.slow
def test_new_then_duplicates_then_edited_title_updates_in_place(db, settings, feed_server: FeedServer):
    url = feed_server.add("/rss", rss_feed(5))
    (feed_id,) = _add(db, url)

    first = ingest(db, settings, now=NOW)
    assert (first.new, first.updated, first.duplicates, first.failed) == (5, 0, 0, 0)

    # The server ignores conditional GET and serves new bytes with the same items.
    feed_server.routes["/rss"].body = rss_feed(5, title="Renamed channel")
    second = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (second.new, second.updated, second.duplicates) == (0, 0, 5)

    items = [
        rss_item(
            i,
            f"Item story number {i} moves the markets today",
            guid=f"item-{i}",
            when=NOW - timedelta(minutes=i),
        )
        for i in range(1, 5)
    ]
    items.insert(0, rss_item(0, "CORRECTED: Item story number 0 moves markets", guid="item-0", when=NOW))
    feed_server.routes["/rss"].body = rss(items)
    third = ingest(db, settings, now=NOW + timedelta(minutes=30))
    assert (third.new, third.updated, third.duplicates) == (0, 1, 4)
    assert _count(db, Article) == 5
    with db.session() as session:
        edited = session.execute(select(Article).where(Article.item_key == "item-0")).scalar_one()
    assert edited.title == "CORRECTED: Item story number 0 moves markets"
    assert edited.updated_at == NOW + timedelta(minutes=30)
    assert edited.first_seen_at == NOW
    assert _count(db, Fetch, Fetch.feed_id == feed_id) == 3


@pytest.mark.slow
def test_conditional_get_304_costs_no_parsing(db, settings, feed_server: FeedServer):
    url = feed_server.add("/rss", rss_feed(3), etag='"v1"', last_modified=http_date(NOW))
    (feed_id,) = _add(db, url)
    ingest(db, settings, now=NOW)
    feed = _feed(db, feed_id)
    assert (feed.etag, feed.last_modified) == ('"v1"', http_date(NOW))

    report = ingest(db, settings, now=NOW + timedelta(minutes=5))
    assert [f.outcome for f in report.feeds] == ["not_modified"]
    assert feed_server.routes["/rss"].seen_headers[-1]["if-none-match"] == '"v1"'
    assert feed_server.routes["/rss"].seen_headers[-1]["if-modified-since"] == http_date(NOW)
    assert feed_server.routes["/rss"].seen_headers[-1]["user-agent"] == settings.user_agent
    assert _feed(db, feed_id).last_success_at == NOW + timedelta(minutes=5)
    with db.session() as session:
        fetches = session.execute(select(Fetch).order_by(Fetch.started_at)).scalars().all()
    assert [(f.outcome, f.http_status, f.bytes, f.entries) for f in fetches] == [
        ("ok", 200, len(rss_feed(3)), 3),
        ("not_modified", 304, None, None),
    ]
    assert report.duplicates == 3  # what the 304 re-confirms


@pytest.mark.slow
def test_unchanged_body_without_validators_is_not_parsed_again(db, settings, feed_server: FeedServer):
    url = feed_server.add("/rss", rss_feed(3))
    _add(db, url)
    ingest(db, settings, now=NOW)
    report = ingest(db, settings, now=NOW + timedelta(minutes=5))
    assert [f.outcome for f in report.feeds] == ["unchanged"]
    assert report.failed == 0


@pytest.mark.slow
def test_syndicated_story_is_linked_to_its_first_copy(db, settings, feed_server: FeedServer):
    title = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    a = feed_server.add("/a", rss([rss_item("a1", title, when=NOW - timedelta(hours=2))]))
    b = feed_server.add(
        "/b",
        atom([{"id": "b1", "title": f"{title} - Street Ledger", "when": NOW - timedelta(hours=1)}]),
        content_type="application/atom+xml",
    )
    c = feed_server.add(
        "/c",
        rss([rss_item("c1", "Market update", when=NOW - timedelta(hours=1), description="Stocks rose.")]),
    )
    d = feed_server.add(
        "/d",
        rss([rss_item("d1", "Market update", when=NOW - timedelta(minutes=30), description="Bonds fell.")]),
    )
    feed_a, feed_b, _, _ = _add(db, a, b, c, d)
    ingest(db, settings, now=NOW, feed_ids=[feed_a])
    report = ingest(db, settings, now=NOW)
    assert report.failed == 0, report.render()
    with db.session() as session:
        rows = {r.item_key: r for r in session.execute(select(Article)).scalars()}
    assert rows["a1"].is_novel and rows["a1"].cluster_id == rows["a1"].id
    assert not rows["b1"].is_novel and rows["b1"].cluster_id == rows["a1"].id
    assert rows["b1"].feed_id == feed_b
    # Short generic titles with different text are different stories.
    assert rows["c1"].is_novel and rows["d1"].is_novel


@pytest.mark.slow
def test_tickers_are_linked_once_per_article(db, settings, feed_server: FeedServer, tmp_path: Path):
    wl = tmp_path / "watchlist.csv"
    wl.write_text(WATCHLIST)
    settings = settings.model_copy(update={"watchlist_path": wl})
    item = rss_item(
        "x1",
        "Acme Corp (NYSE: ACME) cuts guidance; $ACME falls, $XYZ rises",
        description="Acme said demand slowed. Share on $FB",
        when=NOW - timedelta(hours=1),
    )
    _add(db, feed_server.add("/rss", rss([item])))
    ingest(db, settings, now=NOW)
    with db.session() as session:
        rows = session.execute(select(ArticleEntity).order_by(ArticleEntity.ticker)).scalars().all()
    assert [(r.ticker, r.matched_by, r.company) for r in rows] == [
        ("ACME", "exchange", "Acme Corp"),
        # XYZ is Block's ticker in the bundled universe, so the cashtag link names it.
        ("XYZ", "cashtag", "Block, Inc."),
    ]
    assert rows[0].published_at == NOW - timedelta(hours=1)
    # The trends stage's statement trigger saw the bulk insert (COPY) of the links.
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM trends_dirty_hours")).scalar_one() >= 1


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><rss version="2.0"><channel><title>t</title>'
    b"<item><title>&c;</title></item></channel></rss>"
)


@pytest.mark.slow
def test_bad_feeds_are_recorded_while_good_ones_are_stored(db, settings, feed_server: FeedServer):
    settings = settings.model_copy(update={"fetch_timeout_s": 2.0, "fetch_max_bytes": 1024 * 1024})
    good = feed_server.add("/good", rss_feed(4))
    # Invalid UTF-8 in a feed declared UTF-8: still usable, stored with a warning.
    mangled = feed_server.add(
        "/mangled", rss([rss_item("m1", "Acme placeholder rises")]).replace(b"placeholder", b"\xff\xfe")
    )
    bad = [
        ("http_error", feed_server.add("/500", b"oops", status=500, content_type="text/plain")),
        ("http_error", feed_server.add("/503", b"", status=503, headers={"Retry-After": "60"})),
        ("http_error", feed_server.add("/loop", redirect_to="/loop")),
        ("rate_limited", feed_server.add("/429", b"slow down", status=429, headers={"Retry-After": "7200"})),
        (
            "not_a_feed",
            feed_server.add("/html", b"<html><body>Sign in</body></html>", content_type="text/html"),
        ),
        ("not_a_feed", feed_server.add("/json", b'{"items": []}', content_type="application/json")),
        ("empty", feed_server.add("/empty", b"")),
        ("too_large", feed_server.add("/huge", b"<rss>" + b" " * (50 * 1024 * 1024))),
        ("too_large", feed_server.add("/bomb", raw_gzip=gzip.compress(b"<rss>" + b" " * (64 * 1024 * 1024)))),
        ("timeout", feed_server.add("/slow", rss_feed(2), delay_s=4)),
        (
            "unsafe_xml",
            feed_server.add(
                "/xxe",
                b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b"<rss><channel><item><title>&x;</title></item></channel></rss>",
            ),
        ),
        ("unsafe_xml", feed_server.add("/laughs", LAUGHS)),
        ("parse_error", feed_server.add("/broken", b"<?xml version='1.0'?><rss><channel><item><titl")),
    ]
    ids = _add(db, good, mangled, *(url for _, url in bad))
    report = ingest(db, settings, now=NOW)
    outcomes = {f.url: f for f in report.feeds}
    assert outcomes[good].outcome == "ok"
    assert outcomes[mangled].outcome == "ok" and outcomes[mangled].warning
    for expected, url in bad:
        assert outcomes[url].outcome == expected, url
        assert outcomes[url].error and "\n" not in outcomes[url].error
    assert report.new == 5 and report.failed == len(bad)
    assert _count(db, Article) == 5
    assert _count(db, Fetch) == len(ids)

    limited = next(f for f in report.feeds if f.outcome == "rate_limited")
    assert limited.next_fetch_at == NOW + timedelta(hours=2)  # Retry-After beats the 10 min backoff
    failing = outcomes[bad[0][1]]
    assert failing.next_fetch_at == NOW + timedelta(minutes=10)
    feed = _feed(db, failing.feed_id)
    assert feed.consecutive_failures == 1 and feed.enabled and "HTTP 500" in feed.last_error

    # Not due yet: only the good feeds are fetched at +5 min.
    assert due_feed_ids(db, now=NOW + timedelta(minutes=5)) == ids[:2]
    text = report.render()
    assert f"{len(bad)} failed" in text
    assert "HTTP 500" in text and "next try" in text and "warning:" in text


@pytest.mark.slow
def test_backoff_doubles_and_success_resets(db, settings, feed_server: FeedServer):
    url = feed_server.add("/flaky", b"down", status=503, content_type="text/plain")
    (feed_id,) = _add(db, url)
    now = NOW
    waits = []
    for _ in range(3):
        report = ingest(db, settings, now=now, feed_ids=[feed_id])
        waits.append(report.feeds[0].next_fetch_at - now)
        now = report.feeds[0].next_fetch_at
    assert waits == [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]
    feed_server.routes["/flaky"] = type(feed_server.routes["/flaky"])(body=rss_feed(1))
    ingest(db, settings, now=now)
    feed = _feed(db, feed_id)
    assert (feed.consecutive_failures, feed.last_error, feed.next_fetch_at) == (0, None, None)


@pytest.mark.slow
def test_gzip_and_local_files(db, settings, feed_server: FeedServer, tmp_path: Path):
    url = feed_server.add("/gz", rss_feed(3, prefix="gz"), gzip=True)
    path = tmp_path / "local.xml"
    path.write_bytes(rss_feed(2, prefix="file"))
    legacy = tmp_path / "legacy.xml"
    legacy.write_bytes(rss_feed(2, prefix="legacy"))
    _add(db, url, str(path), path.as_uri())  # the path and its file:// URL are one feed
    with db.transaction() as session:
        session.add(Feed(url=legacy.as_uri()))  # as earlier versions stored file:// URLs
    report = ingest(db, settings, now=NOW)
    assert report.failed == 0
    assert len(report.feeds) == 3
    assert report.new == 3 + 2 + 2


@pytest.mark.slow
def test_injection_strings_are_stored_as_plain_text(db, settings, feed_server: FeedServer):
    nasty = [
        "Robert'); DROP TABLE articles;-- rallies",
        '<script>alert("x")</script>Acme <b>beats</b> estimates',
        "&lt;img src=x onerror=alert(1)&gt;Shares jump",
        "Null\x00byte and \u202e bidi title",
        # What the bulk loader (COPY, CSV) must not misread: quotes, commas, backslashes.
        '\\. "quoted", comma, and \\N backslash',
    ]
    items = "".join(rss_item(i, t, when=NOW) for i, t in enumerate(nasty))
    body = rss([]).replace(b"</channel>", items.replace("\x00", "&#0;").encode() + b"</channel>")
    _add(db, feed_server.add("/nasty", body))
    report = ingest(db, settings, now=NOW)
    assert report.new == 5, report.render()
    with db.session() as session:
        titles = sorted(session.execute(select(Article.title)).scalars())
    assert "Robert'); DROP TABLE articles;-- rallies" in titles
    assert "Acme beats estimates" in titles
    assert '\\. "quoted", comma, and \\N backslash' in titles
    assert all("<" not in t and "\x00" not in t for t in titles)
    assert _count(db, Article) == 5  # the table is still there


@pytest.mark.slow
def test_future_and_missing_dates(db, settings, feed_server: FeedServer):
    items = [
        rss_item(
            "future", "Acme Corp sets a date for its investor day next spring", when=NOW + timedelta(days=30)
        ),
        rss_item("nodate", "Acme Corp names a new chief financial officer today"),
    ]
    _add(db, feed_server.add("/dates", rss(items)))
    ingest(db, settings, now=NOW, wall_clock=NOW)  # pinned: the test must not age
    with db.session() as session:
        rows = {a.item_key: a for a in session.execute(select(Article)).scalars()}
    assert (rows["future"].published_at, rows["future"].date_flag) == (NOW, "future")
    assert (rows["nodate"].published_at, rows["nodate"].date_flag) == (NOW, "missing")


def test_watchlist_is_read_from_settings(db, settings, tmp_path: Path):
    wl = tmp_path / "w.csv"
    wl.write_text(WATCHLIST)
    assert load_watchlist(wl).tickers() == ["ACME"]
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,company\nX,Y\n")
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="header lacks ticker, name"):
        ingest(db, settings.model_copy(update={"watchlist_path": bad}), now=NOW)


@pytest.mark.slow
def test_a_permanent_redirect_moves_the_feed_and_keeps_its_articles(
    db, settings, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
):
    new = feed_server.add("/new", rss_feed(3))
    old = feed_server.add("/old", redirect_to=new, redirect_status=301)
    (feed_id,) = _add(db, old)
    with caplog.at_level("INFO", logger="pipeline.ingest.store"):
        first = ingest(db, settings, now=NOW)
    assert (first.new, first.failed) == (3, 0)
    assert _feed(db, feed_id).url == new
    assert f"feed #{feed_id} moved permanently: {old} → {new}" in caplog.text

    # The next run asks the new URL directly; the same items are duplicates of the same feed.
    feed_server.routes["/new"].body = rss_feed(4)
    second = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (second.new, second.duplicates) == (1, 3)
    assert feed_server.routes["/old"].hits == 1
    assert _count(db, Article) == 4 and _count(db, Article, Article.feed_id == feed_id) == 4


@pytest.mark.slow
def test_a_feed_list_naming_a_moved_feed_by_its_old_url_adds_no_second_feed(
    db, settings, feed_server: FeedServer
):
    """FINSENT_FEEDS and the Airflow Variable register their feeds at every run: after a 301,
    the old URL they list made a second feed, and the same news was fetched and stored twice."""
    new = feed_server.add("/new", rss_feed(3))
    old = feed_server.add("/old", redirect_to=new, redirect_status=301)
    (feed_id,) = _add(db, old)
    assert ingest(db, settings, now=NOW).new == 3
    with db.transaction() as session:
        (again,) = add_feeds(session, [old])
    assert (again.added, again.feed_id, again.url) == (False, feed_id, new)
    second = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (len(second.feeds), second.new, second.duplicates) == (1, 0, 3)
    assert _count(db, Feed) == 1 and _count(db, Article) == 3
    # Named by its old URL, it is the same feed for `feeds remove` too.
    with db.session() as session:
        assert [f.id for f in find_feeds(session, [old])] == [feed_id]


@pytest.mark.slow
def test_a_feed_at_a_redirects_target_remembers_the_old_url_once_the_duplicate_goes(
    db, settings, feed_server: FeedServer
):
    """Feeds registered twice before moves were remembered: the move is refused, and once the
    user removes the duplicate, a feed list naming the old URL adds it no more."""
    new = feed_server.add("/new", rss_feed(2))
    old = feed_server.add("/old", redirect_to=new, redirect_status=301)
    moving, existing = _add(db, old, new)
    ingest(db, settings, now=NOW)
    with db.transaction() as session:
        session.execute(delete(Feed).where(Feed.id == moving))
    with db.transaction() as session:
        (again,) = add_feeds(session, [old])
    assert (again.added, again.feed_id) == (False, existing)
    # An old URL remembered in another spelling (an upper-case host, an explicit port, as
    # earlier versions stored URLs) is the same URL.
    spelt = old.replace("http://127.0.0.1", "HTTP://127.0.0.1")
    with db.transaction() as session:
        session.execute(update(Feed).where(Feed.id == existing).values(moved_from=[spelt]))
    with db.transaction() as session:
        (again,) = add_feeds(session, [old])
    assert (again.added, again.feed_id) == (False, existing)


@pytest.mark.slow
@pytest.mark.parametrize("status", [302, 303, 307])
def test_a_temporary_redirect_keeps_the_feed_url(db, settings, feed_server: FeedServer, status):
    new = feed_server.add("/today", rss_feed(2))
    old = feed_server.add("/feed", redirect_to=new, redirect_status=status)
    (feed_id,) = _add(db, old)
    assert ingest(db, settings, now=NOW).new == 2
    assert _feed(db, feed_id).url == old


@pytest.mark.slow
def test_a_move_onto_another_feeds_url_is_refused(
    db, settings, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
):
    new = feed_server.add("/new", rss_feed(2))
    old = feed_server.add("/old", redirect_to=new, redirect_status=308)
    moving, existing = _add(db, old, new)
    with caplog.at_level("INFO", logger="pipeline.ingest.store"):
        report = ingest(db, settings, now=NOW)
    assert report.failed == 0
    assert (_feed(db, moving).url, _feed(db, existing).url) == (old, new)
    warning = next(r for r in caplog.records if r.levelname == "WARNING")
    assert f"feed #{moving} ({old})" in warning.message and f"already feed #{existing}" in warning.message
    assert "moved permanently:" not in caplog.text


@pytest.mark.slow
def test_a_permanent_redirect_to_a_page_that_is_no_feed_is_not_followed_for_good(
    db, settings, feed_server: FeedServer
):
    page = feed_server.add("/login", b"<html><body>Sign in</body></html>", content_type="text/html")
    old = feed_server.add("/feed", redirect_to=page, redirect_status=301)
    (feed_id,) = _add(db, old)
    assert [f.outcome for f in ingest(db, settings, now=NOW).feeds] == ["not_a_feed"]
    assert _feed(db, feed_id).url == old


@pytest.mark.slow
def test_a_feeds_ttl_sets_its_next_fetch(db, settings, feed_server: FeedServer):
    url = feed_server.add("/rss", rss_feed(2, channel_extra="<ttl>60</ttl>"), etag='"v1"')
    (feed_id,) = _add(db, url)
    ingest(db, settings, now=NOW)
    feed = _feed(db, feed_id)
    assert (feed.poll_interval_s, feed.next_fetch_at) == (3600, NOW + timedelta(hours=1))
    assert due_feed_ids(db, now=NOW + timedelta(minutes=45)) == []
    assert ingest(db, settings, now=NOW + timedelta(minutes=45)).feeds == []
    assert feed_server.routes["/rss"].hits == 1

    # A 304 carries no body, so no new hint: the stored one still paces the feed.
    later = NOW + timedelta(hours=1)
    assert due_feed_ids(db, now=later) == [feed_id]
    assert [f.outcome for f in ingest(db, settings, now=later).feeds] == ["not_modified"]
    assert _feed(db, feed_id).next_fetch_at == later + timedelta(hours=1)

    # The feed drops its <ttl>: due at every run again.
    feed_server.routes["/rss"].body = rss_feed(3)
    feed_server.routes["/rss"].etag = '"v2"'
    ingest(db, settings, now=later + timedelta(hours=1))
    feed = _feed(db, feed_id)
    assert (feed.poll_interval_s, feed.next_fetch_at) == (None, None)


@pytest.mark.slow
def test_polling_hints_are_capped_and_read_from_the_syndication_module(db, settings, feed_server: FeedServer):
    huge = feed_server.add("/huge", rss_feed(1, prefix="huge", channel_extra="<ttl>100000</ttl>"))
    sy = feed_server.add(
        "/sy",
        rss_feed(
            1,
            prefix="sy",
            channel_extra="<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>",
        ),
    )
    huge_id, sy_id = _add(db, huge, sy)
    ingest(db, settings, now=NOW)
    # A typo must not silence a feed for months: at most a day.
    assert (_feed(db, huge_id).poll_interval_s, _feed(db, huge_id).next_fetch_at) == (
        6_000_000,
        NOW + timedelta(hours=24),
    )
    assert _feed(db, sy_id).next_fetch_at == NOW + timedelta(minutes=30)
    # `--feed` (explicit ids) still fetches a feed that asked to be left alone.
    assert [
        f.outcome for f in ingest(db, settings, now=NOW + timedelta(minutes=5), feed_ids=[huge_id]).feeds
    ] == ["unchanged"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shared", "n"),
    [
        # A home page as every item's link, no guid.
        ("link", 20),
        # A CMS that gives every item the same guid.
        ("guid", 5),
    ],
)
def test_items_sharing_a_link_or_a_guid_are_all_kept(db, settings, feed_server: FeedServer, shared, n):
    home = "https://news.example.com/"
    items = [
        rss_item(
            i,
            f"Acme story number {i} moves the markets",
            guid="post" if shared == "guid" else "",
            link=home if shared == "link" else f"https://x.example/{i}",
        )
        for i in range(n)
    ]
    _add(db, feed_server.add("/rss", rss(items)))
    first = ingest(db, settings, now=NOW)
    assert (first.new, first.duplicates) == (n, 0)
    feed_server.routes["/rss"].body = rss(items, title="Same items, new bytes")
    second = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (second.new, second.updated, second.duplicates) == (0, 0, n)
    # Down to one item on that link or guid: still the item stored before, not a new one.
    feed_server.routes["/rss"].body = rss(items[:1])
    third = ingest(db, settings, now=NOW + timedelta(minutes=30))
    assert (third.new, third.duplicates) == (0, 1)
    assert _count(db, Article) == n


@pytest.mark.slow
@pytest.mark.parametrize("shared", ["link", "guid"])
def test_a_story_rotating_out_of_a_shared_link_or_guid_leaves_the_other_intact(
    db, settings, feed_server: FeedServer, shared
):
    """A alone, then A and B sharing its link or guid, then B alone: two articles, each with
    its own title (B was written over A and stored twice)."""
    home = "https://news.example.com/"

    def item(i: int, title: str) -> str:
        return rss_item(
            i,
            title,
            guid="post" if shared == "guid" else "",
            link=home if shared == "link" else f"https://x.example/{i}",
        )

    alpha, beta = item(0, "Alpha Corp wins a big contract"), item(1, "Beta Inc cuts 500 jobs")
    route = feed_server.add("/rss", rss([alpha]))
    _add(db, route)
    assert ingest(db, settings, now=NOW).new == 1
    feed_server.routes["/rss"].body = rss([alpha, beta])
    assert ingest(db, settings, now=NOW + timedelta(minutes=15)).new == 1
    feed_server.routes["/rss"].body = rss([beta])
    third = ingest(db, settings, now=NOW + timedelta(minutes=30))
    assert (third.new, third.updated) == (0, 0)
    with db.session() as session:
        titles = sorted(session.execute(select(Article.title)).scalars())
    assert titles == ["Alpha Corp wins a big contract", "Beta Inc cuts 500 jobs"]


@pytest.mark.slow
def test_a_live_story_that_shared_link_and_title_is_itself_when_alone(db, settings, feed_server: FeedServer):
    """X and Y with one link and one title but other text, then X alone: X was stored twice."""
    live = "https://news.example.com/live"

    def item(i: int, text: str) -> str:
        return rss_item(i, "Markets live: stocks today", guid="", link=live, description=text)

    x, y = item(0, "Dow opens higher on bank earnings."), item(1, "Oil slides as supply rises.")
    _add(db, feed_server.add("/rss", rss([x, y])))
    assert ingest(db, settings, now=NOW).new == 2
    feed_server.routes["/rss"].body = rss([x])
    again = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (again.new, again.updated, again.duplicates) == (0, 0, 1)
    assert _count(db, Article) == 2


@pytest.mark.slow
def test_links_that_differ_only_after_2000_characters_are_distinct(db, settings, feed_server: FeedServer):
    base = "https://news.example.com/a?q=" + "x" * 2000
    items = [
        rss_item(i, f"Acme story number {i} moves the markets", guid="", link=f"{base}{i}") for i in range(5)
    ]
    _add(db, feed_server.add("/rss", rss(items)))
    assert ingest(db, settings, now=NOW).new == 5
    with db.session() as session:
        assert {len(u) for u in session.execute(select(Article.url)).scalars()} == {2000}


@pytest.mark.slow
def test_a_ticker_at_the_end_of_a_huge_title_is_linked(db, settings, feed_server: FeedServer, tmp_path: Path):
    wl = tmp_path / "watchlist.csv"
    wl.write_text(WATCHLIST)
    settings = settings.model_copy(update={"watchlist_path": wl})
    title = "Markets today: " + "lorem ipsum " * 8500 + "$ACME"
    _add(db, feed_server.add("/rss", rss([rss_item("big", title, when=NOW - timedelta(hours=1))])))
    assert ingest(db, settings, now=NOW).new == 1
    with db.session() as session:
        assert len(session.execute(select(Article.title)).scalar_one()) <= 1000
        assert session.execute(select(ArticleEntity.ticker)).scalars().all() == ["ACME"]


@pytest.mark.slow
def test_a_cut_short_feed_then_the_whole_one_stores_each_story_once(db, settings, feed_server: FeedServer):
    items = [
        rss_item(i, f"Acme Corp story number {i} moves the markets", when=NOW - timedelta(hours=i))
        for i in range(3)
    ]
    full = rss(items)
    # The body ends after the last item's title: its guid and date have not arrived.
    cut = full[: full.index(b"</title>", full.index(b"story number 2")) + len(b"</title>")]
    _add(db, feed_server.add("/rss", cut))
    first = ingest(db, settings, now=NOW)
    assert (first.new, first.failed) == (2, 0)
    assert "incomplete" in first.feeds[0].warning
    feed_server.routes["/rss"].body = full
    second = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (second.new, second.duplicates) == (1, 2)
    with db.session() as session:
        stored = session.execute(select(Article.item_key, Article.date_flag).order_by(Article.item_key)).all()
    assert stored == [("0", None), ("1", None), ("2", None)]


@pytest.mark.slow
def test_an_item_whose_guid_changes_while_the_rest_stays_is_stored_once(
    db, settings, feed_server: FeedServer
):
    # Some CMSs give an item a new guid when it is republished or the feed is rebuilt: the
    # same link, title and text under a new key were a second article in the trend counts.
    story = dict(
        link="https://news.example.com/acme-q3", when=NOW - timedelta(hours=1), description="Up 12%."
    )
    title = "Acme Corp reports record quarterly revenue"
    url = feed_server.add("/rss", rss([rss_item("x", title, guid="cms-1001", **story)]))
    _add(db, url)
    assert ingest(db, settings, now=NOW).new == 1
    feed_server.routes["/rss"].body = rss([rss_item("x", title, guid="cms-2002", **story)])
    again = ingest(db, settings, now=NOW + timedelta(minutes=15))
    assert (again.new, again.updated, again.duplicates) == (0, 0, 1)
    with db.session() as session:
        (row,) = session.execute(select(Article)).scalars()
    assert (row.guid, row.item_key, row.first_seen_at) == ("cms-2002", "cms-2002", NOW)
    # Known under its new key from now on.
    assert ingest(db, settings, now=NOW + timedelta(minutes=30)).duplicates == 1
    assert _count(db, Article) == 1


@pytest.mark.slow
def test_a_recurring_report_under_one_link_stays_one_article_per_day(db, settings, feed_server: FeedServer):
    # A daily "Market close" under the section's link: the same title and link, other text.
    def report(day: int, text: str) -> str:
        return rss_item(
            day,
            "Market close",
            guid=f"close-{day}",
            link="https://news.example.com/markets",
            when=NOW - timedelta(days=1 - day),
            description=text,
        )

    url = feed_server.add("/rss", rss([report(0, "Stocks rose 1%.")]))
    _add(db, url)
    assert ingest(db, settings, now=NOW - timedelta(days=1)).new == 1
    feed_server.routes["/rss"].body = rss([report(1, "Stocks fell 2%.")])
    assert ingest(db, settings, now=NOW).new == 1
    # Both live in one fetch: two items, whatever their keys.
    feed_server.routes["/rss"].body = rss([report(0, "Stocks rose 1%."), report(1, "Stocks fell 2%.")])
    assert ingest(db, settings, now=NOW + timedelta(minutes=15)).new == 0
    assert _count(db, Article) == 2
