"""Parsing hostile bytes: entity bombs, XXE, HTML pages, broken XML, wrong charsets."""

from __future__ import annotations

import io

import feedparser
import pytest
from ingest_helpers import rss, rss_item

from pipeline.ingest.parse import FeedParseError, parse_feed

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>t</title><item><title>&lol9;</title></item></channel></rss>'
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<rss version="2.0"><channel><title>t</title><item><title>x &xxe;</title>'
    b"<description>&xxe;</description></item></channel></rss>"
)


def outcome(body: bytes, **kw) -> str:
    with pytest.raises(FeedParseError) as err:
        parse_feed(body, **kw)
    assert "\n" not in str(err.value)
    return err.value.outcome


def test_entity_bombs_and_external_entities_are_refused():
    assert outcome(LAUGHS) == "unsafe_xml"
    assert outcome(XXE) == "unsafe_xml"
    # An entity declared past the first 64 KiB is found too.
    assert outcome(b"<rss>" + b" " * 70_000 + b"<!ENTITY x 'y'>") == "unsafe_xml"


@pytest.mark.parametrize("payload", [LAUGHS, XXE])
def test_feedparser_itself_neither_expands_nor_reads_files(payload):
    # Defence in depth: were the screen bypassed, feedparser (as we call it) stays safe.
    result = feedparser.parse(io.BytesIO(payload), sanitize_html=False, resolve_relative_uris=False)
    text = " ".join(f"{e.get('title', '')} {e.get('summary', '')}" for e in result.entries)
    assert len(text) < 1000
    assert "root:" not in text


def test_body_naming_a_local_file_is_not_opened():
    # feedparser.parse(bytes) would open a file named by the body; we never let it.
    assert outcome(b"/etc/passwd") == "not_a_feed"


def test_html_empty_and_broken_bodies():
    assert outcome(b"<!DOCTYPE html><html><body>Oops</body></html>") == "not_a_feed"
    assert outcome(b"<p>hi</p>", headers={"content-type": "text/html; charset=utf-8"}) == "not_a_feed"
    assert outcome(b"") == "empty"
    assert outcome(b"  \n\t ") == "empty"
    assert outcome(b'{"items": []}') == "not_a_feed"
    assert outcome(b"<?xml version='1.0'?><rss><channel><title>x</ti") == "parse_error"


def test_bozo_feed_with_entries_is_used_with_a_warning():
    body = rss([rss_item(1, "placeholder")]).replace(b"placeholder", b"Profits & losses")
    parsed = parse_feed(body)
    assert [e.title for e in parsed.entries] == ["Profits & losses"]
    assert parsed.warning and "not well-formed" in parsed.warning


def test_charsets():
    cp1252 = (
        '<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Acme’s €2bn deal</title></item></channel></rss>"
    ).encode("cp1252")
    assert parse_feed(cp1252).entries[0].title == "Acme’s €2bn deal"
    invalid_utf8 = rss([rss_item(1, "Caf\u00e9 placeholder")]).replace(b"placeholder", b"\xff\xfe bad")
    parsed = parse_feed(invalid_utf8)
    assert len(parsed.entries) == 1 and parsed.warning


def test_valid_empty_feed_is_not_an_error():
    parsed = parse_feed(rss([]))
    assert parsed.entries == [] and parsed.warning is None and parsed.version == "rss20"
    assert parsed.title == "Example Markets" and parsed.language == "en-us"


def _hint(extra: str) -> int | None:
    return parse_feed(rss([rss_item(1, "Acme Corp beats estimates")], channel_extra=extra)).poll_interval_s


def test_polling_hints():
    assert _hint("") is None
    assert _hint("<ttl>60</ttl>") == 3600
    assert _hint("<ttl> 15 </ttl>") == 900
    # <ttl> wins over the syndication module; absurd values are bounded, not trusted.
    assert _hint("<ttl>30</ttl><sy:updatePeriod>daily</sy:updatePeriod>") == 1800
    assert _hint("<ttl>99999999999</ttl>") == 365 * 86400
    assert _hint("<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>") == 900
    assert _hint("<sy:updatePeriod>daily</sy:updatePeriod>") == 86400
    assert _hint("<sy:updateFrequency>2</sy:updateFrequency>") == 43200  # period defaults to daily
    # Nonsense is ignored rather than guessed at.
    for bad in (
        "<ttl>0</ttl>",
        "<ttl>-5</ttl>",
        "<ttl>soon</ttl>",
        "<sy:updatePeriod>fortnightly</sy:updatePeriod>",
        "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>0</sy:updateFrequency>",
    ):
        assert _hint(bad) is None, bad


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp037"])
def test_entities_are_refused_in_any_encoding(encoding):
    text = XXE.decode().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
    assert outcome(text.encode(encoding)) == "unsafe_xml"


def test_entities_in_utf16_declared_only_by_the_server_are_refused():
    body = XXE.decode().encode("utf-16-le")
    assert outcome(body, headers={"content-type": "application/rss+xml; charset=utf-16le"}) == "unsafe_xml"


def test_the_feeds_own_language_and_title_are_cleaned_as_items_are():
    # "en&#0;" once crashed every ingest run: PostgreSQL refuses a NUL in the stored language.
    body = rss([rss_item(1)], language="en&#0;", title="Example\x1b[31m Markets").replace(
        b"Example\x1b[31m", b"Example&#x1b;[31m&#1;"
    )
    parsed = parse_feed(body)
    assert parsed.language is None and parsed.title == "Example[31m Markets"
    assert parse_feed(rss([rss_item(1)], language=" EN_gb ")).language == "en-gb"


NON_TEXT_CODECS = [
    "punycode",
    "idna",
    "rot13",
    "unicode_escape",
    "raw_unicode_escape",
    "uu",
    "base64",
    "zlib",
    "hex",
    "quopri",
    "bz2",
    "undefined",
]


def test_an_entity_declared_in_utf_7_is_refused():
    doc = '<?xml version="1.0" encoding="utf-7"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r/>'
    with pytest.raises(FeedParseError) as err:
        parse_feed(doc.encode("utf-7"))
    assert err.value.outcome == "unsafe_xml"


@pytest.mark.timeout(20)
def test_a_one_line_feed_is_read_in_its_declared_encoding_whatever_its_text_says():
    """feedparser reads the encoding from the first line, in time cubic in its length: the
    declaration is put on a line of its own, and an encoding="..." in the text refuses nothing."""
    item = '<item><title>Acme sets encoding="base64" on parts</title><link>https://x.example/a</link></item>'
    body = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
    assert len(parse_feed((body + item * 2000 + "</channel></rss>").encode()).entries) == 2000
    # A declaration that never ends is no feed, refused at once rather than after hours.
    with pytest.raises(FeedParseError) as err:
        parse_feed(("<?xml " + "encoding='a' " * 20000).encode())
    assert err.value.outcome == "parse_error" and "does not end within 1024 bytes" in str(err.value)


def _declaring(encoding: str, items: int = 1) -> bytes:
    body = rss([rss_item(i) for i in range(items)])
    return body.replace(b'encoding="utf-8"', f'encoding="{encoding}"'.encode())


@pytest.mark.timeout(20)
@pytest.mark.parametrize("codec", NON_TEXT_CODECS)
def test_a_charset_that_is_no_text_encoding_is_refused_before_decoding(codec):
    # punycode decodes in quadratic time: a 1 MB body took minutes.
    big = _declaring(codec, items=4000)
    for kw in ({}, {"headers": {"content-type": f"application/rss+xml; charset={codec}"}}):
        body = big if not kw else rss([rss_item(i) for i in range(4000)])
        with pytest.raises(FeedParseError) as err:
            parse_feed(body, **kw)
        assert err.value.outcome == "parse_error" and "\n" not in str(err.value)
        assert f"charset '{codec}'" in str(err.value)


@pytest.mark.parametrize(
    "encoding",
    [
        *("latin-1", "iso-8859-15", "windows-1251", "cp437", "koi8-r", "mac-roman", "shift_jis", "euc-jp"),
        *("iso-2022-jp", "gb2312", "gbk", "gb18030", "big5", "euc-kr", "us-ascii", "UTF8", "utf-16", "utf-7"),
    ],
)
def test_real_text_encodings_are_read(encoding):
    title = "Acme Corp beats estimates"
    body = _declaring(encoding).decode().replace("Acme Corp reports record quarterly revenue, item 0", title)
    parsed = parse_feed(body.encode(encoding))
    assert [e.title for e in parsed.entries] == [title]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/xml; charset=utf-8; charset=utf-16",  # feedparser reads the last one
        'application/xml; charset="utf 16"',  # Python reads "utf 16" as UTF-16
        "application/xml; charset=utf-16le; charset=utf-8",
    ],
)
def test_entities_are_screened_under_every_charset_the_server_declares(content_type):
    # No BOM and no "<?" to sniff: only the header tells that the body is UTF-16.
    body = XXE.decode().replace('<?xml version="1.0"?>\n', "").encode("utf-16-le")
    assert outcome(body, headers={"content-type": content_type}) == "unsafe_xml"


def test_entities_are_screened_under_the_last_encoding_of_the_declaration():
    # feedparser takes the last encoding="..." on the first line.
    text = XXE.decode().replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-8" encoding="utf 16"?>'
    )
    assert outcome(text.encode("utf-16-le")) == "unsafe_xml"
    assert outcome(("\ufeff" + text).encode("utf-16-le")) == "unsafe_xml"


@pytest.mark.timeout(20)
def test_an_html_sniff_does_not_backtrack_over_comments():
    # Each "<!---->" doubled the time a comment-then-HTML check took when no HTML followed.
    assert outcome(b"<!---->" * 60 + b"not a feed") in ("not_a_feed", "parse_error")
    assert outcome(b"<!-- x -->\n<!DOCTYPE html><html></html>") == "not_a_feed"


def test_a_surrogate_character_reference_costs_only_that_character():
    items = [rss_item(1, "Surrogate placeholder title"), rss_item(2, "Fine title")]
    body = rss(items).replace(b"placeholder", b"&#xD800; &#56320; &#xd7ff; &#57344;")
    parsed = parse_feed(body)
    assert [e.title for e in parsed.entries] == ["Surrogate \ufffd \ufffd \ud7ff \ue000 title", "Fine title"]


@pytest.mark.parametrize(
    ("declaration", "named"),
    [
        (b'<?xml version="1.0" encoding="ut\xfff-8"?>', "ut\\xfff-8"),
        (b'<?xml version="1.0" encoding="x\x00y"?>', "x\\x00y"),
    ],
)
def test_what_feedparser_chokes_on_is_a_parse_error_naming_it(declaration, named):
    body = rss([rss_item(1)]).replace(b'<?xml version="1.0" encoding="utf-8"?>', declaration)
    with pytest.raises(FeedParseError) as err:
        parse_feed(body)
    assert err.value.outcome == "parse_error" and "\n" not in str(err.value)
    assert named in str(err.value)


def test_feed_controlled_text_in_warnings_and_errors_is_one_plain_line():
    hostile = "\x1b]0;owned\x07\x1b[31mRED\u202e"
    parsed = parse_feed(_declaring(hostile))
    assert parsed.warning and "owned" in parsed.warning
    assert not any(c in parsed.warning for c in "\x1b\x07\u202e\n")
    with pytest.raises(FeedParseError) as err:
        parse_feed(b"<p>hi</p>", headers={"content-type": "text/html; x=\x1b[2J\n"})
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)


def test_relative_item_links_are_resolved_against_the_channel_link():
    items = [
        rss_item(1, link="/news/acme-ceo"),
        rss_item(2, link="//cdn.example.com/b"),
        rss_item(3, link="javascript:alert(1)"),
    ]
    parsed = parse_feed(rss(items))
    assert parsed.link == "https://news.example.com/"
    assert [e.link for e in parsed.entries] == [
        "https://news.example.com/news/acme-ceo",
        "https://cdn.example.com/b",
        "javascript:alert(1)",
    ]
    no_channel_link = rss(items[:1]).replace(b"<link>https://news.example.com/</link>", b"")
    assert parse_feed(no_channel_link).entries[0].link == "/news/acme-ceo"  # the fetcher has the feed URL


def test_an_entry_a_cut_short_body_ends_inside_is_skipped():
    # A server error mid-feed (PHP's "Fatal error" after half an item): the open item has
    # no guid, link or date yet. Stored, it would be keyed by its partial text and its
    # complete copy at the next fetch would be a second article.
    items = [
        rss_item(i, f"Acme Corp story number {i}", description=f"Text {i}", link=f"https://x.example/{i}")
        for i in range(3)
    ]
    full = rss(items)
    cut = full[: full.index(b"<link>https://x.example/2")] + b"\n<b>Fatal error</b>: Allowed memory size"
    parsed = parse_feed(cut)
    assert [e.id for e in parsed.entries] == ["0", "1"]
    assert parsed.warning and "1 incomplete entries skipped" in parsed.warning
    # Cut inside an Atom entry, in a body that is not UTF-8.
    atom_body = (
        '<?xml version="1.0" encoding="iso-8859-1"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>t</title><entry><id>a</id><title>Caf\u00e9 one</title></entry><entry><title>Caf\u00e9 t"
    ).encode("latin-1")
    assert [e.title for e in parse_feed(atom_body).entries] == ["Caf\u00e9 one"]


def test_a_malformed_but_complete_feed_keeps_every_entry():
    # Broken for another reason (a bare "&"), every item closed, one of them empty: none skipped.
    body = rss([rss_item(1, "placeholder"), "<item/>", rss_item(2, "Acme Corp beats estimates")])
    parsed = parse_feed(body.replace(b"placeholder", b"Profits & losses"))
    assert parsed.warning and "not well-formed" in parsed.warning
    assert len(parsed.entries) == 3 and "incomplete" not in parsed.warning
    # Not well-formed only because the channel is never closed: nothing is missing.
    unclosed = rss([rss_item(1, "Acme Corp beats estimates")]).removesuffix(b"</channel></rss>")
    parsed = parse_feed(unclosed)
    assert parsed.warning and len(parsed.entries) == 1


def _titles(body: bytes, content_type: str) -> tuple[list[str], str | None]:
    parsed = parse_feed(body, headers={"content-type": content_type})
    return [e.title for e in parsed.entries], parsed.warning


def test_a_text_xml_feed_is_read_in_the_charset_it_states():
    # "text/xml" alone meant US-ASCII to feedparser (RFC 3023), before any byte order mark:
    # a UTF-16 feed of plain English text was lost, and a UTF-8 one warned at every fetch.
    plain = rss([rss_item(1, "Acme Corp beats estimates")])
    utf16 = plain.replace(b'encoding="utf-8"', b'encoding="utf-16"').decode().encode("utf-16")
    assert _titles(utf16, "text/xml") == (["Acme Corp beats estimates"], None)
    # A byte order mark outweighs the server's charset (Apache's AddDefaultCharset).
    assert _titles(utf16, "text/xml; charset=UTF-8") == (["Acme Corp beats estimates"], None)
    utf32 = plain.replace(b'encoding="utf-8"', b'encoding="utf-32"').decode().encode("utf-32")
    assert _titles(utf32, "application/rss+xml; charset=utf-8") == (["Acme Corp beats estimates"], None)
    euro = rss([rss_item(1, "Acme’s €2bn deal")])
    assert _titles(euro, "text/xml") == (["Acme’s €2bn deal"], None)
    cp1252 = euro.replace(b'encoding="utf-8"', b'encoding="windows-1252"').decode().encode("cp1252")
    assert _titles(cp1252, "text/xml;charset=") == (["Acme’s €2bn deal"], None)
    # A charset the server states still counts, and so does its mismatch.
    titles, warning = _titles(cp1252, "text/xml; charset=utf-8")
    assert titles == ["Acme’s €2bn deal"] and "declared as utf-8" in warning
