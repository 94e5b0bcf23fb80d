"""Ticker linking: the signals, and the guards against their false positives."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest.tickers import TickerLinker
from pipeline.ingest.watchlist import load_watchlist


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


def test_names_aliases_and_bare_tickers(linker):
    assert links(linker, "Voltara recalls SUVs") == [("VLTA", "alias")]
    # Several mentions: one row, the strongest signal.
    assert links(linker, "Voltara recalls SUVs; Voltara Motors shares fall") == [("VLTA", "name")]
    assert links(linker, "Shares of Voltara Motors fell") == [("VLTA", "name")]
    assert links(linker, "VOLTARA MOTORS RECALLS SUVS") == [("VLTA", "name")]
    assert links(linker, "ORBX jumps after results") == [("ORBX", "ticker")]
    assert links(linker, "Analysts hike Target price for Orbix Cloud Systems") == [
        ("TGT", "name"),  # "Target Corporation" without its suffix
        ("ORBX", "name"),
    ]


def test_common_words_are_not_companies(linker):
    assert links(linker, "Target prices rise across the sector") == []  # sentence start
    assert links(linker, "The price target was raised") == []  # lower case
    assert links(linker, "CAT videos go viral; the cat sat") == []  # bare ticker that is a word
    assert links(linker, "VOLTARANET and Voltaras are not Voltara Motors'") == [("VLTA", "name")]
    assert links(linker, "") == []
