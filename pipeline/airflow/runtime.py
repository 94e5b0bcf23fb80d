"""What every task needs: the run's time, the database, and Airflow-shaped errors.

Time: a scheduled or backfilled run works on its data interval and uses its end as
``now``, so re-running or backfilling an interval never looks ahead. Manual runs without
a logical date (Airflow 3) have no interval: they use ``run_after``.

Asset-triggered runs (``finsent_alerts``) have neither a logical date nor a data interval
in Airflow 3 (the scheduler creates them with ``logical_date=None, data_interval=None``
and ``run_after`` = when it noticed the events). Their ``now`` is the latest
``interval_end`` the ingest runs wrote into the asset events' ``extra``, so the alerts for
a backfilled or re-run ingest interval are evaluated for that interval, not for the
moment the scheduler got round to them. Events without it fall back to their timestamp,
and a run with no events (manual trigger) to ``run_after``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pipeline.errors import ConfigError, DatabaseError, FinSentError, first_line

if TYPE_CHECKING:
    from pipeline.db.engine import Database
    from pipeline.settings import Settings

log = logging.getLogger(__name__)

INTERVAL_END_KEY = "interval_end"

P = ParamSpec("P")
R = TypeVar("R")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Airflow times are always timezone-aware")
    return datetime.fromtimestamp(value.timestamp(), UTC)


def run_time(context: Mapping[str, Any]) -> datetime:
    """``now`` for a scheduled, backfilled or manual run (see the module docstring)."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return _utc(value)
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    if run_after is None:
        raise ValueError("the task context has no data interval, logical date or run_after")
    return _utc(run_after)


def _event_time(event: Any) -> datetime | None:
    """An asset event's ``interval_end`` (else its timestamp)."""
    extra = getattr(event, "extra", None) or {}
    raw = extra.get(INTERVAL_END_KEY)
    when = datetime.fromisoformat(raw) if isinstance(raw, str) else getattr(event, "timestamp", None)
    return None if when is None else _utc(when)


def events_time(events: Iterable[Any]) -> datetime | None:
    """The latest ``interval_end`` (else timestamp) of asset events; None if there are none."""
    return max(filter(None, map(_event_time, events)), default=None)


def triggered_time(context: Mapping[str, Any]) -> datetime:
    """``now`` for an asset-triggered run (see the module docstring)."""
    triggering = context.get("triggering_asset_events") or {}
    events = [event for group in triggering.values() for event in group]
    found = events_time(events)
    if found is not None:
        return found
    return run_time(context)


def triggered_model_version(context: Mapping[str, Any]) -> str | None:
    """The model version the latest triggering ingest run scored with (its event's extra),
    whose scores its alerts count; None when no event carries one (alerts then count the
    version stored last: see pipeline.alerts.evaluate)."""
    triggering = context.get("triggering_asset_events") or {}
    events = [event for group in triggering.values() for event in group]
    timed = [(when, event) for event in events if (when := _event_time(event)) is not None]
    for _, event in sorted(timed, key=lambda pair: pair[0], reverse=True):
        version = (getattr(event, "extra", None) or {}).get("model_version")
        if isinstance(version, str) and version:
            return version
    return None


def asset_extra(now: datetime, **fields: Any) -> dict[str, Any]:
    """The ``extra`` an ingest run attaches to its asset event."""
    return {INTERVAL_END_KEY: _utc(now).isoformat(), **fields}


def fail_fast(exc: FinSentError) -> BaseException:
    """The exception to raise for a terminal error: Airflow fails the task without retrying."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(str(exc))


def airflow_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map FinSent errors to Airflow's retry semantics.

    Transient errors (database restarting, SMTP down) propagate unchanged, so the task's
    retries with exponential backoff apply. Terminal ones (bad config, missing model) fail
    the task at once: retrying cannot help and would only delay the page to a human.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from sqlalchemy.exc import OperationalError

        try:
            return func(*args, **kwargs)
        except FinSentError as exc:
            if exc.transient:
                log.warning("transient error, Airflow will retry: %s", exc)
                raise
            log.error("terminal error, not retrying: %s", exc)
            raise fail_fast(exc) from exc
        except OperationalError as exc:
            # A dropped connection mid-task: the same as failing to connect.
            raise DatabaseError(f"lost the database connection ({first_line(exc.orig or exc)})") from exc

    return wrapper


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    """The FinSent database for one task, closed afterwards.

    Tasks never migrate: the schema is upgraded once per deployment (``finsent db upgrade``
    in airflow-init), so a worker running older code refuses a newer schema instead of
    writing to it.
    """
    from pipeline.airflow.config import postgres_conn_id
    from pipeline.db.engine import open_database

    if settings.database_url is None:
        # The embedded server lives in one machine's data dir; Celery workers on other
        # machines would each start their own and the runs would not see each other's rows.
        raise ConfigError(
            "no database configured for Airflow: define the Airflow connection "
            f"'{postgres_conn_id()}' or set FINSENT_DATABASE_URL on every Airflow component"
        )
    db = open_database(settings, migrate=False, check_schema=True)
    try:
        yield db
    finally:
        db.close()
