"""Relevance: headline mentions count most, passing mentions fall below the line."""

from __future__ import annotations

from pipeline.companies.linking import TickerLinker
from pipeline.companies.relevance import PASSING_MENTION, relevance
from pipeline.companies.universe import load_universe

LONG_SUMMARY = (
    "Tesla reported record deliveries for the quarter, beating analyst forecasts, as demand "
    "for its cheaper models picked up in China and Europe. Tesla said production would rise "
    "again next year and that margins had stabilised after a year of price cuts; investors "
    "welcomed the update. Suppliers, chipmakers and rivals moved too, including Ford."
)


def test_bounds_and_order():
    top = relevance(first_at=0, mentions=9, in_headline=True, order=0, companies=1, text_length=50)
    assert top == 100
    low = relevance(first_at=990, mentions=1, in_headline=False, order=3, companies=4, text_length=1000)
    assert 0 <= low < PASSING_MENTION


def test_headline_story_versus_passing_mention():
    linker = TickerLinker(load_universe("sp500"))
    scores = {m.ticker: m.relevance for m in linker.link("Tesla deliveries hit a record\n" + LONG_SUMMARY)}
    assert scores["TSLA"] >= 80
    assert scores["F"] < 10 < PASSING_MENTION  # named once, last, in a long summary
    two = {m.ticker: m.relevance for m in linker.link("JPMorgan, Citi beat estimates")}
    assert two["JPM"] > two["C"] >= 40  # both in the headline; the first named counts more


def test_a_broker_that_speaks_about_another_company_is_a_passing_mention():
    linker = TickerLinker(load_universe("sp500"))

    def scores(text: str) -> dict[str, int]:
        return {m.ticker: m.relevance for m in linker.link(text)}

    upgrade = scores("Morgan Stanley upgrades Nvidia to Overweight\nJPMorgan analysts said demand is strong")
    assert upgrade["NVDA"] >= 70 and upgrade["MS"] < PASSING_MENTION and upgrade["JPM"] < PASSING_MENTION
    assert scores("Goldman Sachs trims Apple price target")["GS"] < PASSING_MENTION
    assert scores("Nvidia set for gaming tailwinds - BofA")["BAC"] < PASSING_MENTION
    # A closing attribution stays one when links and punctuation follow it.
    assert scores("Nvidia set for gaming tailwinds - BofA https://t.co/x1 ...")["BAC"] < PASSING_MENTION
    assert scores("Nvidia set for gaming tailwinds - BofA (https://t.co/x1).")["BAC"] < PASSING_MENTION
    assert scores("Nvidia set for gaming tailwinds - BofA sees upside")["BAC"] >= PASSING_MENTION
    # A company acting on its own forecast is the story, not a source.
    assert scores("Apple cuts iPhone production forecast")["AAPL"] >= 80
    assert scores("Goldman Sachs beats estimates on trading")["GS"] >= 80
