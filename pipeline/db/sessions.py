"""Who a PostgreSQL session is, in the words a lock-wait error names its holder with.

Ingest's row lock and scoring's advisory lock each find their holder their own way (a row's
xmax, pg_locks' advisory keys); both read the holder's pg_stat_activity row and describe it
here, so an operator reads one form whichever lock waited too long.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ACTIVITY_COLUMNS", "describe_session"]

#: The pg_stat_activity columns describe_session reads (``a``: pg_stat_activity).
ACTIVITY_COLUMNS = "a.pid, a.application_name, a.usename, a.state, a.xact_start"


def describe_session(row: Any) -> str:
    """'pid 123 (application_name 'psql', user 'bob', idle in transaction since ...)'."""
    since = f" since {row.xact_start:%Y-%m-%d %H:%M:%S %Z}" if row.xact_start else ""
    return (
        f"pid {row.pid} (application_name '{row.application_name or ''}', user '{row.usename}', "
        f"{row.state or 'state unknown'}{since})"
    )
