"""Companies: the universe of companies FinSent knows, the user's watchlist that extends and
overrides it, linking an article's text to those companies, and each link's relevance.

Ingestion (which companies an article names) and alerts (who is subscribed to a company)
both read companies through this package, so a company is declared in one place.
"""

from pipeline.companies.linking import EntityMatch, RelinkReport, TickerLinker, relink_articles
from pipeline.companies.relevance import PASSING_MENTION, relevance
from pipeline.companies.universe import companies_for, describe, load_universe
from pipeline.companies.watchlist import Company, Watchlist, load_watchlist

__all__ = [
    "PASSING_MENTION",
    "Company",
    "EntityMatch",
    "RelinkReport",
    "TickerLinker",
    "Watchlist",
    "companies_for",
    "describe",
    "load_universe",
    "load_watchlist",
    "relevance",
    "relink_articles",
]
