"""Every DAG file loads, parses fast and cheaply, and follows the house rules."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from airflow_helpers import DAGS_DIR, REPO_ROOT

DAG_FILES = sorted(DAGS_DIR.glob("*.py"))
EXPECTED = {"finsent_ingest", "finsent_alerts", "finsent_finetune", "finsent_maintenance"}
ALLOWED_TOP_LEVEL = {"airflow.sdk", "pendulum", "__future__", "os", "datetime"}
#: Seconds one file may take to parse in a warm interpreter (the dag-processor's case).
PARSE_BUDGET_S = 0.5
HEAVY = ("torch", "transformers", "pipeline", "psycopg2", "feedparser", "httpx", "sklearn")

# Runs in a fresh interpreter: imports what the dag-processor already has loaded, then
# executes one DAG file with the network (and so any database) switched off.
PROBE = r"""
import json, runpy, socket, sys, time
import airflow.sdk, pendulum

attempts = []
def deny(*args, **kwargs):
    attempts.append(repr(args[1:2] or args[:1]))
    raise OSError("network access while parsing a DAG file")
socket.socket.connect = deny
socket.socket.connect_ex = deny
socket.create_connection = deny

before = set(sys.modules)
runpy.run_path(sys.argv[1], run_name="dag_file")
# Timed on a second parse: the first also pays for the SDK's lazy imports, which the
# dag-processor has long done; the file's own cost is what it pays on every parse.
start = time.perf_counter()
runpy.run_path(sys.argv[1], run_name="dag_file")
elapsed = time.perf_counter() - start
print(json.dumps({"elapsed": elapsed, "new_modules": sorted(set(sys.modules) - before),
                  "connections": attempts}))
"""


def _probe_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENT_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=str(REPO_ROOT),
        **extra,
    )
    return env


def _probe(path: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{path.name} failed to parse:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _dag_facts(env: dict[str, str], expression: str) -> dict:
    """``expression`` (a dict of facts about ``ingest`` and ``tune``, the ingest and fine-tune
    DAGs) evaluated in a fresh process that parses the DAG files under ``env``: the DAG
    files read their FINSENT_* variables at parse time."""
    script = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag({str(DAGS_DIR)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "ingest, tune = bag.dags['finsent_ingest'], bag.dags['finsent_finetune']\n"
        f"print(json.dumps({expression}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS_DIR))


def test_every_dag_file_loads_without_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == EXPECTED


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_only_the_sdk_at_top_level(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name in ALLOWED_TOP_LEVEL, f"{path.name}: top-level import of {name}"


@pytest.mark.slow
@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_fast_without_heavy_imports_or_connections(path: Path, tmp_path: Path) -> None:
    result = _probe(path, _probe_env(tmp_path))
    heavy = [m for m in result["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"{path.name} imports {heavy[:5]} at parse time"
    assert result["connections"] == [], f"{path.name} opened connections at parse time"
    assert result["elapsed"] < PARSE_BUDGET_S, f"{path.name} took {result['elapsed']:.3f}s to parse"


def test_every_dag_has_owner_tags_retries_and_docs(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "finsent" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        assert dag.start_date is not None and dag.start_date.utcoffset() == timedelta(0), dag_id
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.max_active_runs == 1, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.owner == "finsent", where
            assert task.retries >= 1, where
            assert task.retry_exponential_backoff, where
            assert task.execution_timeout is not None, where
            assert task.doc_md, f"{where} has no doc_md"


def test_ingest_maps_fetches_and_publishes_the_scores_asset(dagbag) -> None:
    from airflow.sdk import Asset
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = dagbag.dags["finsent_ingest"]
    assert isinstance(dag.task_dict["fetch"], MappedOperator)
    assert dag.task_dict["score"].trigger_rule == "none_failed"
    assert dag.task_dict["publish"].outlets == [Asset("finsent://sentiment_scores")]
    assert [t.task_id for t in dag.task_dict["publish"].upstream_list] == ["score"]


def test_alerts_are_scheduled_on_the_scores_asset(dagbag) -> None:
    from airflow.sdk import Asset

    condition = dagbag.dags["finsent_alerts"].timetable.asset_condition
    assert list(condition.objects) == [Asset("finsent://sentiment_scores")]


def test_ingest_and_maintenance_have_data_intervals(dagbag) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    for dag_id in ("finsent_ingest", "finsent_maintenance"):
        assert isinstance(dagbag.dags[dag_id].timetable, CronDataIntervalTimetable), dag_id


@pytest.mark.slow
def test_queues_pools_and_schedules_come_from_the_environment(tmp_path: Path) -> None:
    env = _probe_env(
        tmp_path,
        FINSENT_SCORE_QUEUE="gpu",
        FINSENT_SCORE_POOL="finsent_gpu",
        FINSENT_INGEST_SCHEDULE="*/5 * * * *",
        FINSENT_FINETUNE_SCHEDULE="manual",
    )
    got = _dag_facts(
        env,
        "{'queue': ingest.task_dict['score'].queue,"
        " 'pool': ingest.task_dict['score'].pool,"
        " 'fetch_queue': ingest.task_dict['fetch'].queue,"
        " 'train_queue': tune.task_dict['train'].queue,"
        " 'train_pool': tune.task_dict['train'].pool,"
        " 'ingest_schedule': ingest.timetable.expression,"
        " 'finetune_schedule': repr(tune.timetable)}",
    )
    assert got["queue"] == "gpu" and got["pool"] == "finsent_gpu"
    assert got["fetch_queue"] == "default"
    assert got["train_queue"] == "gpu"
    assert got["ingest_schedule"] == "*/5 * * * *"
    assert "NullTimetable" in got["finetune_schedule"]
    # Training never takes the scoring pool by default: a 6 h run would hold ingest's score.
    assert got["train_pool"] == "default_pool"


@pytest.mark.slow
def test_training_has_its_own_pool_and_an_empty_variable_means_the_default(tmp_path: Path) -> None:
    env = _probe_env(
        tmp_path,
        FINSENT_SCORE_QUEUE="",
        FINSENT_SCORE_POOL="finsent_gpu",
        FINSENT_TRAIN_POOL="finsent_train",
        FINSENT_INGEST_SHARDS="",
    )
    got = _dag_facts(
        env,
        "{'pools': sorted({t.pool for t in tune.tasks}),"
        " 'queues': sorted({t.queue for t in [*tune.tasks, *ingest.tasks]}),"
        " 'score_pool': ingest.task_dict['score'].pool}",
    )
    assert got == {"pools": ["finsent_train"], "queues": ["default"], "score_pool": "finsent_gpu"}
