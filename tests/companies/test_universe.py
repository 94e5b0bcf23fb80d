"""The universe: the bundled default, a watchlist that extends and overrides it, a CSV of
another market, the setting that picks one, and relinking stored articles to it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from ingest_helpers import NOW, rss, rss_item
from sqlalchemy import text

from pipeline.companies.build_from_entity_list import main as build_from_entity_list
from pipeline.companies.linking import TickerLinker, relink_articles
from pipeline.companies.universe import (
    BUNDLED_FILES,
    bundled_path,
    companies_for,
    describe,
    load_bundled,
    load_universe,
)
from pipeline.companies.watchlist import load_watchlist
from pipeline.errors import ConfigError
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import ingest


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_bundled_universe_is_the_sp500_and_large_non_us_companies():
    universe = load_bundled()
    us = [c for c in universe.companies if c.country == "US"]
    assert len(us) == 500  # 503 share classes: GOOG, FOX and NWS are classes of GOOGL, FOXA, NWSA
    assert len(universe) - len(us) >= 100
    assert (
        universe.company("GOOG").ticker == "GOOGL" and universe.company("BRK.B").name == "Berkshire Hathaway"
    )
    # The source and its date are stated in the file users can read.
    header = bundled_path(BUNDLED_FILES[0]).read_text(encoding="utf-8").splitlines()[:3]
    assert "as of August 2026" in " ".join(header) and "Public Domain" in " ".join(header)


def test_watchlist_extends_overrides_and_excludes(tmp_path):
    watchlist = load_watchlist(
        write(
            tmp_path,
            "w.csv",
            "ticker,name,aliases,subscribers,exclude\n"
            "VLTA,Voltara Motors Inc.,Voltara,,\n"  # a private company: added
            "AAPL,Apple Inc.,Cupertino giant,ir@example.com,\n"  # overridden: new alias, subscriber
            "F,Ford Motor Company,,,yes\n",  # excluded
        )
    )
    companies = load_universe("sp500", watchlist)
    linker = TickerLinker(companies)
    assert [m.ticker for m in linker.link("Voltara and the Cupertino giant team up; Ford falls")] == [
        "VLTA",
        "AAPL",
    ]
    assert companies.subscribers("AAPL") == ["ir@example.com"]
    assert "F" not in companies and "MSFT" in companies
    only = load_universe("watchlist", watchlist)
    assert only.tickers() == ["VLTA", "AAPL"]


def test_a_universe_file_of_another_market_and_its_errors(tmp_path):
    good = write(tmp_path, "in.csv", "ticker,name,aliases,country,exchange\nINFY,Infosys Ltd.,,IN,NSE\n")
    assert [m.ticker for m in TickerLinker(load_universe(str(good))).link("Infosys beats; Apple falls")] == [
        "INFY"
    ]
    bad = write(tmp_path, "bad.csv", "ticker,name\nINFY,Infosys Ltd.\nBAD TICKER,Oops\n")
    with pytest.raises(ConfigError) as err:
        load_universe(str(bad))
    message = str(err.value)
    assert "universe" in message and str(bad) in message and "line 3" in message and "\n" not in message
    with pytest.raises(ConfigError, match="FINSENT_UNIVERSE"):
        load_universe(str(tmp_path / "missing.csv"))


def test_setting_picks_the_universe(settings, tmp_path):
    assert settings.universe == "sp500"
    assert "MSFT" in companies_for(settings)
    assert "August 2026" in describe(settings)
    wl = write(tmp_path, "w.csv", "ticker,name\nVLTA,Voltara Motors Inc.\n")
    narrow = settings.model_copy(update={"universe": "watchlist", "watchlist_path": wl})
    assert companies_for(narrow).tickers() == ["VLTA"]


def test_indian_universe_built_from_an_entity_list(tmp_path):
    entity_list = write(
        tmp_path,
        "entity_list.csv",
        ",Symbol,Entity\n"
        '0,INFY,"Infosys Ltd., Infosys, INFY"\n'
        '1,M&M,"Mahindra & Mahindra Ltd., Mahindra & Mahindra, M&M"\n'
        '2,PHARMA,"large cap pharma stocks, healthcare, Drug makers, PHARMA"\n'
        # Shapes of the real list: a suffix in lower case, names that start with a digit or a
        # small letter, a European legal form; a theme whose names hold "bank" as a word.
        '3,TCS,"Tata Consultancy Services ltd., TCS"\n'
        '4,3IINFOTECH,"3i Infotech Ltd., 3i Infotech, 3IINFOTECH"\n'
        '5,ECLERC,"eClerx Services Ltd., eClerx Services, ECLERC, eClerx"\n'
        '6,SIEMENS,"Siemens AG Class N, Siemens India, Siemens AG, SIEMENS"\n'
        '7,PSUBANKS,"PSU bank stocks, state-run banks, PSUBANKS"\n',
    )
    out = tmp_path / "india.csv"
    assert build_from_entity_list([str(entity_list), str(out)]) == 0
    rows = list(csv.reader(line for line in out.read_text().splitlines() if not line.startswith("#")))
    assert rows[1:] == [
        ["INFY", "Infosys Ltd.", "Infosys", "IN", "NSE"],
        ["M&M", "Mahindra & Mahindra Ltd.", "Mahindra & Mahindra", "IN", "NSE"],
        ["TCS", "Tata Consultancy Services ltd.", "", "IN", "NSE"],
        ["3IINFOTECH", "3i Infotech Ltd.", "3i Infotech", "IN", "NSE"],
        ["ECLERC", "eClerx Services Ltd.", "eClerx Services|eClerx", "IN", "NSE"],
        ["SIEMENS", "Siemens AG Class N", "Siemens India|Siemens AG", "IN", "NSE"],
    ]
    linker = TickerLinker(load_universe(str(out)))
    assert [m.ticker for m in linker.link("Mahindra & Mahindra, Infosys lead Sensex gains")] == [
        "M&M",
        "INFY",
    ]


def test_relink_applies_a_changed_universe(db, settings, tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_bytes(
        rss(
            [
                rss_item("a", "Nvidia lines up $500 billion in financing", guid="a", when=NOW),
                rss_item(
                    "b",
                    "Chipmakers slide on export curbs",
                    guid="b",
                    when=NOW,
                    description="Shares fell across the sector as investors weighed new rules for "
                    "exports to China; analysts said the impact would take quarters to show, and "
                    "several funds trimmed positions. Among the laggards was Nvidia.",
                ),
            ]
        )
    )
    with db.transaction() as session:
        add_feeds(session, [str(feed)])
    ingest(db, settings.model_copy(update={"universe": "watchlist"}), now=NOW)
    report = relink_articles(db, companies_for(settings))
    assert (report.articles, report.added) == (2, 2)
    with db.engine.connect() as conn:
        rows = dict(
            conn.execute(
                text(
                    "SELECT a.item_key, e.relevance FROM article_entities e "
                    "JOIN articles a ON a.id = e.article_id WHERE e.ticker = 'NVDA'"
                )
            ).all()
        )
    # Named in the headline of a one-company story vs a late mention in the summary.
    assert rows["a"] >= 80 and rows["b"] < 30


def test_companies_command_says_where_the_universe_came_from(settings, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import cli

    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["companies", "google"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first, count, row = result.output.splitlines()[:3]
    assert "S&P 500" in first and "August 2026" in first and "public domain" in first
    assert count == "1 of 673 companies" and row.split()[0] == "GOOGL" and "GOOG," in row
    missing = CliRunner().invoke(cli, ["companies", "VLTA"], catch_exceptions=False)
    assert missing.output.splitlines()[1:] == [
        "0 of 673 companies",
        "  none: add it to the watchlist (FINSENT_WATCHLIST_PATH, docs/companies.md); "
        "`--demo` lists the demo's companies too",
    ]
    # As articles write them: a cashtag, Yahoo's class ticker, a typographic apostrophe.
    for query, ticker in (("$AAPL", "AAPL"), ("BRK-B", "BRK.B"), ("Lowe’s", "LOW"), ("Softbank", "9984.T")):
        found = CliRunner().invoke(cli, ["companies", query], catch_exceptions=False).output.splitlines()
        assert found[1] == "1 of 673 companies" and found[2].split()[0] == ticker, (query, found)
    # A query that names nothing is refused, not read as "every company".
    for empty in ("$", " "):
        refused = CliRunner().invoke(cli, ["companies", empty])
        assert refused.exit_code == 2 and "names nothing" in refused.output
    # A headline is read as the linker reads an article's.
    read = CliRunner().invoke(cli, ["companies", "Apple and Microsoft shares rise"], catch_exceptions=False)
    assert "an article saying it links these" in read.output
    assert [line.split()[0] for line in read.output.splitlines()[3:]] == ["AAPL", "MSFT"]
    demo = CliRunner().invoke(cli, ["companies", "--demo", "VLTA"], catch_exceptions=False)
    assert demo.exit_code == 0, demo.output
    assert "watchlist.csv" in demo.output.splitlines()[0]
    assert [line.split()[0] for line in demo.output.splitlines()[2:]] == ["VLTA"]
    assert "Voltara Motors" in demo.output
    # `--demo` writes nothing into the data dir: it reads the packaged watchlist.
    assert not (tmp_path / "data" / "demo").exists()
    # With a watchlist of your own, --demo still lists the demo's companies, as run --demo links.
    own = tmp_path / "mine.csv"
    own.write_text("ticker,name,aliases\nACME,Acme Widgets,\n", encoding="utf-8")
    monkeypatch.setenv("FINSENT_WATCHLIST_PATH", str(own))
    mine = CliRunner().invoke(cli, ["companies", "--demo", "VLTA"], catch_exceptions=False)
    assert [line.split()[0] for line in mine.output.splitlines()[2:]] == ["VLTA"], mine.output
    monkeypatch.delenv("FINSENT_WATCHLIST_PATH")
    monkeypatch.setenv("FINSENT_UNIVERSE", str(tmp_path / "nope.csv"))
    bad = CliRunner().invoke(cli, ["companies"])
    assert bad.exit_code != 0 and "nope.csv does not exist" in bad.output and "Traceback" not in bad.output


def test_feeds_relink_uses_the_configured_universe(db, settings, database_url, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import cli

    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss([rss_item("a", "JPMorgan, Citi beat estimates", guid="a", when=NOW)]))
    with db.transaction() as session:
        add_feeds(session, [str(feed)])
    ingest(db, settings.model_copy(update={"universe": "watchlist"}), now=NOW)
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["feeds", "relink", "--no-refresh"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "relinked 1 articles: 2 links added, 0 removed" in result.output
    monkeypatch.setenv("FINSENT_UNIVERSE", "watchlist")  # and back: the bundled companies unlinked
    narrowed = CliRunner().invoke(cli, ["feeds", "relink", "--watchlist", str(tmp_path / "w.csv")])
    assert narrowed.exit_code != 0 and "does not exist" in narrowed.output
    (tmp_path / "w.csv").write_text("ticker,name\nVLTA,Voltara Motors Inc.\n")
    narrowed = CliRunner().invoke(
        cli, ["feeds", "relink", "--no-refresh", "--watchlist", str(tmp_path / "w.csv")]
    )
    assert "relinked 1 articles: 0 links added, 2 removed" in narrowed.output
