"""Model folders are checked cheaply (labels, weight-file headers) before any load."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pipeline.errors import ModelError
from pipeline.score.loading import check_labels, check_model_dir, check_weights


def folder(tmp_path: Path, id2label: dict[str, str]) -> Path:
    tmp_path.joinpath("config.json").write_text(json.dumps({"id2label": id2label}))
    return check_model_dir(tmp_path)


def safetensors(path: Path, data: bytes, end: int) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [end // 4], "data_offsets": [0, end]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def test_any_label_order_and_case_is_a_sentiment_model(tmp_path: Path) -> None:
    check_labels(folder(tmp_path, {"0": "POSITIVE", "1": "Negative", "2": "neutral"}))


def test_a_model_without_the_three_labels_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"has 2 labels \(label_0, label_1\)"):
        check_labels(folder(tmp_path, {"0": "LABEL_0", "1": "LABEL_1"}))


def test_weights_whose_header_matches_the_file_pass(tmp_path: Path) -> None:
    safetensors(tmp_path / "model.safetensors", b"\0" * 16, 16)
    check_weights(tmp_path)


@pytest.mark.parametrize(
    ("data", "end", "expected"),
    [(b"\0" * 8, 16, "truncated or damaged"), (b"", 0, None)],
)
def test_a_short_or_unreadable_weight_file_is_named(tmp_path: Path, data: bytes, end: int, expected) -> None:
    weights = tmp_path / "model.safetensors"
    if expected is None:
        weights.write_bytes(b"\x05")  # not even a header length
        expected = "unreadable safetensors header"
    else:
        safetensors(weights, data, end)
    with pytest.raises(ModelError, match=expected) as err:
        check_weights(tmp_path)
    assert str(weights) in str(err.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"temperature": 0}', "must be a finite number above 0"),
        ('{"temperature": -1.5}', "must be a finite number above 0"),
        ('{"temperature": NaN}', "must be a finite number above 0"),
        ('{"temperature": "NaN"}', "must be a finite number above 0"),
        ('{"temperature": true}', "must be a finite number above 0"),
        ('{"temperature": "warm"}', "numeric 'temperature'"),
        ('{"temp": 1.2}', "numeric 'temperature'"),
        ("[1.2]", "numeric 'temperature'"),
        ("not json", "numeric 'temperature'"),
    ],
)
def test_a_calibration_that_would_store_nan_or_invert_labels_is_refused(
    tmp_path: Path, content: str, expected: str
) -> None:
    from pipeline.score.loading import read_temperature

    (tmp_path / "calibration.json").write_text(content)
    with pytest.raises(ModelError, match=expected) as err:
        read_temperature(tmp_path)
    assert "calibration.json" in str(err.value) and "\n" not in str(err.value)


def test_a_calibration_temperature_is_read(tmp_path: Path) -> None:
    from pipeline.score.loading import read_temperature

    assert read_temperature(tmp_path) == 1.0
    (tmp_path / "calibration.json").write_text('{"temperature": 1.25}')
    assert read_temperature(tmp_path) == 1.25


@pytest.mark.parametrize("content", ['{"style": "sideways"}', "[]", "{"])
def test_a_broken_target_file_is_a_model_error_naming_it(tmp_path: Path, content: str) -> None:
    from pipeline.score.target import read_target_style

    (tmp_path / "target.json").write_text(content)
    with pytest.raises(ModelError, match=r"target\.json"):
        read_target_style(tmp_path)


def test_a_model_path_that_is_a_file_says_so(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file: point it at the model's folder"):
        check_model_dir(weights)


def test_transformers_is_quiet_while_a_model_loads_and_as_it_was_after() -> None:
    # A "Loading weights" bar and a causal-LM loss warning read like faults in a run's log.
    from transformers.utils import logging as hf_logging

    from pipeline.score.loading import quiet_transformers

    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    with quiet_transformers():
        assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.get_verbosity() == hf_logging.WARNING and hf_logging.is_progress_bar_enabled()
