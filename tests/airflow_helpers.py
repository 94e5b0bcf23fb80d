"""Helpers for the Airflow tests: isolated Airflow homes, a feed server, an SMTP sink.

Airflow reads its configuration when ``airflow`` is first imported, so everything that
needs a metadata database runs in a subprocess with its own ``AIRFLOW_HOME`` and a fresh
PostgreSQL database; the pytest process itself never configures Airflow.

Run as a script, this module is the subprocess side of ``dag.test()``:
``python tests/airflow_helpers.py DAG_ID LOGICAL_DATE`` prints the run's state and task
states as one JSON line.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from pipeline.paths import REPO_ROOT

DAGS_DIR = REPO_ROOT / "dags"
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")


# --- selection ----------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def integration_only(request: pytest.FixtureRequest) -> None:
    """Import into an integration test module. They run in the full suite (the README's
    test command and .ci/run) and take minutes of CPU: leave them out of a quick local
    run with ``-m "not integration"`` or FINSENT_SKIP_INTEGRATION=1. Session scope, so the
    skip comes before the database fixtures start anything."""
    if os.environ.get("FINSENT_SKIP_INTEGRATION"):
        pytest.skip("integration test skipped (FINSENT_SKIP_INTEGRATION is set)")


# --- databases ----------------------------------------------------------------------

# Re-exported for the DAG tests: one implementation for every throw-away database.
from pg_helpers import throwaway_database  # noqa: E402, F401

# --- Airflow environment ------------------------------------------------------------


def airflow_env(home: Path, metadata_url: str, **extra: str) -> dict[str, str]:
    """Environment for an isolated Airflow: its own home, metadata DB and DAG folder.

    FINSENT_* variables of the calling shell are dropped so that only what the test sets
    (Airflow connections and Variables, mostly) configures the tasks.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FINSENT_", "AIRFLOW_", "AIRFLOW__")) or k == "FINSENT_TEST_DATABASE_URL"
    }
    env.pop("FINSENT_TEST_DATABASE_URL", None)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO_ROOT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            # 2 shared cores: keep torch from oversubscribing them.
            "OMP_NUM_THREADS": "2",
            "XDG_CONFIG_HOME": str(home / "xdg-config"),
        }
    )
    env.update(extra)
    return env


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``airflow`` command; raises with its output when it fails."""
    proc = subprocess.run(
        [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def postgres_connection(url: str) -> str:
    """An Airflow connection (JSON form) for a SQLAlchemy PostgreSQL URL."""
    from sqlalchemy import make_url

    u = make_url(url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": u.host or u.query.get("host"),  # the embedded server: a socket directory
            "port": u.port or 5432,
            "login": u.username,
            "password": u.password,
            "schema": u.database,
        }
    )


def smtp_connection(host: str, port: int) -> str:
    """An Airflow ``smtp`` connection (JSON form) for a plain, unauthenticated server."""
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": host,
            "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "FinSent <finsent@test>"},
        }
    )


def run_dag_test(
    env: dict[str, str],
    dag_id: str,
    logical_date: str,
    conf: dict[str, Any] | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """``dag.test()`` in a subprocess; returns {"state": ..., "tasks": {task[map]: state},
    "xcom": {task[map]: return value}, "output": the subprocess's output}."""
    proc = subprocess.run(
        [sys.executable, __file__, dag_id, logical_date, json.dumps(conf or {})],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"state"')]
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"dag.test({dag_id}) failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    result = json.loads(lines[-1])
    result["output"] = proc.stdout + proc.stderr
    return result


def _dag_test_main(dag_id: str, logical_date: str, conf: str) -> None:
    from datetime import datetime

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(str(DAGS_DIR))
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    run = dag.test(logical_date=datetime.fromisoformat(logical_date), run_conf=json.loads(conf) or None)
    tasks: dict[str, str] = {}
    names: dict[str, str | None] = {}
    xcom: dict[str, Any] = {}
    with create_session() as session:
        for ti in run.get_task_instances(session=session):
            key = f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id
            tasks[key] = str(ti.state)
            names[key] = ti.rendered_map_index
            row = session.scalar(
                XComModel.get_many(
                    run_id=run.run_id,
                    key="return_value",
                    dag_ids=dag_id,
                    task_ids=ti.task_id,
                    map_indexes=ti.map_index,
                )
            )
            xcom[key] = XComModel.deserialize_value(row) if row is not None else None
    print(json.dumps({"state": str(run.state), "tasks": tasks, "names": names, "xcom": xcom}, default=str))


# --- a feed server and an SMTP sink -------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL (no trailing slash)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class SmtpSink:
    """Messages received by a real SMTP server (aiosmtpd) on 127.0.0.1."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Message] = field(default_factory=list)
    envelopes: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpSink]:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd needs a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = SmtpSink(port=port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


if __name__ == "__main__":
    _dag_test_main(sys.argv[1], sys.argv[2], sys.argv[3])
