"""The CPU backend of SentimentClassifier: OpenVINO by default, eager PyTorch as the fallback."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from score_helpers import tiny_model_folder

from pipeline.errors import ModelError
from pipeline.score import classifier as classifier_module
from pipeline.score.classifier import SentimentClassifier, available_cores
from pipeline.score.target import mention_span

TEXTS = [
    "$AAPL - Apple beats estimates on strong iPhone sales",
    "Profit warning: XYZ cuts its full-year outlook",
    "Shares",
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 " * 12,
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(
        tmp_path_factory.mktemp("tiny-backend") / "tiny-model",
        id2label={0: "positive", 1: "negative", 2: "neutral"},
    )


@pytest.fixture
def own_graph_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty OpenVINO graph cache (XDG_CACHE_HOME) for one test, so that it converts and
    reads back its own graphs, not those an earlier test left in the session's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


# A mention-style model's text with two companies to read.
MENTION_TEXT = "Tesla shares jump after record deliveries, while Ford slumps on recall"


@pytest.fixture(scope="module")
def mention_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("tiny-backend") / "tiny-mention", target_style="mention")


@pytest.fixture(autouse=True)
def _no_backend_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINSENT_CPU_BACKEND", raising=False)


def test_unknown_backend_is_refused_naming_the_setting(tiny_model: Path) -> None:
    with pytest.raises(ModelError, match="FINSENT_CPU_BACKEND"):
        SentimentClassifier.load(tiny_model, device="cpu", backend="tensorrt")


def test_torch_backend_is_eager(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_CPU_BACKEND", "torch")
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    assert clf.compiled is None


def _without_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else find_spec(name, *a)
    )


def test_auto_without_openvino_is_eager_and_named_backend_is_refused(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _without_openvino(monkeypatch)
    assert SentimentClassifier.load(tiny_model, device="cpu", precision="fp32").compiled is None
    assert "openvino is not installed (finsent depends on it)" in caplog.text
    with pytest.raises(ModelError, match=r"openvino is not installed: reinstall finsent"):
        SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", backend="openvino")


def test_auto_is_openvino_on_a_cpu(tiny_model: Path) -> None:
    """OpenVINO is a dependency: a plain install scores through its graph, whose batches are
    as wide as their longest text (no per-shape kernel cache to spare) in fp32."""
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    assert clf.compiled is not None and clf.width_tile == 1
    assert clf._width(5, openvino=True) == 7  # [CLS] + 5 + [SEP]
    eager = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", backend="torch")
    assert eager.compiled is None and eager._width(5, openvino=False) == classifier_module._WIDTH_STEP


def test_openvino_widths_fill_amx_tiles_only_where_that_costs_at_most_a_fifth(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    width = classifier_module._openvino_width
    assert [width(n, 1) for n in (0, 5, 29)] == [2, 7, 31]
    # [CLS] + n + [SEP]: 27-31 columns become 32, 26 stays (32 would add more than a fifth).
    got = [width(n, 16) for n in (14, 24, 25, 29, 30, 38, 45, 50, 52)]
    assert got == [16, 26, 32, 32, 32, 48, 48, 52, 64]
    monkeypatch.setattr(classifier_module, "cpu_has_amx", lambda: True)
    on_amx = SentimentClassifier.load(tiny_model, device="cpu", precision="bf16")
    assert on_amx.width_tile == 16 and on_amx._width(29, openvino=True) == 32
    assert SentimentClassifier.load(tiny_model, device="cpu", precision="fp32").width_tile == 1


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert classifier_module.cpu_has_amx(cpuinfo) and classifier_module.cpu_has_native_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512_bf16\n")
    assert not classifier_module.cpu_has_amx(cpuinfo) and classifier_module.cpu_has_native_bf16(cpuinfo)
    assert not classifier_module.cpu_has_amx(tmp_path / "missing")


def test_openvino_requests_are_kept_for_the_next_call(tiny_model: Path) -> None:
    """Batches run two per stream in flight; their requests (about 14 ms each to make) are
    kept for the next call, and results come back in the callers' order either way."""
    clf = SentimentClassifier.load(
        tiny_model, device="cpu", precision="fp32", backend="openvino", batch_size=1
    )
    first = clf.predict_proba(TEXTS)  # one text per batch: several batches in flight
    kept = list(clf._idle)
    streams = clf.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    assert 1 <= len(kept) <= 2 * streams
    again = clf.predict_proba(TEXTS[::-1])
    np.testing.assert_allclose(again[::-1], first, atol=1e-6)
    assert {id(r) for r in clf._idle} == {id(r) for r in kept}


def test_failed_conversion_falls_back_to_eager(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(classifier_module, "_openvino_model", broken)
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    assert clf.compiled is None
    assert "scoring with eager PyTorch" in caplog.text
    assert clf.predict_proba(TEXTS[:2]).shape == (2, 3)


def test_int8_stays_eager(tiny_model: Path) -> None:
    assert SentimentClassifier.load(tiny_model, device="cpu", precision="int8").compiled is None
    # Asked for by name, OpenVINO is not silently replaced by PyTorch.
    with pytest.raises(ModelError, match=r"FINSENT_CPU_BACKEND=openvino runs fp32 and bf16, not int8"):
        SentimentClassifier.load(tiny_model, device="cpu", precision="int8", backend="openvino")


def test_a_measurement_of_int8_loads_whatever_the_backend_setting(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release gate and bench_precision measure int8 where FINSENT_CPU_BACKEND=openvino;
    # other precisions follow the setting.
    monkeypatch.setenv("FINSENT_CPU_BACKEND", "openvino")
    from pipeline.score.classifier import backend_measuring

    clf = SentimentClassifier.load(
        tiny_model, device="cpu", precision="int8", backend=backend_measuring("int8")
    )
    assert clf.precision == "int8" and clf.compiled is None
    assert backend_measuring("fp32") is None and backend_measuring("bf16") is None


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-5), ("bf16", 0.05)])
def test_openvino_scores_as_eager(tiny_model: Path, precision: str, tolerance: float) -> None:
    eager = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", backend="torch")
    ov = SentimentClassifier.load(
        tiny_model, device="cpu", precision=precision, backend="openvino", batch_size=2
    )
    assert ov.compiled is not None
    expected = eager.predict_proba(TEXTS)  # the long text runs in windows on both paths
    got = ov.predict_proba(TEXTS)
    np.testing.assert_allclose(got, expected, atol=tolerance)
    # A text's result does not depend on its batch-mates.
    alone = np.concatenate([ov.predict_proba([t]) for t in TEXTS])
    np.testing.assert_allclose(alone, got, atol=tolerance / 10 if precision == "bf16" else 1e-5)


def test_batches_of_long_texts_are_cut_to_the_token_budget(tiny_model: Path) -> None:
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", batch_size=4, backend="torch")
    budget = 4 * classifier_module._TOKENS_PER_ROW
    lengths = np.array([3, 5, 8, 9, 10, 30, 60, 126, 126, 126])
    bounds = clf._batch_bounds(lengths)
    assert bounds[0] == (0, 4)  # short texts: full batches
    assert [b for _, b in bounds][-1] == len(lengths)
    assert all(a < b for a, b in bounds) and all(b == a2 for (_, b), (a2, _) in itertools.pairwise(bounds))
    for first, last in bounds:
        assert last - first <= 4
        width = classifier_module._padded_width(int(lengths[last - 1]))
        assert last - first == 1 or (last - first) * width <= budget


def test_batch_widths_are_padded_to_the_step_and_results_do_not_move(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Widths come in steps of _WIDTH_STEP (few shapes: kernels reused, caches small); the
    extra columns are masked, so a text scores as it does alone at its own length."""
    step = classifier_module._WIDTH_STEP
    assert [classifier_module._padded_width(n) for n in (0, step - 2, step - 1, 126)] == [
        step,
        step,
        2 * step,
        128,
    ]
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", batch_size=2, backend="torch")
    widths: list[int] = []
    forward = clf.model.forward

    def spy(**kwargs: object) -> object:
        widths.append(kwargs["input_ids"].shape[1])  # type: ignore[attr-defined]
        return forward(**kwargs)

    monkeypatch.setattr(clf.model, "forward", spy)
    got = clf.predict_proba(TEXTS)
    assert widths and all(w % step == 0 for w in widths)
    monkeypatch.setattr(classifier_module, "_WIDTH_STEP", 1)  # no padding: each text's own width
    np.testing.assert_allclose(got, np.concatenate([clf.predict_proba([t]) for t in TEXTS]), atol=1e-5)


def test_heap_is_trimmed_after_calls_of_several_batches(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long stream's resident size stays flat: freed batch memory goes back to the OS once
    per call of several batches (a classify chunk, a score page), not after every text."""
    trims: list[int] = []
    monkeypatch.setattr(classifier_module, "_trim_heap", lambda: trims.append(1))
    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32", batch_size=2, backend="torch")
    clf.predict_proba(TEXTS[:1])
    assert trims == []
    clf.predict_proba(TEXTS)
    assert trims == [1]


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-5), ("bf16", 0.05)])
def test_openvino_reads_mentions_from_its_own_graph(
    mention_model: Path, precision: str, tolerance: float
) -> None:
    """A mention-style model loaded for mentions (the default, what ``score`` runs) scores
    everything on the graph that also gives the last layer's states, so a text's result
    is the same whether or not its call reads a company."""
    eager = SentimentClassifier.load(mention_model, device="cpu", precision="fp32", backend="torch")
    ov = SentimentClassifier.load(
        mention_model, device="cpu", precision=precision, backend="openvino", batch_size=2
    )
    assert ov.compiled is not None and ov._states is ov.compiled and ov.compile_states is None
    spans = [[mention_span(MENTION_TEXT, "Ford"), mention_span(MENTION_TEXT, "Tesla")], [], []]
    texts = [MENTION_TEXT, *TEXTS[:2]]
    alone = ov.predict_proba(texts)
    own, reads = ov.predict_span_proba(texts, spans)
    np.testing.assert_allclose(own, alone, atol=1e-6)
    eager_own, eager_reads = eager.predict_span_proba(texts, spans)
    np.testing.assert_allclose(own, eager_own, atol=tolerance)
    np.testing.assert_allclose(reads[0], eager_reads[0], atol=tolerance)
    assert not np.allclose(reads[0][0], reads[0][1])


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-5), ("bf16", 0.05)])
def test_loaded_for_labels_a_mention_model_switches_graphs_at_the_first_mention(
    mention_model: Path, precision: str, tolerance: float
) -> None:
    """``mentions=False`` (classify without --entities): texts run on the [CLS]-only graph
    until a call reads a mention; from then on on the states graph, the other let go."""
    eager = SentimentClassifier.load(mention_model, device="cpu", precision="fp32", backend="torch")
    full = SentimentClassifier.load(mention_model, device="cpu", precision=precision, backend="openvino")
    lazy = SentimentClassifier.load(
        mention_model, device="cpu", precision=precision, backend="openvino", mentions=False, batch_size=2
    )
    logits_graph = lazy.compiled
    assert logits_graph is not None and lazy._states is None and lazy.compile_states is not None
    np.testing.assert_allclose(lazy.predict_proba(TEXTS), eager.predict_proba(TEXTS), atol=tolerance)
    assert lazy._states is None  # texts alone need no states
    spans = [[mention_span(MENTION_TEXT, "Ford"), mention_span(MENTION_TEXT, "Tesla")]]
    own, reads = lazy.predict_span_proba([MENTION_TEXT], spans)
    assert lazy._states is not None and lazy.compiled is lazy._states is not logits_graph
    assert lazy.compile_states is None and lazy._idle  # the new graph's requests are kept
    full_own, full_reads = full.predict_span_proba([MENTION_TEXT], spans)
    np.testing.assert_allclose(own, full_own, atol=1e-6)  # the same states graph
    np.testing.assert_allclose(reads[0], full_reads[0], atol=1e-6)
    np.testing.assert_allclose(lazy.predict_proba(TEXTS), full.predict_proba(TEXTS), atol=1e-6)


@pytest.mark.usefixtures("own_graph_cache")
def test_a_mention_graph_that_cannot_be_compiled_leaves_eager_pytorch(
    mention_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lazy = SentimentClassifier.load(
        mention_model, device="cpu", precision="fp32", backend="openvino", mentions=False
    )
    assert torch.get_num_threads() == 1  # OpenVINO scores; PyTorch only reads the head
    eager = SentimentClassifier.load(mention_model, device="cpu", precision="fp32", backend="torch")
    assert torch.get_num_threads() == lazy.eager_threads == available_cores()
    torch.set_num_threads(1)  # as after the OpenVINO load
    # Its cache file deleted after the load: the graph was read (mapped) at the load.
    for path in classifier_module.openvino_cache_dir().iterdir():
        path.unlink()

    def broken(*args: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(classifier_module, "_compile_openvino", broken)
    spans = [[mention_span(MENTION_TEXT, "Ford"), mention_span(MENTION_TEXT, "Tesla")]]
    assert lazy.model is None
    own, reads = lazy.predict_span_proba([MENTION_TEXT], spans)
    assert "could not compile the mention graph (out of memory)" in caplog.text
    assert lazy.compiled is None and lazy.states_graph() is None
    assert lazy.model is not None  # built for the fall back, from the model folder
    assert torch.get_num_threads() == available_cores()  # eager scoring gets its cores back
    eager_own, eager_reads = eager.predict_span_proba([MENTION_TEXT], spans)
    np.testing.assert_allclose(reads[0], eager_reads[0], atol=1e-6)
    np.testing.assert_allclose(own, eager_own, atol=1e-6)
    np.testing.assert_allclose(lazy.predict_proba(TEXTS), eager.predict_proba(TEXTS), atol=1e-6)


@pytest.mark.usefixtures("own_graph_cache")
def test_a_deleted_cache_does_not_stop_the_mention_graph(mention_model: Path) -> None:
    lazy = SentimentClassifier.load(
        mention_model, device="cpu", precision="fp32", backend="openvino", mentions=False
    )
    for path in classifier_module.openvino_cache_dir().iterdir():
        path.unlink()
    lazy.predict_span_proba([MENTION_TEXT], [[mention_span(MENTION_TEXT, "Ford")]])
    assert lazy._states is not None


def test_texts_wait_for_a_graph_switch_instead_of_running_eager(mention_model: Path) -> None:
    """While one thread compiles the mention graph, another thread's texts wait for it
    rather than falling to eager PyTorch (nor to eager widths)."""
    import threading
    import time

    lazy = SentimentClassifier.load(
        mention_model, device="cpu", precision="fp32", backend="openvino", mentions=False
    )
    compile_states = lazy.compile_states
    started = threading.Event()

    def slow() -> object:
        started.set()
        time.sleep(0.5)
        return compile_states()

    lazy.compile_states = slow

    def no_eager(*args: object, **kwargs: object) -> None:
        raise AssertionError("scored on eager PyTorch during the switch")

    assert lazy.model is None  # OpenVINO scores: no PyTorch model is kept
    lazy.load_model = no_eager  # type: ignore[assignment]
    reader = threading.Thread(
        target=lambda: lazy.predict_span_proba([MENTION_TEXT], [[mention_span(MENTION_TEXT, "Ford")]])
    )
    reader.start()
    assert started.wait(5)
    assert lazy.predict_proba(TEXTS).shape == (len(TEXTS), 3)
    reader.join()
    assert lazy._states is not None


@pytest.mark.usefixtures("own_graph_cache")
def test_a_converted_graph_is_kept_and_read_back_by_the_next_load(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conversion (about 2 s for the release) happens once per model version; a later
    process reads the saved graph and scores exactly as the converted one did."""
    first = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    saved = sorted(p.suffix for p in classifier_module.openvino_cache_dir().iterdir())
    assert saved == [".bin", ".xml"]

    def no_conversion(*args: object) -> None:
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr(classifier_module, "_convert_to_openvino", no_conversion)
    second = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    assert second.compiled is not None
    np.testing.assert_array_equal(second.predict_proba(TEXTS), first.predict_proba(TEXTS))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.usefixtures("own_graph_cache")
def test_on_cached_graphs_no_pytorch_model_is_built(
    mention_model: Path, monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    """Graphs read from the cache need no PyTorch model: the mention head comes from the
    weights file, and the results are those of the load that converted them."""
    spans = [[mention_span(MENTION_TEXT, "Ford"), mention_span(MENTION_TEXT, "Tesla")], [], []]
    texts = [MENTION_TEXT, *TEXTS[:2]]
    first = SentimentClassifier.load(mention_model, device="cpu", precision=precision, mentions=False)
    expected = first.predict_proba(texts), first.predict_span_proba(texts, spans)
    assert first.model is None  # converted, then let go

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("built the PyTorch model")

    monkeypatch.setattr(classifier_module, "load_model", no_model)
    second = SentimentClassifier.load(mention_model, device="cpu", precision=precision, mentions=False)
    np.testing.assert_array_equal(second.predict_proba(texts), expected[0])
    own, reads = second.predict_span_proba(texts, spans)
    np.testing.assert_array_equal(own, expected[1][0])
    np.testing.assert_array_equal(reads[0], expected[1][1][0])
    assert second.model is None


@pytest.mark.usefixtures("own_graph_cache")
def test_a_target_the_text_does_not_name_builds_the_model_then_scores_as_eager(mention_model: Path) -> None:
    """Two-segment inputs run on eager PyTorch: a load on OpenVINO builds the model for
    them when they come, outside the call's inference mode, so that it stays usable."""
    ov = SentimentClassifier.load(mention_model, device="cpu", precision="fp32", backend="openvino")
    eager = SentimentClassifier.load(mention_model, device="cpu", precision="fp32", backend="torch")
    assert ov.model is None
    texts, targets = [MENTION_TEXT, MENTION_TEXT], ["Exxon", "Ford"]  # Exxon: not named
    np.testing.assert_allclose(
        ov.predict_targets_proba(texts, targets), eager.predict_targets_proba(texts, targets), atol=1e-5
    )
    assert ov.model is not None
    enc = ov.tokenizer(["Shares rise"], return_tensors="pt")
    ov.eager_model()(**enc)  # autograd on: a model built in inference mode would refuse


@pytest.mark.usefixtures("own_graph_cache")
def test_a_folder_whose_weights_changed_is_not_built_into_the_running_classifier(
    mention_model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(mention_model, folder)
    clf = SentimentClassifier.load(folder, device="cpu", precision="fp32", backend="openvino")
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # replaced
    with pytest.raises(ModelError, match=r"weights changed or went away since .* was loaded: run again"):
        clf.eager_model()


@pytest.mark.usefixtures("own_graph_cache")
def test_a_folder_that_cannot_be_loaded_fails_once_with_its_own_error(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken folder is not an OpenVINO problem: no fall back to eager, no second load."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    config = json.loads((broken / "config.json").read_text())
    config["intermediate_size"] += 16  # the weights no longer fit the config
    (broken / "config.json").write_text(json.dumps(config))
    for backend in ("auto", "openvino"):
        with pytest.raises(ModelError, match=r"^model: cannot load model from") as caught:
            SentimentClassifier.load(broken, device="cpu", precision="fp32", backend=backend)
        assert "OpenVINO" not in str(caught.value)
    assert "could not convert" not in caplog.text


def test_the_mention_head_read_from_the_weights_file_is_the_models(
    mention_model: Path, tmp_path: Path
) -> None:
    from pipeline.score.loading import load_sequence_classifier
    from pipeline.score.mention import MentionHead

    half = tmp_path / "half"  # saved in fp16, as the release is
    model, tokenizer = load_sequence_classifier(mention_model)
    model.half().save_pretrained(half)
    tokenizer.save_pretrained(half)
    for folder in (mention_model, half):
        model, _ = load_sequence_classifier(folder)
        pooled = torch.randn(5, model.config.hidden_size)
        for dtype in (torch.float32, torch.bfloat16):
            read = MentionHead.read(folder, dtype)
            assert read is not None
            with torch.inference_mode():
                own = MentionHead.of(model.eval().to(dtype))(pooled)
                torch.testing.assert_close(read(pooled), own, rtol=0, atol=0)
    other = tmp_path / "other"
    shutil.copytree(mention_model, other)
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["RobertaForSequenceClassification"]
    (other / "config.json").write_text(json.dumps(config))
    assert MentionHead.read(other) is None  # another layout: the load builds the model for it
    (other / "config.json").write_text((mention_model / "config.json").read_text())
    assert MentionHead.read(other) is not None
    from safetensors.torch import load_file, save_file

    tensors = load_file(other / "model.safetensors")
    del tensors["classifier.bias"]
    save_file(tensors, other / "model.safetensors", metadata={"format": "pt"})
    assert MentionHead.read(other) is None  # a head tensor missing


@pytest.mark.usefixtures("own_graph_cache")
def test_a_load_on_cached_graphs_does_not_import_the_modelling_code(tiny_model: Path) -> None:
    """What the lazy model saves: transformers' modelling code (about 130 MB and 2 s) is
    never imported by a process scoring on a cached graph."""
    import subprocess
    import sys

    script = (
        "import sys; from pipeline.score.classifier import SentimentClassifier as C; "
        f"c = C.load({str(tiny_model)!r}, device='cpu', precision='fp32'); c.predict_proba(['Shares rise']); "
        "print(c.model is None, 'transformers.modeling_utils' in sys.modules)"
    )
    for expected in ("True True", "True False"):  # converts (and caches), then reads the cache
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert out.stdout.split() == expected.split(), out.stderr


def test_the_cache_key_follows_the_weights_and_the_graphs_outputs(tiny_model: Path) -> None:
    key = classifier_module._openvino_cache_key
    assert key(tiny_model, "m-aaaa", False) == key(tiny_model, "m-aaaa", False)
    assert (
        len(
            {
                key(tiny_model, "m-aaaa", False),
                key(tiny_model, "m-bbbb", False),
                key(tiny_model, "m-aaaa", True),
            }
        )
        == 3
    )


@pytest.mark.usefixtures("own_graph_cache")
def test_a_damaged_or_unwritable_cache_only_costs_the_conversion(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32").predict_proba(TEXTS)
    (xml,) = classifier_module.openvino_cache_dir().glob("*.xml")
    xml.write_text("<not a graph")
    again = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    assert again.compiled is not None and "converting again" in caplog.text
    np.testing.assert_allclose(again.predict_proba(TEXTS), expected, atol=1e-6)
    assert xml.read_text().startswith("<?xml")  # replaced by a good one
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # its cache dir cannot be created
    assert SentimentClassifier.load(tiny_model, device="cpu", precision="fp32").compiled is not None
