"""Exchange prefixes: "(NYSE: ACME)" names a US listing, "(LSE: TSCO)" or "(TSX: T)" one
elsewhere.

A code on a venue outside the US is often the ticker of another, US company: TSCO is Tesco
in London and Tractor Supply in New York, T is Telus in Toronto and AT&T in New York, BLK
is BLOK Technologies on the CSE and BlackRock on the NYSE. Such a code links only the
company of that listing (found by its code and the venue's suffix, ``TSCO.L``), never the
US company of the same letters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

log = logging.getLogger(__name__)

US_EXCHANGE_RE = re.compile(
    r"(?<![\w])(?i:NYSE\s+American|NYSE\s+Arca|NYSEMKT|NYSE|NASDAQ(?:GS|GM|CM)?|AMEX|OTCQX|OTCQB|OTC|"
    r"CBOE|BATS)\s*:\s*([A-Z]{1,5}(?:[.\-][A-Z])?)(?![\w])"
)
# Venue prefix -> its country and the suffixes of its codes, Yahoo's then Reuters' where
# they differ (the bundled universe writes non-US tickers the first way, ric codes the
# second). "TSE" is Toronto for some writers and Tokyo for others: a code of letters is
# found under .TO, one of digits under .T.
FOREIGN_VENUES: dict[str, tuple[str, tuple[str, ...]]] = {
    "LSE": ("GB", ("L",)), "LON": ("GB", ("L",)), "TSX": ("CA", ("TO",)),
    "TSE": ("CA", ("TO", "T")), "TSXV": ("CA", ("V",)), "CVE": ("CA", ("V",)),
    "CNSX": ("CA", ("CN",)), "CSE": ("CA", ("CN",)), "ASX": ("AU", ("AX",)),
    "HKG": ("HK", ("HK",)), "HKEX": ("HK", ("HK",)), "SEHK": ("HK", ("HK",)),
    "TYO": ("JP", ("T",)), "EPA": ("FR", ("PA",)), "ETR": ("DE", ("DE",)),
    "XETRA": ("DE", ("DE",)), "FRA": ("DE", ("F", "DE")), "NSE": ("IN", ("NS", "BO")),
    "BSE": ("IN", ("BO", "NS")), "STO": ("SE", ("ST",)), "HEL": ("FI", ("HE",)),
    "AMS": ("NL", ("AS",)), "SWX": ("CH", ("SW", "S")), "VTX": ("CH", ("SW", "S")),
    "BIT": ("IT", ("MI",)), "BME": ("ES", ("MC",)), "OB": ("NO", ("OL",)),
    "OSE": ("NO", ("OL",)), "CPH": ("DK", ("CO",)), "KRX": ("KR", ("KS",)),
    "KOSDAQ": ("KR", ("KQ",)), "SGX": ("SG", ("SI",)), "JSE": ("ZA", ("JO", "J")),
    "NZE": ("NZ", ("NZ",)), "NZX": ("NZ", ("NZ",)), "TPE": ("TW", ("TW",)),
    "TWSE": ("TW", ("TW",)), "SZSE": ("CN", ("SZ",)), "SHSE": ("CN", ("SS",)),
    "EBR": ("BE", ("BR",)), "ELI": ("PT", ("LS",)), "WSE": ("PL", ("WA",)),
    "VIE": ("AT", ("VI",)),
}  # fmt: skip
# Codes that are also common acronyms or words ("EPA: GM must recall", "BIT: ..."): a venue
# only inside parentheses, "(EPA: AIR)", the form press releases use.
WORDLIKE_VENUES = frozenset(
    {
        "EPA",
        "ELI",
        "BIT",
        "OB",
        "STO",
        "AMS",
        "VIE",
        "HEL",
        "FRA",
        "CSE",
        "OSE",
        "BME",
        "EBR",
        "TPE",
        "ETR",
        "LON",
        "TSE",
    }
)
# Written in capitals only: "Lon:" or "she:" in a sentence is no venue.
FOREIGN_EXCHANGE_RE = re.compile(
    r"(?<![\w])(" + "|".join(sorted(FOREIGN_VENUES, key=len, reverse=True)) + r")\s*:\s*"
    r"([A-Z0-9]{1,10}(?:[.\-][A-Z0-9]{1,2})?)(?![\w])"
)


def foreign_ticker(
    venue: str,
    code: str,
    lookup: Callable[[str], str | None],
    country_of: Callable[[str], str | None],
) -> str | None:
    """The universe ticker of the listing ``venue: code``, or None.

    ``lookup`` maps a ticker or ric code of the universe to its company's ticker;
    ``country_of`` gives the country of the company with that ticker (None: no such
    company). A universe that writes a ticker without a suffix finds it when the company
    is of the venue's country ("(NSE: RELIANCE)" in an Indian universe); "(TSX: SAP)" is
    Saputo, not SAP SE."""
    country, suffixes = FOREIGN_VENUES[venue]
    forms = dict.fromkeys((code, code.replace("-", "."), code.replace(".", "-")))
    for suffix in suffixes:
        for form in forms:
            ticker = lookup(f"{form}.{suffix}")
            if ticker is not None:
                return ticker
    if (country_of(code) or "").upper() == country:
        return lookup(code)
    return None


def venue_stands(text: str, venue: str, start: int) -> bool:
    """Whether the prefix ``venue`` matched at ``start`` is an exchange: always for a venue
    code that is nothing else, inside parentheses only for one that is also an acronym."""
    return venue not in WORDLIKE_VENUES or text[:start].rstrip().endswith("(")
