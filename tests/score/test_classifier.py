"""SentimentClassifier on a tiny random BERT (fast): batching, chunking, labels, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from score_helpers import tiny_model_folder

from pipeline.errors import ModelError
from pipeline.score.classifier import SentimentClassifier, split_sentences

TEXTS = [
    "$AAPL - Apple beats estimates on strong iPhone sales",
    "Profit warning: XYZ cuts its full-year outlook",
    "The AGM will be held on 3 May .",
    "Shares",
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 "
    "representing 7.7 % of net sales .",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A deliberately unusual label order: the classifier must read id2label, not assume ours.
    return tiny_model_folder(
        tmp_path_factory.mktemp("tiny") / "tiny-model", id2label={0: "positive", 1: "negative", 2: "neutral"}
    )


@pytest.fixture(scope="module")
def clf(tiny_model: Path) -> SentimentClassifier:
    return SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", batch_size=2)


def test_results_shape_and_fields(clf: SentimentClassifier) -> None:
    results = clf.predict(TEXTS)
    assert len(results) == len(TEXTS)
    for r in results:
        assert set(r.probabilities) == {"negative", "neutral", "positive"}
        assert abs(sum(r.probabilities.values()) - 1) < 1e-4
        assert r.label == max(r.probabilities, key=r.probabilities.get)
        assert r.score == pytest.approx(r.probabilities["positive"] - r.probabilities["negative"], abs=1e-5)
        assert r.model_version.startswith("tiny-model-")
    assert clf.temperature == 2.0


def test_label_columns_follow_id2label(clf: SentimentClassifier) -> None:
    import torch

    enc = clf.tokenizer([TEXTS[0]], return_tensors="pt")
    with torch.inference_mode():
        raw = clf.eager_model()(**enc).logits[0] / 2.0
    p = torch.softmax(raw, -1).numpy()
    # model ids: 0 positive, 1 negative, 2 neutral -> ours: negative, neutral, positive
    np.testing.assert_allclose(clf.predict_proba([TEXTS[0]])[0], p[[1, 2, 0]], atol=1e-5)


def test_batched_equals_one_by_one(clf: SentimentClassifier) -> None:
    batched = clf.predict_proba(TEXTS)
    single = np.stack([clf.predict_proba([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_batched_equals_one_by_one_bf16(tiny_model: Path) -> None:
    # bf16 weights: each text's result does not depend on its batch-mates beyond rounding.
    b = SentimentClassifier.load(tiny_model, device="cpu", precision="bf16", batch_size=8)
    assert b.precision == "bf16"
    batched = b.predict_proba(TEXTS)
    single = np.stack([b.predict_proba([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=0.02)


def test_batched_equals_one_by_one_int8(tiny_model: Path) -> None:
    q = SentimentClassifier.load(tiny_model, device="cpu", precision="int8", batch_size=8)
    assert q.precision == "int8"
    batched = q.predict(TEXTS)
    single = [q.predict([t])[0] for t in TEXTS]
    # int8 activations are quantised per batch: allow small drift, labels must agree.
    assert [r.label for r in batched] == [r.label for r in single]
    for a, b in zip(batched, single, strict=True):
        for k in a.probabilities:
            assert a.probabilities[k] == pytest.approx(b.probabilities[k], abs=0.03)


def test_int8_quantises_only_the_layers_that_read_a_layer_norm(tiny_model: Path) -> None:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

    q = SentimentClassifier.load(tiny_model, device="cpu", precision="int8")
    kinds = {name: type(m) for name, m in q.model.named_modules()}
    # Fed by a layer norm: the query/key/value projections and the FFN up-projection.
    for name in ("attention.self.query", "attention.self.key", "attention.self.value", "intermediate.dense"):
        assert kinds[f"bert.encoder.layer.0.{name}"] is QuantizedLinear, name
    # Fed by outliers: the attention output, the FFN down-projection, the pooler, the head.
    for name in ("bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.output.dense"):
        assert kinds[name] is torch.nn.Linear, name
    assert kinds["bert.pooler.dense"] is torch.nn.Linear and kinds["classifier"] is torch.nn.Linear
    # Weights carry one scale per output channel, not one per tensor.
    scheme = q.model.bert.encoder.layer[0].intermediate.dense.weight().qscheme()
    assert scheme == torch.per_channel_affine


@pytest.mark.parametrize(
    ("precision", "on_cuda", "prefer_bf16", "expected"),
    [
        ("auto", False, True, "bf16"),
        ("auto", False, False, "fp32"),
        ("auto", True, False, "fp16"),
        ("fp32", False, True, "fp32"),
        ("bf16", True, False, "bf16"),
        ("int8", False, True, "int8"),
        ("fp16", True, False, "fp16"),
    ],
)
def test_resolve_precision(precision: str, on_cuda: bool, prefer_bf16: bool, expected: str) -> None:
    from pipeline.score.classifier import resolve_precision

    assert resolve_precision(precision, on_cuda, prefer_bf16) == expected


def test_int8_on_a_gpu_fp16_on_a_cpu_and_unknown_precisions_are_refused() -> None:
    from pipeline.errors import ModelError
    from pipeline.score.classifier import resolve_precision

    with pytest.raises(ModelError, match="CPU path"):
        resolve_precision("int8", on_cuda=True)
    with pytest.raises(ModelError, match="fp16 is a GPU path"):
        resolve_precision("fp16", on_cuda=False)
    with pytest.raises(ModelError, match="unknown precision 'int4'"):
        resolve_precision("int4", on_cuda=False)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    from pipeline.score.classifier import cpu_has_native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(info)
    info.write_text("flags\t\t: fpu sse2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(info)
    assert not cpu_has_native_bf16(tmp_path / "missing")


# /proc/cpuinfo as Linux prints it, cut to the lines that matter (one core).
INTEL_SPR_NO_AMX = (
    "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
)
INTEL_AMX = "vendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AMD_ZEN4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
AMD_ZEN3 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nflags\t\t: fpu avx2\n"


@pytest.mark.parametrize(
    ("cpuinfo", "prefers", "auto"),
    [
        (INTEL_AMX, True, "bf16"),
        (AMD_ZEN4, True, "bf16"),
        # Native but slower: Intel's AVX512-BF16 without AMX ran the model's products at 0.56x fp32.
        (INTEL_SPR_NO_AMX, False, "fp32"),
        (AMD_ZEN3, False, "fp32"),
    ],
)
def test_auto_serves_bf16_only_where_bf16_outruns_fp32(
    tmp_path: Path, cpuinfo: str, prefers: bool, auto: str
) -> None:
    from pipeline.score.classifier import cpu_has_native_bf16, cpu_prefers_bf16, resolve_precision

    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    assert cpu_prefers_bf16(info) is prefers
    assert resolve_precision("auto", False, cpu_prefers_bf16(info)) == auto
    # The bf16 asked for explicitly still runs natively on the Intel CPU without AMX.
    assert cpu_has_native_bf16(info) is (cpuinfo is not AMD_ZEN3)
    assert not cpu_prefers_bf16(tmp_path / "missing")


def test_auto_reads_this_cpu_through_cpu_prefers_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.score.classifier as classifier

    # Native bf16 that runs slower than fp32 (Intel's AVX512-BF16 without AMX): fp32.
    monkeypatch.setattr(classifier, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(classifier, "cpu_prefers_bf16", lambda: False)
    assert classifier.resolve_precision("auto", on_cuda=False) == "fp32"
    monkeypatch.setattr(classifier, "cpu_prefers_bf16", lambda: True)
    assert classifier.resolve_precision("auto", on_cuda=False) == "bf16"


def test_cli_and_settings_precisions_match_the_classifier() -> None:
    from typing import get_args

    from pipeline.cli.sentiment import PRECISION_CHOICES
    from pipeline.score.classifier import PRECISIONS
    from pipeline.settings import Settings

    assert PRECISION_CHOICES == PRECISIONS
    assert get_args(Settings.model_fields["model_precision"].annotation) == PRECISIONS


def test_long_text_is_chunked_not_truncated(tiny_model: Path) -> None:
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", max_length=32)
    long_text = " ".join(TEXTS * 6)
    ids = clf.tokenizer(long_text, add_special_tokens=False)["input_ids"]
    windows = clf._windows(ids)
    assert len(windows) > 1 and all(len(w) <= 30 for w in windows)  # + [CLS] and [SEP] = 32
    covered = {tok for w in windows for tok in w}
    assert set(ids) <= covered  # every token is seen by some window
    # the result differs from scoring only the first window, i.e. the tail counts
    head_only = clf.tokenizer.decode(ids[:30])
    assert not np.allclose(clf.predict_proba([long_text]), clf.predict_proba([head_only]))


def test_score_articles_headline_first(clf: SentimentClassifier) -> None:
    titles = ["Stocks plunge on weak earnings", None, "", "Only a headline"]
    summaries = ["Revenue fell. Margins shrank! The CEO resigned.", "Shares rose 5%.", None, None]
    results = clf.score_articles(titles, summaries)
    assert len(results) == 4
    assert results[2].label == "neutral" and results[2].probabilities["neutral"] == 1.0
    p_title = clf.predict_proba([titles[0]])[0]
    p_sents = clf.predict_proba(split_sentences(summaries[0])).mean(axis=0)
    expected = 0.6 * p_title + 0.4 * p_sents
    got = np.array([results[0].probabilities[k] for k in ("negative", "neutral", "positive")])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert results[3].probabilities == clf.predict([titles[3]])[0].probabilities


def test_split_sentences() -> None:
    assert split_sentences("Sales fell 5 %. Profit rose! Is it good? yes") == [
        "Sales fell 5 %.",
        "Profit rose!",
        "Is it good? yes",
    ]


def test_wrong_model_path_is_one_line_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        SentimentClassifier.load(tmp_path / "missing")
    assert "missing" in str(err.value) and "finsent train" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match=r"no config\.json"):
        SentimentClassifier.load(tmp_path)


def test_fast_token_ids_match_the_tokenizer(clf: SentimentClassifier) -> None:
    texts = [
        *TEXTS,
        "",
        "  ",
        "$AAPL \u2014 Caf\u00e9 Soci\u00e9t\u00e9 G\u00e9n\u00e9rale up 5% https://t.co/xYz?q=1 #earnings",
        "\u65e5\u672c\u306e\u682a\u5f0f\u5e02\u5834 fell",
        " ".join(TEXTS * 40),
    ]
    wrapper = clf.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    assert clf._token_ids(texts) == wrapper


def test_padded_batches_equal_the_model_on_each_text_alone(clf: SentimentClassifier) -> None:
    import torch

    texts = ["", "Profit rose sharply .", TEXTS[0], "Shares plunged after the profit warning ."]
    batched = clf.predict_proba(texts)
    for text, row in zip(texts, batched, strict=True):
        enc = clf.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            logits = clf.eager_model()(**enc).logits.float()[0, clf.label_columns] / clf.temperature
        np.testing.assert_allclose(row, torch.softmax(logits, -1).numpy(), atol=1e-5)


def test_token_ids_ignore_settings_a_wrapper_call_left_on_the_tokenizer(tiny_model: Path) -> None:
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    long_text = " ".join(TEXTS * 10)
    full = clf._token_ids([long_text])[0]
    # a caller uses the public tokenizer with truncation and padding: transformers leaves
    # both switched on in the Rust backend afterwards
    clf.tokenizer(["short", long_text], truncation=True, max_length=8, padding="max_length")
    assert clf._token_ids([long_text, "short"])[0] == full
    assert clf._token_ids(["short"])[0] == clf.tokenizer("short", add_special_tokens=False)["input_ids"]


def test_special_token_ids_come_from_the_tokenizer(clf: SentimentClassifier) -> None:
    from types import SimpleNamespace

    other = SimpleNamespace(cls_token_id=0, sep_token_id=2, pad_token_id=1)  # RoBERTa's ids
    built = SentimentClassifier(model=clf.model, tokenizer=other, model_dir=clf.model_dir, model_version="x")
    assert (built.cls_id, built.sep_id, built.pad_id) == (0, 2, 1)
    assert (clf.cls_id, clf.sep_id, clf.pad_id) == (101, 102, 0)


def test_a_model_folder_without_target_file_is_article_level(clf: SentimentClassifier) -> None:
    assert clf.target_style is None and not clf.target_aware


def test_target_aware_folder_is_read(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from pipeline.score.target import write_target_style

    folder = tmp_path / "aware"
    shutil.copytree(tiny_model, folder)
    write_target_style(folder)
    aware = SentimentClassifier.load(folder, device="cpu", precision="fp32")
    assert aware.target_aware and aware.target_style == "markers"
    (folder / "target.json").write_text('{"style": "sideways"}')
    with pytest.raises(ModelError, match=r"target\.json: style 'sideways'"):
        SentimentClassifier.load(folder, device="cpu", precision="fp32")


def test_predict_targets_marks_mentions_and_pairs_absent_targets(clf: SentimentClassifier) -> None:
    import numpy as np

    from pipeline.score.target import format_target_input

    text = "Tesla shares jump after record deliveries, while Ford slumps on recall"
    targets = [None, "Ford", "Tesla", "TSLA", " "]
    probs = clf.predict_targets_proba([text] * len(targets), targets)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1)
    # No target (or a blank one) is the article input, exactly.
    whole = clf.predict_proba([text])[0]
    assert np.allclose(probs[0], whole) and np.allclose(probs[4], whole)
    # A mention in the text is read marked, through the same path as any text.
    marked = format_target_input(text, "Ford")[0]
    assert np.allclose(probs[1], clf.predict_proba([marked])[0])
    assert not np.allclose(probs[1], probs[2])
    # A target the text does not name goes as a second segment: another input again.
    assert not np.allclose(probs[3], whole)
    results = clf.predict_targets([text, text], ["Ford", None])
    assert [r.label for r in results] == [max(r.probabilities, key=r.probabilities.get) for r in results]
    with pytest.raises(ValueError, match="2 texts but 1 targets"):
        clf.predict_targets([text, text], ["Ford"])


@pytest.fixture(scope="module")
def aware(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> SentimentClassifier:
    import shutil

    from pipeline.score.target import write_target_style

    folder = tmp_path_factory.mktemp("aware") / "tiny-aware"
    shutil.copytree(tiny_model, folder)
    write_target_style(folder)
    return SentimentClassifier.load(folder, device="cpu", precision="fp32", batch_size=3)


def _p(result) -> np.ndarray:
    return np.array([result.probabilities[k] for k in ("negative", "neutral", "positive")])


def test_score_article_targets_reads_the_texts_that_name_the_company(aware: SentimentClassifier) -> None:
    from pipeline.score.classifier import HEADLINE_WEIGHT
    from pipeline.score.target import format_target_input

    title = "Tesla shares jump after record deliveries, while Ford slumps on recall"
    summary = "Ford recalls 40,000 cars. Analysts expect more deliveries. Tesla guides higher."
    [[ford, tesla, orbix]] = aware.score_article_targets([title], [summary], [["Ford", "tesla", "Orbix"]])
    marked = [format_target_input(t, "Ford")[0] for t in (title, "Ford recalls 40,000 cars.")]
    head, sentence = aware.predict_proba(marked)
    # Headline and the one sentence that names Ford, weighted as score_articles weighs them.
    np.testing.assert_allclose(_p(ford), HEADLINE_WEIGHT * head + (1 - HEADLINE_WEIGHT) * sentence, atol=2e-6)
    assert (ford.target, ford.mention) == ("Ford", "Ford")
    tesla_texts = [format_target_input(t, "tesla")[0] for t in (title, "Tesla guides higher.")]
    tesla_head, tesla_sentence = aware.predict_proba(tesla_texts)
    expected = HEADLINE_WEIGHT * tesla_head + (1 - HEADLINE_WEIGHT) * tesla_sentence
    np.testing.assert_allclose(_p(tesla), expected, atol=2e-6)
    assert tesla.mention == "tesla" and not np.array_equal(_p(ford), _p(tesla))
    # Named nowhere: the headline with the target as a second segment.
    np.testing.assert_allclose(_p(orbix), aware.predict_targets_proba([title], ["Orbix"])[0], atol=2e-6)
    assert (orbix.target, orbix.mention) == ("Orbix", None)
    assert {r.model_version for r in (ford, tesla, orbix)} == {aware.model_version}


def test_score_article_targets_edge_cases(aware: SentimentClassifier) -> None:
    from pipeline.score.target import format_target_input

    titles = ["Voltara recalls SUVs", None, "", "Markets close flat"]
    summaries = ["Brakes fail. Voltara shares fall.", "Orbix wins a contract. Its shares rise.", None, None]
    mentions = [["Voltara", None, " "], ["Orbix"], ["Orbix"], []]
    articles, targets = aware.score_articles_with_targets(titles, summaries, mentions)
    assert [len(t) for t in targets] == [3, 1, 1, 0]
    # No target (None or blank) is the article's own score.
    expected = aware.score_articles(titles, summaries)
    for got, want in zip(articles, expected, strict=True):
        np.testing.assert_allclose(_p(got), _p(want), atol=2e-6)
    np.testing.assert_allclose(_p(targets[0][1]), _p(expected[0]), atol=2e-6)
    np.testing.assert_allclose(_p(targets[0][2]), _p(expected[0]), atol=2e-6)
    # No headline: the sentences that name the company alone.
    only = aware.predict_proba([format_target_input("Orbix wins a contract.", "Orbix")[0]])[0]
    np.testing.assert_allclose(_p(targets[1][0]), only, atol=2e-6)
    # Nothing to read at all: neutral, as an empty article.
    assert targets[2][0].probabilities == {"negative": 0.0, "neutral": 1.0, "positive": 0.0}
    assert aware.score_article_targets([], [], []) == []
    with pytest.raises(ValueError, match="2 titles, 2 summaries and 1 mention lists"):
        aware.score_article_targets(["a", "b"], [None, None], [["A"]])


def test_score_article_targets_is_one_batched_call(aware: SentimentClassifier, monkeypatch) -> None:
    calls: list[int] = []
    forward = aware._forward

    def counting(sequences):
        calls.append(len(sequences))
        return forward(sequences)

    monkeypatch.setattr(aware, "_forward", counting)
    titles = [f"Voltara and Orbix report quarter {i}" for i in range(4)]
    summaries = ["Voltara beats. Orbix misses. Guidance unchanged."] * 4
    aware.score_articles_with_targets(titles, summaries, [["Voltara", "Orbix"]] * 4)
    # 4 plain headlines + 3 distinct plain sentences + 2 marked headlines each + 2 marked
    # sentences (the same four times: scored once), in one model pass.
    assert calls == [4 + 3 + 4 * 2 + 2]


def test_segment_style_scores_the_naming_texts_with_the_target_second(
    tiny_model: Path, tmp_path: Path
) -> None:
    import shutil

    from pipeline.score.target import write_target_style

    folder = tmp_path / "segment"
    shutil.copytree(tiny_model, folder)
    write_target_style(folder, "segment")
    seg = SentimentClassifier.load(folder, device="cpu", precision="fp32")
    [[r]] = seg.score_article_targets(["Tesla jumps, Ford slumps"], [None], [["Ford"]])
    np.testing.assert_allclose(
        _p(r), seg.predict_targets_proba(["Tesla jumps, Ford slumps"], ["Ford"])[0], atol=2e-6
    )
    assert r.mention == "Ford"


@pytest.mark.parametrize(
    ("native", "prefers", "warned"),
    [(False, False, "emulated"), (True, False, "0.65x"), (True, True, None)],
)
def test_bf16_asked_where_auto_would_not_pick_it_says_why(
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    native: bool,
    prefers: bool,
    warned: str | None,
) -> None:
    import pipeline.score.classifier as classifier

    monkeypatch.setattr(classifier, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(classifier, "cpu_prefers_bf16", lambda: prefers)
    with caplog.at_level("WARNING", logger="pipeline.score.classifier"):
        SentimentClassifier.load(tiny_model, device="cpu", precision="bf16", backend="torch")
    said = [r.getMessage() for r in caplog.records if "precision bf16" in r.getMessage()]
    if warned is None:
        assert said == []
    else:
        assert len(said) == 1 and warned in said[0] and "auto would pick fp32" in said[0]


@pytest.mark.parametrize(
    ("native", "prefers", "said"),
    [
        (True, True, "(asked: auto, bf16 outruns fp32 on this CPU)"),
        (True, False, "(asked: auto, this CPU's bf16 (AVX512-BF16 without AMX) runs slower than fp32)"),
        (False, False, "(asked: auto, this CPU has no bf16 units)"),
    ],
)
def test_the_load_log_says_why_auto_chose_its_precision(
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    native: bool,
    prefers: bool,
    said: str,
) -> None:
    import pipeline.score.classifier as classifier

    monkeypatch.setattr(classifier, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(classifier, "cpu_prefers_bf16", lambda: prefers)
    with caplog.at_level("INFO", logger="pipeline.score.classifier"):
        clf = SentimentClassifier.load(tiny_model, device="cpu", precision="auto", backend="torch")
    loaded = [r.getMessage() for r in caplog.records if " loaded: " in r.getMessage()]
    assert len(loaded) == 1 and loaded[0].endswith(said)
    assert f"loaded: {clf.precision} on cpu" in loaded[0]
