"""The company universe: which companies articles are linked to.

``universe`` (FINSENT_UNIVERSE) picks it: ``sp500`` (default: the bundled S&P 500 plus
large non-US companies), ``watchlist`` (only the user's watchlist), or the path of a CSV
in the watchlist's format (another market). The watchlist, when set, extends and
overrides the universe: its companies are added (private ones too), a row for a
universe ticker replaces that company's name and subscribers and adds its aliases, and
a row with ``exclude`` set to yes drops the company.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.companies.watchlist import Company, Watchlist, load_watchlist
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_UNIVERSE = "sp500"
WATCHLIST_ONLY = "watchlist"
# The bundled universe: its files, and where its facts came from (shown by `finsent companies`).
BUNDLED_FILES = ("sp500.csv", "world.csv")
BUNDLED_SOURCE = (
    "S&P 500 constituents as of August 2026 (datasets/s-and-p-500-companies, sourced from "
    "Wikipedia, public domain) plus large non-US companies; press names curated for FinSent"
)


def bundled_path(name: str) -> Path:
    return Path(str(resources.files("pipeline.companies") / "data" / name))


def load_bundled() -> Watchlist:
    companies: list[Company] = []
    seen: set[str] = set()
    for name in BUNDLED_FILES:
        for company in load_watchlist(bundled_path(name), what="universe").companies:
            # A fact declared once: a ticker in two bundled files is a packaging error.
            clash = seen.intersection(company.tickers())
            if clash:
                raise AssertionError(f"bundled universe lists {sorted(clash)} twice")
            seen.update(company.tickers())
            companies.append(company)
    return Watchlist(tuple(companies), source=bundled_path(BUNDLED_FILES[0]))


def load_universe(universe: str, watchlist: Watchlist | None = None) -> Watchlist:
    """The companies to link: the universe named by ``universe``, extended and overridden
    by ``watchlist``. Raises ConfigError (naming the file and row) for a bad CSV."""
    spec = universe.strip()
    if spec.lower() == WATCHLIST_ONLY:
        base = Watchlist.empty()
    elif spec.lower() == DEFAULT_UNIVERSE:
        base = load_bundled()
    else:
        base = load_watchlist(spec, what="universe")
    return merge(base, watchlist) if watchlist is not None else base


def merge(universe: Watchlist, watchlist: Watchlist) -> Watchlist:
    """``universe`` extended and overridden by ``watchlist`` (see the module docstring)."""
    companies = {c.ticker: c for c in universe.companies}
    for mine in watchlist.companies:
        theirs = universe.company(mine.ticker)
        if theirs is not None:
            companies.pop(theirs.ticker, None)
        if mine.exclude:
            continue
        if theirs is None and not mine.name:
            raise ConfigError(
                f"watchlist {watchlist.source}: {mine.ticker} has no company name, and the universe has "
                f"no {mine.ticker} to take it from: give its name in the name column"
            )
        if theirs is not None:
            name = mine.name or theirs.name
            aliases = tuple(dict.fromkeys((*mine.aliases, *theirs.names_as_aliases(name))))
            mine = replace(
                theirs,
                name=name,
                aliases=aliases,
                subscribers=mine.subscribers,
            )
        companies[mine.ticker] = mine
    return Watchlist(tuple(companies.values()), source=watchlist.source or universe.source)


def companies_for(settings: Settings, watchlist: Watchlist | None = None) -> Watchlist:
    """The configured universe with the configured watchlist (or ``watchlist``) applied."""
    if watchlist is None and settings.watchlist_path is not None:
        watchlist = load_watchlist(settings.watchlist_path)
    return load_universe(settings.universe, watchlist)


def describe(settings: Settings) -> str:
    """One line: which universe is configured and where its facts came from."""
    spec = settings.universe
    if spec.lower() == DEFAULT_UNIVERSE:
        what = f"{DEFAULT_UNIVERSE}: {BUNDLED_SOURCE}"
    elif spec.lower() == WATCHLIST_ONLY:
        what = "watchlist only"
    else:
        what = f"file {spec}"
    if settings.watchlist_path is not None:
        what += f"; extended by watchlist {settings.watchlist_path}"
    return what
