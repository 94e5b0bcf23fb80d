"""The company CSV: the watchlist a user edits, and the universe files in the same format.

Format (UTF-8, header required, ``#`` lines are comments)::

    ticker,name,aliases,subscribers
    VLTA,Voltara Motors Inc.,Voltara|Voltara EV,ir-desk@example.com|pm@example.com

``ticker`` and ``name`` are required; every other column is optional; several values in
one field are separated by ``|``. The name without its corporate suffix and a leading
"The" ("Voltara Motors") is matched too. Optional columns: ``aliases`` (other names the
press writes), ``subscribers`` (alert recipients), ``share_classes`` (other tickers of
the same company: GOOG for GOOGL), ``ric`` (Reuters instrument codes of non-US listings,
e.g. 7203.T), ``country``, ``exchange``, ``sector`` (descriptive), and ``exclude``
(``yes``: in a watchlist, drop this ticker from the universe).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.settings import is_email_address

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("ticker", "name")
OPTIONAL_COLUMNS = (
    "aliases", "subscribers", "share_classes", "ric", "country", "exchange", "sector", "exclude"
)  # fmt: skip
YES = frozenset({"yes", "y", "true", "1", "x"})
NO = frozenset({"", "no", "n", "false", "0"})
TICKER_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-&]{0,15}$")  # NSE writes M&M, L&TFH
# "Acme Corp." is written "Acme" as often as not; the suffix is dropped for matching.
CORPORATE_SUFFIX = re.compile(
    r",?\s+(?:Inc|Incorporated|Corp|Corporation|Co|Company|Ltd|Limited|plc|PLC|LLC|L\.P|LP|AG|SA|NV|"
    r"N\.V|S\.A|SE|Holdings?|Group)\.?$"
)
# What is left of "Deere & Company" or "Eli Lilly and Company" once the suffix is gone.
DANGLING_AND = re.compile(r"\s+(?:&|and)$")
LEADING_THE = re.compile(r"^The\s+")


@dataclass(frozen=True)
class Company:
    ticker: str
    name: str
    aliases: tuple[str, ...] = ()
    subscribers: tuple[str, ...] = ()
    share_classes: tuple[str, ...] = ()
    ric: tuple[str, ...] = ()
    country: str = ""
    exchange: str = ""
    sector: str = ""
    exclude: bool = False

    def names(self) -> Iterator[tuple[str, str]]:
        """(text to match, how it matched): the name, its short form, then the aliases."""
        yield self.name, "name"
        short = LEADING_THE.sub("", self.name)
        short = DANGLING_AND.sub("", CORPORATE_SUFFIX.sub("", short).strip()).strip()
        if short and short != self.name:
            yield short, "name"
        for alias in self.aliases:
            yield alias, "alias"

    def names_as_aliases(self, new_name: str) -> tuple[str, ...]:
        """This company's names and aliases, kept as aliases when a watchlist row renames
        it to ``new_name``."""
        return tuple(text for text, _ in self.names() if text != new_name)

    def tickers(self) -> tuple[str, ...]:
        """The ticker, then those of the company's other share classes."""
        return (self.ticker, *self.share_classes)


@dataclass(frozen=True)
class Watchlist:
    companies: tuple[Company, ...] = ()
    source: Path | None = None
    _by_ticker: dict[str, Company] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Another share class (GOOG) finds its company (GOOGL) too.
        self._by_ticker.update({t: c for c in self.companies for t in reversed(c.tickers())})

    @classmethod
    def empty(cls) -> Watchlist:
        return cls()

    def __len__(self) -> int:
        return len(self.companies)

    def __contains__(self, ticker: object) -> bool:
        return isinstance(ticker, str) and ticker.upper() in self._by_ticker

    def tickers(self) -> list[str]:
        return [c.ticker for c in self.companies]

    def company(self, ticker: str) -> Company | None:
        return self._by_ticker.get(ticker.upper())

    def subscribers(self, ticker: str) -> list[str]:
        """Who wants alerts about this ticker (empty: the default recipients)."""
        company = self._by_ticker.get(ticker.upper())
        return list(company.subscribers) if company else []


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in value.split("|") if part.strip()))


def load_watchlist(path: str | Path, *, what: str = "watchlist") -> Watchlist:
    """Read and validate a company CSV (a watchlist, or a universe file: ``what`` names it
    in errors). Raises ConfigError naming the file and line."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        where = (
            "(FINSENT_WATCHLIST_PATH, watchlist_path in the config file, or --watchlist)"
            if what == "watchlist"
            else "(FINSENT_UNIVERSE or universe in the config file)"
        )
        raise ConfigError(
            f"{what} {path} does not exist: create it, or fix the path where it is set {where}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 ({exc.reason}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror})") from None

    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")]
    lines = [(n, line) for n, line in lines if line.strip()]
    if not lines:
        log.warning(
            "%s %s is empty: it adds no companies to the universe (with FINSENT_UNIVERSE=watchlist "
            "only cashtags and exchange prefixes are linked)",
            what,
            path,
        )
        return Watchlist(source=path)
    reader = csv.reader(line for _, line in lines)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"{what} {path} line {lines[0][0]}: header lacks {', '.join(missing)} "
            f"(expected {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ConfigError(
            f"{what} {path} line {lines[0][0]}: unknown column(s) {', '.join(unknown)} "
            f"(expected {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )

    companies: dict[str, Company] = {}
    taken: set[str] = set()  # share classes seen so far
    for (lineno, _), row in zip(lines[1:], reader, strict=True):
        if len(row) > len(header):
            raise ConfigError(
                f"{what} {path} line {lineno}: {len(row)} fields for {len(header)} columns "
                "(separate aliases and subscribers with '|', not ',')"
            )
        values = dict(zip(header, (v.strip() for v in row), strict=False))
        ticker = values.get("ticker", "").upper().lstrip("$")
        name = values.get("name", "")
        if not TICKER_RE.match(ticker):
            raise ConfigError(
                f"{what} {path} line {lineno}: ticker '{values.get('ticker', '')}' is not a ticker "
                "(letters, digits, '.' or '-', e.g. BRK.B)"
            )
        if not name and what == "universe":
            raise ConfigError(f"{what} {path} line {lineno}: {ticker} has no company name")
        # A watchlist row without a name subscribes to (or excludes) the universe's company
        # of that ticker, under the universe's name (pipeline/companies/universe.py merge).
        share_classes = tuple(t.upper() for t in _split(values.get("share_classes")))
        for t in (ticker, *share_classes):
            if t in companies or t in taken:
                raise ConfigError(f"{what} {path} line {lineno}: ticker {t} is listed twice")
            if not TICKER_RE.match(t):
                raise ConfigError(
                    f"{what} {path} line {lineno}: share class '{t}' is not a ticker (e.g. GOOG)"
                )
        exclude = values.get("exclude", "").lower()
        if exclude not in YES | NO:
            raise ConfigError(
                f"{what} {path} line {lineno}: exclude '{values['exclude']}' of {ticker} is not yes or no"
            )
        subscribers = _split(values.get("subscribers"))
        bad = [s for s in subscribers if not is_email_address(s)]
        if bad:
            raise ConfigError(
                f"{what} {path} line {lineno}: subscriber '{bad[0]}' of {ticker} is not an email address"
            )
        companies[ticker] = Company(
            ticker,
            name,
            _split(values.get("aliases")),
            subscribers,
            share_classes=share_classes,
            ric=_split(values.get("ric")),
            country=values.get("country", ""),
            exchange=values.get("exchange", ""),
            sector=values.get("sector", ""),
            exclude=exclude in YES,
        )
        taken.update(share_classes)
    return Watchlist(tuple(companies.values()), source=path)
