"""Silences: muting a scope's notifications for a while (detection goes on, no email is sent).

One place for the rows ``finsent alerts silence|unsilence`` and the alert page's form write:
both resolve the scope key the same way (:func:`pipeline.alerts.scopes.resolve_scope_key`), so
a silence mutes exactly what the alerts carry, whichever way it was set. The command takes any
future end; the web form offers a fixed list of lengths (:data:`DURATIONS`), so a form cannot
ask for a silence that ends in the past or never.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.alerts.scopes import resolve_scope_key
from pipeline.db.models import AlertSilence
from pipeline.ingest.normalise import one_plain_line

log = logging.getLogger(__name__)

# The lengths the alert page offers.
DURATIONS = MappingProxyType(
    {
        "1h": timedelta(hours=1),
        "4h": timedelta(hours=4),
        "12h": timedelta(hours=12),
        "1d": timedelta(days=1),
        "3d": timedelta(days=3),
        "7d": timedelta(days=7),
    }
)

# A reason longer than this is cut (it is shown in lists and on the alert page).
MAX_REASON = 500
# A silence asked for again within this time, for the same scope, reason and end (give or
# take as much), is the one already set.
REPEAT_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True)
class SilenceSet:
    """A silence just added: its id, the scope as resolved, its end, and what resolving the
    key said (``note``: e.g. a feed id taken as its name; ``warning``: a key that matches
    nothing known yet)."""

    silence_id: int
    scope_type: str
    scope_key: str
    ends_at: datetime
    note: str | None = None
    warning: str | None = None


class NoSuchSilence(LookupError):
    """An id that names no silence."""

    def __init__(self, silence_id: int):
        super().__init__(f"no silence #{silence_id}: `finsent alerts list` shows the active ones")
        self.silence_id = silence_id


def check_future(ends_at: datetime, now: datetime) -> None:
    """ValueError unless ``ends_at`` is after ``now`` (a silence that ended already mutes nothing)."""
    if ends_at <= now:
        raise ValueError(f"{ends_at:%Y-%m-%d %H:%M}Z is in the past: give a future time")


def add_silence(
    session: Session,
    scope_type: str,
    scope_key: str,
    *,
    ends_at: datetime,
    reason: str | None,
    now: datetime,
    via: str = "cli",
) -> SilenceSet:
    """Mute the scope from ``now`` until ``ends_at``; ValueError if that is not in the future.

    ``via`` says who set it, for the log ("cli", "web").
    """
    check_future(ends_at, now)
    # One line without bidi controls: shown in `alerts list`, emails and the web pages.
    reason = one_plain_line(reason or "")[:MAX_REASON] or None
    resolved = resolve_scope_key(session.connection(), scope_type, scope_key)
    # The same silence asked for again moments later (a form posted twice, a command run
    # twice) is the one already set, not a second row.
    same = session.scalars(
        select(AlertSilence)
        .where(AlertSilence.scope_type == scope_type, AlertSilence.scope_key == resolved.key)
        .where(AlertSilence.reason.is_not_distinct_from(reason))
        .where(AlertSilence.starts_at >= now - REPEAT_WINDOW, AlertSilence.starts_at <= now)
        .where(AlertSilence.ends_at.between(ends_at - REPEAT_WINDOW, ends_at + REPEAT_WINDOW))
        .order_by(AlertSilence.id)
        .limit(1)
    ).first()
    if same is not None:
        log.info("silence #%s asked for again (%s): kept as it is", same.id, via)
        return SilenceSet(
            same.id, scope_type, resolved.key, same.ends_at, note=resolved.note, warning=resolved.warning
        )
    row = AlertSilence(
        scope_type=scope_type, scope_key=resolved.key, starts_at=now, ends_at=ends_at, reason=reason
    )
    session.add(row)
    session.flush()
    log.info("silence #%s: %s %s until %s (%s)", row.id, scope_type, resolved.key, ends_at, via)
    return SilenceSet(row.id, scope_type, resolved.key, ends_at, note=resolved.note, warning=resolved.warning)


def add_silence_for(
    session: Session,
    scope_type: str,
    scope_key: str,
    *,
    duration: str,
    reason: str | None,
    now: datetime,
    via: str = "web",
) -> SilenceSet:
    """Mute the scope from ``now`` for one of :data:`DURATIONS` (its name, e.g. "4h");
    ValueError names a length that is not offered."""
    if duration not in DURATIONS:
        raise ValueError(f"silence length {duration!r} is not one of {', '.join(DURATIONS)}")
    return add_silence(
        session, scope_type, scope_key, ends_at=now + DURATIONS[duration], reason=reason, now=now, via=via
    )


def end_silences(
    session: Session, silence_ids: Iterable[int], *, now: datetime
) -> tuple[list[int], list[int]]:
    """End these silences now: (the ids ended, the ids already over, which keep their end).
    NoSuchSilence names the first id that is not one, and then nothing is ended."""
    wanted = list(dict.fromkeys(silence_ids))
    found = {r.id: r for r in session.scalars(select(AlertSilence).where(AlertSilence.id.in_(wanted)))}
    for silence_id in wanted:
        if silence_id not in found:
            raise NoSuchSilence(silence_id)
    ended = [i for i in wanted if found[i].ends_at > now]
    for silence_id in ended:
        found[silence_id].ends_at = now
    if ended:
        log.info("ended silence(s) %s", ", ".join(f"#{i}" for i in ended))
    return ended, [i for i in wanted if i not in ended]


__all__ = [
    "DURATIONS",
    "MAX_REASON",
    "NoSuchSilence",
    "SilenceSet",
    "add_silence",
    "add_silence_for",
    "check_future",
    "end_silences",
]
