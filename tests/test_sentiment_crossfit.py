"""Cross-fitted soft targets: folds partition the training rows; a student distils from them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.sentiment.crossfit import SOFT_TARGETS_FILE, fold_is_done, main
from pipeline.sentiment.data import load_sources, stratified_split
from pipeline.sentiment.train import TrainConfig, read_soft_targets, train

DATA = Path(__file__).parent / "fixtures" / "sentiment" / "data"
TRAIN_ARGS = ["--data-dir", str(DATA), "--source", "fpb-split", "--max-steps", "2"]
TRAIN_ARGS += ["--batch-size", "4", "--max-length", "24", "--val-fraction", "0.2", "--seed", "5"]


@pytest.fixture(scope="module")
def crossfit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cf")
    assert main(["--folds", "3", "--jobs", "2", "--threads", "1", "--out", str(out), "--", *TRAIN_ARGS]) == 0
    return out


def test_every_training_row_gets_exactly_one_heldout_soft_label(crossfit: Path) -> None:
    examples, _, _ = load_sources(["fpb-split"], DATA)
    train_idx, val_idx = stratified_split(examples, 0.2, seed=5)
    lines = (crossfit / SOFT_TARGETS_FILE).read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    assert sorted(texts) == sorted(examples[i].text for i in train_idx)
    assert not set(texts) & {examples[i].text for i in val_idx}
    summary = json.loads((crossfit / "crossfit.json").read_text())
    assert summary["folds"] == 3 and summary["rows"] == len(train_idx)
    # each fold is a full, self-describing checkpoint scored on the rows it never saw
    held = [
        json.loads((crossfit / f"fold-{k}" / "metrics.json").read_text())["heldout"]["n"] for k in range(3)
    ]
    assert min(held) > 0 and sum(held) == len(train_idx)
    assert len(read_soft_targets([str(crossfit / SOFT_TARGETS_FILE)])) == len(train_idx)


def test_student_distils_from_soft_targets_and_records_them(crossfit: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        data_dir=DATA,
        sources=["fpb-split", "tfns"],  # tfns rows are not covered: they train on labels alone
        out_dir=tmp_path / "student",
        batch_size=4,
        max_steps=2,
        val_fraction=0.2,
        max_length=24,
        seed=5,
        progress=False,
        soft_targets=[str(crossfit / SOFT_TARGETS_FILE)],
        distill_alpha=0.8,
        eval_benchmarks=False,
    )
    result = train(config)
    info = json.loads((result.out_dir / "training_config.json").read_text())
    assert info["soft_targets"][0]["path"].endswith(SOFT_TARGETS_FILE)
    assert len(info["soft_targets"][0]["sha256"]) == 64
    card = (result.out_dir / "README.md").read_text()
    assert "--soft-targets" in card and "--distill-alpha 0.8" in card


def test_training_arguments_the_crossfit_owns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--folds", "2", "--out", str(tmp_path), "--", "--out", "x"])
    with pytest.raises(SystemExit):
        main(["--folds", "1", "--out", str(tmp_path)])


def test_a_failing_fold_names_its_log(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"folds \[0, 1\] failed: see their train.log"):
        main(
            [
                "--folds",
                "2",
                "--jobs",
                "2",
                "--threads",
                "1",
                "--out",
                str(tmp_path),
                "--",
                "--source",
                "fpb-99",
            ]
        )


def test_rerun_keeps_finished_folds_and_retrains_when_arguments_change(crossfit: Path) -> None:
    stamps = {k: (crossfit / f"fold-{k}" / "model.safetensors").stat().st_mtime_ns for k in range(3)}
    assert (
        main(["--folds", "3", "--jobs", "2", "--threads", "1", "--out", str(crossfit), "--", *TRAIN_ARGS])
        == 0
    )
    assert {k: (crossfit / f"fold-{k}" / "model.safetensors").stat().st_mtime_ns for k in range(3)} == stamps
    assert (
        len((crossfit / SOFT_TARGETS_FILE).read_text().splitlines())
        == json.loads((crossfit / "crossfit.json").read_text())["rows"]
    )
    assert fold_is_done(crossfit / "fold-0", TRAIN_ARGS, 3)
    assert not fold_is_done(crossfit / "fold-0", [*TRAIN_ARGS, "--lr", "1e-5"], 3)
    assert not fold_is_done(crossfit / "fold-0", TRAIN_ARGS, 4)


def test_a_text_with_two_labels_gets_the_mean_of_its_logits(tmp_path: Path) -> None:
    path = tmp_path / "soft.jsonl"
    lines = [
        {"text": "Sales were flat .", "label": "neutral", "logits": [0.0, 2.0, 4.0]},
        {"text": "Sales were flat .", "label": "positive", "logits": [2.0, 0.0, 0.0]},
        {"text": "Profit fell .", "label": "negative", "logits": [3.0, 0.0, -1.0]},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert read_soft_targets([str(path)]) == {
        "Sales were flat .": [1.0, 1.0, 2.0],
        "Profit fell .": [3.0, 0.0, -1.0],
    }
