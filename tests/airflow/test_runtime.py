"""The run's time for scheduled, manual and asset-triggered runs; errors mapped to retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pendulum
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy.exc import OperationalError

from pipeline.airflow.runtime import (
    airflow_errors,
    asset_extra,
    database,
    events_time,
    run_time,
    triggered_model_version,
    triggered_time,
)
from pipeline.errors import ConfigError, DatabaseError, FeedError, ModelError

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
SCORES = Asset("finsent://sentiment_scores")


@dataclass
class DagRun:
    run_after: datetime


@dataclass
class Event:
    """The two attributes of an Airflow asset event the runtime reads."""

    timestamp: datetime
    extra: dict[str, Any] = field(default_factory=dict)


def test_scheduled_run_uses_its_data_interval_end() -> None:
    context = {
        "data_interval_start": pendulum.instance(T0 - timedelta(minutes=15)),
        "data_interval_end": pendulum.instance(T0),
        "logical_date": pendulum.instance(T0 - timedelta(minutes=15)),
        "dag_run": DagRun(run_after=T0 + timedelta(hours=5)),
    }
    assert run_time(context) == T0


def test_manual_run_without_logical_date_uses_run_after() -> None:
    context = {"data_interval_end": None, "logical_date": None, "dag_run": DagRun(run_after=T0)}
    assert run_time(context) == T0


def test_run_time_is_utc_whatever_the_zone() -> None:
    berlin = T0.astimezone(timezone(timedelta(hours=1)))
    got = run_time({"data_interval_end": berlin})
    assert got == T0 and got.utcoffset() == timedelta(0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        run_time({"data_interval_end": datetime(2026, 1, 1)})


def test_asset_triggered_run_uses_the_latest_interval_end_from_the_events() -> None:
    events = [
        Event(timestamp=T0 + timedelta(minutes=3), extra=asset_extra(T0 - timedelta(minutes=15), scored=4)),
        Event(timestamp=T0 + timedelta(minutes=20), extra=asset_extra(T0, scored=2)),
    ]
    context = {
        "triggering_asset_events": {SCORES: events},
        "dag_run": DagRun(run_after=T0 + timedelta(hours=1)),
    }
    assert triggered_time(context) == T0


def test_alerts_count_the_model_the_latest_triggering_run_scored_with() -> None:
    events = [
        Event(timestamp=T0, extra=asset_extra(T0, scored=2, model_version="m-new")),
        Event(timestamp=T0, extra=asset_extra(T0 - timedelta(minutes=15), scored=4, model_version="m-old")),
    ]
    assert triggered_model_version({"triggering_asset_events": {SCORES: events}}) == "m-new"
    # Events from before the version was carried, or none at all: the evaluation's fallback.
    bare = [Event(timestamp=T0, extra=asset_extra(T0, scored=1))]
    assert triggered_model_version({"triggering_asset_events": {SCORES: bare}}) is None
    assert triggered_model_version({"triggering_asset_events": {}}) is None


def test_events_without_interval_end_fall_back_to_their_timestamp() -> None:
    assert events_time([Event(timestamp=T0), Event(timestamp=T0 - timedelta(hours=1))]) == T0
    assert events_time([]) is None


def test_asset_triggered_run_without_events_uses_run_after() -> None:
    context = {"triggering_asset_events": {}, "logical_date": None, "dag_run": DagRun(run_after=T0)}
    assert triggered_time(context) == T0


def test_transient_errors_propagate_for_airflow_to_retry() -> None:
    @airflow_errors
    def flaky() -> None:
        raise FeedError("feed.example: timed out")

    with pytest.raises(FeedError):
        flaky()


def test_terminal_errors_fail_fast_with_the_one_line_message() -> None:
    @airflow_errors
    def broken() -> None:
        raise ModelError("model path /nope does not exist")

    with pytest.raises(AirflowFailException, match="model: model path /nope does not exist"):
        broken()


def test_lost_database_connection_is_transient() -> None:
    @airflow_errors
    def dropped() -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection\nunexpectedly"))

    with pytest.raises(DatabaseError, match="lost the database connection") as info:
        dropped()
    assert info.value.transient


def test_tasks_refuse_the_embedded_database(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    local = settings.model_copy(update={"database_url": None})
    with pytest.raises(ConfigError, match="finsent_postgres"), database(local):
        pass
    monkeypatch.setenv("FINSENT_AIRFLOW_POSTGRES_CONN_ID", "warehouse")  # the id in use is named
    with pytest.raises(ConfigError, match="connection 'warehouse' or set"), database(local):
        pass


def test_tasks_open_the_configured_database(settings) -> None:
    from sqlalchemy import text

    with database(settings) as db, db.session() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1


def test_a_wrong_database_role_fails_the_task_at_once(settings, pg_server_url: str) -> None:
    from pydantic import SecretStr
    from sqlalchemy.engine import make_url

    server = make_url(pg_server_url)
    if not server.host:
        pytest.skip("needs a PostgreSQL server on TCP (FINSENT_TEST_DATABASE_URL)")
    url = server.set(username="finsent_no_such_role").render_as_string(hide_password=False)
    wrong = settings.model_copy(update={"database_url": SecretStr(url)})

    @airflow_errors
    def task() -> None:
        with database(wrong):
            pass

    # Retrying cannot fix a role that does not exist: no hour of retries before anyone knows.
    with pytest.raises(AirflowFailException, match='role "finsent_no_such_role" does not exist'):
        task()
