"""Entries become clean, keyed, dated articles."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.ingest.normalise import (
    absolute_link,
    canonical_url,
    clean_text,
    entry_date,
    normalise_entry,
    title_key,
)

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Acme <b>beats</b>\n\n estimates</p>", "Acme beats estimates"),
        ("AT&amp;T &#8217;s &quot;deal&quot;", 'AT&T ’s "deal"'),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Shares jump", "Shares jump"),
        ("<script>alert(1)</script><style>p{}</style>Text", "Text"),
        ("revenue <5% and margin >3%", "revenue <5% and margin >3%"),
        ("Null\x00byte\x1b and bom\ufeff", "Nullbyte and bom"),
        ("<!-- ad -->Story<br/>two", "Story two"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw, 1000) == expected


def test_clean_text_truncates_on_a_word():
    assert clean_text("word " * 100, 23) == "word word word word…"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "HTTPS://News.Example.com:443/a/b?utm_source=rss&id=7&fbclid=x&b=2#comments",
            "https://news.example.com/a/b?b=2&id=7",
        ),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:8080/x?guccounter=1", "http://example.com:8080/x"),
        ("javascript:alert(1)", None),
        ("mailto:ir@example.com", None),
        ("http://[bad", None),
        ("", None),
    ],
)
def test_canonical_url(raw, expected):
    assert canonical_url(raw) == expected


def test_title_key_ignores_case_punctuation_and_publisher_suffix():
    base, specific = title_key("Acme recalls 40,000 drills over battery fires")
    assert specific
    assert title_key("ACME recalls 40 000 drills over battery fires!") == (base, True)
    assert title_key("Acme recalls 40,000 drills over battery fires - Reuters")[0] == base
    assert title_key("Market update") == (title_key("market update.")[0], False)
    assert title_key("Acme shares fall - analysts")[0] != title_key("Acme shares fall")[0]


def _struct(when: datetime) -> time.struct_time:
    return when.utctimetuple()


def test_entry_dates():
    past = NOW - timedelta(hours=3)
    assert entry_date({"published_parsed": _struct(past)}, NOW) == (past, None)
    assert entry_date({"updated_parsed": _struct(past)}, NOW) == (past, None)
    assert entry_date({}, NOW) == (NOW, "missing")
    assert entry_date({"published_parsed": _struct(datetime(1970, 1, 1, tzinfo=UTC))}, NOW) == (
        NOW,
        "missing",
    )
    # A placeholder beside a real date: the real one (it was the fetch time, flagged missing).
    epoch = _struct(datetime(1970, 1, 1, tzinfo=UTC))
    assert entry_date({"published_parsed": epoch, "updated_parsed": _struct(past)}, NOW) == (past, None)
    assert entry_date({"published_parsed": _struct(NOW + timedelta(days=3))}, NOW) == (NOW, "future")
    # A couple of minutes ahead is clock skew: clamped, not flagged.
    assert entry_date({"published_parsed": _struct(NOW + timedelta(minutes=2))}, NOW) == (NOW, None)


def test_a_backfill_keeps_dates_between_its_time_and_the_wall_clock():
    # A run as of 11:00, made at 20:00, must not pile 12:30's item into 11:00's hour.
    backfill, wall = NOW - timedelta(hours=9), NOW
    later = backfill + timedelta(hours=1, minutes=30)
    assert entry_date({"published_parsed": _struct(later)}, backfill, wall) == (later, None)
    # A few minutes ahead of the wall clock is skew against the real time: clamped to it.
    skew = wall + timedelta(minutes=2)
    assert entry_date({"published_parsed": _struct(skew)}, backfill, wall) == (wall, None)
    # Ahead of the wall clock too: a publisher's bad clock, clamped to the run's time.
    assert entry_date({"published_parsed": _struct(wall + timedelta(days=3))}, backfill, wall) == (
        backfill,
        "future",
    )


def test_normalise_entry_keys_and_language():
    entry = {
        "id": "urn:guid:1",
        "title": "Acme <i>cuts</i> guidance",
        "summary": "<p>Demand slowed.</p>",
        "link": "https://x.example.com/a?utm_campaign=z",
        "title_detail": {"language": "en-GB"},
        "published_parsed": _struct(NOW - timedelta(hours=1)),
    }
    row = normalise_entry(entry, now=NOW, feed_language="de")
    assert (row.item_key, row.guid, row.url) == ("urn:guid:1", "urn:guid:1", "https://x.example.com/a")
    assert (row.title, row.summary, row.language) == ("Acme cuts guidance", "Demand slowed.", "en-gb")
    assert row.published_at == NOW - timedelta(hours=1) and row.date_flag is None

    no_guid = normalise_entry({**entry, "id": None}, now=NOW, feed_language=None)
    assert no_guid.item_key == "https://x.example.com/a"
    bare = normalise_entry({"title": "Only a title here"}, now=NOW, feed_language="xx-bogus-tag-too-long")
    assert bare.item_key.startswith("sha256:") and bare.language is None
    assert normalise_entry({"summary": "Text without title"}, now=NOW, feed_language=None).title == (
        "Text without title"
    )
    assert normalise_entry({"title": " <b></b> "}, now=NOW, feed_language=None) is None
    long_guid = normalise_entry({**entry, "id": "g" * 5000}, now=NOW, feed_language=None)
    assert long_guid.item_key.startswith("sha256:") and len(long_guid.item_key) < 100


def test_an_rss_date_without_a_zone_is_read_as_utc():
    # feedparser leaves such dates unparsed; they used to become "missing" (the fetch time).
    entry = {"published": "Sun, 08 Mar 2026 06:45:00"}
    assert entry_date(entry, NOW) == (datetime(2026, 3, 8, 6, 45, tzinfo=UTC), None)
    assert entry_date({"published": "not a date"}, NOW) == (NOW, "missing")
    # What feedparser rejected for another reason stays rejected.
    for bad in ("31 Feb 2026 06:45:00 GMT", "Sun, 08 Mar 2026 25:61:00", "Sun, 08 Mar 2026 06:45:00 +0530x"):
        assert entry_date({"published": bad}, NOW) == (NOW, "missing"), bad
    # A date feedparser did parse, in any field, comes before the fallback.
    updated = NOW - timedelta(hours=5)
    assert entry_date(
        {"published": "Sun, 08 Mar 2026 06:45:00", "updated_parsed": _struct(updated)}, NOW
    ) == (
        updated,
        None,
    )


def _one_item(pub_date: str) -> bytes:
    item = f"<item><title>t</title><pubDate>{pub_date}</pubDate></item>"
    return f'<rss version="2.0"><channel><title>x</title>{item}</channel></rss>'.encode()


@pytest.mark.parametrize(
    "raw",
    [
        "-0001-01-01T00:00:00Z",
        "2026-11-29T06:00:00+9999",
        "Sun, 29 Nov 2026 06:00:00 +9999",
        "2026-11-29T06:00+99:99",
    ],
)
def test_dates_feedparser_would_shift_are_flagged_invalid(raw):
    import feedparser

    (entry,) = feedparser.parse(_one_item(raw)).entries
    assert entry_date(entry, NOW) == (NOW, "invalid")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Zone names feedparser does not know: it read every one of them as UTC.
        ("Sun, 29 Nov 2026 10:00:00 JST", datetime(2026, 11, 29, 1, 0, tzinfo=UTC)),
        ("Sun, 29 Nov 2026 05:00 CET", datetime(2026, 11, 29, 4, 0, tzinfo=UTC)),
        ("Sunday, 29 November 2026 10:00:00 HKT", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        ("29 Nov 26 10:00:00 IST", datetime(2026, 11, 29, 4, 30, tzinfo=UTC)),
        ("Sun, 29 Nov 2026 10:00:00 UTC+8", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        # Its "GMT+8" was no date at all; the zones it knows keep its reading.
        ("Sun, 29 Nov 2026 10:00:00 GMT+8", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        ("Sun, 29 Nov 2026 00:00:00 GMT-05:30", datetime(2026, 11, 29, 5, 30, tzinfo=UTC)),
        ("Sun, 29 Nov 2026 00:00:00 EST", datetime(2026, 11, 29, 5, 0, tzinfo=UTC)),
        ("Sun, 29 Nov 2026 05:00:00 GMT", datetime(2026, 11, 29, 5, 0, tzinfo=UTC)),
        # A 12-hour clock is a time, not a zone named "PM" (no zone: UTC, as without one).
        ("Sat, 28 Nov 2026 10:00 PM", datetime(2026, 11, 28, 22, 0, tzinfo=UTC)),
        ("Sun, 29 Nov 2026 12:30 AM", datetime(2026, 11, 29, 0, 30, tzinfo=UTC)),
        ("Sat, 28 Nov 2026 12:05:00 PM EST", datetime(2026, 11, 28, 17, 5, tzinfo=UTC)),
        ("Sat, 28 Nov 2026 10:00pm JST", datetime(2026, 11, 28, 13, 0, tzinfo=UTC)),
    ],
)
def test_zone_names_are_read_as_the_zone_they_name(raw, expected):
    import feedparser

    (entry,) = feedparser.parse(_one_item(raw)).entries
    assert entry_date(entry, NOW) == (expected, None)


@pytest.mark.parametrize(
    "raw", ["Sun, 29 Nov 2026 05:00:00 XYZ", "Sun, 29 Nov 2026 05:00:00 UTC+15", "Sun, 29 Nov 2026 05:00 AMT"]
)
def test_a_zone_no_table_knows_is_flagged_invalid_not_read_as_utc(raw):
    import feedparser

    (entry,) = feedparser.parse(_one_item(raw)).entries
    assert entry_date(entry, NOW) == (NOW, "invalid")


def test_a_valid_zone_and_a_date_without_time_are_kept():
    import feedparser

    for raw, expected in [
        ("2026-11-29T06:00:00+14:00", datetime(2026, 11, 28, 16, 0, tzinfo=UTC)),
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=UTC)),
    ]:
        (entry,) = feedparser.parse(_one_item(raw)).entries
        assert entry_date(entry, NOW) == (expected, None), raw


def test_bidi_controls_are_stripped_from_titles_and_summaries():
    row = normalise_entry(
        {"title": "Acme \u202eSELL\u202c shares \u2066now\u2069", "summary": "x\u200fy\u061cz"},
        now=NOW,
        feed_language=None,
    )
    assert row.title == "Acme SELL shares now" and row.summary == "xyz"


def test_a_huge_title_is_stored_bounded_but_kept_whole_for_linking():
    title = "Acme " + "word " * 20_000 + "$ACME"
    row = normalise_entry({"title": title, "link": "https://x.example/a"}, now=NOW, feed_language=None)
    assert len(row.title) <= 1000 and "$ACME" not in row.text()
    assert row.full_text().endswith("$ACME")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<script>x</script>Text", "Text"),
        ("a<SCRIPT type='x'>alert(1)</script >b", "a b"),
        ("a<style>p{}</STYLE\n>b<noscript>c</noscript>d", "a b d"),
        ("a<script>x</scripts>y</script>b", "a b"),  # "</scripts>" does not close it
        ("a<!-- <script> -->b</script>c", "a b c"),  # a comment hides what looks like a script
        # Never closed: only the opening goes, so a headline about markup keeps its words.
        ("Kept<script>never closed", "Kept never closed"),
        ("Kept<!-- never closed", "Kept never closed"),
        ("XSS lets hackers add &lt;script&gt; to Acme pages", "XSS lets hackers add to Acme pages"),
        ("a<script>b<script>c</script>d", "a d"),
        ("<script>" * 40000, ""),
    ],
)
def test_script_style_noscript_and_comments_are_removed(raw, expected):
    assert clean_text(raw, 1000) == expected


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "hostile",
    [
        "<script>" * 250_000,  # 2 MB of openings without an end: quadratic took hours
        "<!--" * 500_000,
        "<a" + "a" * 2_000_000,  # a tag that never closes
        "<noscript x" * 200_000,
    ],
)
def test_hostile_markup_is_stripped_in_linear_time(hostile):
    assert "script" not in clean_text(hostile, 100)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # A link that would close a Slack link and mention @channel (feedparser has decoded
        # the &gt; &lt;): what a URL may not contain is percent-encoded.
        (
            "https://evil.example/x><!channel>|Click to verify your account",
            "https://evil.example/x%3E%3C!channel%3E%7CClick%20to%20verify%20your%20account",
        ),
        ('https://x.example/a b"c\\d^e`f{g}', "https://x.example/a%20b%22c%5Cd%5Ee%60f%7Bg%7D"),
        ("https://x.example/a%20b?q=%3Cy%3E", "https://x.example/a%20b?q=%3Cy%3E"),  # not encoded twice
        ("https://x.example/a?q=<y>|z", "https://x.example/a?q=%3Cy%3E%7Cz"),
        (
            "https://x.example/caf%C3%A9/a-b_c.d~e!$&'()*+,;=:@",
            "https://x.example/caf%C3%A9/a-b_c.d~e!$&'()*+,;=:@",
        ),
        ("https://ev<il>.example/", None),  # no host has those in its name
    ],
)
def test_canonical_url_encodes_what_a_url_may_not_contain(raw, expected):
    assert canonical_url(raw) == expected
    if expected is not None:
        assert canonical_url(expected) == expected


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        ("/news/acme-ceo", "https://news.example.com/", "https://news.example.com/news/acme-ceo"),
        (
            "acme-ceo?id=3",
            "https://news.example.com/markets/",
            "https://news.example.com/markets/acme-ceo?id=3",
        ),
        ("//cdn.example.com/a", "http://news.example.com/", "https://cdn.example.com/a"),
        ("//cdn.example.com/a", None, "https://cdn.example.com/a"),
        ("https://other.example/a", "https://news.example.com/", "https://other.example/a"),
        ("/news/acme-ceo", None, "/news/acme-ceo"),  # no base: left as it was (and dropped)
        ("javascript:alert(1)", "https://news.example.com/", "javascript:alert(1)"),
        ("data:text/html,x", "https://news.example.com/", "data:text/html,x"),
        ("#top", "https://news.example.com/", "#top"),
    ],
)
def test_relative_links_are_resolved_against_the_base(link, base, expected):
    assert absolute_link(link, base) == expected


def test_a_relative_link_resolved_is_the_article_link_and_its_identity():
    entry = {
        "title": "Acme names a new CEO",
        "link": absolute_link("/news/acme-ceo", "https://news.example.com/"),
    }
    row = normalise_entry(entry, now=NOW, feed_language=None)
    assert row.url == row.item_key == "https://news.example.com/news/acme-ceo"
    for dropped in ("javascript:alert(1)", "data:text/html,x"):
        assert (
            normalise_entry(
                {**entry, "link": absolute_link(dropped, "https://n.example/")}, now=NOW, feed_language=None
            ).url
            is None
        )
