"""Checking the scope a silence names against what the data knows.

A silence matches its scope's key exactly, so a typo ("VLAT"), a feed id where the source's
name belongs, or a name in the wrong case would mute nothing while the analyst believes the
scope is muted. Keys are resolved to the form alerts carry where that is unambiguous;
otherwise the silence is kept (a ticker may be muted before its first article) with a
warning that names the nearest known keys.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import Connection, text

from pipeline.alerts.queries import SOURCE_NAME_SQL
from pipeline.masking import mask_secrets
from pipeline.trends.queries import known_tickers

# Named as alerts name a source, by the same expression.
_SOURCES = text(f"SELECT f.id, {SOURCE_NAME_SQL} AS source FROM feeds AS f ORDER BY f.id")
_TAGS = text("SELECT DISTINCT unnest(tags) AS tag FROM feeds ORDER BY tag")


def scope_text(scope_type: str, scope_key: str | None) -> str:
    """A scope as lists and logs show it: "market", else its type and key (a source named by
    its feed URL without the URL's credentials)."""
    if scope_type == "market":
        return "market"
    return f"{scope_type} {mask_secrets(scope_key or '')}".rstrip()


@dataclass(frozen=True)
class ScopeKey:
    key: str
    note: str | None = None  # how a given key was resolved
    warning: str | None = None  # the key matches nothing known


def resolve_scope_key(conn: Connection, scope_type: str, key: str) -> ScopeKey:
    """The key as alerts of ``scope_type`` carry it, with a note or a warning for the user."""
    if scope_type == "market":
        return ScopeKey(key)
    if scope_type == "ticker":
        known = known_tickers(conn)
        if key in known:
            return ScopeKey(key)
        return ScopeKey(key, warning=_unknown("no article has mentioned ticker", key, known))
    if scope_type == "source":
        sources = {int(r.id): r.source for r in conn.execute(_SOURCES)}
        names = list(dict.fromkeys(sources.values()))
        if key in names:
            return ScopeKey(key)
        number = key.removeprefix("#")  # `feeds list` shows ids as #3
        if number.isascii() and number.isdigit() and int(number) in sources:
            name = sources[int(number)]
            return ScopeKey(name, note=f"feed #{number} is source '{mask_secrets(name)}'")
        return _by_case(key, names, "source") or ScopeKey(
            key, warning=_unknown("no feed is source", key, names)
        )
    if scope_type == "tag":
        from pipeline.ingest.registry import fold_tags

        # Tags are stored folded (lower case), so a silence of one not carried yet is too.
        folded = (fold_tags([key]) or [key])[0]
        tags = list(conn.execute(_TAGS).scalars())
        if folded in tags:
            return ScopeKey(folded, note=None if folded == key else f"matched tag '{folded}'")
        return ScopeKey(folded, warning=_unknown("no feed has tag", folded, tags))
    raise ValueError(f"unknown scope type {scope_type!r}")


def _by_case(key: str, known: list[str], what: str) -> ScopeKey | None:
    same = [k for k in known if k.casefold() == key.casefold()]
    if len(same) == 1:
        return ScopeKey(same[0], note=f"matched {what} '{same[0]}'")
    return None


def _unknown(prefix: str, key: str, known: list[str]) -> str:
    folded = {k.casefold(): k for k in known}
    near = [folded[k] for k in difflib.get_close_matches(key.casefold(), list(folded), n=3, cutoff=0.6)]
    hint = f" (did you mean {' or '.join(repr(mask_secrets(k)) for k in near)}?)" if near else ""
    return f"{prefix} '{mask_secrets(key)}' yet{hint}: this silence mutes it only once its alerts exist"
