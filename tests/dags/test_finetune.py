"""The fine-tune DAG through ``dag.test()``: a few training steps on the labelled data, the
real evaluation gate, the promotion record. Minutes on two cores; part of the full suite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_helpers import (
    airflow_cli,
    airflow_env,
    integration_only,  # noqa: F401 (autouse fixture)
    postgres_connection,
    run_dag_test,
    throwaway_database,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def metadata_url(pg_server_url: str) -> Iterator[str]:
    with throwaway_database(pg_server_url, "airflow_finetune") as url:
        yield url


def test_finetune_trains_gates_and_records_the_version(
    database_url: str, metadata_url: str, tmp_path: Path
) -> None:
    """A smoke-sized fine-tune (a few steps of the default recipe, as a scheduled run trains)
    through the real gate; minutes on two cores."""
    from pipeline.settings import load_settings

    training = load_settings().settings.training_data_dir
    if not (training / "financial_phrasebank").is_dir():
        pytest.skip(f"no labelled data under {training} (FINSENT_TRAINING_DATA_DIR)")
    data_dir = tmp_path / "data"
    env = airflow_env(
        tmp_path / "airflow",
        metadata_url,
        AIRFLOW_CONN_FINSENT_POSTGRES=postgres_connection(database_url),
        AIRFLOW_VAR_FINSENT=json.dumps({"data_dir": str(data_dir), "training_data_dir": str(training)}),
    )
    airflow_cli(env, "db", "migrate")
    result = run_dag_test(
        env, "finsent_finetune", "2026-03-01T00:00:00+00:00", conf={"max_steps": 3, "epochs": 1}
    )
    assert result["state"] == "success", result["output"][-5000:]
    decision = result["xcom"]["evaluate_and_promote"]
    candidate = Path(result["xcom"]["train"])
    assert candidate.parent == data_dir / "models" / "runs"
    assert decision["model_version"].startswith(candidate.name + "-")
    # The default recipe (finsent-minilm-v3-feedback) trains the release on with TFNS among its
    # sources, so the candidate has seen the headline rows (372 exposures in its lineage): the
    # gate reports the headline check instead of applying its guard.
    assert decision["headline_check"].startswith(
        "headline check (tfns-heldout): reported only, the candidate is not blind (372 exposures"
    )
    record = data_dir / "models" / "current.json"
    # Promoted exactly when the gate passed, and then the record names the candidate.
    assert record.is_file() == decision["promoted"]
    if decision["promoted"]:
        from pipeline.score.registry import resolve_model_path

        # The next finsent_ingest run scores with it.
        assert resolve_model_path(load_settings(data_dir=data_dir).settings) == str(candidate.resolve())
    else:
        assert decision["failures"]
