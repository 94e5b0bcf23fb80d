"""The bundled universe on real headline shapes: who is linked, and who is not.

Precision first: each false-positive shape here is one the press writes every day
(indices, people, common words, codes); each true-positive shape is how the press names
a company (short names, former names, share classes, headline-initial names).
"""

from __future__ import annotations

import pytest

from pipeline.companies.linking import TickerLinker
from pipeline.companies.universe import load_universe


@pytest.fixture(scope="module")
def linker() -> TickerLinker:
    return TickerLinker(load_universe("sp500"))


def tickers(linker: TickerLinker, text: str) -> list[str]:
    return [m.ticker for m in linker.link(text)]


LINKED = [
    (
        "Stocks making the biggest moves premarket: Twitter, Amazon, Alphabet, Apple, Intel & more",
        ["AMZN", "GOOGL", "AAPL", "INTC"],
    ),
    ("Nvidia lines up $500 billion in financing", ["NVDA"]),
    ("JPMorgan, Citi beat estimates as trading revenue jumps", ["JPM", "C"]),
    ("BofA and Goldman Sachs lead bank stocks higher", ["BAC", "GS"]),
    ("Goldman cuts its S&P 500 target", ["GS"]),
    ("Exxon, Chevron post lower quarterly profits", ["XOM", "CVX"]),
    ("ExxonMobil to buy Pioneer in $60 billion deal", ["XOM"]),
    ("Google faces antitrust trial over search deals", ["GOOGL"]),
    ("Facebook parent Meta Platforms to cut 10,000 jobs", ["META"]),
    ("J&J to split off consumer health unit", ["JNJ"]),
    ("Disney names new chief executive", ["DIS"]),
    ("Walt Disney shares slide after theme park slowdown", ["DIS"]),
    ("Berkshire Hathaway's cash pile hits record", ["BRK.B"]),
    ("Buffett's Berkshire trims Apple stake", ["BRK.B", "AAPL"]),
    ("Ford slumps on recall of 1.5 million vehicles", ["F"]),
    ("Tesla shares jump after record deliveries, while Ford slumps on recall", ["TSLA", "F"]),
    ("Apple unveils new iPhone lineup", ["AAPL"]),
    ("Apple's services revenue hits a record", ["AAPL"]),
    ("Target to cut prices on 5,000 items", ["TGT"]),
    ("Target shares tumble after weak holiday forecast", ["TGT"]),
    ("Shares of Target fell 4% on Tuesday", ["TGT"]),
    ("Oracle shares jump on cloud deal with OpenAI", ["ORCL"]),
    ("Visa and Mastercard settle swipe-fee lawsuit", ["V", "MA"]),
    ("Walmart, Costco and Target report holiday sales", ["WMT", "COST", "TGT"]),
    ("Amazon.com posts record Prime Day sales", ["AMZN"]),
    ("Microsoft and OpenAI renegotiate partnership", ["MSFT"]),
    ("Broadcom forecasts AI revenue above estimates", ["AVGO"]),
    ("AMD unveils new AI chips to rival Nvidia", ["AMD", "NVDA"]),
    ("Boeing 737 MAX deliveries resume", ["BA"]),
    ("UnitedHealth shares plunge after guidance cut", ["UNH"]),
    ("Eli Lilly's weight-loss drug sales soar", ["LLY"]),
    ("Lilly raises annual forecast on Zepbound demand", ["LLY"]),
    ("Pfizer, Moderna vaccine sales fall", ["PFE", "MRNA"]),
    ("Bank of America profit beats estimates", ["BAC"]),
    ("Morgan Stanley wealth unit draws record assets", ["MS"]),
    ("Wells Fargo asset cap lifted by Fed", ["WFC"]),
    ("Apple <AAPL.O> and Johnson & Johnson <JNJ.N> weigh on the Dow", ["AAPL", "JNJ"]),
    ("Berkshire <BRKb.N> reports operating profit", ["BRK.B"]),
    ("Toyota <7203.T> raises profit outlook", ["TM"]),
    ("Alphabet Inc (NASDAQ: GOOG) shares rise", ["GOOGL"]),
    ("$GOOG and $GOOGL both gain", ["GOOGL"]),
    ("exchange operator Nasdaq reports higher profit", ["NDAQ"]),
    ("Nasdaq Inc to buy Adenza for $10.5 billion", ["NDAQ"]),
    ("Dow Inc cuts jobs as chemical demand slumps", ["DOW"]),
    ("Chemical maker Dow posts loss", ["DOW"]),
    ("Samsung Electronics profit beats forecasts on chip rebound", ["005930.KS"]),
    ("TSMC, ASML lead chip stocks higher", ["TSM", "ASML"]),
    ("Toyota and Honda lift output in Japan", ["TM", "HMC"]),
    ("Shell profit falls as gas prices ease", ["SHEL"]),
    ("HSBC and UBS face scrutiny over Swiss accounts", ["HSBC", "UBS"]),
    ("Alibaba, Tencent shares rally in Hong Kong", ["BABA", "0700.HK"]),
    ("Novo Nordisk cuts Wegovy prices", ["NVO"]),
    ("Nestle names new chief executive", ["NESN.SW"]),
    ("LVMH sales slow as luxury demand cools", ["MC.PA"]),
    ("Volkswagen, BMW and Mercedes-Benz warn on China", ["VOW3.DE", "BMW.DE", "MBG.DE"]),
    ("Infosys, Reliance Industries lead Indian shares", ["INFY", "RELIANCE.NS"]),
    ("BYD outsells Tesla in electric cars", ["1211.HK", "TSLA"]),
    ("AT&T and Verizon raise wireless prices", ["T", "VZ"]),
    ("P&G raises prices again", ["PG"]),
    ("Coca-Cola and PepsiCo report sales", ["KO", "PEP"]),
    ("McDonald's same-store sales miss", ["MCD"]),
    ("NVIDIA HITS RECORD HIGH AS AI RALLY ROLLS ON", ["NVDA"]),
    ("Prudential plc to sell its US unit", ["PUK"]),
    ("Apollo Global Management to buy stake in Intel venture", ["APO", "INTC"]),
    ("eBay nears deal to sell StubHub", ["EBAY"]),
    ("Harley-Davidson falls; Caterpillar beats estimates", ["CAT"]),
    # A word name before a hyphenated ownership word, or a role word.
    ("Amazon-backed Anthropic raises $13 billion", ["AMZN"]),
    ("Meta-owned WhatsApp to show ads in Updates tab", ["META"]),
    ("Apple supplier Foxconn's profit beats forecasts", ["AAPL", "2317.TW"]),
    ("Target workers vote to unionise", ["TGT"]),
    # The broker's target is not Target Corp; the company itself still is.
    ("Goldman Sachs Raises Price Target to $260 on Nvidia", ["GS", "NVDA"]),
    ("Target Raises Outlook After Strong Holiday Sales", ["TGT"]),
    ("Price target: Target Corp shares slide", ["TGT"]),
    # A name, then its own ticker in brackets (Zacks, Yahoo): the company, whatever the name.
    ("Why Is Visa (V) Up 3.2% Since Last Earnings Report?", ["V"]),
    ("Dow (DOW) Q2 Earnings Miss Estimates", ["DOW"]),
    # Names that are mostly something else, with a company's own verbs.
    ("Nasdaq Reports Second Quarter 2025 Results", ["NDAQ"]),
    ("Dow declares quarterly dividend", ["DOW"]),
    ("Apollo Reports Second Quarter 2025 Results", ["APO"]),
    # Short names the press writes.
    ("Coke raises prices again as volumes hold up", ["KO"]),
    ("Delta shares jump on strong summer bookings", ["DAL"]),
    # Two capitals, then a comma, are a list, not initials ("BP Singh").
    ("Stocks making the biggest moves after hours: Salesforce, HP, Nutanix", ["CRM", "HPQ"]),
    ("GM, Ford recall SUVs over faulty seat belts", ["GM", "F"]),
    # A capitalised last word of the headline does not join the summary's first word.
    ("Recall Hits Auto Maker\nFord said it would recall 100,000 trucks", ["F"]),
    ("Investors cheer the Amazon deal", ["AMZN"]),
    ("Zoox, the Amazon subsidiary, expands robotaxi tests", ["AMZN"]),
    ("Foxconn wins big Apple order", ["2317.TW", "AAPL"]),
    # A name rejected as another thing is not brought back by a list around it.
    ("Mekong Delta, Shell and BP", ["SHEL", "BP"]),
    ("Jefferies Raises Price Target; Microsoft Gains", ["MSFT"]),
    # Only a company has a price target: the broker's Title Case headline names the company.
    ("Goldman Sachs Trims Apple Price Target on China Weakness", ["GS", "AAPL"]),
    ("Morgan Stanley Raises Apple Price Target to $260", ["MS", "AAPL"]),
    ("Apple PT Raised at Wedbush", ["AAPL"]),
    # A name with capitals inside, written as one capitalised word (TFNS, SEntFiN).
    ("Ebay shares jump 3% premarket", ["EBAY"]),
    ("Brazil start-up VTEX raises $140 million in a round led by Softbank", ["9984.T"]),
    ("Blackrock and Paypal shares rise", ["BLK", "PYPL"]),
    # Nokia's network arm is Nokia's, not Siemens'.
    ("The agreement strengthens our partnership with Nokia Siemens Networks", ["NOK"]),
]

NOT_LINKED = [
    "Dow falls 300 points as yields climb",
    "The Dow Jones Industrial Average closed higher",
    "Nasdaq hits record as tech rallies",
    "Nasdaq Composite slips 1%",
    "Harrison Ford to star in new Indiana Jones film",
    "Gerald Ford's presidency revisited",
    "Analysts raise Target prices across the retail sector",
    "Target prices rise for chipmakers",
    "Apple harvest hit by late frost in Washington state",
    "Visa rules tighten for foreign students",
    "Oracle of Omaha speaks at annual meeting",
    "Block party planned downtown",
    "Gap between rich and poor widens",
    "PM says budget will cut deficit",
    "Apollo missions inspired a generation",
    "Everest climbers face record crowds",
    "Fox News host leaves network",
    "News of the deal lifted markets",
    "Southern states brace for hurricane",
    "Ball is in the Fed's court",
    "Shell company used to hide funds",
    "MSCI World index hits record",
    "S&P 500 rises as inflation cools",
    "ALL IN ON AI: WHY INVESTORS CAN'T GET ENOUGH",
    "IT spending to grow 8% next year",
    "Stocks rally ON hopes of rate cut",
    "A KEY test for the economy NOW",
    "CAT videos and LOW budgets: HAS streaming peaked?",
    "Amazon rainforest fires rage",
    "Michael Dell sells shares worth $1 billion",
    "Gov. Greg Abbott signs the bill",
    "Nikola Tesla's inventions on display",
    "Prudential regulation of banks tightens",
    "Progressive lawmakers push new bill",
    "Carrier strike group sails to the Gulf",
    "Delta variant spreads",
    "ICE agents detain workers",
    "The Hartford Courant reports",
    "Ross Perot's legacy",
    "Paramount importance of rates",
    "Reliance on imports grows",
    "Raises Price Target To $300, Keeps Overweight",
    "Analyst Raises Price Target, Keeps Buy Rating",
    "Fed's inflation target under review",
    "Takeover target shares jump 40%",
    "Big Apple hotels see record summer occupancy",
    "Schengen Visa applications hit record, EU says",
    "Golden Visa scheme scrapped by Portugal",
    "Gerald R. Ford museum reopens",
    "Sen. Dave McCormick backs the bill",
    "Deforestation in the Amazon falls to lowest in a decade",
    "Lula pledges to protect the Amazon",
    "Dow to open higher as yields ease",
    "Delta variant cases fall",
    "Floods hit the Mekong Delta",
    "Apollo program anniversary celebrated",
    "News reports say the Fed will cut rates",
    "Southern reported heavy storms overnight",
    "Trade along the Amazon-Andes corridor grows",
    # Another thing or another company after the name (SEntFiN, TFNS, Financial PhraseBank).
    "Monsanto India jumps on report Modi government pursuing GM crops",
    "Coca Cola Amatil : APPOINTMENT OF PENELOPE WINN TO COCA-COLA AMATIL BOARD",
    "Coca-Cola HBC shares fall after Russia exit",
    "technology from Japanese engineering company Mitsubishi Heavy Industries",
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), LINKED, ids=[t[:40] for t, _ in LINKED])
def test_press_names_link_their_company(linker, text, expected):
    assert tickers(linker, text) == expected


@pytest.mark.parametrize("text", NOT_LINKED, ids=[t[:40] for t in NOT_LINKED])
def test_words_indices_people_and_codes_link_nothing(linker, text):
    assert tickers(linker, text) == []


def test_reuters_codes_are_not_read_as_tickers(linker):
    # <AAPL.O> is Apple once, by its code; the O and the N inside codes are not tickers.
    [apple] = linker.link("Stocks to watch <AAPL.O>")
    assert (apple.ticker, apple.matched_by, apple.mention) == ("AAPL", "ric", "<AAPL.O>")
    assert tickers(linker, "Index moves <.SPX> <.DJI>") == []
    # A code of a listing elsewhere is not the US company of the same letters.
    assert tickers(linker, "BAE Systems <BA.L> wins contract") == ["BA.L"]


def test_share_classes_are_one_company(linker):
    assert tickers(linker, "$GOOG rallies") == ["GOOGL"]
    assert tickers(linker, "Brown-Forman (NYSE: BF.B) and $FOX") == ["BF.B", "FOXA"]
    assert linker.watchlist.company("BRK.A").ticker == "BRK.B"


def test_mixed_headlines_keep_the_order_and_rank_relevance(linker):
    matches = linker.link("Tesla shares jump after record deliveries, while Ford slumps on recall")
    assert [m.ticker for m in matches] == ["TSLA", "F"]
    assert matches[0].relevance > matches[1].relevance >= 40


SENTENCES_NOT_LINKED = [
    "( ADP News ) - Finnish construction company Outotec said today it won an order",
    "Their Madison Square Garden division owns the New York Knicks",
    "According to the CEO of Nordea Bank Estonia Vahur Kraft, the stores will open",
    "Budget to focus on long-term performance: BP Singh, Pramerica",
    "David Lau appointed GM of Singapore Airlines in India",
    "Protalix BioTherapeutics Inc ( AMEX : PLX ) published a prospectus",
    "Lloyds Steel Q1 net loss widens",
]


@pytest.mark.parametrize("text", SENTENCES_NOT_LINKED, ids=[t[:40] for t in SENTENCES_NOT_LINKED])
def test_other_proper_names_that_contain_a_company_name(linker, text):
    assert [t for t in tickers(linker, text) if t != "PLX"] == []


def test_capitals_count_for_names_of_two_words_or_in_a_shouted_headline(linker):
    assert tickers(linker, "Form SC 13G TOP SHIPS INC. Filed by: MORGAN STANLEY") == ["MS"]
    assert tickers(linker, "TARGET TO CUT 1,800 JOBS AT HEADQUARTERS") == ["TGT"]


# Bare tickers (three or more capitals) that are something else in real headlines: part of
# a hyphenated word, the start of another company's name, an acronym or a currency.
BARE_TICKERS_NOT_LINKED = [
    "AFL-CIO Endorses USMCA After Negotiating Improvements",  # Aflac is AFL
    "Nuveen AMT-Free Quality Municipal Income Fund declares dividend",  # American Tower is AMT
    "ECL Finance debenture issue fully subscribed",  # Ecolab is ECL
    "SWK Holdings reports Q3 results",  # Stanley Black & Decker is SWK
    "MGM Growth falls 1.1% after starting share offering",  # MGM Resorts is MGM
    "VST Industries: Analysts remain bullish",  # Vistra is VST
    "MPC Decision: MPC Keeps Rates On Hold",  # Marathon Petroleum is MPC
    "Dongfeng to reduce PSA stake in merger deal with Fiat",  # Public Storage is PSA
    "Uber ready to join FANG after earnings",  # Diamondback Energy is FANG
    "The revenues of the business reached NOK 12 million for 2008",  # Nokia is NOK
]  # fmt: skip


@pytest.mark.parametrize("text", BARE_TICKERS_NOT_LINKED, ids=[t[:40] for t in BARE_TICKERS_NOT_LINKED])
def test_bare_tickers_that_are_other_things(linker, text):
    assert [t for t in tickers(linker, text) if t != "UBER"] == []


def test_bare_tickers_still_link_in_lists_and_before_their_own_words(linker):
    assert tickers(linker, "Stocks to watch: TSLA, UBER, IBKR, DIS") == ["TSLA", "UBER", "IBKR", "DIS"]
    assert tickers(linker, "NVDA-led rally lifts chip stocks") == ["NVDA"]
    assert tickers(linker, "NVDA Stock Forecast: Analysts Split") == ["NVDA"]


def test_title_case_headlines_and_ticker_pairs_keep_their_tickers(linker):
    # Every word is capitalised: "Growth" or "Holdings" after a ticker starts no other name.
    assert tickers(linker, "NVDA Growth Slows as Chip Demand Cools") == ["NVDA"]
    assert tickers(linker, "Berkshire Trims AAPL Holdings") == ["BRK.B", "AAPL"]
    assert tickers(linker, "NVDA Partners With Microsoft") == ["NVDA", "MSFT"]
    # Two tickers joined by a hyphen are a pair, not one word.
    assert tickers(linker, "Fund buys AAPL-MSFT pair") == ["AAPL", "MSFT"]
    assert tickers(linker, "Buy NVDA-AMD spread") == ["NVDA", "AMD"]


def test_flattened_names_are_guarded_as_words(linker):
    assert tickers(linker, "Ebay shares jump after upbeat forecast") == ["EBAY"]
    assert tickers(linker, "Centerpoint of the plan is a tax cut") == []


def test_cashtags_as_tweets_write_them(linker):
    # Yahoo's class separator, and lower case: the same company.
    assert tickers(linker, "$BRK-B climbs after the annual letter") == ["BRK.B"]
    assert tickers(linker, "$brk.b and $tsla rally") == ["BRK.B", "TSLA"]
    # In lower case only a universe ticker counts: money and words stay unlinked.
    assert tickers(linker, "raised $bn, the $us dollar, $yolo") == []
    # Nor a word ticker in lower case: "$low prices" is not Lowe's.
    assert tickers(linker, "$low prices, $now is the time, $key levels") == []
