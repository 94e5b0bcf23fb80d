"""The watchlist: the companies a user follows, as a CSV file they edit.

Format (UTF-8, header required, ``#`` lines are comments)::

    ticker,name,aliases,subscribers
    VLTA,Voltara Motors Inc.,Voltara|Voltara EV,ir-desk@example.com|pm@example.com

``aliases`` and ``subscribers`` are optional columns; several values are separated by
``|``. The name without its corporate suffix ("Voltara Motors") is matched too.
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
OPTIONAL_COLUMNS = ("aliases", "subscribers")
TICKER_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")
# "Acme Corp." is written "Acme" as often as not; the suffix is dropped for matching.
CORPORATE_SUFFIX = re.compile(
    r",?\s+(?:Inc|Incorporated|Corp|Corporation|Co|Company|Ltd|Limited|plc|PLC|LLC|L\.P|LP|AG|SA|NV|"
    r"N\.V|S\.A|SE|Holdings?|Group)\.?$"
)


@dataclass(frozen=True)
class Company:
    ticker: str
    name: str
    aliases: tuple[str, ...] = ()
    subscribers: tuple[str, ...] = ()

    def names(self) -> Iterator[tuple[str, str]]:
        """(text to match, how it matched): the name, its short form, then the aliases."""
        yield self.name, "name"
        short = CORPORATE_SUFFIX.sub("", self.name).strip()
        if short and short != self.name:
            yield short, "name"
        for alias in self.aliases:
            yield alias, "alias"


@dataclass(frozen=True)
class Watchlist:
    companies: tuple[Company, ...] = ()
    source: Path | None = None
    _by_ticker: dict[str, Company] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_ticker.update({c.ticker: c for c in self.companies})

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


def load_watchlist(path: str | Path) -> Watchlist:
    """Read and validate a watchlist CSV. Raises ConfigError naming the file and line."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"watchlist {path} does not exist: create it, or fix the path where it is set "
            "(FINSENT_WATCHLIST_PATH, watchlist_path in the config file, or --watchlist)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"watchlist {path} is not UTF-8 ({exc.reason}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"watchlist {path} cannot be read ({exc.strerror})") from None

    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")]
    lines = [(n, line) for n, line in lines if line.strip()]
    if not lines:
        log.warning("watchlist %s is empty: only cashtags and exchange prefixes will be linked", path)
        return Watchlist(source=path)
    reader = csv.reader(line for _, line in lines)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"watchlist {path} line {lines[0][0]}: header lacks {', '.join(missing)} "
            f"(expected {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ConfigError(
            f"watchlist {path} line {lines[0][0]}: unknown column(s) {', '.join(unknown)} "
            f"(expected {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )

    companies: dict[str, Company] = {}
    for (lineno, _), row in zip(lines[1:], reader, strict=True):
        if len(row) > len(header):
            raise ConfigError(
                f"watchlist {path} line {lineno}: {len(row)} fields for {len(header)} columns "
                "(separate aliases and subscribers with '|', not ',')"
            )
        values = dict(zip(header, (v.strip() for v in row), strict=False))
        ticker = values.get("ticker", "").upper().lstrip("$")
        name = values.get("name", "")
        if not TICKER_RE.match(ticker):
            raise ConfigError(
                f"watchlist {path} line {lineno}: ticker '{values.get('ticker', '')}' is not a ticker "
                "(letters, digits, '.' or '-', e.g. BRK.B)"
            )
        if not name:
            raise ConfigError(f"watchlist {path} line {lineno}: {ticker} has no company name")
        if ticker in companies:
            raise ConfigError(f"watchlist {path} line {lineno}: ticker {ticker} is listed twice")
        subscribers = _split(values.get("subscribers"))
        bad = [s for s in subscribers if not is_email_address(s)]
        if bad:
            raise ConfigError(
                f"watchlist {path} line {lineno}: subscriber '{bad[0]}' of {ticker} is not an email address"
            )
        companies[ticker] = Company(ticker, name, _split(values.get("aliases")), subscribers)
    return Watchlist(tuple(companies.values()), source=path)
