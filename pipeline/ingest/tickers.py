"""Ticker linking: which companies an article is about.

Three signals, strongest first: exchange prefixes (``NYSE: ACME``, ``(NASDAQ:XYZ)``),
cashtags (``$ACME``), then the watchlist's names, aliases and (bare) tickers matched on
word boundaries. The guards exist because each signal has known false positives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.ingest.watchlist import Watchlist

EXCHANGE_RE = re.compile(
    r"(?<![\w])(?i:NYSE\s+American|NYSE\s+Arca|NYSE|NASDAQ(?:GS|GM|CM)?|AMEX|OTCQX|OTCQB|OTC|TSXV?|"
    r"LSE|CBOE|BATS)\s*:\s*([A-Z]{1,5}(?:[.\-][A-Z])?)(?![\w])"
)
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Z]{1,6}(?:\.[A-Z])?)(?![\w])")
SHARE_CONTEXT = re.compile(r"(?i)\b(?:share|shared|tweet|retweet|follow|like|post)\b|\b(?:on|via)\s*$")
# Share buttons and "follow us" footers put these cashtags in text that is not about them.
SOCIAL_TICKERS = frozenset({"FB", "META", "TWTR", "PINS", "SNAP", "LNKD", "RDDT"})
# Written with a $ in front, these are money, macro or slang far more often than a ticker.
NOT_CASHTAGS = frozenset(
    {
        "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "CNY", "HKD", "SGD", "US", "CA", "AU", "HK", "NZ",
        "CEO", "CFO", "IPO", "ETF", "EPS", "GDP", "CPI", "PPI", "FED", "SEC", "AI", "IT", "A", "I", "B",
        "M", "K", "T", "BN", "MM", "MN", "TN", "Q", "FY", "YOY", "EBITDA", "ATH", "DD", "YOLO",
    }
)  # fmt: skip
# Bare tickers that are everyday words (or pronouns, units) are only trusted with a $ or
# an exchange prefix.
COMMON_WORD_TICKERS = frozenset(
    {
        "A", "ALL", "AN", "ARE", "AS", "AT", "BE", "BIG", "BY", "CAN", "CAR", "CAT", "CEO", "DO", "EAT",
        "FAST", "FOR", "FUN", "GO", "GOOD", "HAS", "HE", "HI", "I", "IT", "KEY", "LOW", "MAN", "NEW",
        "NOW", "OLD", "ON", "ONE", "OR", "OUT", "PLAY", "REAL", "RUN", "SEE", "SO", "TV", "TWO", "UP",
        "US", "WELL", "YOU", "AI", "EV", "IPO", "GDP", "CPI", "SEC", "FED", "USA", "UK", "EU", "NYSE",
    }
)  # fmt: skip
# Single-word names that are also everyday words; trusted only mid-sentence, where their
# capital letter means a proper noun.
COMMON_WORDS = frozenset(
    {
        "target", "apple", "amazon", "shell", "visa", "square", "block", "oracle", "gap", "ford",
        "general", "national", "american", "first", "united", "alphabet", "meta", "snap", "match",
        "coach", "progressive", "sunrise", "summit", "pinnacle", "harbor", "crest", "key", "citizens",
    }
)  # fmt: skip
SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(\-–—]\s*|\n\s*)$")
MOSTLY_UPPER_MIN_LETTERS = 12

RANK = {"exchange": 0, "cashtag": 1, "name": 2, "alias": 3, "ticker": 4}


@dataclass(frozen=True)
class EntityMatch:
    ticker: str
    company: str | None
    matched_by: str  # exchange | cashtag | name | alias | ticker


class TickerLinker:
    """Finds tickers in text. Build once per run (the name pattern is compiled here)."""

    def __init__(self, watchlist: Watchlist | None = None):
        self.watchlist = watchlist or Watchlist.empty()
        names: dict[str, tuple[str, str]] = {}
        for company in self.watchlist.companies:
            for text, how in company.names():
                # Headlines are sometimes written in capitals; "Voltara" is also "VOLTARA".
                for variant in (text, text.upper()):
                    names.setdefault(variant, (company.ticker, how))
            if len(company.ticker) >= 2 and company.ticker not in COMMON_WORD_TICKERS:
                names.setdefault(company.ticker, (company.ticker, "ticker"))
        self._names = names
        self._name_re = (
            re.compile(
                r"(?<![\w$])(?:"
                + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                + r")(?![\w])"
            )
            if names
            else None
        )

    def link(self, text: str) -> list[EntityMatch]:
        """One match per ticker, the strongest signal kept, in order of first appearance."""
        found: dict[str, EntityMatch] = {}

        def keep(ticker: str, how: str) -> None:
            company = self.watchlist.company(ticker)
            match = EntityMatch(ticker, company.name if company else None, how)
            old = found.get(ticker)
            if old is None or RANK[how] < RANK[old.matched_by]:
                found[ticker] = match

        if not text:
            return []
        if ":" in text:
            for m in EXCHANGE_RE.finditer(text):
                keep(m.group(1).replace("-", "."), "exchange")
        if "$" in text:
            for m in CASHTAG_RE.finditer(text):
                ticker = m.group(1)
                if ticker in NOT_CASHTAGS and ticker not in self.watchlist:
                    continue
                if ticker in SOCIAL_TICKERS and self._in_share_context(text, m.start(), m.end()):
                    continue
                keep(ticker, "cashtag")
        if self._name_re is not None:
            shouting: bool | None = None
            for m in self._name_re.finditer(text):
                ticker, how = self._names[m.group(0)]
                if how == "ticker":
                    if shouting is None:
                        shouting = _mostly_upper(text)
                    if shouting:
                        continue  # in an all-caps headline every word looks like a ticker
                if m.group(0).lower() in COMMON_WORDS and SENTENCE_START.search(text, 0, m.start()):
                    continue
                keep(ticker, how)
        return list(found.values())

    @staticmethod
    def _in_share_context(text: str, start: int, end: int) -> bool:
        before = text[max(0, start - 40) : start]
        after = text[end : end + 40]
        return bool(SHARE_CONTEXT.search(before) or SHARE_CONTEXT.search(after))


def _mostly_upper(text: str) -> bool:
    """Whether the headline (the first line) is written in capitals."""
    head = text.split("\n", 1)[0][:300]
    letters = sum(map(str.isalpha, head))
    if letters < MOSTLY_UPPER_MIN_LETTERS:
        return False
    return sum(map(str.isupper, head)) > 0.7 * letters
