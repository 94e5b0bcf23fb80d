"""Which model serves: FINSENT_MODEL_PATH, else the promoted model, else the release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import ModelError
from pipeline.score.registry import (
    promoted_model,
    released_model,
    resolve_model_path,
    serving_model,
    write_promotion,
)
from pipeline.settings import Settings


def state(data_dir: Path, model_path: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, model_path=model_path)


def test_model_resolution(tmp_path: Path) -> None:
    settings = state(tmp_path / "data")
    assert resolve_model_path(state(tmp_path, "/some/model")) == "/some/model"
    promoted_dir = tmp_path / "promoted"
    promoted_dir.mkdir()
    settings.promoted_model_file.parent.mkdir(parents=True)
    settings.promoted_model_file.write_text(json.dumps({"path": str(promoted_dir)}))
    assert resolve_model_path(settings) == str(promoted_dir)
    settings.promoted_model_file.write_text("{broken")
    with pytest.raises(ModelError, match="not a valid promotion record"):
        resolve_model_path(settings)
    assert promoted_model(settings.data_dir) is None  # the lenient reader warns and goes on
    settings.promoted_model_file.unlink()
    released = released_model()
    if released is not None:
        assert resolve_model_path(settings) == str(released)


def test_a_promoted_model_that_is_gone_falls_back_to_the_release(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    write_promotion(tmp_path, gone)
    assert promoted_model(tmp_path) == str(gone.resolve())
    if released_model() is not None:
        assert resolve_model_path(state(tmp_path)) == str(released_model())


def test_an_older_release_restored_beside_the_current_one_does_not_take_over(tmp_path: Path) -> None:
    # A recipe restores finsent-minilm-v1 from git to train from it; v2 must stay the release
    # (it was the alphabetically first folder that served, and that the gate compared with).
    models = tmp_path / "models"
    for name in ("finsent-minilm-v1", "finsent-minilm-v2", "finsent-minilm-v10", "finsent-minilm-v9"):
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_text("{}")
        (models / name / "metrics.json").write_text('{"released": {}}')
    assert released_model(models) == models / "finsent-minilm-v10"
    (models / "finsent-minilm-v10" / "config.json").unlink()
    (models / "finsent-minilm-v9" / "config.json").unlink()
    assert released_model(models) == models / "finsent-minilm-v2"


def test_a_model_trained_into_models_does_not_serve_as_the_release(tmp_path: Path) -> None:
    # `finsent train --out models/my-model` or a fine-tune copied there sorts after the
    # release, and would serve ungated: only a folder the release tool wrote counts.
    models = tmp_path / "models"
    for name, metrics in (
        ("finsent-minilm-v3", '{"fpb-50": {}, "released": {"bf16": {}}}'),
        ("finsent-minilm-v3-feedback", '{"fpb-50": {}}'),
        ("my-model", None),
        ("zz-broken", "{not json"),
        ("zz-null", "null"),
        ("zz-string", '"released"'),
    ):
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_text("{}")
        if metrics is not None:
            (models / name / "metrics.json").write_text(metrics)
    assert released_model(models) == models / "finsent-minilm-v3"


def test_no_released_model_without_a_model_folder(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    assert released_model(empty) is None


def test_serving_model_checks_the_folder_and_names_its_version(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        serving_model(state(tmp_path, str(tmp_path / "missing")))
    released = released_model()
    if released is None:
        pytest.skip("no released model")
    model = serving_model(state(tmp_path))
    assert model.path == released and model.version.startswith(released.name + "-")


def test_the_historical_entry_point_still_imports() -> None:
    from pipeline.score.service import score_pending
    from pipeline.scoring import score_pending as legacy

    assert legacy is score_pending
