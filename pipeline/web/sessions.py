"""Login sessions as the server records them (table ``ui_sessions``, migration 0015).

The cookie (:func:`pipeline.web.security.new_session`) proves it was issued with the token;
this record says whether it still holds: every worker of the app reads the same table, so
logging out on one ends the session on all, and a copy of the cookie taken before is refused
too. Only the sha256 of the cookie's nonce is stored, never the cookie. Rows past their end
are deleted when someone next logs in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, update

from pipeline.db.engine import Database
from pipeline.db.models import UiSession

# Ended or expired rows are kept this long (for a look at recent logins), then deleted.
KEEP_ENDED = timedelta(days=1)


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class SessionRecords:
    """Start, check and end sessions in the app's database (``database``: called per use,
    so the app can open its database lazily)."""

    def __init__(self, database: Callable[[], Database], clock: Callable[[], datetime], max_age_s: int):
        self._database = database
        self._clock = clock
        self._max_age = timedelta(seconds=max_age_s)

    def start(self, nonce: str) -> None:
        now = self._clock()
        with self._database().transaction() as session:
            session.execute(delete(UiSession).where(UiSession.expires_at < now - KEEP_ENDED))
            session.add(UiSession(nonce_hash=_hash(nonce), created_at=now, expires_at=now + self._max_age))

    def alive(self, nonce: str) -> bool:
        with self._database().session() as session:
            row = session.get(UiSession, _hash(nonce))
            return row is not None and row.ended_at is None and row.expires_at > self._clock()

    def end(self, nonce: str) -> None:
        with self._database().transaction() as session:
            session.execute(
                update(UiSession)
                .where(UiSession.nonce_hash == _hash(nonce), UiSession.ended_at.is_(None))
                .values(ended_at=self._clock())
            )


__all__ = ["KEEP_ENDED", "SessionRecords"]
