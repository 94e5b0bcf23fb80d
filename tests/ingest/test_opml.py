"""OPML in and out: nested folders, round trips, and hostile or broken files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.errors import ConfigError
from pipeline.ingest.opml import read_opml, write_opml

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def test_nested_folders_become_tags(tmp_path):
    path = tmp_path / "reader.opml"
    path.write_text(
        '<?xml version="1.0"?><opml version="1.0"><head/><body>'
        '<outline title="News"><outline text="Markets">'
        '<outline text="Wire" xmlUrl=" https://wire.example.com/rss "/></outline></outline>'
        '<outline title="Only a title" type="rss" xmlUrl="https://t.example.com/feed"/>'
        '<outline text="No URL, no children"/>'
        "</body></opml>"
    )
    feeds = read_opml(path)
    assert [(f.url, f.name, f.tags) for f in feeds] == [
        ("https://wire.example.com/rss", "Wire", ("News", "Markets")),
        ("https://t.example.com/feed", "Only a title", ()),
    ]


def test_write_then_read_round_trips(tmp_path):
    rows = [
        ("https://a.example.com/rss", "A & B <Markets>", ["markets"]),
        ("https://c.example.com/atom", None, []),
        ("/srv/feeds/local.xml", "Local", ["markets", "extra"]),
    ]
    path = tmp_path / "out.opml"
    path.write_text(write_opml(rows, now=NOW))
    assert [(f.url, f.name, f.tags) for f in read_opml(path)] == [
        ("https://a.example.com/rss", "A & B <Markets>", ("markets",)),
        ("file:///srv/feeds/local.xml", "Local", ("markets",)),  # a URL to other readers
        ("https://c.example.com/atom", "https://c.example.com/atom", ()),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<opml><body><outline", "not well-formed XML"),
        ('<?xml version="1.0"?><rss version="2.0"/>', "is not OPML (root element <rss>"),
        ('<opml version="2.0"><head/></opml>', "has no <body>"),
        (
            '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<opml><body><outline text="&x;" xmlUrl="https://x.example.com/"/></body></opml>',
            "declares entities or a DTD",
        ),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.opml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="OPML") as err:
        read_opml(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_opml(tmp_path / "nope.opml")


def test_outlines_nested_thousands_deep_are_refused_in_one_line(tmp_path):
    path = tmp_path / "deep.opml"
    n = 5000
    path.write_text(
        '<opml version="2.0"><body>'
        + '<outline text="f">' * n
        + '<outline xmlUrl="https://a.example.com/rss"/>'
        + "</outline>" * n
        + "</body></opml>"
    )
    with pytest.raises(ConfigError, match="deep") as info:
        read_opml(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
