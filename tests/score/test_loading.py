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
