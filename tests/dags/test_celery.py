"""Scale-out for real: scheduler, dag-processor, api-server and a Celery worker.

Starts the Airflow 3 components as separate processes against the machine's PostgreSQL
(a fresh metadata database, also the Celery result backend) and Redis (a dedicated db
number), triggers ``finsent_ingest`` on the demo feeds served over HTTP, and checks that
every task (the mapped fetches included) went through Celery to the worker, on the
queues and pool the deployment configures, that the rows arrived, and that the asset
event triggered ``finsent_alerts``. All processes are stopped afterwards.

Marked ``integration`` and part of the full suite (about two
minutes on two cores). Needs Redis on 127.0.0.1:6379 (``FINSENT_TEST_REDIS_URL``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow_helpers import (
    AIRFLOW,
    REPO_ROOT,
    airflow_cli,
    airflow_env,
    integration_only,  # noqa: F401 (autouse fixture)
    postgres_connection,
    serve_directory,
    throwaway_database,
)
from sqlalchemy import create_engine, func, select, text

from pipeline.db.models import Article, SentimentScore
from pipeline.score.registry import released_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_URL = os.environ.get("FINSENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RUN_TIMEOUT_S = 300
WORKER = "finsent-it-worker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_ready(url: str) -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.flushdb()  # the dedicated db: stale messages from an aborted run would confuse Celery
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _model_path() -> str | None:
    explicit = os.environ.get("FINSENT_TEST_MODEL_PATH")
    if explicit:
        return explicit
    released = released_model()
    return str(released) if released else None


class Services:
    """Airflow components as process groups of their own, each logging to a file."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        # SIGTERM first (Celery finishes its tasks, the scheduler its loop), then SIGKILL.
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for proc in self.procs.values():
            # Task processes the components forked share the group; none may outlive the test.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def metadata_url(pg_server_url: str) -> Iterator[str]:
    with throwaway_database(pg_server_url, "airflow_celery") as url:
        yield url


def wait_for(what: str, probe, services: Services, timeout: float, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        value = probe()
        if value:
            return value
        time.sleep(interval)
    logs = "\n".join(f"--- {n}\n{services.tail(n, 2500)}" for n in services.procs)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def test_celery_worker_runs_the_mapped_ingest(
    db, database_url: str, metadata_url: str, tmp_path: Path
) -> None:
    model = _model_path()
    if model is None:
        pytest.skip("no released model under models/ (and FINSENT_TEST_MODEL_PATH unset)")
    problem = _redis_ready(REDIS_URL)
    if problem:
        pytest.skip(f"Redis at {REDIS_URL} is not usable ({problem})")
    from pipeline.ingest.demo import prepare_demo

    # The run works as of its trigger time, a minute or two after this: the demo's burst
    # still ends inside the alert window.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data_dir = tmp_path / "data"
    bundle = prepare_demo(data_dir, now)
    feed_dir = bundle.feed_paths[0].parent
    api_port = _free_port()
    meta = create_engine(metadata_url)

    with serve_directory(feed_dir) as base:
        variable = {
            "feeds": [f"{base}/{p.name}" for p in bundle.feed_paths],
            "watchlist_path": str(bundle.watchlist),
            "data_dir": str(data_dir),
        }
        extra = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
            "AIRFLOW_CONN_FINSENT_POSTGRES": postgres_connection(database_url),
            "AIRFLOW_VAR_FINSENT": json.dumps(variable),
            # No scheduled run may compete with the triggered one: with catchup off and a
            # 2025 start date, a leap-day schedule has no complete interval before 2032.
            "FINSENT_INGEST_SCHEDULE": "0 0 29 2 *",
            # As the docker deployment: scoring on the "gpu" queue and in the GPU pool.
            "FINSENT_SCORE_QUEUE": "gpu",
            "FINSENT_SCORE_POOL": "finsent_gpu",
        }
        if model != str(released_model()):
            extra["FINSENT_MODEL_PATH"] = model
        env = airflow_env(tmp_path / "airflow", metadata_url, **extra)
        airflow_cli(env, "db", "migrate")
        airflow_cli(env, "pools", "set", "finsent_gpu", "1", "FinSent scoring")

        logs = tmp_path / "logs"
        logs.mkdir()
        services = Services(env, logs)
        try:
            services.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port))
            services.start("dag-processor", "dag-processor")
            services.start("scheduler", "scheduler")
            services.start(
                "worker",
                "celery",
                "worker",
                "--queues",
                "default,gpu",
                "--concurrency",
                "2",
                "--celery-hostname",
                f"{WORKER}@%h",
                "--skip-serve-logs",
                "--without-gossip",
                "--without-mingle",
            )

            def parsed() -> bool:
                with meta.connect() as conn:
                    found = conn.execute(
                        text("SELECT count(*) FROM dag WHERE dag_id IN ('finsent_ingest', 'finsent_alerts')")
                    ).scalar_one()
                return found == 2

            wait_for("the DAGs to be parsed", parsed, services, timeout=120)
            # Trigger while paused, then unpause: the scheduler picks the triggered run up.
            # No logical date: a manual run in Airflow 3, working as of its run_after.
            run_id = f"it__{now:%Y%m%dT%H%M}"
            airflow_cli(env, "dags", "trigger", "finsent_ingest", "--run-id", run_id)
            airflow_cli(env, "dags", "unpause", "finsent_ingest")
            airflow_cli(env, "dags", "unpause", "finsent_alerts")

            def finished() -> str | None:
                with meta.connect() as conn:
                    state = conn.execute(
                        text("SELECT state FROM dag_run WHERE dag_id = 'finsent_ingest' AND run_id = :r"),
                        {"r": run_id},
                    ).scalar_one_or_none()
                return state if state in ("success", "failed") else None

            state = wait_for("finsent_ingest to finish", finished, services, timeout=RUN_TIMEOUT_S)
            with meta.connect() as conn:
                tis = conn.execute(
                    text(
                        "SELECT task_id, map_index, state, queue, pool, hostname FROM task_instance "
                        "WHERE dag_id = 'finsent_ingest' AND run_id = :r ORDER BY task_id, map_index"
                    ),
                    {"r": run_id},
                ).all()
            assert state == "success", f"{tis}\n{services.tail('worker', 6000)}"

            fetches = [ti for ti in tis if ti.task_id == "fetch"]
            assert len(fetches) == min(4, len(bundle.feed_paths))
            assert all(ti.state == "success" for ti in tis), tis
            assert all(ti.hostname for ti in tis), "a task instance has no worker hostname"
            queues = {ti.task_id: (ti.queue, ti.pool) for ti in tis}
            assert queues["fetch"] == ("default", "default_pool")
            assert queues["score"] == ("gpu", "finsent_gpu")

            # Every task went through Celery: one result per task instance in the result
            # backend (written just after the task reports its state, hence the wait), and
            # the worker logged receiving them.
            def celery_results() -> bool:
                with meta.connect() as conn:
                    done = conn.execute(
                        text("SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")
                    ).scalar_one()
                return done >= len(tis)

            wait_for("a Celery result per task instance", celery_results, services, timeout=60, interval=1)
            worker_log = services.tail("worker", 1_000_000)
            assert worker_log.count("received") >= len(tis), worker_log[-3000:]

            with db.session() as session:
                articles = session.execute(select(func.count()).select_from(Article)).scalar_one()
                scores = session.execute(select(func.count()).select_from(SentimentScore)).scalar_one()
            assert articles > 0 and scores == articles

            # The asset event carries the interval end and schedules finsent_alerts.
            with meta.connect() as conn:
                extras = conn.execute(text("SELECT CAST(extra AS text) FROM asset_event")).scalars().all()
                run_after = conn.execute(
                    text("SELECT run_after FROM dag_run WHERE dag_id = 'finsent_ingest' AND run_id = :r"),
                    {"r": run_id},
                ).scalar_one()
            ends = [json.loads(e).get("interval_end") for e in extras]
            assert run_after.astimezone(UTC).isoformat() in ends, (run_after, extras)

            def alerts_done() -> str | None:
                with meta.connect() as conn:
                    states = (
                        conn.execute(
                            text(
                                "SELECT state FROM dag_run "
                                "WHERE dag_id = 'finsent_alerts' AND run_type = 'asset_triggered'"
                            )
                        )
                        .scalars()
                        .all()
                    )
                return "success" if "success" in states else ("failed" if "failed" in states else None)

            assert (
                wait_for("the asset-triggered finsent_alerts run", alerts_done, services, timeout=180)
                == "success"
            )
        finally:
            services.stop()
            meta.dispose()
