"""Company linking: which companies an article is about, and how much.

Signals, strongest first: exchange prefixes (``NYSE: ACME``, ``(NASDAQ:XYZ)``), Reuters
instrument codes (``<AAPL.O>``), cashtags (``$ACME``), then the universe's names, aliases
and (bare) tickers, looked up as token n-grams in one dict (one pass over the text,
whatever the size of the universe). The guards (see guards.py) exist because each signal
has known false positives; each link carries its relevance (see relevance.py).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING

from pipeline.companies import guards
from pipeline.companies.exchanges import FOREIGN_EXCHANGE_RE, US_EXCHANGE_RE, foreign_ticker, venue_stands
from pipeline.companies.relevance import relevance
from pipeline.companies.watchlist import Company, Watchlist
from pipeline.ingest.normalise import linkable_text

if TYPE_CHECKING:
    from pipeline.db.engine import Database

log = logging.getLogger(__name__)

# $BRK.B and $BRK-B (Yahoo's way) are one ticker; "$tsla" in lower case counts only as a
# ticker of the universe (CASHTAG_RE is what the upper-case form alone matches).
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Z]{1,6}(?:[.\-][A-Z])?)(?![\w])")
ANY_CASE_CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Z]{1,6}(?:[.\-][A-Z])?|[a-z]{2,6}(?:[.\-][a-z])?)(?![\w])")
# Reuters instrument codes: <AAPL.O>, <JNJ.N>, <BRKb.N>, <7203.T>, <VOWG_p.DE>. The whole
# code is one signal; the letters inside it are never read as a bare ticker.
RIC_RE = re.compile(r"<\s*([A-Z0-9][A-Za-z0-9_]{0,11})(?:\.([A-Z]{1,3}))?\s*>")
# Suffixes of US venues: <AAPL.O> is AAPL, whatever the universe's ric column says.
US_RIC_SUFFIXES = frozenset({"", "O", "OQ", "N", "A", "K", "P", "PK", "Z", "BATS"})
URL_RE = re.compile(r"\bhttps?://\S+|\bwww\.\S+")
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
# Tokens: words (with digits), and the punctuation that is part of names (AT&T, J.P.
# Morgan, Coca-Cola, Lowe's, Yum!). Names are split the same way, so "Johnson & Johnson"
# is the 3-gram (Johnson, &, Johnson) and "Apple's" starts with the 1-gram Apple.
TOKEN_RE = re.compile(r"\w+|[&'.\-!]")
SEP = "\x1f"
# "Visa (V)", "Block (NYSE: XYZ)": a ticker in brackets right after a name.
OWN_TICKER_RE = re.compile(r"\s*\((?:[A-Z]+:\s*)?([A-Z][A-Z0-9]*(?:[.\-][A-Z])?)\)")
# Before a word, these end a sentence (or a headline part): its capital letter proves nothing.
SENTENCE_ENDS = frozenset('.!?:;"“”(|[–—-\n')
# What separates the companies of a list: "Walmart, Costco and Target".
LIST_GAPS = frozenset({",", "&", "and", ", and", "/", ";"})
MOSTLY_UPPER_MIN_LETTERS = 12
TITLE_CASE_SHARE = 0.6
BARE_TICKER_MIN = 3

RANK = {"exchange": 0, "ric": 1, "cashtag": 2, "name": 3, "alias": 4, "ticker": 5}
SOURCE_RELEVANCE = 10


@dataclass(frozen=True)
class EntityMatch:
    ticker: str
    company: str | None
    matched_by: str  # exchange | ric | cashtag | name | alias | ticker
    mention: str = ""  # the first mention as written
    relevance: int = 0  # 0-100, see relevance.py


@dataclass(frozen=True)
class _Name:
    ticker: str
    how: str  # name | alias | ticker
    policy: str  # plain | word | context | person | ticker


@dataclass
class _Hit:
    ticker: str
    how: str
    start: int
    end: int
    policy: str = "plain"
    first: int = -1  # token range, for names
    last: int = -1
    source: bool = False  # the company speaks about others: "UBS upgrades Orbix"


def _tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text.replace("’", "'"))


def _capitalised(token: str) -> str:
    """A word with capitals inside ("SoftBank", "eBay") as a plain capitalised word
    ("Softbank", "Ebay"); any other token as it is."""
    if any(c.isupper() for c in token[1:]) and any(c.islower() for c in token):
        return token.capitalize()
    return token


def _policy(text: str, how: str) -> str:
    low = text.lower()
    if how == "ticker":
        return "ticker"
    if low in guards.CONTEXT_NAMES:
        return "context"
    if low in guards.WORD_NAMES:
        return "word"
    if low in guards.PERSON_NAMES:
        return "person"
    return "plain"


class TickerLinker:
    """Finds companies in text. Build once per run (the name index is built here)."""

    def __init__(self, watchlist: Watchlist | None = None):
        self.watchlist = watchlist or Watchlist.empty()
        exact: dict[str, _Name] = {}
        upper: dict[str, _Name] = {}
        self._ric: dict[str, str] = {}
        for company in self.watchlist.companies:
            for text, how in company.names():
                tokens = _tokens(text)
                if not tokens:
                    continue
                name = _Name(company.ticker, how, _policy(text, how))
                exact.setdefault(SEP.join(tokens), name)
                if text[0].islower():  # "eBay" opens a sentence as "EBay"
                    exact.setdefault(SEP.join([tokens[0][0].upper() + tokens[0][1:], *tokens[1:]]), name)
                # "SoftBank", "BlackRock", "eBay" are written "Softbank", "Blackrock", "Ebay" too.
                # Flattened, the name can be an ordinary word ("Centerpoint of the plan",
                # "Coned"): guarded as a word, unless its own policy is stricter.
                plain = [_capitalised(t) for t in tokens]
                if plain != tokens:
                    policy = name.policy if name.policy in ("context", "person") else "word"
                    exact.setdefault(SEP.join(plain), _Name(company.ticker, how, policy))
                # Headlines are sometimes written in capitals; "Voltara" is also "VOLTARA".
                upper.setdefault(SEP.join(tokens).upper(), name)
            for ticker in company.tickers():
                plain = ticker.replace(".", "").replace("-", "")
                if (
                    len(plain) >= BARE_TICKER_MIN
                    and ticker not in guards.WORD_TICKERS
                    and not plain.isdigit()
                ):
                    exact.setdefault(SEP.join(_tokens(ticker)), _Name(company.ticker, "ticker", "ticker"))
            for code in company.ric:
                self._ric[code] = company.ticker
        self._exact = exact
        self._upper = upper
        longest: dict[str, int] = {}
        for key in (*exact, *upper):
            parts = key.split(SEP)
            longest[parts[0]] = max(longest.get(parts[0], 0), len(parts))
        self._longest = longest

    # --- the signals ---------------------------------------------------------------

    def _canonical(self, ticker: str) -> tuple[str, Company | None]:
        company = self.watchlist.company(ticker)
        return (company.ticker if company else ticker), company

    def _is_ticker(self, word: str) -> bool:
        """Whether ``word`` as written is a ticker of the universe (in capitals)."""
        return word.isupper() and word in self.watchlist

    def _lookup(self, code: str) -> str | None:
        """The company ticker of a universe ticker or ric code."""
        if code in self._ric:
            return self._ric[code]
        company = self.watchlist.company(code)
        return company.ticker if company else None

    def _country(self, ticker: str) -> str | None:
        company = self.watchlist.company(ticker)
        return company.country if company else None

    def _cashtag_ticker(self, tag: str) -> str | None:
        """The ticker of a cashtag as written, or None: "BRK-B" is BRK.B where the universe
        holds it ("BMY-R", a right, stays BMY as before); "tsla" counts only as a universe
        ticker, and never as a word that is money ("$bn", "$us"); NOT_CASHTAGS never."""
        lower = tag.islower()
        tag = tag.upper()
        if "-" in tag:
            dotted = tag.replace("-", ".")
            tag = dotted if dotted in self.watchlist else tag.split("-")[0]
        if tag in NOT_CASHTAGS and tag not in self.watchlist:
            return None  # "$5B", "$USD": money, unless the universe lists the ticker
        if lower and (tag in NOT_CASHTAGS or tag in guards.WORD_TICKERS or tag not in self.watchlist):
            return None  # "$low prices", "$now is the time": words, not LOW or NOW
        return tag

    def _ric_ticker(self, base: str, suffix: str) -> str | None:
        code = f"{base}.{suffix}" if suffix else base
        if code in self._ric:
            return self._ric[code]
        if suffix not in US_RIC_SUFFIXES:
            return None
        # <BRKb.N>: a lower-case last letter is the share class, BRK.B.
        if len(base) > 1 and base[-1].islower() and base[:-1].isupper():
            base = f"{base[:-1]}.{base[-1].upper()}"
        company = self.watchlist.company(base)
        return company.ticker if company else None

    def link(self, text: str) -> list[EntityMatch]:
        """One match per company, the strongest signal kept, in order of first appearance,
        each with its relevance."""
        if not text:
            return []
        text = text.replace("’", "'")  # same length: offsets stay those of the input
        hits: list[_Hit] = []
        masked: list[tuple[int, int]] = []
        if ":" in text:
            for m in US_EXCHANGE_RE.finditer(text):
                hits.append(_Hit(m.group(1).replace("-", "."), "exchange", m.start(), m.end()))
                masked.append((m.start(), m.end()))
            for m in FOREIGN_EXCHANGE_RE.finditer(text):
                if not venue_stands(text, m.group(1), m.start()):
                    continue  # "EPA: GM must recall": an agency, not Euronext Paris
                masked.append((m.start(), m.end()))  # its code is never a US bare ticker
                ticker = foreign_ticker(m.group(1), m.group(2), self._lookup, self._country)
                if ticker is not None:
                    hits.append(_Hit(ticker, "exchange", m.start(), m.end()))
        if "<" in text:
            for m in RIC_RE.finditer(text):
                masked.append((m.start(), m.end()))
                ticker = self._ric_ticker(m.group(1), m.group(2) or "")
                if ticker is not None:
                    hits.append(_Hit(ticker, "ric", m.start(), m.end()))
        if "$" in text:
            for m in ANY_CASE_CASHTAG_RE.finditer(text):
                masked.append((m.start(), m.end()))
                ticker = self._cashtag_ticker(m.group(1))
                if ticker is None:
                    continue
                if ticker in SOCIAL_TICKERS and self._in_share_context(text, m.start(), m.end()):
                    continue
                hits.append(_Hit(ticker, "cashtag", m.start(), m.end()))
        if "http" in text or "www." in text:
            masked.extend((m.start(), m.end()) for m in URL_RE.finditer(text))
        hits.extend(self._names(text, masked, hits))
        return self._matches(text, hits)

    def _names(self, text: str, masked: list[tuple[int, int]], strong: list[_Hit]) -> list[_Hit]:
        toks = [(m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(text)]
        words = [t[0] for t in toks]
        n = len(toks)
        shouting: bool | None = None
        titled: bool | None = None
        found: list[_Hit] = []
        in_masked = _inside_any(masked)
        i = 0
        while i < n:
            longest = self._longest.get(words[i])
            if longest is None:
                i += 1
                continue
            hit = None
            for k in range(min(longest, n - i), 0, -1):
                key = SEP.join(words[i : i + k])
                name = self._exact.get(key)
                if name is None and key.isupper():
                    # "AMEX" the exchange is not "Amex": one word in capitals counts only in a
                    # shouted headline; "MORGAN STANLEY" anywhere.
                    if shouting is None and k == 1:
                        shouting = _mostly_upper(text)
                    name = self._upper.get(key) if (k > 1 or shouting) else None
                if name is not None:
                    hit = _Hit(
                        name.ticker, name.how, toks[i][1], toks[i + k - 1][2], name.policy, i, i + k - 1
                    )
                    break
            if hit is None:
                i += 1
                continue
            i = hit.last + 1
            if masked and in_masked(hit.start):
                continue
            if hit.start and text[hit.start - 1] in "$<#":
                continue
            if hit.policy == "ticker":
                if text.startswith(("…", "..."), hit.end):
                    continue  # a word cut short ("HIT LIN…") is no ticker
                if _in_compound(text, hit.start, hit.end, self._is_ticker):
                    continue  # "AFL-CIO", "AMT-Free": letters of one longer word
                if titled is None:
                    titled = _title_case(text.split("\n", 1)[0])
                if not titled and _names_another_company(text, toks, hit.last):
                    # "ECL Finance", "SWK Holdings": a company whose name starts so (in a
                    # Title Case headline every word is capitalised: "NVDA Growth Slows").
                    continue
                if shouting is None:
                    shouting = _mostly_upper(text)
                if shouting:
                    continue  # in an all-caps headline every word looks like a ticker
            found.append(hit)
        if not found:
            return []
        return self._guard(text, toks, found, {h.ticker for h in strong})

    def _guard(
        self, text: str, toks: list[tuple[str, int, int]], found: list[_Hit], strong: set[str]
    ) -> list[_Hit]:
        """The name hits that pass their policy's guard (see guards.py)."""
        words = [t[0] for t in toks]
        lower = [w.lower() for w in words]
        n = len(toks)
        headline_end = text.find("\n")
        headline_end = len(text) if headline_end < 0 else headline_end
        # Company names are capitalised anyway: they do not make a headline Title Case.
        named = {i for h in found for i in range(h.first, h.last + 1)}
        title_case = _title_case(
            " ".join(w for i, w in enumerate(words) if i not in named and toks[i][1] < headline_end)
        )
        tail = _headline_tail(text, headline_end)
        shouting = _mostly_upper(text)
        sure = set(strong) | {self._canonical(h.ticker)[0] for h in found if h.policy in ("plain", "ticker")}

        def after(h: _Hit, k: int = 1) -> str:
            return lower[h.last + k] if h.last + k < n else ""

        def before(h: _Hit, k: int = 1) -> str:
            return lower[h.first - k] if h.first - k >= 0 else ""

        def own_ticker(h: _Hit) -> bool:
            """ "Visa (V) Up 3.2%", "Block (XYZ) Reports": the name, then its own ticker."""
            m = OWN_TICKER_RE.match(text, h.end)
            return m is not None and self._canonical(m.group(1))[0] == self._canonical(h.ticker)[0]

        def hyphen_owned(h: _Hit) -> bool:
            """ "Amazon-backed", "Meta-owned": written as one word."""
            return text[h.end : h.end + 1] == "-" and after(h, 2) in guards.HYPHEN_FOLLOWERS

        def company_words(h: _Hit) -> bool:
            nxt = after(h)
            if nxt == "'" and after(h, 2) == "s":
                return True
            if nxt in guards.COMPANY_FOLLOWERS:
                return True
            if nxt == "pt" or (nxt == "price" and after(h, 2) == "target"):
                return True  # only a company has a price target: "Trims Apple Price Target"
            if hyphen_owned(h) or own_ticker(h):
                return True
            prev = before(h)
            if prev in guards.DESCRIPTORS:
                return True
            return prev in ("of", "in") and before(h, 2) in guards.OF_HEADS

        def capital_proves_nothing(h: _Hit) -> bool:
            if shouting or (title_case and h.start < headline_end):
                return True
            k = h.start - 1
            while k >= 0 and text[k] in " \t":
                k -= 1
            return k < 0 or text[k] in SENTENCE_ENDS

        def inside_other_name(h: _Hit) -> bool:
            """Whether a capitalised word mid-sentence comes first: "Madison Square",
            "Vahur Kraft" (a Title Case headline says nothing)."""
            if not h.first or (title_case and h.start < headline_end) or shouting:
                return False
            prev = words[h.first - 1]
            if not (prev[:1].isupper() and prev.isalpha() and not prev.isupper()):
                return False
            gap = text[toks[h.first - 1][2] : h.start]
            if gap.strip() or "\n" in gap:
                return False  # "Amazon, Alphabet" is a list; a headline, then "Ford said" a new line
            k = toks[h.first - 1][1] - 1
            while k >= 0 and text[k] in " \t":
                k -= 1
            return not (k < 0 or text[k] in SENTENCE_ENDS) and prev.lower() not in guards.DESCRIPTORS

        def initials(h: _Hit) -> bool:
            """ "BP Singh": two capitals, then a capitalised word that is no company word."""
            name = words[h.first] if h.first == h.last else ""
            if len(name) > 2 or not name.isupper() or h.last + 1 >= n:
                return False
            if title_case and h.start < headline_end:
                return False
            if text[h.end : toks[h.last + 1][1]].strip():
                return False  # "HP, Nutanix": a list, not "BP Singh"
            nxt = words[h.last + 1]
            return (
                nxt[:1].isupper()
                and nxt.isalpha()
                and not nxt.isupper()
                and nxt.lower() not in guards.COMPANY_FOLLOWERS
            )

        kept: list[_Hit | None] = []
        other_thing: set[int] = set()
        for h in found:
            ok = True
            name = " ".join(words[h.first : h.last + 1]).lower()
            if (
                (name, after(h)) in guards.DIFFERENT_THINGS
                or (before(h), name) in guards.DIFFERENT_AFTER
                or (h.first and (words[h.first - 1], name) in guards.DIFFERENT_AFTER_CASED)
            ):
                ok = False
                other_thing.add(id(h))  # not brought back by the list rule below
            elif initials(h):
                ok = False
            elif h.policy == "context":
                ok = self._canonical(h.ticker)[0] in strong or (
                    after(h) in guards.CONTEXT_FOLLOWERS
                    or (
                        after(h) in guards.CONTEXT_VERBS
                        and any(after(h, k) in guards.RESULTS_WORDS for k in (2, 3, 4))
                    )
                    or own_ticker(h)
                    or before(h) in guards.DESCRIPTORS
                    or (before(h) == "of" and before(h, 2) in guards.OF_HEADS)
                )
            elif h.policy == "person":
                ok = not (
                    (
                        h.first
                        and words[h.first - 1][:1].isupper()
                        and before(h) in guards.FIRST_NAMES_AND_TITLES
                    )
                    or (h.first > 1 and before(h) == "." and before(h, 2) in guards.FIRST_NAMES_AND_TITLES)
                    # "Gerald R. Ford": a first name, then a middle initial
                    or (
                        h.first > 2
                        and before(h) == "."
                        and len(before(h, 2)) == 1
                        and before(h, 3) in guards.FIRST_NAMES_AND_TITLES
                    )
                    or inside_other_name(h)
                    or after(h) in guards.PERSON_FOLLOWERS
                )
            elif h.policy == "word" and before(h) == "the" and name in guards.THE_PLACES:
                ok = (
                    self._canonical(h.ticker)[0] in sure
                    or after(h) in guards.THE_COMPANY_NOUNS
                    or hyphen_owned(h)
                )
            elif h.policy == "word":
                ok = self._canonical(h.ticker)[0] in sure or (
                    company_words(h) or not (capital_proves_nothing(h) or inside_other_name(h))
                )
            if ok:
                h.source = _is_source(lower, h.first, h.last) or _is_attribution(text, h, headline_end, tail)
            kept.append(h if ok else None)
        # "JPMorgan, Citi and Target beat estimates": a word name in a list of companies
        # is a company too.
        for _ in range(2):
            for idx, h in enumerate(found):
                if kept[idx] is not None or h.policy != "word" or id(h) in other_thing:
                    continue
                for other_idx in (idx - 1, idx + 1):
                    if not 0 <= other_idx < len(found) or kept[other_idx] is None:
                        continue
                    other = found[other_idx]
                    gap = text[other.end : h.start] if other_idx < idx else text[h.end : other.start]
                    if gap.strip().lower() in LIST_GAPS:
                        kept[idx] = h
                        break
        return [h for h in kept if h is not None]

    def _matches(self, text: str, hits: list[_Hit]) -> list[EntityMatch]:
        # One pass over the hits, grouped by company: a text that names hundreds of companies
        # many times (a hostile feed item, an index constituent list) stays linear in its size.
        best: dict[str, tuple[_Hit, Company | None]] = {}
        first_hits: dict[str, _Hit] = {}
        mentions: dict[str, int] = {}
        only_source: dict[str, bool] = {}
        for h in hits:
            ticker, company = self._canonical(h.ticker)
            mentions[ticker] = mentions.get(ticker, 0) + 1
            only_source[ticker] = only_source.get(ticker, True) and h.source
            if ticker not in first_hits or h.start < first_hits[ticker].start:
                first_hits[ticker] = h
            old = best.get(ticker)
            if old is None or RANK[h.how] < RANK[old[0].how]:
                best[ticker] = (h, company)
        order = sorted(first_hits, key=lambda t: first_hits[t].start)
        # A broker or rating agency that only speaks about other companies ("UBS upgrades
        # Orbix", "... - BofA") is linked, as a passing mention: it is not the story.
        subjects = {t: k for k, t in enumerate(t for t in order if not only_source[t])}
        headline_end = text.find("\n")
        headline_end = len(text) if headline_end < 0 else headline_end
        matches = []
        for ticker in order:
            hit, company = best[ticker]
            first_hit = first_hits[ticker]
            score = relevance(
                first_at=first_hit.start,
                mentions=mentions[ticker],
                in_headline=first_hit.start < headline_end,
                order=subjects.get(ticker, len(subjects)),
                companies=len(subjects),
                text_length=len(text),
            )
            if only_source[ticker]:
                score = min(score, SOURCE_RELEVANCE)
            matches.append(
                EntityMatch(
                    ticker,
                    company.name if company else None,
                    hit.how,
                    text[first_hit.start : first_hit.end],
                    score,
                )
            )
        return matches

    @staticmethod
    def _in_share_context(text: str, start: int, end: int) -> bool:
        before = text[max(0, start - 40) : start]
        after = text[end : end + 40]
        return bool(SHARE_CONTEXT.search(before) or SHARE_CONTEXT.search(after))


def _inside_any(spans: list[tuple[int, int]]) -> Callable[[int], bool]:
    """Whether a position lies in one of ``spans`` ((start, end), which may overlap): a
    binary search, not a scan of every span per name found."""
    ordered = sorted(spans)
    starts = [a for a, _ in ordered]
    reach = list(accumulate((b for _, b in ordered), max))  # the furthest end so far

    def inside(pos: int) -> bool:
        k = bisect_right(starts, pos) - 1
        return k >= 0 and reach[k] > pos

    return inside


def _in_compound(text: str, start: int, end: int, is_ticker: Callable[[str], bool]) -> bool:
    """Whether text[start:end] is joined by a hyphen to a word on either side ("NVDA-led"
    is not: see guards.HYPHEN_FOLLOWERS; nor is a pair of tickers, "AAPL-MSFT")."""
    joined_after = text[end : end + 1] == "-" and text[end + 1 : end + 2].isalnum()
    if joined_after:
        m = TOKEN_RE.match(text, end + 1)
        other = m.group() if m else ""
        joined_after = other.lower() not in guards.HYPHEN_FOLLOWERS and not is_ticker(other)
    joined_before = start > 1 and text[start - 1] == "-" and text[start - 2].isalnum()
    if joined_before:
        k = start - 1
        while k > 0 and (text[k - 1].isalnum() or text[k - 1] == "."):
            k -= 1
        joined_before = not is_ticker(text[k : start - 1])
    return joined_after or joined_before


def _names_another_company(text: str, toks: list[tuple[str, int, int]], last: int) -> bool:
    """Whether the bare ticker ending at token ``last`` starts another company's name: a
    capitalised word that names companies follows it ("ECL Finance", "MGM Growth
    Properties", "VST Industries"). A company whose name is its ticker ("IBM") is matched
    as a name, so these letters are someone else's."""
    if last + 1 >= len(toks):
        return False
    word, start, _ = toks[last + 1]
    if text[toks[last][2] : start].strip(" \t"):
        return False  # "SWK, Holdings ..." or a new line: not one name
    return word[:1].isupper() and word.lower() in guards.LISTING_NAME_WORDS


def _is_source(lower: list[str], first: int, last: int) -> bool:
    """Whether the words after a mention make the company a source of views on others:
    "Goldman Sachs trims Granite Peak price target", "JPMorgan analysts said"."""
    nxt = lower[last + 1] if last + 1 < len(lower) else ""
    if nxt in guards.ANALYST_ACTIONS:
        return True
    if nxt in guards.TARGET_MOVES:
        window = lower[last + 2 : last + 10]
        return any(w in guards.TARGET_WORDS for w in window) or any(
            a == "price" and b == "target" for a, b in pairwise(window)
        )
    return False


def _is_attribution(text: str, hit: _Hit, headline_end: int, tail: int) -> bool:
    """Whether the mention is a headline's closing attribution: "Nvidia set for gains - BofA".
    ``tail``: where the headline's closing run of links and punctuation starts
    (:func:`_headline_tail`)."""
    if hit.start >= headline_end or not hit.start:
        return False
    return hit.end >= tail and text[max(0, hit.start - 3) : hit.start].rstrip().endswith(("-", "–", "—", "|"))


def _headline_tail(text: str, headline_end: int) -> int:
    """Where the headline's closing run of links, spaces, dots, ellipses and brackets
    ("... - BofA (https://t.co/x)." ends with one) starts: nothing else may follow a
    closing attribution. Found once per text, so a long headline is not read again for
    every name in it."""
    urls = {m.end(): m.start() for m in URL_RE.finditer(text, 0, headline_end)}
    pos = headline_end
    while pos > 0:
        if pos in urls:  # a link runs to a space or the headline's end: it takes its ")."
            pos = urls[pos]
        elif text[pos - 1] in " .…()":
            pos -= 1
        else:
            break
    return pos


def _mostly_upper(text: str) -> bool:
    """Whether the headline (the first line) is written in capitals."""
    head = text.split("\n", 1)[0][:300]
    letters = sum(map(str.isalpha, head))
    if letters < MOSTLY_UPPER_MIN_LETTERS:
        return False
    return sum(map(str.isupper, head)) > 0.7 * letters


def _title_case(headline: str) -> bool:
    """Whether the headline Capitalises Every Word (then a capital proves nothing)."""
    words = [w for w in TOKEN_RE.findall(headline) if w.isalpha() and len(w) > 3]
    if len(words) < 3:
        return False
    return sum(w[0].isupper() for w in words[1:]) >= TITLE_CASE_SHARE * (len(words) - 1)


# --- re-linking stored articles after a watchlist edit -----------------------------------

RELINK_BATCH = 1000

# A page of articles in id order (keyset: no OFFSET, each page is an index range). FOR
# SHARE holds off an ingest edit of the same articles until the page is committed: it
# re-links from the new text itself, and must not be overwritten with links of the old.
RELINK_PAGE = """
    SELECT id, title, summary, published_at FROM articles
    WHERE id > :after {since}
    ORDER BY id
    LIMIT :n
    FOR SHARE
"""
RELINK_CURRENT = """
    SELECT article_id, ticker, company, matched_by, relevance, mention FROM article_entities
    WHERE article_id = ANY(CAST(:ids AS bigint[]))
"""
RELINK_DELETE = """
    DELETE FROM article_entities e
    USING unnest(CAST(:ids AS bigint[]), CAST(:tickers AS text[])) AS k (article_id, ticker)
    WHERE e.article_id = k.article_id AND e.ticker = k.ticker
"""
RELINK_INSERT = """
    INSERT INTO article_entities (article_id, ticker, company, matched_by, relevance, mention, published_at)
    SELECT * FROM unnest(
        CAST(:ids AS bigint[]), CAST(:tickers AS text[]), CAST(:companies AS text[]),
        CAST(:matched_by AS text[]), CAST(:relevance AS smallint[]), CAST(:mentions AS text[]),
        CAST(:published_at AS timestamptz[])
    )
"""
RELINK_UPDATE = """
    UPDATE article_entities e
    SET company = k.company, matched_by = k.matched_by, relevance = k.relevance, mention = k.mention
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:tickers AS text[]), CAST(:companies AS text[]),
        CAST(:matched_by AS text[]), CAST(:relevance AS smallint[]), CAST(:mentions AS text[])
    ) AS k (article_id, ticker, company, matched_by, relevance, mention)
    WHERE e.article_id = k.article_id AND e.ticker = k.ticker
"""


# What a link says besides its (article, ticker) key: company, matched_by, relevance, mention.
_Link = tuple[str | None, str, int | None, str | None]


def _link_columns(keys: list[tuple[int, str]], wanted: dict[tuple[int, str], _Link]) -> dict[str, list]:
    """The unnest() arrays of RELINK_INSERT / RELINK_UPDATE for these (article, ticker) links."""
    return {
        "ids": [a for a, _ in keys],
        "tickers": [t for _, t in keys],
        "companies": [wanted[k][0] for k in keys],
        "matched_by": [wanted[k][1] for k in keys],
        "relevance": [wanted[k][2] for k in keys],
        "mentions": [wanted[k][3] for k in keys],
    }


@dataclass
class RelinkReport:
    articles: int = 0  # articles read
    changed: int = 0  # articles whose links changed
    added: int = 0  # links added (a ticker the article is now linked to)
    removed: int = 0  # links removed
    updated: int = 0  # same ticker, another company name, signal, relevance or mention

    def summary(self) -> str:
        return (
            f"relink: {self.articles} articles read, {self.changed} changed: {self.added} links added, "
            f"{self.removed} removed, {self.updated} updated"
        )


def relink_articles(
    db: Database,
    watchlist: Watchlist,
    *,
    since: datetime | None = None,
    batch_size: int = RELINK_BATCH,
    dry_run: bool = False,
) -> RelinkReport:
    """Re-link stored articles (those published since ``since``, or all) to the companies
    of ``watchlist`` (a universe with the watchlist applied: see universe.companies_for),
    as ingestion would link them today, relevance and mention included. Idempotent: a
    second run changes nothing.

    Works page by page, one transaction each, so memory and locks stay bounded whatever
    the size of the table, and an interrupted run keeps what it did (run it again to
    finish). Only differences are written; the trends triggers queue the hours of those
    articles, so ``refresh_rollups`` afterwards (or the next scoring run) brings the
    ticker rollups up to date. ``dry_run`` counts the changes and writes nothing.
    """
    from sqlalchemy import text

    if since is not None and since.tzinfo is None:
        raise ValueError(f"since={since.isoformat()} has no timezone: pass an aware datetime")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    linker = TickerLinker(watchlist)
    page = text(RELINK_PAGE.format(since="AND published_at >= :since" if since is not None else ""))
    report = RelinkReport()
    after = 0
    while True:
        with db.engine.connect() as conn, conn.begin() as tx:
            params = {"after": after, "n": batch_size} | ({"since": since} if since is not None else {})
            rows = conn.execute(page, params).all()
            if not rows:
                break
            after = rows[-1].id
            ids = [r.id for r in rows]
            current = {
                (r.article_id, r.ticker): (r.company, r.matched_by, r.relevance, r.mention)
                for r in conn.execute(text(RELINK_CURRENT), {"ids": ids})
            }
            wanted: dict[tuple[int, str], _Link] = {}
            published = {r.id: r.published_at for r in rows}
            for r in rows:
                for match in linker.link(linkable_text(r.title, r.summary)):
                    wanted[(r.id, match.ticker)] = (
                        match.company,
                        match.matched_by,
                        match.relevance,
                        match.mention or None,  # a link made before 0012 gets its mention here
                    )
            added = [key for key in wanted if key not in current]
            removed = [key for key in current if key not in wanted]
            updated = [key for key, value in wanted.items() if key in current and current[key] != value]
            report.articles += len(rows)
            report.added += len(added)
            report.removed += len(removed)
            report.updated += len(updated)
            report.changed += len({article_id for article_id, _ in (*added, *removed, *updated)})
            if dry_run:
                tx.rollback()
                continue
            # Nothing is written for an unchanged page: no dead rows, no dirty hours.
            if removed:
                conn.execute(
                    text(RELINK_DELETE),
                    {"ids": [a for a, _ in removed], "tickers": [t for _, t in removed]},
                )
            if added:
                published_at = {"published_at": [published[a] for a, _ in added]}
                conn.execute(text(RELINK_INSERT), _link_columns(added, wanted) | published_at)
            if updated:
                conn.execute(text(RELINK_UPDATE), _link_columns(updated, wanted))
        log.debug("relink: up to article #%s, %s", after, report.summary())
    log.info("%s%s", report.summary(), " (dry run: nothing written)" if dry_run else "")
    return report
