"""`python -m pipeline.sentiment.release`: a tiny checkpoint turned into a release folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sentiment_helpers import DATA, tiny_config

from pipeline.sentiment.release import main
from pipeline.sentiment.train import train


@pytest.mark.slow
def test_release_writes_fp16_weights_and_every_serving_precisions_numbers(tmp_path: Path) -> None:
    from safetensors import safe_open

    src = tmp_path / "run"
    train(tiny_config(src, eval_benchmarks=True))
    dest = tmp_path / "models" / "finsent-tiny"
    assert main([str(src), str(dest), "--data-dir", str(DATA)]) == 0

    with safe_open(str(dest / "model.safetensors"), "pt") as weights:
        name = next(iter(weights.keys()))
        assert str(weights.get_tensor(name).dtype) == "torch.float16"
    assert json.loads((dest / "config.json").read_text())["id2label"]["0"] == "negative"
    released = json.loads((dest / "metrics.json").read_text())["released"]
    for precision in ("fp32", "bf16", "int8"):
        # FPB-50, its FPB-all subset and the headline check, as the pipeline serves them.
        assert set(released[precision]) == {"fpb-50", "fpb-all", "tfns-heldout"}, precision
        assert 0.0 <= released[precision]["tfns-heldout"]["accuracy"] <= 1.0
    card = (dest / "README.md").read_text()
    assert "| int8 | tfns-heldout |" in card
    # Its reproduce command rebuilds this very folder, which exists: it must say --overwrite.
    assert f"--out {dest} --overwrite" in card
    # The reproduce command writes the release directly.
    assert json.loads((dest / "training_config.json").read_text())["config"]["out_dir"] == str(dest)
