"""How much an article is about a company it names: 0 (a passing mention) to 100.

Computed from where and how often the company is mentioned in the article's linked text
(headline, then summary), the way news analytics vendors score relevance:

- 40 points when the headline names it;
- 15 when it is the first company named, 10 more when it is the only one;
- 5 for each mention after the first, at most 20;
- up to 15 for how early the first mention comes (15 at the start, 0 at the end).

A company named in the headline of a one-company story scores 80 or more; the second of
two companies in a headline about 50; a single mention late in a long summary that names
other companies first scores under 10. A broker or rating agency that only speaks about
another company ("UBS upgrades Orbix") is capped at 10 by the linker. ``PASSING_MENTION``
is the line below which a link is a passing mention (trends and alerts leave those out).
"""

from __future__ import annotations

HEADLINE = 40
FIRST = 15
ONLY = 10
PER_REPEAT = 5
REPEAT_MAX = 20
EARLY = 15
PASSING_MENTION = 30


def counts_sql(alias: str = "e") -> str:
    """The SQL condition under which an ``article_entities`` link (``alias``) counts for its
    company's trends and alerts: not a passing mention. Links stored before relevance
    existed (NULL until ``finsent feeds relink``) count, as they always did."""
    return f"({alias}.relevance IS NULL OR {alias}.relevance >= {PASSING_MENTION})"


def relevance(
    *, first_at: int, mentions: int, in_headline: bool, order: int, companies: int, text_length: int
) -> int:
    """The relevance of one company in one text.

    ``first_at``: character offset of its first mention; ``mentions``: how many times it is
    named; ``in_headline``: whether the headline names it; ``order``: 0 for the first
    company named in the text, 1 for the second, ...; ``companies``: how many the text names.
    """
    score = HEADLINE if in_headline else 0
    if order == 0:
        score += FIRST
        if companies == 1:
            score += ONLY
    score += min(REPEAT_MAX, PER_REPEAT * max(0, mentions - 1))
    score += round(EARLY * (1 - min(first_at, text_length) / max(text_length, 1)))
    return max(0, min(100, score))
