"""Who gets which alert: the default list plus a ticker's subscribers from the watchlist."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: To: of an .eml written when no recipients are configured (outbox transport only).
PLACEHOLDER_RECIPIENT = "finsent-alerts@localhost"


@dataclass(frozen=True)
class Routing:
    defaults: tuple[str, ...] = ()
    subscribers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    companies: dict[str, str] = field(default_factory=dict)
    #: The watchlist's tickers; None when no watchlist is configured (every ticker counts).
    tickers: frozenset[str] | None = None

    def recipients(self, scope_type: str, scope_key: str) -> list[str]:
        extra = self.subscribers.get(scope_key.upper(), ()) if scope_type == "ticker" else ()
        return _unique([*self.defaults, *extra]) or [PLACEHOLDER_RECIPIENT]


def _unique(addresses: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.strip().lower(), address.strip())
    return [a for k, a in seen.items() if k]


def load_routing(settings: Settings) -> Routing:
    defaults = tuple(settings.alert_recipients)
    if settings.watchlist_path is None:
        return Routing(defaults=defaults)
    from pipeline.companies.watchlist import load_watchlist

    watchlist = load_watchlist(settings.watchlist_path)
    return Routing(
        defaults=defaults,
        subscribers={c.ticker.upper(): tuple(c.subscribers) for c in watchlist.companies},
        companies={c.ticker.upper(): c.name for c in watchlist.companies},
        tickers=frozenset(c.ticker.upper() for c in watchlist.companies),
    )
