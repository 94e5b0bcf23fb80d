"""Cross-fitted soft targets: folds partition the training rows; a student distils from them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.sentiment.crossfit import SOFT_TARGETS_FILE, fold_is_done, main
from pipeline.sentiment.data import DataFormatError, load_sources, stratified_split
from pipeline.sentiment.train import TrainConfig, read_soft_targets, train

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"
TRAIN_ARGS = ["--data-dir", str(DATA), "--source", "fpb-split", "--max-steps", "2"]
TRAIN_ARGS += ["--batch-size", "4", "--max-length", "24", "--val-fraction", "0.2", "--seed", "5"]


@pytest.fixture(scope="module")
def crossfit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cf")
    assert main(["--folds", "3", "--jobs", "2", "--threads", "1", "--out", str(out), "--", *TRAIN_ARGS]) == 0
    return out


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_training_arguments_the_crossfit_owns_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--folds", "2", "--out", str(tmp_path), "--", "--out", "x"]) == 1
    assert capsys.readouterr().err.strip() == (
        "crossfit: error: --out is set by the cross-fit; leave it out of the training arguments"
    )
    assert main(["--folds", "1", "--out", str(tmp_path)]) == 1
    assert "--folds must be at least 2" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.mark.slow
def test_a_failing_fold_is_one_line_naming_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--folds",
        "2",
        "--jobs",
        "2",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
        "--",
        "--data-dir",
        str(tmp_path / "no-data"),  # the folds fail reading their data
        "--source",
        "fpb-split",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("crossfit: error: fold ")
    assert "train.log" in err[0]
    assert not (tmp_path / SOFT_TARGETS_FILE).exists()
    # a failed fold is not taken as done by the next run
    assert not fold_is_done(tmp_path / "fold-0", args[-4:], 2)


def test_repeated_texts_share_a_fold() -> None:
    from pipeline.sentiment.data import Example, cv_fold_split

    examples = [Example(f"sentence {i % 7}", i % 3, "fpb-split") for i in range(42)]
    idx = list(range(42))
    for k in range(3):
        kept, held = cv_fold_split(examples, idx, 3, k, seed=1)
        assert not {examples[i].text for i in kept} & {examples[i].text for i in held}


@pytest.mark.slow
def test_distillation_targets_mask_precedence_and_split_guard(crossfit: Path, tmp_path: Path) -> None:
    import torch

    from pipeline.sentiment.train import distillation_targets

    soft = tmp_path / "soft.jsonl"
    soft.write_text(
        json.dumps({"text": "covered", "logits": [4.0, 0.0, 0.0]})
        + "\n"
        + json.dumps({"text": "held for validation", "logits": [0.0, 0.0, 4.0]})
        + "\n"
    )
    config = TrainConfig(data_dir=DATA, soft_targets=[str(soft)], distill_temperature=1.0)
    targets, covered = distillation_targets(config, ["covered", "tfns row"], "cpu")
    assert covered.tolist() == [True, False]
    assert torch.allclose(targets[0], torch.softmax(torch.tensor([4.0, 0.0, 0.0]), -1))
    assert targets[1].sum() == 0  # uncovered rows train on their label alone
    # soft targets win over a teacher on the rows they cover; the teacher covers the rest
    config.teachers = [str(crossfit / "fold-0")]
    targets, covered = distillation_targets(config, ["covered", "tfns row"], "cpu")
    assert covered.tolist() == [True, True]
    assert torch.allclose(targets[0], torch.softmax(torch.tensor([4.0, 0.0, 0.0]), -1))
    config.teachers = []
    with pytest.raises(DataFormatError, match="cover 1 validation rows"):
        distillation_targets(config, ["covered"], "cpu", ["held for validation"])
    with pytest.raises(DataFormatError, match="cover none of the training rows"):
        distillation_targets(config, ["something else"], "cpu")
