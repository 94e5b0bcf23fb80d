"""Bad model folders get one line naming the folder or file and what to do (issue 17 §6):
no transformers load report, no "unexpected RuntimeError", and a run stops before ingest."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.errors import ModelError
from pipeline.score.registry import released_model

RELEASED = released_model()
pytestmark = pytest.mark.skipif(RELEASED is None, reason="no released model under models/")


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-models")
    truncated = Path(shutil.copytree(RELEASED, root / "truncated"))
    weights = truncated / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)  # a copy cut short
    two_labels = Path(shutil.copytree(RELEASED, root / "two-labels"))
    config = json.loads((two_labels / "config.json").read_text())
    config["id2label"] = {"0": "negative", "1": "positive"}
    config["label2id"] = {"negative": 0, "positive": 1}
    (two_labels / "config.json").write_text(json.dumps(config))
    return {"truncated": truncated, "two-labels": two_labels}


EXPECTED = {
    "truncated": ("model.safetensors", "truncated or damaged", "copy the model folder again"),
    "two-labels": ("two-labels", "2 labels", "point the model path at a 3-label model"),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_loading_a_bad_model_folder_is_one_named_error(bad_models, kind, caplog) -> None:
    from pipeline.score.classifier import SentimentClassifier

    with pytest.raises(ModelError) as err:
        SentimentClassifier.load(bad_models[kind], device="cpu", precision="fp32")
    message = str(err.value)
    assert "\n" not in message
    for part in EXPECTED[kind]:
        assert part in message, message
    assert str(bad_models[kind]) in message
    # transformers never got as far as its multi-line load report.
    assert not [r for r in caplog.records if r.name.startswith("transformers") and "\n" in r.getMessage()]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_run_with_a_bad_model_stops_before_ingest_with_one_line(
    bad_models, kind, database_url, tmp_path, monkeypatch
) -> None:
    for key in [k for k in os.environ if k.startswith("FINSENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    env = {
        "FINSENT_DATABASE_URL": database_url,
        "FINSENT_DATA_DIR": str(tmp_path / "data"),
        "FINSENT_MODEL_PATH": str(bad_models[kind]),
    }
    result = CliRunner().invoke(cli, ["run", "--demo"], env=env)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert len(errors) == 1, result.output
    for part in EXPECTED[kind]:
        assert part in errors[0], result.output
    assert "RuntimeError" not in result.output and "Traceback" not in result.output
    assert "ingest:" not in result.output  # stopped before storing articles it cannot score
