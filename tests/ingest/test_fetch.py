"""The fetcher against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import gzip
import os
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ingest_helpers import FeedServer, feed_server_fixture, http_date, rss, rss_feed, rss_item  # noqa: F401

from pipeline.ingest.fetch import Fetcher
from pipeline.ingest.records import FeedRequest
from pipeline.ingest.sources.http import BodyTooLarge, Inflater, parse_retry_after

UA = "FinSent-test/1 (+https://example.com)"


@pytest.fixture
def fetcher():
    with Fetcher(timeout_s=1.0, max_bytes=1024 * 1024, user_agent=UA, max_connections=4) as f:
        yield f


def get(fetcher: Fetcher, url: str, **kw):
    return fetcher.fetch(FeedRequest(feed_id=1, url=url, **kw))


@pytest.mark.slow
def test_ok_sends_honest_headers_and_decompresses(fetcher, feed_server: FeedServer):
    body = rss_feed(3)
    url = feed_server.add("/feed", body, gzip=True, etag='"abc"')
    result = get(fetcher, url)
    assert (result.outcome, result.status, result.body) == ("ok", 200, body)
    assert result.headers["etag"] == '"abc"'
    seen = feed_server.routes["/feed"].seen_headers[0]
    assert seen["user-agent"] == UA and seen["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in seen


@pytest.mark.slow
def test_conditional_get(fetcher, feed_server: FeedServer):
    lm = http_date(datetime(2026, 11, 1, tzinfo=UTC))
    url = feed_server.add("/feed", rss_feed(1), etag='"v2"', last_modified=lm)
    assert get(fetcher, url, etag='"v1"').outcome == "ok"
    result = get(fetcher, url, etag='"v2"', last_modified=lm)
    assert (result.outcome, result.status, result.body) == ("not_modified", 304, None)


@pytest.mark.slow
def test_redirects_are_followed_but_bounded(fetcher, feed_server: FeedServer):
    target = feed_server.add("/real", rss_feed(1))
    url = feed_server.add("/old", redirect_to=target)
    result = get(fetcher, url)
    assert result.outcome == "ok" and result.final_url == target
    loop = feed_server.add("/loop", redirect_to="/loop")
    result = get(fetcher, loop)
    assert result.outcome == "http_error" and "more than 5 redirects" in result.error


@pytest.mark.slow
def test_timeouts(fetcher, feed_server: FeedServer):
    slow = feed_server.add("/slow", rss_feed(1), delay_s=2)
    result = get(fetcher, slow)
    assert result.outcome == "timeout" and "1 s" in result.error
    # Each chunk arrives in time, but the whole body does not: the total deadline applies.
    drip = feed_server.add("/drip", rss_feed(40), drip_s=0.2)
    result = get(fetcher, drip)
    assert result.outcome == "timeout" and "not complete" in result.error
    # Headers a line every 0.1 s: each read is in time, the 6 s of headers are not. Before the
    # whole fetch had a deadline, this answered "ok" after 6 s (and a line a second, hours).
    headers = feed_server.add("/slow-headers", rss_feed(1), header_drip_s=0.1)
    result = get(fetcher, headers)
    assert result.outcome == "timeout" and "no complete answer within 1 s" in result.error
    assert result.duration_ms < 4000  # cut at the deadline, not after the server's 6 s of headers
    # The deadline spans a redirect chain too.
    hop = feed_server.add("/hop", redirect_to="/slow-headers")
    assert get(fetcher, hop).outcome == "timeout"
    # The connection pool is not left broken: the next fetch on the same server works.
    assert get(fetcher, feed_server.add("/fine", rss_feed(1))).outcome == "ok"


@pytest.mark.slow
def test_size_caps(fetcher, feed_server: FeedServer):
    huge = feed_server.add("/huge", b"x" * (50 * 1024 * 1024))
    result = get(fetcher, huge)
    assert result.outcome == "too_large" and "fetch_max_bytes" in result.error
    bomb = gzip.compress(b"\0" * (100 * 1024 * 1024))
    result = get(fetcher, feed_server.add("/bomb", raw_gzip=bomb))
    assert result.outcome == "too_large"
    # Several gzip members, one after the other (RFC 1952): all of them, not the first alone.
    first, second = rss_feed(2)[:100], rss_feed(2)[100:]
    result = get(fetcher, feed_server.add("/members", raw_gzip=gzip.compress(first) + gzip.compress(second)))
    assert (result.outcome, result.body) == ("ok", first + second)
    corrupt = feed_server.add("/corrupt", raw_gzip=b"\x1f\x8b\x08\x00garbage-not-deflate")
    result = get(fetcher, corrupt)
    assert result.outcome == "http_error" and "corrupt compressed body" in result.error


def test_inflater_never_holds_more_than_the_limit():
    inflater = Inflater("gzip", 10_000)
    bomb = gzip.compress(b"\0" * 10_000_000)
    with pytest.raises(BodyTooLarge):
        inflater.feed(bomb)
    assert inflater.size == 0  # refused before the output was kept
    assert Inflater("deflate", 100).feed(zlib.compress(b"abc")) == b"abc"
    # Raw deflate (no zlib header), as IIS and old PHP send "deflate": read, in any chunking.
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = packer.compress(b"<rss>" + b"x" * 5000 + b"</rss>") + packer.flush()
    for step in (1, 3, len(raw)):
        inflater = Inflater("deflate", 10_000)
        chunks = [inflater.feed(raw[i : i + step]) for i in range(0, len(raw), step)]
        assert b"".join(chunks) + inflater.finish() == b"<rss>" + b"x" * 5000 + b"</rss>"
    with pytest.raises(BodyTooLarge):
        Inflater("deflate", 1000).feed(raw)
    # Members are inflated in turn, however the chunks split them; padding after one is ignored,
    # and the limit counts them all.
    body = gzip.compress(b"a" * 3000) + b"\0\0" + gzip.compress(b"b" * 3000)
    for step in (1, 2, 7, 1000, len(body)):
        inflater = Inflater("gzip", 10_000)
        chunks = [inflater.feed(body[i : i + step]) for i in range(0, len(body), step)]
        assert b"".join(chunks) + inflater.finish() == b"a" * 3000 + b"b" * 3000
    tail = Inflater("gzip", 10_000)
    assert tail.feed(gzip.compress(b"abc") + b"\0\0trailing garbage") + tail.finish() == b"abc"
    with pytest.raises(BodyTooLarge):
        Inflater("gzip", 5_000).feed(body)
    with pytest.raises(ValueError, match="unsupported Content-Encoding 'br'"):
        Inflater("br", 100)


@pytest.mark.slow
def test_rate_limits_and_server_errors(fetcher, feed_server: FeedServer):
    result = get(fetcher, feed_server.add("/429", b"", status=429, headers={"Retry-After": "120"}))
    assert (result.outcome, result.retry_after_s) == ("rate_limited", 120.0)
    assert "Retry-After 120 s" in result.error
    result = get(fetcher, feed_server.add("/503", b"", status=503))
    assert (result.outcome, result.retry_after_s, result.error) == (
        "http_error",
        None,
        "HTTP 503 Service Unavailable",
    )
    assert get(fetcher, feed_server.add("/404", b"", status=404)).error == "HTTP 404 Not Found"


def test_retry_after_dates():
    ref = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert parse_retry_after(http_date(ref + timedelta(minutes=5)), reference=ref.timestamp()) == 300
    assert parse_retry_after(http_date(ref - timedelta(minutes=5)), reference=ref.timestamp()) == 0
    assert parse_retry_after("99999999", reference=0) == 24 * 3600
    assert parse_retry_after("soon", reference=0) is None


def test_unreachable_hosts_and_files(fetcher, tmp_path: Path):
    result = get(fetcher, "http://127.0.0.1:1/feed")
    assert result.outcome == "connection_error" and "ConnectError" in result.error
    result = get(fetcher, str(tmp_path / "missing.xml"))
    assert result.outcome == "connection_error" and "does not exist" in result.error
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    assert get(fetcher, big.as_uri()).outcome == "too_large"


def test_a_feed_file_replaced_by_a_fifo_fails_at_once_instead_of_blocking(fetcher, tmp_path: Path):
    fifo = tmp_path / "feed.xml"
    os.mkfifo(fifo)  # nothing ever writes to it: reading it would block the run forever
    result = get(fetcher, str(fifo))
    assert result.outcome == "connection_error" and "is not a regular file" in result.error


@pytest.mark.slow
@pytest.mark.parametrize(
    ("status", "permanent"), [(301, True), (308, True), (302, False), (303, False), (307, False)]
)
def test_only_permanent_redirects_report_a_new_location(fetcher, feed_server: FeedServer, status, permanent):
    target = feed_server.add("/new", rss_feed(1), etag='"v1"')
    old = feed_server.add("/old", redirect_to=target, redirect_status=status)
    result = get(fetcher, old)
    assert (result.outcome, result.final_url) == ("ok", target)
    assert result.moved_to == (target if permanent else None)
    # A 304 at the end of the chain is a success too: the move still counts.
    result = get(fetcher, old, etag='"v1"')
    assert result.outcome == "not_modified" and result.moved_to == (target if permanent else None)


@pytest.mark.slow
def test_a_moved_feed_lives_where_the_permanent_hops_end(fetcher, feed_server: FeedServer):
    target = feed_server.add("/today", rss_feed(1))
    middle = feed_server.add("/home", redirect_to=target, redirect_status=302)
    hop = feed_server.add("/hop", redirect_to=middle, redirect_status=308)
    start = feed_server.add("/start", redirect_to=hop, redirect_status=301)
    # 301, 308, then a temporary 302: the feed moved to /home, which sends us on for now.
    result = get(fetcher, start)
    assert result.final_url == target and result.moved_to == middle
    # After a temporary hop, later permanent ones are not about the feed's own URL.
    late = feed_server.add("/late", redirect_to=hop, redirect_status=307)
    assert get(fetcher, late).moved_to is None


@pytest.mark.slow
def test_a_move_to_a_location_with_a_fragment_moves_to_the_feed_without_it(fetcher, feed_server: FeedServer):
    # The fragment is never sent to the server: kept, "/new#top" would be a second URL of
    # the feed at "/new", past the check that another feed already has it.
    target = feed_server.add("/new", rss_feed(1))
    old = feed_server.add("/old", redirect_to=f"{target}#top", redirect_status=301)
    assert get(fetcher, old).moved_to == target


@pytest.mark.slow
def test_a_permanent_redirect_to_an_error_is_not_a_move(fetcher, feed_server: FeedServer):
    gone = feed_server.add("/gone", b"", status=404)
    result = get(fetcher, feed_server.add("/old", redirect_to=gone, redirect_status=301))
    assert result.outcome == "http_error" and result.moved_to is None
    assert get(fetcher, feed_server.add("/stays", rss_feed(1))).moved_to is None  # no redirect at all


@pytest.mark.slow
def test_a_validator_that_cannot_be_sent_back_is_neither_kept_nor_sent(fetcher, feed_server: FeedServer):
    # A server's Last-Modified in latin-1 ("été 2026"): kept and sent back, it failed every
    # later fetch of the feed with an encoding error.
    url = feed_server.add("/feed", rss_feed(1), last_modified="été 2026", etag='"ok"')
    result = get(fetcher, url)
    assert result.outcome == "ok" and "last-modified" not in result.headers
    assert result.headers["etag"] == '"ok"'
    # One stored by an earlier version is not sent: the fetch goes through unconditionally.
    result = get(fetcher, url, etag="naïve", last_modified="x" * 5000)
    assert result.outcome == "ok"
    seen = feed_server.routes["/feed"].seen_headers[-1]
    assert "if-none-match" not in seen and "if-modified-since" not in seen


def test_relative_links_fall_back_to_the_feed_url_when_the_channel_has_no_link(tmp_path):
    body = rss([rss_item(1, link="/news/acme-ceo")]).replace(b"<link>https://news.example.com/</link>", b"")
    path = tmp_path / "feed.xml"
    path.write_bytes(body)
    with Fetcher(timeout_s=1.0, max_bytes=1024 * 1024, user_agent=UA) as f:
        web = f.parse(FeedRequest(feed_id=1, url="https://wire.example.org/rss/markets"), body, {})
        assert web.entries[0].link == "https://wire.example.org/news/acme-ceo"
        local = f.parse(FeedRequest(feed_id=2, url=str(path)), body, {})
        assert local.entries[0].link == "/news/acme-ceo"  # a file has no base: the link is dropped
        with_channel = f.parse(FeedRequest(feed_id=3, url=str(path)), rss([rss_item(1, link="/a")]), {})
        assert with_channel.entries[0].link == "https://news.example.com/a"
