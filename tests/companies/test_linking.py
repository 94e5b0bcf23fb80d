"""Ticker linking: the signals, the guards against their false positives, and re-linking
stored articles after a watchlist edit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ingest_helpers import NOW, rss, rss_item
from sqlalchemy import select, text
from trends_helpers import add_score

from pipeline.companies.linking import TickerLinker, relink_articles
from pipeline.companies.watchlist import load_watchlist
from pipeline.db.models import Article
from pipeline.ingest.registry import add_feeds
from pipeline.ingest.service import ingest
from pipeline.trends.rollups import refresh_rollups


@pytest.fixture
def linker(tmp_path: Path) -> TickerLinker:
    path = tmp_path / "w.csv"
    path.write_text(
        "ticker,name,aliases\n"
        "VLTA,Voltara Motors Inc.,Voltara\n"
        "TGT,Target Corporation,Target\n"
        "CAT,Caterpillar Inc.,\n"
        "ORBX,Orbix Cloud Systems Inc.,\n"
    )
    return TickerLinker(load_watchlist(path))


def links(linker: TickerLinker, text: str) -> list[tuple[str, str]]:
    return [(m.ticker, m.matched_by) for m in linker.link(text)]


def test_exchange_prefixes(linker):
    assert links(linker, "Voltara Motors Inc. (NASDAQ: VLTA) today announced") == [("VLTA", "exchange")]
    assert links(linker, "Acme (NYSE:ACME) and Zed (Nasdaq: ZED)") == [
        ("ACME", "exchange"),
        ("ZED", "exchange"),
    ]
    assert links(linker, "Berkshire (NYSE: BRK.B) rose") == [("BRK.B", "exchange")]
    assert links(linker, "NYSE: closes higher") == []


def test_cashtags_and_their_guards(linker):
    assert links(linker, "$ACME and $XYZ rally") == [("ACME", "cashtag"), ("XYZ", "cashtag")]
    assert links(linker, "raised $5B at $120 per share, US$3") == []
    assert links(linker, "the $USD weakens; $CEO pay; $AI hype") == []
    assert links(linker, "Acme jumps. Share on $FB | Tweet $TWTR") == []
    assert links(linker, "$FB earnings beat, Facebook parent says") == [("FB", "cashtag")]
    # An unknown ticker in lower case is a word ("$yolo"); one with a class not held, its base.
    assert links(linker, "$acme and $wow") == []
    assert links(linker, "$ACME-W warrants") == [("ACME", "cashtag")]


def test_names_aliases_and_bare_tickers(linker):
    assert links(linker, "Voltara recalls SUVs") == [("VLTA", "alias")]
    # Several mentions: one row, the strongest signal.
    assert links(linker, "Voltara recalls SUVs; Voltara Motors shares fall") == [("VLTA", "name")]
    assert links(linker, "Shares of Voltara Motors fell") == [("VLTA", "name")]
    assert links(linker, "VOLTARA MOTORS RECALLS SUVS") == [("VLTA", "name")]
    assert links(linker, "ORBX jumps after results") == [("ORBX", "ticker")]
    # "Target Corporation" without its suffix, but "Target price" is an analyst's word.
    assert links(linker, "Analysts hike Target price for Orbix Cloud Systems") == [("ORBX", "name")]
    assert links(linker, "Orbix Cloud Systems and Target beat estimates") == [
        ("ORBX", "name"),
        ("TGT", "name"),
    ]


def test_common_words_are_not_companies(linker):
    assert links(linker, "Target prices rise across the sector") == []  # sentence start
    assert links(linker, "The price target was raised") == []  # lower case
    assert links(linker, "CAT videos go viral; the cat sat") == []  # bare ticker that is a word
    assert links(linker, "VOLTARANET and Voltaras are not Voltara Motors'") == [("VLTA", "name")]
    assert links(linker, "") == []


# --- re-linking stored articles after a watchlist edit -----------------------------------

STORIES = [
    ("v1", "Voltara Motors recalls 40,000 SUVs over faulty brakes", 1),
    ("v2", "Voltara shares slide as the recall widens", 2),
    ("o1", "Orbix Cloud Systems wins a five-year defence contract", 3),
    ("b1", "Voltara and Orbix Cloud Systems team up on in-car software", 4),
    ("z1", "$ZED jumps after a surprise buyback", 5),
]
WATCHLIST_V1 = "ticker,name,aliases\nVLTA,Voltara Motors Inc.,Voltara\n"
# ORBX added; VLTA renamed (same ticker, new company name); the alias "Voltara" dropped.
WATCHLIST_V2 = (
    "ticker,name,aliases\nVLTA,Voltara Mobility Inc.,Voltara Motors\nORBX,Orbix Cloud Systems Inc.,\n"
)

TICKER_ROLLUP = (
    "SELECT scope_key, bucket, n_articles FROM sentiment_hourly WHERE scope_type = 'ticker' ORDER BY 1, 2"
)
TICKER_RAW = """
    SELECT e.ticker, date_trunc('hour', a.published_at, 'UTC'), count(*)
    FROM article_entities e JOIN articles a ON a.id = e.article_id
    WHERE EXISTS (SELECT 1 FROM sentiment_scores s WHERE s.article_id = a.id)
    GROUP BY 1, 2 ORDER BY 1, 2
"""


def _links(db) -> set[tuple[str, str, str | None, str]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.item_key, e.ticker, e.company, e.matched_by "
                "FROM article_entities e JOIN articles a ON a.id = e.article_id"
            )
        )
        return {tuple(r) for r in rows}


def _dirty(db) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM trends_dirty_hours")).scalar_one()


@pytest.fixture
def stored(db, settings, tmp_path: Path) -> Path:
    """The stories ingested (from a local feed file) with watchlist v1, scored, rollups current."""
    feed = tmp_path / "feed.xml"
    feed.write_bytes(
        rss([rss_item(key, title, guid=key, when=NOW - timedelta(hours=h)) for key, title, h in STORIES])
    )
    path = tmp_path / "watchlist.csv"
    path.write_text(WATCHLIST_V1)
    with db.transaction() as session:
        add_feeds(session, [str(feed)])
    assert ingest(db, settings, now=NOW, watchlist=load_watchlist(path)).new == len(STORIES)
    with db.transaction() as session:
        for article_id in session.execute(select(Article.id)).scalars():
            add_score(session, article_id, "negative")
    refresh_rollups(db)
    return path


def test_relink_follows_the_watchlist_and_is_idempotent(db, stored: Path):

    assert _links(db) == {
        ("v1", "VLTA", "Voltara Motors Inc.", "name"),
        ("v2", "VLTA", "Voltara Motors Inc.", "alias"),
        ("b1", "VLTA", "Voltara Motors Inc.", "alias"),
        ("z1", "ZED", None, "cashtag"),
    }
    # Links stored without a relevance (NULL: made before relevance existed) get theirs
    # from the first relink, and nothing else changes.
    with db.engine.connect() as conn:
        unscored = conn.execute(
            text("SELECT count(*) FROM article_entities WHERE relevance IS NULL")
        ).scalar()
    filled = relink_articles(db, load_watchlist(stored), batch_size=2)
    assert (filled.articles, filled.added, filled.removed, filled.updated) == (5, 0, 0, unscored)
    with db.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM article_entities WHERE relevance IS NULL")).scalar() == 0
        )
    refresh_rollups(db)
    # Relinking with the same watchlist is what ingestion did: nothing to do.
    unchanged = relink_articles(db, load_watchlist(stored), batch_size=2)
    assert (unchanged.articles, unchanged.changed, unchanged.added, unchanged.removed) == (5, 0, 0, 0)
    assert _dirty(db) == 0

    stored.write_text(WATCHLIST_V2)
    v2 = load_watchlist(stored)
    preview = relink_articles(db, v2, dry_run=True)
    assert _dirty(db) == 0 and len(_links(db)) == 4  # a dry run writes nothing

    report = relink_articles(db, v2, batch_size=2)  # three pages
    assert (report.articles, report.added, report.removed, report.updated, report.changed) == (5, 2, 2, 1, 4)
    assert (preview.added, preview.removed, preview.updated) == (2, 2, 1)
    assert _links(db) == {
        ("v1", "VLTA", "Voltara Mobility Inc.", "alias"),  # "Voltara Motors" is now an alias
        ("o1", "ORBX", "Orbix Cloud Systems Inc.", "name"),
        ("b1", "ORBX", "Orbix Cloud Systems Inc.", "name"),
        ("z1", "ZED", None, "cashtag"),  # cashtags do not depend on the watchlist
    }
    # The link changes queued their hours; a refresh makes the ticker rollups match the links.
    assert _dirty(db) > 0
    refresh_rollups(db)
    with db.engine.connect() as conn:
        assert conn.execute(text(TICKER_ROLLUP)).all() == conn.execute(text(TICKER_RAW)).all()
        assert {r[0] for r in conn.execute(text(TICKER_ROLLUP))} == {"ORBX", "VLTA", "ZED"}

    again = relink_articles(db, v2, batch_size=2)
    assert (again.articles, again.changed, again.added, again.removed, again.updated) == (5, 0, 0, 0, 0)
    assert _dirty(db) == 0  # an unchanged page writes nothing, so no hour is queued


def _mentions(db) -> dict[tuple[str, str], str | None]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.item_key, e.ticker, e.mention "
                "FROM article_entities e JOIN articles a ON a.id = e.article_id"
            )
        )
        return {(key, ticker): mention for key, ticker, mention in rows}


def test_ingest_stores_the_first_mention_and_relink_fills_or_updates_it(db, stored: Path):
    # As written in the text: the scorer marks exactly this span.
    assert _mentions(db) == {
        ("v1", "VLTA"): "Voltara Motors",
        ("v2", "VLTA"): "Voltara",
        ("b1", "VLTA"): "Voltara",
        ("z1", "ZED"): "$ZED",
    }
    # Links made before migration 0012 have no mention: a relink fills it, and a link that
    # only gains its mention counts as updated.
    with db.transaction() as session:
        session.execute(text("UPDATE article_entities SET mention = NULL WHERE ticker = 'VLTA'"))
    filled = relink_articles(db, load_watchlist(stored), batch_size=2)
    assert (filled.added, filled.removed, filled.updated, filled.changed) == (0, 0, 3, 3)
    assert _mentions(db)[("v2", "VLTA")] == "Voltara"
    assert relink_articles(db, load_watchlist(stored)).updated == 0

    # A universe that now names the company otherwise: the mention follows the new match.
    stored.write_text(WATCHLIST_V2)
    relink_articles(db, load_watchlist(stored))
    assert _mentions(db) == {
        ("v1", "VLTA"): "Voltara Motors",
        ("o1", "ORBX"): "Orbix Cloud Systems",
        ("b1", "ORBX"): "Orbix Cloud Systems",
        ("z1", "ZED"): "$ZED",
    }


def test_relink_since_touches_only_recent_articles(db, stored: Path):
    stored.write_text("ticker,name,aliases\n")  # every company removed
    report = relink_articles(db, load_watchlist(stored), since=NOW - timedelta(hours=2, minutes=30))
    # v1 (1 h ago) and v2 (2 h ago) lose VLTA; older articles keep their links.
    assert (report.articles, report.removed, report.added) == (2, 2, 0)
    assert {(key, ticker) for key, ticker, _, _ in _links(db)} == {("b1", "VLTA"), ("z1", "ZED")}
    with pytest.raises(ValueError, match="has no timezone"):
        relink_articles(db, load_watchlist(stored), since=NOW.replace(tzinfo=None))
