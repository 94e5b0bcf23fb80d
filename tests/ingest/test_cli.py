"""`finsent ingest` and `finsent feeds`: exit codes, health, OPML round trip."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from ingest_helpers import NOW, FeedServer, feed_server_fixture, rss, rss_feed, rss_item  # noqa: F401

from pipeline.cli import cli


@pytest.fixture
def runner(settings, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # `settings` clears FINSENT_* from the environment; point the CLI at the test database.
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_ingest_exits_zero_when_some_feeds_fail(runner, db, feed_server: FeedServer):
    good = feed_server.add("/good", rss_feed(3))
    bad = feed_server.add("/bad", b"nope", status=502, content_type="text/plain")
    assert run(runner, "feeds", "add", good, bad).exit_code == 0
    result = run(runner, "ingest", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "2 feeds, 3 new, 0 updated, 0 duplicates, 1 failed" in result.output
    assert "HTTP 502" in result.output

    listed = run(runner, "feeds", "list")
    assert listed.exit_code == 0
    assert "last error: HTTP 502 Bad Gateway" in listed.output
    assert "never" in listed.output  # the bad feed never succeeded
    assert "tags:" not in listed.output
    assert (
        run(runner, "feeds", "add", feed_server.add("/tagged", rss_feed(1)), "--tag", "Markets").exit_code
        == 0
    )
    assert "      tags: markets" in run(runner, "feeds", "list").output.splitlines()


@pytest.mark.slow
def test_feeds_list_shows_the_polling_interval_a_feed_asks_for(runner, db, feed_server: FeedServer):
    hinted = feed_server.add("/hinted", rss_feed(1, channel_extra="<ttl>120</ttl>"))
    plain = feed_server.add("/plain", rss_feed(1, prefix="plain"))
    assert run(runner, "feeds", "add", hinted, plain).exit_code == 0
    assert run(runner, "ingest", "--no-progress").exit_code == 0
    listed = run(runner, "feeds", "list").output.splitlines()
    assert listed[0].split()[-2:] == ["asks", "url"]
    row = {line.split()[-1]: line.split() for line in listed[1:]}
    assert row[hinted][-2] == "2h"  # <ttl> is in minutes
    assert row[plain][-2] == "-"


def test_ingest_fails_when_the_database_is_down(runner, monkeypatch):
    monkeypatch.setenv("FINSENT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    result = run(runner, "ingest", "--no-progress")
    assert result.exit_code != 0
    assert "finsent: error: database: cannot connect" in result.output


def test_ingest_fails_on_a_bad_watchlist(runner, db, tmp_path, monkeypatch):
    wl = tmp_path / "w.csv"
    wl.write_text("ticker,name\nNOT A TICKER,Foo\n")
    monkeypatch.setenv("FINSENT_WATCHLIST_PATH", str(wl))
    result = run(runner, "ingest", "--no-progress")
    assert result.exit_code != 0
    assert "line 2: ticker 'NOT A TICKER' is not a ticker" in result.output


def test_feeds_add_many_all_or_nothing(runner, db, tmp_path):
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_bytes(rss_feed(1))
    b.write_bytes(rss_feed(1))
    bad = run(runner, "feeds", "add", str(a), "ftp://x/y", str(tmp_path / "missing.xml"))
    assert bad.exit_code != 0 and "no feed was added" in bad.output
    ok = run(runner, "feeds", "add", str(a), str(b), "https://news.example.com/rss")
    assert ok.exit_code == 0 and ok.output.count("added") == 3


def test_a_removed_feed_is_named_on_add_and_can_be_enabled(runner, db, tmp_path):
    from pipeline.db.models import Feed

    a = tmp_path / "a.xml"
    a.write_bytes(rss_feed(1))
    assert run(runner, "feeds", "add", str(a)).exit_code == 0
    with db.transaction() as session:  # as `feeds remove` leaves a feed with stored articles
        session.query(Feed).update({Feed.enabled: False})
    again = run(runner, "feeds", "add", str(a))
    assert "exists" in again.output and "`finsent feeds enable" in again.output
    enabled = run(runner, "feeds", "enable", str(a))
    assert enabled.exit_code == 0 and enabled.output.startswith("enabled  #")
    assert run(runner, "feeds", "enable", str(a)).output.startswith("already on")
    assert "no such feed: 999" in runner.invoke(cli, ["feeds", "enable", "999"]).output


def test_feeds_export_to_a_missing_folder_is_one_line(runner, db, tmp_path):
    result = runner.invoke(cli, ["feeds", "export", str(tmp_path / "no" / "x.opml")])
    assert result.exit_code == 2
    assert "cannot write" in result.output and "No such file or directory" in result.output
    assert "unexpected" not in result.output


def test_opml_import_export_round_trip(runner, db, tmp_path):
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        '<outline text="Markets"><outline type="rss" text="Wire" xmlUrl="https://wire.example.com/rss"/>'
        '<outline type="rss" text="Ledger" xmlUrl="https://ledger.example.com/atom"/></outline>'
        '<outline type="rss" text="Loose" xmlUrl="https://loose.example.com/feed"/>'
        "</body></opml>"
    )
    result = run(runner, "feeds", "import", str(opml))
    assert result.exit_code == 0 and "3 added" in result.output
    assert "0 added, 3 already present" in run(runner, "feeds", "import", str(opml)).output

    out = tmp_path / "out.opml"
    assert run(runner, "feeds", "export", str(out)).exit_code == 0
    from pipeline.ingest.opml import read_opml

    feeds = read_opml(out)
    assert [(f.url, f.name, f.tags) for f in feeds] == [
        # Tags are stored in lower case: a folder "Markets" comes back as "markets".
        ("https://wire.example.com/rss", "Wire", ("markets",)),
        ("https://ledger.example.com/atom", "Ledger", ("markets",)),
        ("https://loose.example.com/feed", "Loose", ()),
    ]
    stdout = run(runner, "feeds", "export")
    assert stdout.output.startswith("<?xml") and "xmlUrl" in stdout.output


def test_opml_with_entities_is_refused(runner, db, tmp_path):
    opml = tmp_path / "evil.opml"
    opml.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        '<opml version="2.0"><body><outline text="&b;" xmlUrl="https://x.example.com/rss"/></body></opml>'
    )
    result = run(runner, "feeds", "import", str(opml))
    assert result.exit_code != 0 and "declares entities" in result.output


def test_feeds_relink_after_a_watchlist_edit(runner, db, tmp_path, monkeypatch):
    monkeypatch.setenv("FINSENT_UNIVERSE", "watchlist")  # the watchlist alone (the universe: tests/companies)
    feed = tmp_path / "feed.xml"
    feed.write_bytes(
        rss(
            [
                rss_item("a", "Voltara Motors recalls 40,000 SUVs over faulty brakes", when=NOW),
                rss_item("b", "Orbix Cloud Systems wins a defence contract", when=NOW - timedelta(hours=3)),
            ]
        )
    )
    assert run(runner, "feeds", "add", str(feed)).exit_code == 0
    # No watchlist yet: nothing is linked.
    assert run(runner, "ingest", "--no-progress", "--now", NOW.isoformat()).exit_code == 0

    refused = run(runner, "feeds", "relink")
    assert refused.exit_code == 2 and "no watchlist: pass --watchlist FILE" in refused.output

    wl = tmp_path / "w.csv"
    wl.write_text("ticker,name\nVLTA,Voltara Motors Inc.\nORBX,Orbix Cloud Systems Inc.\n")
    dry = run(runner, "feeds", "relink", "--watchlist", str(wl), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would relink 2 articles: 2 links added, 0 removed, 0 updated (2 articles changed)" in dry.output

    # From the configured watchlist; only the recent article.
    monkeypatch.setenv("FINSENT_WATCHLIST_PATH", str(wl))
    since = (NOW - timedelta(hours=1)).isoformat()
    result = run(runner, "feeds", "relink", "--since", since, "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert "relinked 1 articles: 1 links added, 0 removed" in result.output
    assert "trend rollups refreshed (1 hour)" in result.output
    again = run(runner, "feeds", "relink", "--since", since)
    assert "relinked 1 articles: 0 links added, 0 removed, 0 updated (0 articles changed)" in again.output
    assert "rollups" not in again.output

    bad = run(runner, "feeds", "relink", "--watchlist", str(tmp_path / "missing.csv"))
    assert bad.exit_code != 0 and "does not exist" in bad.output and "Traceback" not in bad.output


@pytest.mark.slow
def test_the_demo_and_tagged_feeds_can_be_removed_together(runner, db, tmp_path, feed_server: FeedServer):
    from sqlalchemy import func, select, text

    from pipeline.db.models import Article, Feed
    from pipeline.run import register_demo
    from pipeline.settings import load_settings

    settings = load_settings(data_dir=tmp_path / "data").settings
    register_demo(db, settings, NOW)
    real = feed_server.add("/real", rss_feed(2, prefix="real"))
    legacy = feed_server.add("/legacy", rss_feed(1, prefix="legacy"))
    assert run(runner, "feeds", "add", real).exit_code == 0
    assert run(runner, "feeds", "add", legacy, "--tag", "old").exit_code == 0
    assert run(runner, "ingest", "--no-progress", "--now", NOW.isoformat()).exit_code == 0

    gone = run(runner, "feeds", "remove", "--demo", "--tag", "old", "--purge")
    assert gone.exit_code == 0, gone.output
    assert gone.output.count("purged") == 6  # five demo publishers and the tagged feed
    with db.session() as session:
        assert session.execute(select(Feed.url)).scalars().all() == [real]
        assert session.execute(select(func.count()).select_from(Article)).scalar_one() == 2
        # The purge refreshed the rollups: no hour waits for the next run.
        assert session.execute(text("SELECT count(*) FROM trends_dirty_hours")).scalar_one() == 0

    none_left = run(runner, "feeds", "remove", "--demo")
    assert none_left.exit_code == 2 and "no demo feed is registered" in none_left.output
    assert "give --tag or --demo" in run(runner, "feeds", "remove").output


def test_a_feed_urls_password_is_masked_in_every_feeds_command(runner, db, feed_server: FeedServer):
    url = feed_server.add("/private", rss_feed(1)).replace("http://", "http://analyst:hunter2secret@")
    for args in (("feeds", "add", url), ("feeds", "list"), ("feeds", "add", url)):
        result = run(runner, *args)
        assert result.exit_code == 0 and "hunter2secret" not in result.output
        assert "analyst:***@" in result.output
