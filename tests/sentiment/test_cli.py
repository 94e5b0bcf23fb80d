"""finsent train / eval / classify: help texts, one-line errors, happy paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from peak_rss import call_with_peak_rss
from score_helpers import tiny_model_folder

from pipeline.cli.sentiment import augment_cmd, classify_cmd, crossfit_cmd, eval_cmd, train_cmd

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "tiny"
    return tiny_model_folder(out, layers=1, temperature=None, head_std=None)


@pytest.mark.parametrize("cmd", [train_cmd, eval_cmd, classify_cmd, crossfit_cmd, augment_cmd])
def test_help(cmd) -> None:
    result = CliRunner().invoke(cmd, ["--help"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()[2].strip()) > 10  # a real description


def test_command_names() -> None:
    names = (train_cmd.name, eval_cmd.name, classify_cmd.name, crossfit_cmd.name, augment_cmd.name)
    assert names == ("train", "eval", "classify", "crossfit", "augment")


def test_importing_cli_does_not_import_torch() -> None:
    code = "import sys, pipeline.cli.sentiment; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--out", "x", "--source", "fpb-99"], "unknown source 'fpb-99'"),
        (["--out", "x", "--source", "tfns*abc"], "weight"),
        (["--out", "x", "--epochs", "0"], "--epochs"),
        (["--out", "x", "--lr", "-1"], "--lr"),
        (["--epochs", "2"], "--out"),
        (["--out", "x", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["--out", "x", "--training-data-dir", "/no/such/dir"], "Invalid value for --training-data-dir"),
        (["--out", "x", "--cv-folds", "1"], "--cv-folds"),
        (["--out", "x", "--cv-folds", "3", "--cv-fold", "3"], "fold 3 of 3"),
        (["--out", "x", "--cv-fold", "2"], "fold 2 of 0"),
        (["--out", "x", "--soft-targets", "/no/such/file.jsonl"], "/no/such/file.jsonl"),
        (["--out", "x", "--transfer", "/no/such/aug.jsonl"], "/no/such/aug.jsonl"),
        (["--out", "x", "--transfer", __file__], "add a --teacher"),
        (["--out", "x", "--transfer-weight", "0"], "--transfer-weight"),
        (["--out", "x", "--teacher-source", "tfns*2"], "'tfns*2' is not one of the training sources"),
        (["--out", "x", "--source", "fpb-split", "--teacher-source", "tfns"], "(fpb-split)"),
        (["--out", "x", "--transfer", __file__, "--teacher", "t", "--cv-folds", "2"], "cross-fit"),
        # A typo would otherwise select on every validation row, headline rows included.
        (["--out", "x", "--select-on", "fpb-splt"], "'fpb-splt' is not one of the training sources"),
        (["--out", str(Path(__file__).resolve().parents[1] / "fixtures")], "fixtures already holds files"),
    ],
)
def test_train_bad_arguments_are_usage_errors(args: list[str], needle: str) -> None:
    # The fixture data dir, so that each case meets its own error, not a missing ../shared/data.
    if "--data-dir" not in args and "--training-data-dir" not in args:
        args = [*args, "--data-dir", str(DATA)]
    result = CliRunner().invoke(train_cmd, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_train_bad_csv_label_is_one_line(tmp_path: Path) -> None:
    bad = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "labels_bad.csv"
    result = CliRunner().invoke(
        train_cmd,
        ["--data-dir", str(DATA), "--source", f"csv:{bad}", "--out", str(tmp_path / "m"), "--max-steps", "1"],
    )
    assert result.exit_code == 1
    assert "labels_bad.csv:3: label 'bearish'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_train_malformed_soft_targets_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "soft.jsonl"
    bad.write_text('{"text": "Profit rose .", "logits": [0.1, 0.2]}\n')
    args = ["--data-dir", str(DATA), "--source", "fpb-split", "--soft-targets", str(bad)]
    args += ["--out", str(tmp_path / "m"), "--max-steps", "1", "--batch-size", "4", "--max-length", "24"]
    result = CliRunner().invoke(train_cmd, args)
    assert result.exit_code == 1, result.output
    assert "soft.jsonl:1: expected 3 logits, got 2" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_train_prints_the_gate_with_the_headline_check(tmp_path: Path) -> None:
    from pipeline.score.registry import released_model
    from pipeline.sentiment.gate import write_promotion

    def run(out: str) -> str:
        args = ["--data-dir", str(DATA), "--source", "fpb-split", "--source", "tfns", "--seed", "42"]
        args += ["--out", str(tmp_path / out), "--max-steps", "1", "--batch-size", "4", "--max-length", "24"]
        result = CliRunner().invoke(train_cmd, [*args, "--state-dir", str(tmp_path / "state")])
        assert result.exit_code == 0, result.output
        return result.output

    # Against the release, on the fixture's three headline rows: the release's record names
    # the real data's rows, so its blindness to these is unknown and the check is reported.
    output = run("m1")
    assert "| tfns-heldout | accuracy |" in output
    assert "current: " + str(released_model()) in output  # what "current" is, named
    assert "reported only, the current model is of unknown blindness" in output
    # Against a promoted model trained on this data with the release's split: both blind.
    write_promotion(tmp_path / "state", tmp_path / "m1")
    assert "headline check (tfns-heldout): guard applied" in run("m2")


def test_classify_missing_model_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(classify_cmd, ["--model", str(tmp_path / "nope")], input="hi\n")
    assert result.exit_code == 1
    assert str(tmp_path / "nope") in result.output and "finsent train" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_classify_stdin_and_file(tiny_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        classify_cmd,
        ["--model", str(tiny_model), "--precision", "fp32"],
        input="Shares jump\n\nProfit warning issued\n",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and lines[1] == "{}"
    first = json.loads(lines[0])
    assert set(first) == {"label", "probabilities", "score"}
    assert set(first["probabilities"]) == {"negative", "neutral", "positive"}

    path = tmp_path / "in.txt"
    path.write_text("one\ntwo\n")
    result = CliRunner().invoke(classify_cmd, ["--model", str(tiny_model), "--input", str(path)])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 2


@pytest.mark.parametrize("line", ["Shares jump", '{"text": "Ford slumps", "target": "Ford"}'])
def test_classify_with_a_model_that_gives_nan_stops_in_one_line(tmp_path: Path, line: str) -> None:
    # Broken weights: a NaN head. Output would be "NaN" (not JSON) labelled "negative".
    import torch
    from safetensors.torch import load_file, save_file

    broken = tiny_model_folder(tmp_path / "broken", layers=1, temperature=None)
    weights = load_file(broken / "model.safetensors")
    weights["classifier.bias"] = torch.full_like(weights["classifier.bias"], float("nan"))
    save_file(weights, broken / "model.safetensors")
    result = CliRunner().invoke(
        classify_cmd, ["--model", str(broken), "--precision", "fp32"], input=f"Good news\n{line}\n"
    )
    assert result.exit_code == 1
    assert "the model gave non-finite probabilities" in result.output and "(input lines 1-2)" in result.output
    assert "NaN" not in result.output


def test_classify_batch_size_is_the_flag_else_the_setting_else_the_device_default(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.score.classifier import SentimentClassifier

    loaded: list[int] = []
    real_load = SentimentClassifier.load.__func__

    def spy(cls, *args, **kwargs):
        clf = real_load(cls, *args, **kwargs)
        loaded.append(clf.batch_size)
        return clf

    monkeypatch.setattr(SentimentClassifier, "load", classmethod(spy))
    args = ["--model", str(tiny_model), "--precision", "fp32"]
    monkeypatch.delenv("FINSENT_SCORE_BATCH_SIZE", raising=False)
    runner = CliRunner()
    assert runner.invoke(classify_cmd, args, input="Shares jump\n").exit_code == 0
    monkeypatch.setenv("FINSENT_SCORE_BATCH_SIZE", "5")
    assert runner.invoke(classify_cmd, args, input="Shares jump\n").exit_code == 0
    assert runner.invoke(classify_cmd, [*args, "--batch-size", "3"], input="Shares jump\n").exit_code == 0
    import torch

    assert loaded == [512 if torch.cuda.is_available() else 64, 5, 3]


def test_classify_batch_size_flag_takes_the_settings_range(tiny_model: Path) -> None:
    # The flag overrides score_batch_size, so it accepts exactly what the setting accepts
    # (its range is read from the settings field) and refuses the rest at parse time.
    from pipeline.settings import int_bounds

    low, high = int_bounds("score_batch_size")
    assert (low, high) == (1, 4096)
    runner = CliRunner()
    for bad in (low - 1, high + 1):
        result = runner.invoke(
            classify_cmd, ["--model", str(tiny_model), "--batch-size", str(bad)], input="x\n"
        )
        assert result.exit_code == 2 and "--batch-size" in result.output


def test_classify_keeps_every_line_of_input_that_is_not_utf8(tiny_model: Path) -> None:
    result = CliRunner().invoke(
        classify_cmd,
        ["--model", str(tiny_model), "--precision", "fp32"],
        input=b"\xef\xbb\xbfShares jump\r\nCaf\xe9 profits drop\n\nProfit warning\n",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[2] == "{}"
    assert all("label" in json.loads(line) for i, line in enumerate(lines) if i != 2)
    assert "not UTF-8 on line(s) 2:" in result.stderr


def test_read_text_lines_splits_every_line_ending_and_drops_the_bom() -> None:
    import io

    from pipeline.cli.sentiment import read_text_lines

    raw = b"\xef\xbb\xbfA  \r\nB\n\nC\rD\n"
    assert read_text_lines(io.BytesIO(raw)) == ["A  ", "B", "", "C", "D"]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_iter_text_lines_reads_in_blocks_as_one_read_would(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    import io

    from pipeline.cli import sentiment

    monkeypatch.setattr(sentiment, "_READ_BYTES", block)
    raw = b"\xef\xbb\xbfA  \r\nB\n\nC\rD\r\r\nCaf\xe9\n\xc3\xa9t\xc3\xa9\nlast"
    bad: list[int] = []
    lines = list(sentiment.iter_text_lines(io.BytesIO(raw), bad))
    assert lines == ["A  ", "B", "", "C", "D", "", "Caf\ufffd", "\u00e9t\u00e9", "last"]
    assert bad == [7]


class _EndlessZeros:
    """/dev/zero: bytes for ever, never a newline."""

    def read(self, n: int) -> bytes:
        return b"\0" * n


class _FailingRead:
    def read(self, n: int) -> bytes:
        raise OSError(5, "Input/output error")


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (_EndlessZeros(), "input line 1 is longer than 8 MiB: classify reads one text per line"),
        (_FailingRead(), "cannot read the input (Input/output error)"),
    ],
)
def test_an_input_that_is_not_lines_of_text_stops_with_one_line(stream, message: str) -> None:
    import click

    from pipeline.cli import sentiment

    with pytest.raises(click.ClickException) as err:
        list(sentiment.iter_text_lines(stream))
    assert message in err.value.message and "\n" not in err.value.message


def test_a_long_line_after_short_ones_is_named_by_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import click

    from pipeline.cli import sentiment

    monkeypatch.setattr(sentiment, "MAX_LINE_BYTES", 100)
    raw = b"one\ntwo\n" + b"x" * 5000 + b"\nfour\n"
    lines = sentiment.iter_text_lines(io.BytesIO(raw))
    with pytest.raises(click.ClickException, match="input line 3 is longer than"):
        list(lines)


def test_utf16_input_is_refused_with_how_to_re_encode(tiny_model: Path) -> None:
    from click.testing import CliRunner

    from pipeline.cli.sentiment import classify_cmd

    result = CliRunner().invoke(
        classify_cmd, ["--model", str(tiny_model)], input="Tesla jumps\nFord slumps\n".encode("utf-16")
    )
    assert result.exit_code == 1 and "the input is UTF-16" in result.output and "iconv" in result.output


def test_classify_streams_in_chunks_one_output_per_line_in_order(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.cli import sentiment
    from pipeline.score.classifier import SentimentClassifier

    texts = [f"Company {i} {'beats' if i % 3 else 'misses'} estimates by {i} percent" for i in range(23)]
    lines = [t if i % 5 else "" for i, t in enumerate(texts)]
    monkeypatch.setattr(sentiment, "CLASSIFY_CHUNK_LINES", 4)
    monkeypatch.setattr(sentiment, "_READ_BYTES", 16)
    args = ["--model", str(tiny_model), "--precision", "fp32"]
    result = CliRunner().invoke(classify_cmd, args, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert len(out) == len(lines)
    expected = SentimentClassifier.load(tiny_model, precision="fp32").predict([t for t in lines if t])
    scored = iter(expected)
    for line, got in zip(lines, out, strict=True):
        if not line:
            assert got == "{}"
            continue
        r = next(scored)
        assert json.loads(got) == {"label": r.label, "probabilities": r.probabilities, "score": r.score}


def _classify_peak_rss_mb(model: Path, path: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "pipeline.cli", "classify", "--input", str(path), "--model", str(model)]
    # Through bench/peak_rss.py's launcher: spawned from pytest (larger than classify with a
    # tiny model), both runs would read pytest's own peak.
    code, peak_mb = call_with_peak_rss([*cmd, "--precision", "fp32"], stdout=subprocess.DEVNULL, env=env)
    assert code == 0 and peak_mb is not None
    return peak_mb


@pytest.mark.slow
def test_classify_memory_is_bounded_by_the_chunk_not_the_input(tiny_model: Path, tmp_path: Path) -> None:
    # 66 tokens a line: holding every line's tokens and results (as classify did before it
    # streamed) grows peak RSS by about 170 MB from 4,000 to 16,000 lines; streamed, by a few.
    words = "shares of the company rose sharply after quarterly earnings beat estimates and guidance"
    rss = {}
    for n in (4000, 16000):
        path = tmp_path / f"{n}.txt"
        with path.open("w") as fh:
            for i in range(n):
                fh.write(" ".join(f"{w}{(i * 7 + j) % 1000}" for j, w in enumerate(words.split() * 2)) + "\n")
        rss[n] = _classify_peak_rss_mb(tiny_model, path)
    assert rss[16000] - rss[4000] < 60, rss


@pytest.mark.slow
def test_train_overwrite_replaces_an_existing_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "m"
    args = ["--data-dir", str(DATA), "--source", "fpb-split", "--out", str(out)]
    args += ["--max-steps", "1", "--batch-size", "4", "--max-length", "24"]
    args += ["--state-dir", str(tmp_path / "s")]
    assert CliRunner().invoke(train_cmd, args).exit_code == 0
    refused = CliRunner().invoke(train_cmd, args)
    assert refused.exit_code == 2 and "already holds a model" in refused.output
    assert CliRunner().invoke(train_cmd, [*args, "--overwrite"]).exit_code == 0


def test_train_refuses_to_promote_over_the_model_that_serves(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained in place, the serving model would be gone before the gate compared it."""
    import shutil

    serving = tmp_path / "serving"
    shutil.copytree(tiny_model, serving)
    monkeypatch.setenv("FINSENT_MODEL_PATH", str(serving))
    args = ["--data-dir", str(DATA), "--source", "fpb-split", "--out", str(serving), "--overwrite"]
    args += ["--max-steps", "1", "--batch-size", "4", "--promote", "--state-dir", str(tmp_path / "s")]
    before = {p.name: p.stat().st_mtime_ns for p in serving.iterdir()}
    result = CliRunner().invoke(train_cmd, args)
    assert result.exit_code == 2, result.output
    assert "is the model that serves now: train into another folder" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in serving.iterdir()} == before


def test_eval_prints_metrics_and_writes_png(tiny_model: Path, tmp_path: Path) -> None:
    png = tmp_path / "cm.png"
    result = CliRunner().invoke(eval_cmd, [str(tiny_model), "--data-dir", str(DATA), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "| fpb-50 | 6 |" in result.output and "| fpb-all | 3 |" in result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_eval_png_in_a_missing_folder_is_refused_before_evaluating(tiny_model: Path, tmp_path: Path) -> None:
    png = tmp_path / "no" / "such" / "cm.png"
    result = CliRunner().invoke(eval_cmd, [str(tiny_model), "--data-dir", str(DATA), "--png", str(png)])
    assert result.exit_code == 2
    assert f"folder {png.parent} does not exist" in result.output
    assert not (tmp_path / "no").exists()


def test_eval_missing_data_dir(tiny_model: Path, tmp_path: Path) -> None:
    # --training-data-dir, not --data-dir (the former name, still accepted): `finsent
    # --data-dir` is FinSent's own data folder.
    for flag in ("--training-data-dir", "--data-dir"):
        result = CliRunner().invoke(eval_cmd, [str(tiny_model), flag, str(tmp_path)])
        assert result.exit_code == 2
        assert "fpb_split.tsv" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--folds", "1", "--out", "cf"], "'--folds': 1 is not in the range x>=2"),
        (["--fold", "3", "--out", "cf"], "No such option '--fold'"),
        (["--out", "cf", "--", "--cv-fold", "1"], "--cv-fold is set by the cross-fit"),
        (["--out", "cf", "--", "--epocks", "3"], "training arguments: unrecognized arguments: --epocks 3"),
        (["--out", "cf", "--", "--source", "fpb-99"], "training arguments: unknown source 'fpb-99'"),
        (["--out", "cf", "--", "--epochs", "x"], "training arguments: argument --epochs: invalid int"),
        (["--out", "cf", "--", "--select-on", "tfsn"], "'tfsn' is not one of the training sources"),
        (
            ["--out", "cf", "--", "--teacher", "t", "--transfer", "a.jsonl"],
            "--transfer cannot be used in a cross-fit",
        ),
    ],
)
@pytest.mark.slow
def test_crossfit_bad_arguments_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    # A data dir that does not exist: were the arguments accepted, the folds would fail fast.
    args = [*args, "--data-dir", str(tmp_path / "no-data")] if "--" in args else args
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "crossfit", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finsent: error:") and needle in lines[0]
    assert not (tmp_path / "cf").exists()


@pytest.mark.slow
def test_crossfit_cli_writes_one_soft_target_per_training_row(tmp_path: Path) -> None:
    train_args = ["--data-dir", str(DATA), "--source", "fpb-split", "--max-steps", "1"]
    train_args += ["--batch-size", "4", "--max-length", "16", "--val-fraction", "0.2", "--seed", "3"]
    cf = tmp_path / "cf"
    result = CliRunner().invoke(
        crossfit_cmd, ["--folds", "2", "--jobs", "2", "--threads", "1", "--out", str(cf), "--", *train_args]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    soft = cf / "soft_targets.jsonl"
    assert summary["soft_targets"] == str(soft)
    assert summary["rows"] == len(soft.read_text().splitlines()) > 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--out", "x.txt"], 2, "name it *.jsonl"),
        (["--out", "x.jsonl", "--source", "fpb-99"], 2, "unknown source 'fpb-99'"),
        (["--out", "x.jsonl", "--per-text", "0"], 2, "--per-text"),
        (["--out", "x.jsonl", "--data-dir", "/no/such/dir"], 2, "/no/such/dir"),
        (
            ["--out", "x.jsonl", "--neighbours", "/no/such/model"],
            1,
            "augment: neighbour model /no/such/model",
        ),
    ],
)
def test_augment_bad_arguments_are_one_line(tmp_path: Path, args: list[str], code: int, needle: str) -> None:
    args = [a.replace("x.", str(tmp_path / "x.")) for a in args]
    if "--data-dir" not in args:
        args += ["--data-dir", str(DATA)]
    result = CliRunner().invoke(
        augment_cmd, [*args, "--source", "fpb-split"] if "--source" not in args else args
    )
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output


def test_augment_cli_writes_a_transfer_file(tmp_path: Path) -> None:
    out = tmp_path / "aug.jsonl"
    args = ["--data-dir", str(DATA), "--source", "fpb-split", "--per-text", "2", "--neighbours", "none"]
    result = CliRunner().invoke(augment_cmd, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert f"{out}: {len(lines) - 1} variants of" in result.output
    assert json.loads(lines[0])["meta"]["neighbour_model"] is None


def test_eval_json_prints_only_json_on_stdout(tiny_model: Path, tmp_path: Path) -> None:
    png = tmp_path / "cm.png"
    args = [str(tiny_model), "--data-dir", str(DATA), "--png", str(png), "--json"]
    result = CliRunner().invoke(eval_cmd, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["fpb-50"]["n"] == 6
    assert metrics["model"]["precision"] == "fp32" and metrics["model"]["version"].startswith("tiny-")
    assert f"confusion matrix: {png}" in result.stderr


def test_eval_headlines_adds_the_tfns_heldout_rows(tiny_model: Path, tmp_path: Path) -> None:
    from pipeline.sentiment.data import headline_heldout, load_sources, stratified_split

    rows = headline_heldout(DATA)
    examples, _, _ = load_sources(["fpb-split", "tfns"], DATA)
    train_idx, _ = stratified_split(examples, 0.1, 42)
    trained = {examples[i].text for i in train_idx}
    assert rows and all(ex.source == "tfns" and ex.text not in trained for ex in rows)

    args = [str(tiny_model), "--data-dir", str(DATA), "--png", str(tmp_path / "cm.png"), "--headlines"]
    result = CliRunner().invoke(eval_cmd, args)
    assert result.exit_code == 0, result.output
    assert f"| tfns-heldout | {len(rows)} |" in result.output
    metrics = json.loads(CliRunner().invoke(eval_cmd, [*args, "--json"]).stdout)
    assert metrics["tfns-heldout"]["n"] == len(rows)
    check = metrics["headline_check"]
    assert check["rows"] == len(rows) and check["blind"] == (check["seen_in_lineage"] == 0)


@pytest.mark.slow
def test_eval_headlines_blindness_counts_only_for_the_rows_it_was_recorded_for(tmp_path: Path) -> None:
    # The release's record names the real data's rows: on the fixture's rows it says nothing.
    from pipeline.score.registry import released_model

    args = [str(released_model()), "--data-dir", str(DATA), "--png", str(tmp_path / "cm.png"), "--headlines"]
    result = CliRunner().invoke(eval_cmd, args)
    assert result.exit_code == 0, result.output
    assert "tfns-heldout: the model is of unknown blindness" in result.output


@pytest.mark.slow
def test_train_runs_a_recipe_and_records_its_values(tmp_path: Path) -> None:
    recipe = tmp_path / "smoke.toml"
    recipe.write_text(
        'sources = ["fpb-split"]\nmax_steps = 1\nbatch_size = 4\nmax_length = 24\n'
        f'eval_benchmarks = false\nseed = 7\nout_dir = "{tmp_path / "m"}"\n'
    )
    args = ["--recipe", str(recipe), "--data-dir", str(DATA), "--batch-size", "2"]
    result = CliRunner().invoke(train_cmd, [*args, "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "m" / "training_config.json").read_text())["config"]
    assert (recorded["seed"], recorded["max_length"], recorded["eval_benchmarks"]) == (7, 24, False)
    assert recorded["batch_size"] == 2  # the command line wins over the recipe
