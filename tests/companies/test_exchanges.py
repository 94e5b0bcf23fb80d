"""Exchange prefixes of listings outside the US: the company of that listing, never the US
company whose ticker has the same letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.companies.linking import TickerLinker
from pipeline.companies.universe import load_universe
from pipeline.companies.watchlist import load_watchlist


@pytest.fixture(scope="module")
def linker() -> TickerLinker:
    return TickerLinker(load_universe("sp500"))


def links(linker: TickerLinker, text: str) -> list[tuple[str, str]]:
    return [(m.ticker, m.matched_by) for m in linker.link(text)]


# Press-release and screener shapes (Canadian wires, Simply Wall St, AFX): the code of a
# listing elsewhere that is also a US ticker of the universe.
NOT_THE_US_COMPANY = [
    "TELUS Corporation (TSX: T) reports third quarter results",  # AT&T is T
    "Loblaw Companies Limited (TSX: L) announces dividend",  # Loews is L
    "Keyera Corp. (TSX: KEY) closes acquisition",  # KeyCorp is KEY
    "Pembina Pipeline (TSX: PPL) raises dividend",  # PPL Corporation is PPL
    "Saputo Inc. (TSX: SAP) posts lower earnings",  # SAP SE is SAP
    "Admiral Group (LSE: ADM) profit rises",  # Archer Daniels Midland is ADM
    "Do Directors Own BLOK Technologies Inc. (CNSX:BLK) Shares?",  # BlackRock is BLK
    "Is Kinross (TSE:K) a buy?",  # Kellanova is K
    "JD Sports Fashion (LSE: JD.) profit warning",  # JD.com is JD
]


@pytest.mark.parametrize("text", NOT_THE_US_COMPANY, ids=[t[:30] for t in NOT_THE_US_COMPANY])
def test_a_foreign_listing_is_not_the_us_company_of_the_same_letters(linker, text):
    us = {"T", "L", "KEY", "PPL", "SAP", "ADM", "BLK", "K", "JD"}
    assert not {t for t, _ in links(linker, text)} & us


def test_a_foreign_listing_links_its_own_company(linker):
    assert links(linker, "Tesco PLC (LSE: TSCO) sales rise") == [("TSCO.L", "exchange")]
    assert links(linker, "Prudential (LSE: PRU) to cut costs") == [("PUK", "exchange")]  # by its ric, PRU.L
    assert links(linker, "Toronto-Dominion (TSX: TD) earnings beat") == [("TD", "exchange")]
    assert links(linker, "Does adidas AG's (ETR:ADS) CEO Salary Reflect Performance?") == [
        ("ADS.DE", "exchange")
    ]
    assert links(linker, "Tencent (HKG:0700) shares fall") == [("0700.HK", "exchange")]
    assert links(linker, "Toyota (TYO: 7203) raises outlook") == [("TM", "exchange")]
    assert links(linker, "BT Group (LSE: BT.A) cuts jobs") == [("BT-A.L", "exchange")]


def test_a_foreign_code_outside_the_universe_links_nothing(linker):
    # Its letters are not read as a bare ticker either (ECL is Ecolab).
    assert links(linker, "Eclipse Gold (TSXV: ECL) drills new hole") == []
    assert links(linker, "Suncor Energy (TSX: SU) output rises") == []


def test_us_venues_are_unchanged(linker):
    assert links(linker, "AT&T (NYSE: T) and Telus (TSX: T) (NYSE: TU)") == [
        ("T", "exchange"),
        ("TU", "exchange"),
    ]
    assert links(linker, "Ampco-Pittsburgh (NYSEMKT:AP) wins order") == [("AP", "exchange")]


def test_a_universe_without_suffixes_finds_its_own_listing(tmp_path: Path):
    # An Indian universe (build_from_entity_list) writes NSE symbols as tickers.
    path = tmp_path / "india.csv"
    path.write_text(
        "ticker,name,aliases,country,exchange\n"
        "RELIANCE,Reliance Industries Ltd.,,IN,NSE\n"
        "TITAN,Titan Company,,,\n"
        "INFY,Infosys Ltd.,,US,NYSE\n"
    )
    india = TickerLinker(load_watchlist(path, what="universe"))
    assert links(india, "Reliance Industries Limited (NSE:RELIANCE) shares") == [("RELIANCE", "exchange")]
    # A company of no stated country, or of another, is not that listing.
    assert links(india, "Shares (NSE: TITAN) rise") == []
    assert links(india, "Shares (NSE: INFY) rise") == []


def test_a_venue_code_that_is_also_an_acronym_counts_only_in_parentheses(linker):
    # The US Environmental Protection Agency, not Euronext Paris.
    assert [m.ticker for m in linker.link("EPA: GM must recall 1 million trucks")] == ["GM"]
    assert [m.ticker for m in linker.link("EPA: EXXON FINED FOR SPILL")] == ["XOM"]
    assert [m.ticker for m in linker.link("Airbus (EPA: AIR) wins order")] == ["AIR.PA"]


def test_an_indian_code_is_found_on_either_exchange(linker):
    assert [m.ticker for m in linker.link("BSE: TCS up 2% after results")] == ["TCS.NS"]
