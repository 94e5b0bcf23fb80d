"""Muting an alert's scope from its page: the same row `finsent alerts silence` writes.

The key goes through the alerts package's ``resolve_scope_key`` like the command's, so a
silence set here mutes exactly what the alert carries. The lengths offered are a fixed
list: a form cannot ask for a silence that ends in the past or never.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy.orm import Session

from pipeline.alerts.scopes import resolve_scope_key
from pipeline.db.models import AlertSilence

log = logging.getLogger(__name__)

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

MAX_REASON = 500


@dataclass(frozen=True)
class SilenceSet:
    silence_id: int
    scope_type: str
    scope_key: str
    ends_at: datetime


def set_silence(
    session: Session, scope_type: str, scope_key: str, *, duration: str, reason: str | None, now: datetime
) -> SilenceSet:
    """Add a silence of the scope from ``now`` for one of :data:`DURATIONS`; ValueError names
    a length that is not offered."""
    if duration not in DURATIONS:
        raise ValueError(f"silence length {duration!r} is not one of {', '.join(DURATIONS)}")
    reason = (reason or "").strip()[:MAX_REASON] or None
    key = resolve_scope_key(session.connection(), scope_type, scope_key).key
    row = AlertSilence(
        scope_type=scope_type, scope_key=key, starts_at=now, ends_at=now + DURATIONS[duration], reason=reason
    )
    session.add(row)
    session.flush()
    log.info("silence #%s: %s %s until %s (web)", row.id, scope_type, key, row.ends_at)
    return SilenceSet(row.id, scope_type, key, row.ends_at)
