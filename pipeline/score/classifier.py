"""Inference: score texts with a fine-tuned sentiment model.

Load once per process and keep the object (``SentimentClassifier.load(path)``); the caller
owns it, nothing is cached in module globals.

Speed on CPU comes from three things: length bucketing (texts sorted by token count so a
batch pads to its own longest text, not to 128), ``torch.inference_mode``, and the weight
precision (``precision``):

- ``bf16``: the default on CPUs where bf16 products outrun fp32 (AMX; AVX512-BF16 on AMD:
  ``cpu_prefers_bf16``). Within 0.3 point of fp32 on FPB and the fastest CPU path there (see
  BENCHMARKS.md).
- ``fp32``: exact; the default on other CPUs: where bf16 is emulated (5.7-7.1x slower than
  fp32), and on Intel's AVX512-BF16 without AMX (0.65x fp32).
- ``int8``: dynamic quantisation, opt-in only: per-channel weight scales, only the Linear
  layers fed by a layer norm (query/key/value, feed-forward up-projection); the rest stay fp32. On
  the release it stays within half a point of fp32 on FPB and the headline check, but
  changes 1-2% of labels against fp32, and because activations are scaled per batch a
  text's probabilities move with the texts that share its batch (2% of headline labels
  differ scored alone). 1.2-1.7x the fp32 speed on an AVX-512 VNNI Xeon
  (``bench/bench_precision.py``, BENCHMARKS.md).

On CUDA the model runs in fp16 with larger batches.

On a CPU the fp32 and bf16 paths run the same weights through an OpenVINO graph (a
dependency), converted at a model version's first load (about 3 seconds per graph) and then
read from openvino_cache_dir() (about 0.5 s). It fuses the bias, GELU and layer norms that
eager PyTorch runs as separate passes over memory; a BERT is traced from its forward pass
written for export (pipeline/score/bert_graph.py: the last layer at [CLS] only, attention
as batched matrix products), and batches run on OpenVINO's streams, two in flight per
stream: 1.56-1.7x the eager speed on an AMX Xeon, 1.4-1.7x on an AVX2-only AMD Zen 3 (fp32),
1.8x on AMD Zen 5, 1.6x on Zen 4 (``bench/bench_roofline.py``, BENCHMARKS.md). ``FINSENT_CPU_BACKEND=torch``
keeps eager PyTorch, which is also the fallback where OpenVINO is missing or cannot convert
a model.

Texts longer than the model window are never truncated silently: they are cut into
overlapping token windows whose probabilities are averaged (weighted by window length).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ModelError
from pipeline.score.labels import LABELS
from pipeline.score.loading import (
    check_model_dir,
    folder_label_order,
    load_model,
    load_tokenizer,
    model_version_of,
    read_temperature,
    weight_files,
)
from pipeline.score.target import (
    DEFAULT_STYLE,
    TargetInput,
    encode_target_inputs,
    format_target_input,
    mark_target,
    mention_read,
    normalise_target,
    read_target_style,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "CPU_BACKENDS",
    "HEADLINE_WEIGHT",
    "PRECISIONS",
    "SentimentClassifier",
    "SentimentResult",
    "TargetResult",
    "available_cores",
    "backend_measuring",
    "cpu_has_native_bf16",
    "cpu_prefers_bf16",
    "int8_layer_names",
    "quantize_int8",
    "resolve_precision",
    "score_articles",
    "split_sentences",
]

logger = logging.getLogger(__name__)

# Headline counts for this share of an article's score when a summary is present: the
# headline states the news, the summary mostly adds context and neutral detail.
HEADLINE_WEIGHT = 0.6
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9$])")


@dataclass(frozen=True)
class SentimentResult:
    label: str
    probabilities: dict[str, float]
    score: float  # p(positive) - p(negative), in [-1, 1]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "score": self.score,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class TargetResult(SentimentResult):
    """The sentiment of an article for one target (``score_article_targets``)."""

    target: str | None  # the target as the model read it (normalised); None: the whole article
    # The target when a text of the article names it (read marked, or at its mention), else
    # None: the score then comes from the headline with the target as a second segment.
    mention: str | None


# How one result is put together from the probabilities of a chunk's inputs: the headline's
# row (or a fallback's), and the summary sentences' rows (averaged).
# (headline input, summary inputs): each (kind, row), kind "single", "pair" or "read"
_Recipe = tuple[tuple[str, int] | None, list[tuple[str, int]]]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


# What FINSENT_MODEL_PRECISION / --precision accept; "auto" picks per device (resolve_precision).
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")


def _cpu_flags(cpuinfo: Path) -> set[str]:
    """The words of /proc/cpuinfo (Linux): the feature flags and the vendor id among them;
    empty where it cannot be read."""
    try:
        return set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        return set()


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bf16 in hardware (AMX or AVX512-BF16; Linux flags).

    Elsewhere (or where the flags cannot be read) bf16 matmuls are emulated, several times
    slower than fp32. Native is not always faster: ``cpu_prefers_bf16`` decides "auto".
    """
    return bool(_cpu_flags(cpuinfo) & {"amx_bf16", "avx512_bf16"})


def cpu_prefers_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether bf16 matrix products outrun fp32 on this CPU, so that "auto" serves (and trains
    in) bf16: AMX tiles, or AVX512-BF16 on AMD (Zen 4: 2.7x the fp32 rate).

    Intel's AVX512-BF16 without AMX (Cooper Lake, or a virtual machine that hides AMX) issues
    its bf16 dot products on one port where fp32 FMAs issue on two: the model's products ran
    at 0.56x the fp32 rate on such a Xeon, and classify at 0.65x (OpenVINO) and 0.59-0.66x (eager),
    so fp32 there (BENCHMARKS.md).
    """
    words = _cpu_flags(cpuinfo)
    return "amx_bf16" in words or ("avx512_bf16" in words and "AuthenticAMD" in words)


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has AMX bf16 tiles (Linux flags)."""
    return "amx_bf16" in _cpu_flags(cpuinfo)


def backend_measuring(precision: str) -> str | None:
    """The CPU backend a measurement of ``precision`` loads with (release gate, benchmarks):
    int8 is quantised eager PyTorch, which FINSENT_CPU_BACKEND=openvino refuses, so int8 asks
    for "auto"; other precisions follow the setting (None)."""
    return "auto" if precision == "int8" else None


def resolve_precision(precision: str, on_cuda: bool, prefer_bf16: bool | None = None) -> str:
    """The weight precision actually used: fp32, fp16 (CUDA only), bf16 or int8 (CPU only)."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if on_cuda:
        if precision == "int8":
            raise ModelError(
                "precision int8 (dynamic quantisation) is a CPU path: use auto (fp16), bf16 or "
                "fp32 on a GPU (FINSENT_MODEL_PRECISION or --precision)"
            )
        return "fp16" if precision == "auto" else precision
    if precision == "fp16":
        raise ModelError(
            "precision fp16 is a GPU path and this machine has no CUDA: use auto, fp32, bf16 or "
            "int8 on the CPU (FINSENT_MODEL_PRECISION or --precision)"
        )
    if precision == "auto":
        # Not int8 where bf16 is slower: a stored label should not depend on which articles
        # shared its batch (int8 changes 2% of headline labels that way; BENCHMARKS.md).
        return "bf16" if (cpu_prefers_bf16() if prefer_bf16 is None else prefer_bf16) else "fp32"
    return precision


def _bf16_on_this_cpu() -> str:
    """How bf16 runs here against fp32: "faster" (``cpu_prefers_bf16``), "slower" (native
    but without AMX, on Intel) or "emulated" (no bf16 units). A load reads it once for its
    precision, its warning and its log line."""
    if cpu_prefers_bf16():
        return "faster"
    return "slower" if cpu_has_native_bf16() else "emulated"


# The load's log line, for "auto": why it resolved as it did on this CPU.
_WHY_AUTO = {
    "faster": "bf16 outruns fp32 on this CPU",
    "slower": "this CPU's bf16 (AVX512-BF16 without AMX) runs slower than fp32",
    "emulated": "this CPU has no bf16 units",
}
# The load's warning where bf16 is asked for on a CPU where auto would not pick it.
_BF16_ASKED = {
    "slower": "precision bf16 on Intel's AVX512-BF16 without AMX: native, but about 0.65x the "
    "speed of fp32 on this class of CPU (BENCHMARKS.md); auto would pick fp32 here",
    "emulated": "precision bf16 on a CPU without native bf16 (AMX, AVX512-BF16): emulated, several "
    "times slower than fp32 (BENCHMARKS.md); auto would pick fp32 here",
}


# What FINSENT_CPU_BACKEND accepts: "auto" takes OpenVINO for fp32/bf16 on a CPU where it
# imports and converts the model, else eager PyTorch.
CPU_BACKENDS = ("auto", "torch", "openvino")
# oneDNN kernels kept for eager CPU inference (see SentimentClassifier.load): the shapes of
# one call's batches (_WIDTH_STEP) fit; 16 against 64 measured the same speed with 130 MB
# less peak memory on an AMX Xeon.
_ONEDNN_CACHE_CAPACITY = 16
# Batch widths ([CLS] and [SEP] included) are padded up to a multiple of this: a dozen
# shapes for news texts instead of one per token count, so kernels are reused and the
# kernel caches stay small (a batch gains at most 7 columns, 3.5 on average).
_WIDTH_STEP = 8
# The OpenVINO graph keeps no kernel per shape (CPU_RUNTIME_CACHE_CAPACITY 0 in
# _compile_openvino), so padding is only extra work (1.11x the throughput of steps of 8 on
# an AVX512-BF16 Zen 4, BENCHMARKS.md), except on AMX in bf16: there widths that fill its
# 16-row tiles run faster, so a batch is padded to the next multiple of 16 where that adds
# at most a fifth of its width (_openvino_width; 1.06x end to end on an AMX Xeon with the
# graph of pipeline/score/bert_graph.py, for 8 % more columns).
_AMX_TILE_ROWS = 16
# Tokens per batch row a batch may average before it is cut shorter (_batch_bounds): above
# the typical news sentence (about 30), so only batches of long texts are cut.
_TOKENS_PER_ROW = 40


def _padded_width(length: int, step: int | None = None) -> int:
    """Columns of a batch whose longest window has ``length`` tokens: [CLS] and [SEP] added,
    rounded up to ``step`` (default _WIDTH_STEP)."""
    step = step or _WIDTH_STEP
    return -(-(length + 2) // step) * step


def _openvino_width(length: int, tile: int) -> int:
    """Columns of an OpenVINO batch whose longest window has ``length`` tokens: [CLS] and
    [SEP] added, padded to a multiple of ``tile`` only where that adds at most a fifth."""
    width, padded = length + 2, _padded_width(length, tile)
    return padded if padded * 5 <= width * 6 else width


# Bumped when _convert_to_openvino's graph changes (its inputs, outputs or wrappers), so
# that no cached graph of the former shape is read.
_OPENVINO_GRAPH_FORMAT = 2


def openvino_cache_dir() -> Path:
    """Where converted OpenVINO graphs are kept: ``$XDG_CACHE_HOME/finsent/openvino``
    (default ``~/.cache/finsent/openvino``). Safe to delete; a load converts again."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "finsent" / "openvino"


def _openvino_cache_key(model_dir: Path, version: str, hidden: bool) -> str:
    """What a converted graph depends on: the weights (``version``), the config, the graph's
    outputs and the versions of the code that traced and converted it."""
    import hashlib

    import openvino
    import torch
    import transformers

    parts = [
        version,
        (model_dir / "config.json").read_text(encoding="utf-8"),
        "states" if hidden else "logits",
        openvino.__version__,
        torch.__version__,
        transformers.__version__,
        str(_OPENVINO_GRAPH_FORMAT),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _cached_openvino_graph(model: Callable[[], Any], hidden: bool, cached: Path | None) -> Any:
    """The OpenVINO graph of the model ``model()`` loads (fp32, eval mode; called only to
    convert): read from ``cached`` (an .xml path) when an earlier load saved it there (0.01 s
    against about 2 s to convert, and no PyTorch model built), else converted, saved there
    and read back, so that either way OpenVINO maps the weights from the file instead of
    holding a converted copy. A cache that cannot be read or written only costs the
    conversion."""
    import openvino as ov

    if cached is not None and cached.is_file() and cached.with_suffix(".bin").is_file():
        try:
            return ov.Core().read_model(cached)
        except RuntimeError as exc:  # a damaged file: convert again and replace it
            logger.warning("cached OpenVINO graph %s unreadable (%s); converting again", cached, exc)
    # Seconds of silence otherwise, on a first run or after an upgrade: say what is happening.
    logger.info(
        "converting the model for OpenVINO on this CPU (once per model version%s; several seconds)",
        f"; kept in {cached.parent}" if cached is not None else "",
    )
    graph = _convert_to_openvino(model(), hidden)
    if cached is not None:
        try:
            _save_atomically(graph, cached)
            return ov.Core().read_model(cached)
        except (OSError, RuntimeError) as exc:
            logger.info("OpenVINO graph not cached in %s (%s)", cached.parent, exc)
    return graph


def _save_atomically(graph: Any, cached: Path) -> None:
    """Save the graph as ``cached`` (.xml) and its weights (.bin) so that a process loading
    at the same moment never reads half a file: written aside, then renamed into place,
    weights first (the .xml is what a reader looks for)."""
    import shutil
    import tempfile

    import openvino as ov

    cached.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=".saving-", dir=cached.parent))
    try:
        # fp32 weights as converted: bf16 is applied at compile time, as for a fresh graph.
        ov.save_model(graph, aside / "model.xml", compress_to_fp16=False)
        os.replace(aside / "model.bin", cached.with_suffix(".bin"))
        os.replace(aside / "model.xml", cached)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _convert_to_openvino(model: Any, hidden: bool) -> Any:
    """Trace ``model`` (fp32) into an OpenVINO graph with dynamic batch and width.

    A plain BERT is traced from its forward pass written for export
    (pipeline/score/bert_graph.py): the logits graph computes the last layer at [CLS] only;
    with ``hidden`` the last layer's states are a second output, at every position."""
    import warnings

    import openvino as ov
    import torch

    from pipeline.score.bert_graph import bert_graph_module, supports_bert_graph
    from pipeline.score.loading import quiet_transformers

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    class LogitsAndStates(Logits):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            out = self.inner.base_model(input_ids=input_ids, attention_mask=attention_mask)
            return self.inner.classifier(out.pooler_output), out.last_hidden_state

    if supports_bert_graph(model):
        wrapped = bert_graph_module(model, states=hidden)
    else:
        wrapped = LogitsAndStates(model) if hidden else Logits(model)
    example = (torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long))
    with warnings.catch_warnings(), torch.no_grad(), quiet_transformers():
        # Tracing transformers' own forward (not a BERT) warns about Python-level checks in
        # its mask code (padding beyond the key length, causal flag): both are constant for
        # an encoder fed full masks.
        warnings.simplefilter("ignore")
        graph = ov.convert_model(
            wrapped,
            example_input=example,
            input=[ov.PartialShape([-1, -1]), ov.PartialShape([-1, -1])],
            # Copies, not views, of the weights: load lets the module go afterwards (and an
            # eager one is cast to bf16), which frees the tensors a shared constant would
            # still point into.
            share_weights=False,
        )
    return graph


def _compile_openvino(graph: Any, precision: str, threads: int) -> Any:
    """Compile an OpenVINO graph for this CPU at ``precision`` on ``threads`` cores."""
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        # Streams of one or a few cores, each running its own batch (_forward keeps two in
        # flight per stream): a batch of short texts is too small a job to share between
        # cores without them waiting on each other (1.18x on an AMX Xeon's 2 cores; only
        # measured on 2 cores: on many, a call of one batch runs on one stream's cores).
        "PERFORMANCE_HINT": "THROUGHPUT",
        "INFERENCE_NUM_THREADS": threads,
        # No cache of kernels per input shape: length-sorted batches rarely repeat a shape,
        # so the cache only grew (1.10 GB peak at 12,000 texts against 0.95 GB without it,
        # same speed). An internal property: a release that drops it compiles without.
        "CPU_RUNTIME_CACHE_CAPACITY": 0,
    }
    core = ov.Core()
    try:
        compiled = core.compile_model(graph, "CPU", config)
    except RuntimeError:
        del config["CPU_RUNTIME_CACHE_CAPACITY"]
        compiled = core.compile_model(graph, "CPU", config)
    return compiled


def _openvino_model(
    model: Callable[[], Any],
    precision: str,
    threads: int,
    *,
    hidden: bool = False,
    cached: Path | None = None,
) -> Any:
    """An OpenVINO CompiledModel computing the logits of the model ``model()`` loads (where
    the graph must be converted: _cached_openvino_graph) from (input_ids, attention_mask),
    and with ``hidden`` (the ``mention`` style) the last layer's states as a second output,
    which the mention reading pools (pipeline/score/mention.py). ``cached``: where the
    converted graph is kept between processes (_cached_openvino_graph).

    The model must be in fp32: OpenVINO casts to bf16 itself (INFERENCE_PRECISION_HINT),
    per layer as its kernels need, from the same weights the eager path rounds.
    """
    graph = _cached_openvino_graph(model, hidden, cached)
    compiled = _compile_openvino(graph, precision, threads)
    del graph
    _release_freed_memory()
    return compiled


def _openvino_states_loader(
    model: Callable[[], Any], precision: str, threads: int, cached: Path | None
) -> Callable[[], Any]:
    """A function compiling the logits-and-states graph (the ``mention`` style's reading)
    when a call first reads a mention: read or converted now (_cached_openvino_graph), and
    compiled later. Where the cache holds it, OpenVINO maps its weights from the file
    (_cached_openvino_graph), which may then be deleted in the meantime."""
    graph = [_cached_openvino_graph(model, True, cached)]
    _release_freed_memory()  # a converted copy, where there was one

    def compile_once() -> Any:
        compiled = _compile_openvino(graph[0], precision, threads)
        graph.clear()  # compiled: the graph is not needed again
        return compiled

    return compile_once


def _release_freed_memory() -> None:
    """Hand the conversion's freed buffers (a traced copy of the model) back to the OS, so
    that scoring's own allocations start from a lower peak."""
    import gc

    gc.collect()
    _trim_heap()


def _trim_heap() -> None:
    """Return the C heap's free pages to the OS (glibc; elsewhere a no-op).

    glibc keeps what a call's batches freed, in pieces their varying sizes leave apart, so
    without this the resident size of a long stream crept up with every call (eager bf16:
    1.27 GB after 627,000 texts against 0.92 GB after 8,000; BENCHMARKS.md)."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: reused, only not returned
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _try_openvino(
    model: Callable[[], Any],
    precision: str,
    threads: int,
    *,
    required: bool,
    hidden: bool = False,
    mentions: bool = True,
    cache_as: tuple[Path, str] | None = None,
) -> tuple[Any, Callable[[], Any] | None] | None:
    """The compiled OpenVINO graph the model scores on (``model()`` loads it in fp32 where a
    graph must be converted) and, with ``hidden`` (the ``mention`` style) but not
    ``mentions``, a loader of its logits-and-states graph
    (_openvino_states_loader) for the first call that reads a mention; with both, that
    graph is the one compiled. None (eager PyTorch) where openvino is missing or the
    conversion fails and the backend was not asked for by name."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        if required:
            raise ModelError(
                "FINSENT_CPU_BACKEND=openvino but openvino is not installed: reinstall finsent "
                "(it depends on openvino) or pip install 'openvino>=2025.1', or use FINSENT_CPU_BACKEND=auto"
            )
        # A dependency missing is a damaged install, not a choice: say so, then still score.
        logger.warning(
            "openvino is not installed (finsent depends on it): scoring with eager PyTorch, "
            "1.15-1.8x slower; reinstall finsent, or set FINSENT_CPU_BACKEND=torch to choose eager"
        )
        return None

    def cached(states: bool) -> Path | None:  # (model folder, version): kept between processes
        if cache_as is None:
            return None
        return openvino_cache_dir() / f"{_openvino_cache_key(*cache_as, states)}.xml"

    try:
        if hidden and mentions:
            return _openvino_model(model, precision, threads, hidden=True, cached=cached(True)), None
        compiled = _openvino_model(model, precision, threads, cached=cached(False))
        states = _openvino_states_loader(model, precision, threads, cached(True)) if hidden else None
        return compiled, states
    except ModelError:  # the model folder itself cannot be loaded: eager could not score either
        raise
    except Exception as exc:  # an unconverted model still scores, on the eager path
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if required:
            raise ModelError(
                f"OpenVINO could not convert the model: {first} (FINSENT_CPU_BACKEND=torch scores without it)"
            ) from exc
        logger.warning("OpenVINO could not convert the model (%s); scoring with eager PyTorch", first)
        return None


# BERT's Linear layers that read a layer norm's output: the attention's query, key and
# value projections and the feed-forward up-projection (see int8_layer_names).
_INT8_BERT_LAYERS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "intermediate.dense",
)


def int8_layer_names(model: Any) -> list[str]:
    """The Linear layers the int8 path quantises: those that read a layer norm's output.

    Dynamic quantisation scales a layer's input by one number per batch, so it suits inputs
    of an even scale. In a BERT those are the query/key/value projections and the
    feed-forward up-projection, fed by layer norms. The others read outliers: the
    feed-forward down-projections (1536 -> 384 in MiniLM) read GELU outputs, the attention
    output projection the heads' weighted values, the pooler a [CLS] or mention state
    before its tanh, the head the pooled output. Kept in fp32 they remove most of int8's
    label changes against fp32 for part of its speed-up (bench/bench_precision.py,
    BENCHMARKS.md). Another architecture falls back to the layers that do not narrow their
    input.
    """
    import torch

    linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    normed = [name for name in linear if name.endswith(_INT8_BERT_LAYERS)]
    if normed:
        return normed
    modules = dict(model.named_modules())
    return [name for name in linear if modules[name].in_features <= modules[name].out_features]


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation with per-channel weight scales (see int8_layer_names)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch 2.10+ marks torch.ao and quantised tensor creation deprecated (moving to
        # torchao); the kernels are still shipped and measured here, see bench_precision.py.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        spec = dict.fromkeys(int8_layer_names(model), per_channel_dynamic_qconfig)
        return quantize_dynamic(model, spec, dtype=torch.qint8)


def _average_windows(
    window_probs: np.ndarray, sequences: list[list[int]], owner: list[int], n: int
) -> np.ndarray:
    """(n, 3) per-text probabilities from their windows' (``owner[k]``: the text of window
    ``k``), weighted by window length ([CLS]/[SEP] included); one window is itself."""
    out = np.zeros((n, len(LABELS)))
    weight = np.zeros(n)
    for row, i in enumerate(owner):
        w = len(sequences[row]) + 2
        out[i] += w * window_probs[row]
        weight[i] += w
    return out / weight[:, None]


def _weights_stamp(model_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, modification time) of a folder's weight files (those its version
    hashes): whether they are still the ones a load read, without hashing them again."""
    files = weight_files(model_dir) if model_dir.is_dir() else []
    return tuple((f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()])


def _ready_for_eager(model: Any, precision: str, device: str) -> Any:
    """``model`` (fp32, eval mode) in ``precision`` on ``device``, for eager PyTorch."""
    import torch

    if precision == "bf16":
        model.to(torch.bfloat16)
    elif precision == "int8":
        model = quantize_int8(model)
    return model.to(device)


def split_sentences(text: str) -> list[str]:
    """Cheap sentence splitter for news prose (no model, no download)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


@dataclass
class SentimentClassifier:
    # The PyTorch module; None where the load scores on an OpenVINO graph (the model, if it
    # was built to convert the graph, is let go), until eager scoring needs it
    # (eager_model builds it with load_model).
    model: Any
    tokenizer: Any
    model_dir: Path
    model_version: str
    temperature: float = 1.0
    device: str = "cpu"
    max_length: int = 128
    batch_size: int = 64
    # Column order of the model output that yields (negative, neutral, positive).
    label_columns: list[int] = field(default_factory=lambda: [0, 1, 2])
    precision: str = "fp32"  # the resolved one: fp32, fp16, bf16 or int8
    # Special token ids, read once from the tokenizer (its properties cost microseconds per
    # call, a GPU's whole budget per text); None = read them in __post_init__.
    cls_id: int | None = None
    sep_id: int | None = None
    pad_id: int | None = None
    # How the model reads a target (pipeline/score/target.py); None: an article-level
    # model, which scores a targeted text as the whole text's tone.
    target_style: str | None = None
    # OpenVINO's compiled graph that scores texts (CPU, fp32/bf16) when that backend is in
    # use: the [CLS]-only logits graph, or the states graph (states_graph).
    compiled: Any = field(default=None, repr=False, compare=False)
    # The ``mention`` style on OpenVINO loaded with ``mentions=False``: compiles the graph
    # that also returns the last layer's states, on the first call that reads a mention.
    compile_states: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    # The ``mention`` style on OpenVINO: the head the states graph's states are read through
    # (pipeline/score/mention.py), without the rest of the PyTorch model.
    head: Any = field(default=None, repr=False, compare=False)
    # Builds ``model`` where the load did not (eager_model), from weight files that must
    # still carry this stamp (_weights_stamp, taken at the load).
    load_model: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    weights_stamp: tuple[tuple[str, int, int], ...] = field(default=(), repr=False, compare=False)
    # OpenVINO batches are padded to multiples of this where it pays (_openvino_width).
    width_tile: int = 1
    # PyTorch's threads for eager scoring on a CPU. With an OpenVINO graph, PyTorch only
    # reads the head at mentions (small products) and runs on one thread (load); a fall back
    # to eager (states_graph) gives it these again.
    eager_threads: int = field(default=0, repr=False, compare=False)
    _states: Any = field(default=None, init=False, repr=False, compare=False)
    # Idle OpenVINO requests of ``compiled`` kept between calls: making one costs about
    # 14 ms (its buffers), a few percent of a 4,096-text chunk when made per call.
    _idle: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)
    _idle_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _states_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _model_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cls_id is None:
            self.cls_id = self.tokenizer.cls_token_id
        if self.sep_id is None:
            self.sep_id = self.tokenizer.sep_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.pad_token_id or 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | None = None,
        *,
        precision: str = "auto",
        num_threads: int | None = None,
        max_length: int = 128,
        batch_size: int | None = None,
        version: str | None = None,
        backend: str | None = None,
        mentions: bool = True,
    ) -> SentimentClassifier:
        """Load a model folder.

        ``device``: None picks CUDA when present, else CPU. ``precision``: one of
        PRECISIONS; "auto" is fp16 on CUDA, bf16 on CPUs where it outruns fp32
        (``cpu_prefers_bf16``), else fp32.
        ``version``: the folder's model_version_of when the caller already has it (a
        run hashes the weights once). ``backend``: one of CPU_BACKENDS (default:
        FINSENT_CPU_BACKEND, else "auto").

        ``mentions`` (the ``mention`` style on OpenVINO): True compiles the graph that also
        returns the last layer's states, and every text runs on it, so a text's result is
        the same whatever the call reads (``score``). False (``classify`` without
        ``--entities``) compiles the faster graph that computes the last layer at [CLS]
        only; a call that reads a mention switches to the states graph for good
        (states_graph), so results before and after differ within bf16 rounding.
        """
        model_dir = check_model_dir(path)
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        on_cuda = device.startswith("cuda")
        asked = precision
        # Read only where it decides something: auto's choice, or bf16's warning.
        bf16 = _bf16_on_this_cpu() if not on_cuda and precision in ("auto", "bf16") else None
        precision = resolve_precision(precision, on_cuda, bf16 == "faster")
        if precision == "bf16" and bf16 in _BF16_ASKED:
            logger.warning(_BF16_ASKED[bf16])
        backend = backend or os.environ.get("FINSENT_CPU_BACKEND") or "auto"
        if backend not in CPU_BACKENDS:
            raise ModelError(
                f"unknown CPU backend {backend!r} (FINSENT_CPU_BACKEND): use one of {', '.join(CPU_BACKENDS)}"
            )
        if backend == "openvino" and not on_cuda and precision not in ("fp32", "bf16"):
            # Asked for by name, OpenVINO runs or the load fails (as when it is missing):
            # int8 is quantised eager PyTorch, so it would silently run on another engine.
            raise ModelError(
                f"FINSENT_CPU_BACKEND=openvino runs fp32 and bf16, not {precision}: use precision "
                "fp32 or bf16, or FINSENT_CPU_BACKEND=auto (int8 then runs on PyTorch)"
            )
        threads = num_threads or available_cores()
        if not on_cuda:
            torch.set_num_threads(threads)
            # oneDNN keeps a kernel per (batch, length) shape it has seen, 1,024 by default:
            # length-sorted batches rarely repeat a shape, so the cache only grows (+80 MB per
            # 300 shapes of one layer). Read at oneDNN's first kernel, so it takes effect here.
            os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(_ONEDNN_CACHE_CAPACITY))
        # The folder's small files first: a broken one is refused before seconds of graph load.
        target_style = read_target_style(model_dir)
        temperature = read_temperature(model_dir)
        stamp = _weights_stamp(model_dir)  # before anything reads them (eager_model checks it)
        version = version or model_version_of(model_dir)  # also names the cached OpenVINO graph
        built: list[Any] = []  # the PyTorch model, once something needed it

        def pytorch_model() -> Any:
            """The model in fp32, eval mode, built on first call only: an OpenVINO graph read
            from the cache needs none (importing transformers' modelling code alone costs
            about 130 MB and 2 s), so then it is never built."""
            if not built:
                # Its tokenizer is the one loaded below: the model alone.
                loaded = load_model(model_dir, dtype=torch.float16 if precision == "fp16" else torch.float32)
                if target_style == "mention":
                    from pipeline.score.mention import check_mention_head

                    try:
                        check_mention_head(loaded)
                    except ValueError as exc:
                        raise ModelError(f"{model_dir}: {exc}", transient=False) from None
                built.append(loaded.eval())
            return built[0]

        tokenizer = load_tokenizer(model_dir)
        # We window long texts ourselves; silence the "longer than 512" tokenizer warning.
        tokenizer.model_max_length = 1_000_000
        if target_style == "mention" and getattr(tokenizer, "backend_tokenizer", None) is None:
            raise ModelError(
                f"{model_dir}: the 'mention' target style needs a fast tokenizer (tokenizer.json)",
                transient=False,
            )
        openvino = None
        head = None
        if not on_cuda and precision in ("fp32", "bf16") and backend != "torch":
            if target_style == "mention":
                from pipeline.score.mention import MentionHead

                # The head the states are read through, in the precision the eager model
                # would have; from the weights file where it can be, so that no PyTorch
                # model is built when the graphs come from the cache.
                dtype = torch.bfloat16 if precision == "bf16" else torch.float32
                head = MentionHead.read(model_dir, dtype)
                if head is None:
                    head = MentionHead.of(pytorch_model()).copy(dtype)
            openvino = _try_openvino(
                pytorch_model,
                precision,
                threads,
                required=backend == "openvino",
                hidden=target_style == "mention",
                mentions=mentions,
                cache_as=(model_dir, version),
            )
        compiled, compile_states = openvino or (None, None)
        model = _ready_for_eager(pytorch_model(), precision, device) if compiled is None else None
        if built and built.pop() is not model:
            # The fp32 build is let go: on OpenVINO it was only converted (a fall back to
            # eager builds it again), and int8 scores on a quantised copy of it.
            _release_freed_memory()
        if compiled is not None:
            # PyTorch's pool of ``threads`` woke for the head's small products at mentions
            # and fought OpenVINO's streams for the cores: one thread scores `classify
            # --entities` 1.1x faster, same output (BENCHMARKS.md). Process-wide, as
            # set_num_threads above: a later eager load sets its own again.
            torch.set_num_threads(1)
        label_columns = folder_label_order(model_dir)
        tiles = compiled is not None and precision == "bf16" and cpu_has_amx()
        engine = "OpenVINO" if compiled is not None else "PyTorch"
        logger.info(
            "model %s loaded: %s on %s with %s (asked: %s)",
            version,
            precision,
            device,
            engine,
            f"auto, {_WHY_AUTO[bf16] if bf16 else 'fp16 on a GPU'}" if asked == "auto" else asked,
        )
        clf = cls(
            model=model,
            tokenizer=tokenizer,
            model_dir=model_dir,
            model_version=version,
            temperature=temperature,
            device=device,
            max_length=max_length,
            batch_size=batch_size or (512 if on_cuda else 64),
            label_columns=label_columns,
            precision=precision,
            target_style=target_style,
            compiled=compiled,
            compile_states=compile_states,
            head=head,
            load_model=lambda: _ready_for_eager(pytorch_model(), precision, device),
            weights_stamp=stamp,
            width_tile=_AMX_TILE_ROWS if tiles else 1,
            eager_threads=threads,
        )
        if compiled is not None and target_style == "mention" and compile_states is None:
            clf._states = compiled  # loaded for mentions: the states graph from the start
        return clf

    def eager_model(self) -> Any:
        """The PyTorch module, built now where the load scored on an OpenVINO graph without
        it (a fall back to eager PyTorch, two-segment inputs), from the same weights: a
        folder whose weights changed since the load is refused, rather than mixing two
        versions in one run."""
        import torch

        with self._model_lock:
            if self.model is None:
                if self.load_model is None:
                    raise ModelError(f"{self.model_dir}: the classifier was built without a model")
                if _weights_stamp(self.model_dir) != self.weights_stamp:
                    raise ModelError(
                        f"{self.model_dir}: the model's weights changed or went away since "
                        f"{self.model_version} was loaded: run again to load it afresh",
                        transient=False,
                    )
                # Built outside any caller's inference_mode: its tensors would be inference
                # tensors, which a later forward pass with autograd on refuses.
                with torch.inference_mode(False):
                    self.model = self.load_model()
            return self.model

    @property
    def target_aware(self) -> bool:
        """Whether the model was trained to score a text for a given target."""
        return self.target_style is not None

    # -- core ----------------------------------------------------------------------------

    def _window_starts(self, n: int) -> list[int]:
        """Where the token windows covering ``n`` tokens start; one window for short texts."""
        body = self.max_length - 2
        if n <= body:
            return [0]
        stride = body - body // 4  # 25% overlap so no sentence is only seen cut in half
        starts = []
        for start in range(0, n, stride):
            starts.append(start)
            if start + body >= n:
                break
        return starts

    def _windows(self, ids: list[int]) -> list[list[int]]:
        """Token windows covering a text (without [CLS]/[SEP]); one window for short texts."""
        body = self.max_length - 2
        return [ids[start : start + body] for start in self._window_starts(len(ids))]

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids without special tokens, never truncated.

        The Rust backend directly where there is one: it encodes in parallel over the cores
        and skips the Python wrapper's per-text conversion (a third of the host time).
        """
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            # tokenizer.json, or any call through the wrapper (it leaves its settings on the
            # backend), may have switched truncation or padding on: neither may apply here.
            if backend.truncation is not None:
                backend.no_truncation()
            if backend.padding is not None:
                backend.no_padding()
            return [enc.ids for enc in backend.encode_batch_fast(texts, add_special_tokens=False)]
        return self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]

    def _width(self, length: int, openvino: bool) -> int:
        """Columns of a batch whose longest window has ``length`` tokens, on OpenVINO or on
        eager PyTorch."""
        return _openvino_width(length, self.width_tile) if openvino else _padded_width(length)

    def states_graph(self) -> Any:
        """The OpenVINO graph returning logits and the last layer's states (the ``mention``
        reading), compiled on first use where the load did not (``mentions=False``); None
        where the model has none (eager PyTorch, or not the ``mention`` style).

        From then on it scores texts too, in place of the [CLS]-only graph, which is let go
        before it is compiled: both at once took ``classify --entities`` past 1 GB (1.05 GB
        at 10,000 texts). If it cannot be compiled, the classifier goes on on eager PyTorch
        (with a warning)."""
        with self._states_lock:
            if self._states is None and self.compile_states is not None:
                self.compiled = None  # calls under way keep theirs; new ones wait (_graph)
                with self._idle_lock:
                    self._idle.clear()  # its requests would keep the logits graph alive
                _release_freed_memory()
                try:
                    self._states = self.compile_states()
                except Exception as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    logger.warning(
                        "OpenVINO could not compile the mention graph (%s); scoring with eager PyTorch",
                        first,
                    )
                    if self.eager_threads:
                        import torch

                        torch.set_num_threads(self.eager_threads)
                    return None
                finally:
                    self.compile_states = None  # one try, compiled or not
                self.compiled = self._states
            return self._states

    def _graph(self, reads_mentions: bool) -> Any:
        """The compiled graph a call runs on: the states graph once one is needed or in use
        (waiting while another thread compiles it), else the logits graph; None: eager."""
        if reads_mentions or self._states is not None or (self.compiled is None and self.compile_states):
            return self.states_graph()
        return self.compiled

    def _take_idle(self, graph: Any) -> list[Any]:
        """The idle requests kept for ``graph`` (taken: a request serves one call at a time)."""
        with self._idle_lock:
            if graph is None or graph is not self.compiled:
                return []
            taken = list(self._idle)
            self._idle.clear()
            return taken

    def _keep_idle(self, graph: Any, requests: list[Any], most: int) -> None:
        """Keep up to ``most`` idle requests of ``graph`` for the next call, if it is still
        the graph in use."""
        with self._idle_lock:
            if graph is not None and graph is self.compiled:
                self._idle.extend(requests[: max(0, most - len(self._idle))])

    def _batch_bounds(self, sorted_lengths: np.ndarray, openvino: bool = False) -> list[tuple[int, int]]:
        """(first, last) row ranges of the batches over windows sorted by length.

        ``batch_size`` rows, fewer where the batch's longest window would make it more than
        ``batch_size`` x _TOKENS_PER_ROW tokens: a batch of long texts then takes no more
        memory for its activations than a typical one (peak memory is set by the largest
        batch), and the matrix products keep a few thousand rows either way.
        """
        budget = self.batch_size * _TOKENS_PER_ROW
        bounds = []
        first, n = 0, len(sorted_lengths)
        while first < n:
            last = min(first + self.batch_size, n)
            # Sorted ascending: the last row is the longest, and dropping rows only shortens it.
            rows = max(1, min(last - first, budget // self._width(int(sorted_lengths[last - 1]), openvino)))
            bounds.append((first, first + rows))
            first += rows
        return bounds

    def _forward(self, sequences: list[list[int]], pools: Sequence[tuple[int, int, int]] = ()) -> np.ndarray:
        """Calibrated probabilities (our label order) for token windows, bucketed by length.

        Each window gets [CLS] ... [SEP]. The padded batches are cut from one flat id array
        with numpy indexing rather than built row by row: on a GPU the host must keep up
        with tens of thousands of texts per second.

        ``pools`` (the ``mention`` style): (window, first, last) token ranges of a window
        (positions without [CLS]) read through the head from the same pass
        (pipeline/score/mention.py); their probabilities are appended after the windows'.
        """
        import torch

        from pipeline.score.mention import MentionHead, head_logits, mention_logits, pool_weights

        by_window: dict[int, list[int]] = {}
        for k, (window, _, _) in enumerate(pools):
            by_window.setdefault(window, []).append(k)
        pooled: list[tuple[list[int], torch.Tensor]] = []

        n = len(sequences)
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
        flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum()))
        flat = np.append(flat, self.pad_id)  # an empty last window still indexes something
        starts = np.cumsum(lengths) - lengths
        order = np.argsort(lengths, kind="stable")
        columns = torch.tensor(self.label_columns, device=self.device)
        # Results stay on the device until the end: a GPU computes batch k while the host
        # cuts batch k+1, instead of waiting for a copy back after every batch.
        batches: list[torch.Tensor | None] = []

        def keep(
            k: int, logits: torch.Tensor, extra: torch.Tensor | None, reads: list[tuple[int, int]]
        ) -> None:
            # Calibrated logits; the softmax runs once over all of them at the end.
            if extra is not None:
                pooled.append(([j for _, j in reads], extra.float()[:, columns] / self.temperature))
            batches[k] = logits.float()[:, columns] / self.temperature

        # OpenVINO: batches run on its streams (_compile_openvino), two in flight per stream
        # so that a stream that finishes out of turn finds its next batch waiting; each on a
        # request of its own (a request is not thread-safe, the compiled graph is), kept
        # between calls (_take_idle). A call that reads mentions, and every call after one,
        # runs on the graph that also returns the last layer's states (states_graph).
        graph = self._graph(bool(pools))
        streams = graph.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") if graph is not None else 1
        free = self._take_idle(graph)
        in_flight: deque[tuple[int, Any, int, list[tuple[int, int]], list[tuple[int, int]]]] = deque()

        def finish() -> None:
            k, request, width, reads, spans = in_flight.popleft()
            request.wait()
            # The outputs alias the request's buffers: read (the column pick copies them)
            # before the request takes another batch.
            extra = None
            if reads:  # the states graph's second output: the last layer's states
                extra = head_logits(
                    self.head or MentionHead.of(self.eager_model()),
                    torch.from_numpy(request.get_output_tensor(1).data),
                    pool_weights(width, spans),
                    torch.tensor([row for row, _ in reads]),
                )
            keep(k, torch.from_numpy(request.get_output_tensor(0).data), extra, reads)
            free.append(request)

        with torch.inference_mode():
            for first, last in self._batch_bounds(lengths[order], graph is not None):
                idx = order[first:last]
                rows = lengths[idx][:, None]
                cols = np.arange(self._width(int(rows.max()), openvino=graph is not None))[None, :]
                body = (cols >= 1) & (cols <= rows)
                at = starts[idx][:, None] + np.clip(cols - 1, 0, None)
                ids = np.where(body, flat[np.minimum(at, len(flat) - 1)], self.pad_id)
                ids[:, 0] = self.cls_id
                ids[np.arange(len(idx)), rows[:, 0] + 1] = self.sep_id
                mask = (cols < rows + 2).astype(np.int64)
                reads = [(row, k) for row, w in enumerate(idx.tolist()) for k in by_window.get(w, ())]
                # Each pooled range in batch positions ([CLS] is position 0).
                spans = [(1 + pools[k][1], 1 + pools[k][2]) for _, k in reads]
                batches.append(None)
                if graph is not None:
                    if len(in_flight) == 2 * streams:
                        finish()
                    request = free.pop() if free else graph.create_infer_request()
                    request.start_async([ids, mask])  # copies the inputs into the request
                    in_flight.append((len(batches) - 1, request, ids.shape[1], reads, spans))
                elif reads:
                    # The windows' own rows read at [CLS], then one row per pooled range.
                    which = [*range(len(idx)), *(row for row, _ in reads)]
                    both = mention_logits(
                        self.eager_model(),
                        torch.from_numpy(ids).to(self.device),
                        torch.from_numpy(mask).to(self.device),
                        pool_weights(ids.shape[1], [None] * len(idx) + spans).to(self.device),
                        torch.tensor(which, device=self.device),
                    )
                    keep(len(batches) - 1, both[: len(idx)], both[len(idx) :], reads)
                else:
                    logits = self.eager_model()(
                        input_ids=torch.from_numpy(ids).to(self.device),
                        attention_mask=torch.from_numpy(mask).to(self.device),
                    ).logits
                    keep(len(batches) - 1, logits, None, reads)
            while in_flight:
                finish()
            self._keep_idle(graph, free, 2 * streams)
            ordered = torch.softmax(torch.cat(batches), dim=-1).cpu().numpy().astype(np.float64)
        probs = np.empty_like(ordered)
        probs[order] = ordered
        if pools:
            extra_probs = np.zeros((len(pools), probs.shape[1]))
            for ks, p in pooled:
                extra_probs[ks] = torch.softmax(p, dim=-1).cpu().numpy().astype(np.float64)
            probs = np.concatenate([probs, extra_probs])
        if self.device == "cpu" and n > self.batch_size:
            _trim_heap()  # once per call of several batches: a chunk of classify, a page of score
        return probs

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) calibrated probabilities in (negative, neutral, positive) order."""
        if isinstance(texts, str):
            raise TypeError("predict_proba expects a list of texts, not a single string")
        if not texts:
            return np.zeros((0, len(LABELS)))
        token_ids = self._token_ids(list(texts))
        body = self.max_length - 2
        if all(len(ids) <= body for ids in token_ids):
            return self._forward(token_ids)
        sequences: list[list[int]] = []
        owner: list[int] = []
        for i, ids in enumerate(token_ids):
            for window in self._windows(ids):
                sequences.append(window)
                owner.append(i)
        return _average_windows(self._forward(sequences), sequences, owner, len(texts))

    def predict_span_proba(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's probabilities (as ``predict_proba``) and, from the same pass, those read
        at each of its character spans (``spans[i]``: the mentions of text ``i``; the
        ``mention`` target style). A long text's span is read in the first window that holds
        it; a span no token covers reads as the whole text."""
        if len(texts) != len(spans):
            raise ValueError(f"{len(texts)} texts but {len(spans)} span lists")
        if not texts:
            return np.zeros((0, len(LABELS))), []
        from pipeline.score.mention import token_span

        body = self.max_length - 2
        wanted = [i for i, row in enumerate(spans) if row]
        token_ids = self._token_ids(list(texts))  # also switches the backend's truncation off
        offsets: dict[int, list[tuple[int, int]]] = {}
        if wanted:
            encoded = self.tokenizer.backend_tokenizer.encode_batch(
                [texts[i] for i in wanted], add_special_tokens=False
            )
            for i, enc in zip(wanted, encoded, strict=True):
                token_ids[i], offsets[i] = enc.ids, enc.offsets  # ids and offsets of one encoding
        sequences: list[list[int]] = []
        owner: list[int] = []
        pools: list[tuple[int, int, int]] = []
        reads: list[tuple[int, int]] = []  # (text, span) of each pool
        whole: list[tuple[int, int]] = []  # spans no token covers: the text's own reading
        for i, ids in enumerate(token_ids):
            first_window = len(sequences)
            starts = self._window_starts(len(ids))
            for start in starts:
                sequences.append(ids[start : start + body])
                owner.append(i)
            for j, span in enumerate(spans[i]):
                tokens = token_span(offsets[i], span)
                if tokens is None:
                    whole.append((i, j))
                    continue
                a, b = tokens
                w = next((k for k, st in enumerate(starts) if st <= a and b <= st + body), None)
                if w is None:  # longer than a window: from the window it starts in
                    w = max(k for k, st in enumerate(starts) if st <= a)
                st = starts[w]
                pools.append((first_window + w, a - st, min(b, st + body) - st))
                reads.append((i, j))
        out = self._forward(sequences, pools)
        probs = _average_windows(out[: len(sequences)], sequences, owner, len(texts))
        pool_probs = out[len(sequences) :]
        per_text = [np.zeros((len(row), len(LABELS))) for row in spans]
        for (i, j), p in zip(reads, pool_probs, strict=True):
            per_text[i][j] = p
        for i, j in whole:
            per_text[i][j] = probs[i]
        return probs, per_text

    def predict_targets_proba(self, texts: Sequence[str], targets: Sequence[str | None]) -> np.ndarray:
        """(n, 3) probabilities of each text *for its target* (None or blank: the whole text).

        The input is ``format_target_input`` in the model's style: the mention marked in the
        text (one segment, the fast path ``predict_proba`` takes), or, for a target the text
        does not contain, the target as a second segment. An article-level model reads the
        same input; its answer is then the text's overall tone. A ``mention``-style model
        reads each distinct text once, its targets at their mentions (``predict_span_proba``).
        """
        if isinstance(texts, str):
            raise TypeError("predict_targets_proba expects a list of texts, not a single string")
        if len(texts) != len(targets):
            raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
        style = self.target_style or DEFAULT_STYLE
        inputs = [
            format_target_input(text, target, style) for text, target in zip(texts, targets, strict=True)
        ]
        out = np.zeros((len(inputs), len(LABELS)))
        single = [i for i, (_, second) in enumerate(inputs) if second is None]
        paired = [i for i, (_, second) in enumerate(inputs) if second is not None]
        if style == "mention" and single:
            # One pass per distinct text: its own reading for a row without a target, the
            # reading at the mention for a row with one (however many targets it has).
            reads = {i: mention_read(texts[i], targets[i]) for i in single}
            read_texts = {i: texts[i] if reads[i] is None else reads[i][0] for i in single}
            distinct = list(dict.fromkeys(read_texts[i] for i in single))
            at = {text: k for k, text in enumerate(distinct)}
            wanted: list[list[tuple[int, int]]] = [[] for _ in distinct]
            slot: list[tuple[int, int | None]] = []  # (distinct text, span index or None)
            for i in single:
                read, k = reads[i], at[read_texts[i]]
                slot.append((k, None if read is None else len(wanted[k])))
                if read is not None:
                    wanted[k].append(read[1])
            text_probs, per_text = self.predict_span_proba(distinct, wanted)
            for i, (k, j) in zip(single, slot, strict=True):
                out[i] = text_probs[k] if j is None else per_text[k][j]
            single = []
        if single:
            out[single] = self.predict_proba([inputs[i][0] for i in single])
        if paired:
            out[paired] = self._forward_pairs([inputs[i] for i in paired])
        return out

    def predict_targets(self, texts: Sequence[str], targets: Sequence[str | None]) -> list[SentimentResult]:
        """One result per (text, target), in input order (see ``predict_targets_proba``)."""
        return self._results(self.predict_targets_proba(texts, targets))

    def _forward_pairs(self, inputs: Sequence[tuple[str, str | None]]) -> np.ndarray:
        """Calibrated probabilities for two-segment inputs (a target the text does not
        name). Rare in practice (the linker gives mentions as written), so the plain
        tokenizer path: the first segment is cut to the window, never the target."""
        import torch

        columns = torch.tensor(self.label_columns, device=self.device)
        chunks = []
        with torch.inference_mode():
            for first in range(0, len(inputs), self.batch_size):
                batch = encode_target_inputs(
                    self.tokenizer, inputs[first : first + self.batch_size], self.max_length
                )
                logits = self.eager_model()(**{k: v.to(self.device) for k, v in batch.items()}).logits
                logits = logits.float()[:, columns] / self.temperature
                chunks.append(torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64))
        return np.concatenate(chunks)

    def _results(self, probs: np.ndarray) -> list[SentimentResult]:
        """One result per probability row (Python floats, rounded to 6 places)."""
        version = self.model_version
        labels = probs.argmax(axis=1).tolist()
        scores = (probs[:, 2] - probs[:, 0]).tolist()
        return [
            SentimentResult(
                label=LABELS[label],
                probabilities={name: round(v, 6) for name, v in zip(LABELS, row, strict=True)},
                score=round(score, 6),
                model_version=version,
            )
            for label, row, score in zip(labels, probs.tolist(), scores, strict=True)
        ]

    def predict(self, texts: Sequence[str]) -> list[SentimentResult]:
        """One result per text, in input order."""
        return self._results(self.predict_proba(texts))

    def score_articles(
        self, titles: Sequence[str | None], summaries: Sequence[str | None]
    ) -> list[SentimentResult]:
        """Score news articles from headline and summary.

        The headline carries ``HEADLINE_WEIGHT`` of the score; the summary is split into
        sentences (each scored, long ones in windows) whose probabilities are averaged.
        Either part may be empty; an article with neither is neutral.
        """
        if len(titles) != len(summaries):
            raise ValueError(f"{len(titles)} titles but {len(summaries)} summaries")
        texts: list[str] = []
        parts: list[tuple[int | None, list[int]]] = []
        for title, summary in zip(titles, summaries, strict=True):
            title_idx = None
            if title and title.strip():
                title_idx = len(texts)
                texts.append(title.strip())
            sentence_idx = []
            for sentence in split_sentences(summary or ""):
                sentence_idx.append(len(texts))
                texts.append(sentence)
            parts.append((title_idx, sentence_idx))
        probs = self.predict_proba(texts) if texts else np.zeros((0, len(LABELS)))
        neutral = np.array([0.0, 1.0, 0.0])
        article_probs = []
        for title_idx, sentence_idx in parts:
            summary_p = probs[sentence_idx].mean(axis=0) if sentence_idx else None
            if title_idx is not None and summary_p is not None:
                p = HEADLINE_WEIGHT * probs[title_idx] + (1 - HEADLINE_WEIGHT) * summary_p
            elif title_idx is not None:
                p = probs[title_idx]
            elif summary_p is not None:
                p = summary_p
            else:
                p = neutral
            article_probs.append(p)
        return self._results(np.array(article_probs).reshape(-1, len(LABELS)))

    def score_article_targets(
        self,
        titles: Sequence[str | None],
        summaries: Sequence[str | None],
        mentions: Sequence[Sequence[str | None]],
    ) -> list[list[TargetResult]]:
        """Score each article for each of its targets: ``result[i][j]`` is article ``i``
        read for ``mentions[i][j]`` (a company's mention as written, e.g. "Ford", "BofA",
        "$AAPL").

        The rule, per (article, mention):

        - the texts of the article that name the mention (whole word, any case) are scored
          with the mention marked (``format_target_input``), or for a ``mention``-style
          model read at the mention from the text's own pass (``predict_span_proba``): the
          headline, and the summary split into sentences (``split_sentences``). Sentences
          that do not name it are left out: they are about something else, or about the
          company under another name;
        - when both the headline and some sentences name it, the headline carries
          ``HEADLINE_WEIGHT`` of the score and the sentences' mean the rest, as in
          ``score_articles``; otherwise the texts that name it decide alone;
        - when no text names it (a mention the stored text lost, a company name where the
          press writes a short name), the headline (or, without one, the summary) is scored
          with the target as a second segment, and ``mention`` of the result is None;
        - a None or blank mention is the whole article: the result equals ``score_articles``.

        Every input of the call goes through one batched model call (one more for the rare
        second-segment inputs), so a chunk's pairs share length buckets. An article-level
        model answers too, with each text's overall tone; ``target_aware`` tells them apart.
        """
        return self.score_articles_with_targets(titles, summaries, mentions, articles=False)[1]

    def score_articles_with_targets(
        self,
        titles: Sequence[str | None],
        summaries: Sequence[str | None],
        mentions: Sequence[Sequence[str | None]],
        *,
        articles: bool = True,
    ) -> tuple[list[SentimentResult], list[list[TargetResult]]]:
        """``score_articles`` and ``score_article_targets`` from one batched model call:
        the article scores (``articles=True``; else an empty list) and the per-target ones.

        Identical inputs are scored once (an article's plain headline serves its own score
        and a None target's)."""
        if not len(titles) == len(summaries) == len(mentions):
            raise ValueError(
                f"{len(titles)} titles, {len(summaries)} summaries and {len(mentions)} mention lists"
            )
        style = self.target_style or DEFAULT_STYLE
        single: dict[str, int] = {}  # one-segment input -> its row among the singles
        paired: dict[TargetInput, int] = {}  # two-segment input -> its row among the pairs
        # mention style: (text, character span) -> its row among the reads at a mention,
        # which come from the same pass as the text (a single)
        spanned: dict[tuple[str, tuple[int, int]], int] = {}

        def add(item: TargetInput) -> tuple[str, int]:
            # Each kind is numbered apart; combine() places them after the call.
            first, second = item
            if second is None:
                return "single", single.setdefault(first, len(single))
            return "pair", paired.setdefault(item, len(paired))

        def add_read(text: str, target: str) -> tuple[str, int] | None:
            read = mention_read(text, target)  # the text itself unless it holds << or >>
            if read is None:
                return None
            single.setdefault(read[0], len(single))
            return "read", spanned.setdefault(read, len(spanned))

        article_recipes: list[_Recipe] = []
        target_recipes: list[list[tuple[_Recipe, str | None, str | None]]] = []
        for title, summary, targets in zip(titles, summaries, mentions, strict=True):
            head = title.strip() if title and title.strip() else None
            sentences = split_sentences(summary or "")
            if articles:
                article_recipes.append(
                    (None if head is None else add((head, None)), [add((s, None)) for s in sentences])
                )
            recipes = []
            for raw in targets:
                target = normalise_target(raw)
                if target is None:
                    recipe = (
                        None if head is None else add((head, None)),
                        [add((s, None)) for s in sentences],
                    )
                    recipes.append((recipe, None, None))
                    continue
                marked_head = None if head is None else mark_target(head, target)
                marked = [(s, m) for s in sentences if (m := mark_target(s, target)) is not None]
                if marked_head is None and not marked:
                    text = head or (summary or "").strip()
                    recipe = (add((text, target)) if text else None, [])
                    recipes.append((recipe, target, None))
                    continue
                if style == "mention":
                    head_row = None if marked_head is None else add_read(head, target)  # type: ignore[arg-type]
                    rows = [r for s, _ in marked if (r := add_read(s, target)) is not None]
                elif style == "markers":
                    head_row = None if marked_head is None else add((marked_head, None))
                    rows = [add((m, None)) for _, m in marked]
                else:  # segment: the text as written, the target second
                    head_row = None if marked_head is None else add((head, target))
                    rows = [add((s, target)) for s, _ in marked]
                recipes.append(((head_row, rows), target, target))
            target_recipes.append(recipes)

        offset = {"single": 0, "pair": len(single), "read": len(single) + len(paired)}
        probs = np.zeros((len(single) + len(paired) + len(spanned), len(LABELS)))
        if spanned:
            texts = list(single)
            wanted: list[list[tuple[int, int]]] = [[] for _ in texts]
            for text, span in spanned:
                wanted[single[text]].append(span)
            text_probs, per_text = self.predict_span_proba(texts, wanted)
            probs[: len(single)] = text_probs
            seen = [0] * len(texts)
            for (text, _), row in spanned.items():  # insertion order: each text's spans in order
                k = single[text]
                probs[offset["read"] + row] = per_text[k][seen[k]]
                seen[k] += 1
        elif single:
            probs[: len(single)] = self.predict_proba(list(single))
        if paired:
            probs[len(single) : offset["read"]] = self._forward_pairs(list(paired))

        def combine(recipe: _Recipe) -> np.ndarray:
            head_row, rows = recipe
            head_p = None if head_row is None else probs[offset[head_row[0]] + head_row[1]]
            rest = [offset[kind] + r for kind, r in rows]
            summary_p = probs[rest].mean(axis=0) if rest else None
            if head_p is not None and summary_p is not None:
                return HEADLINE_WEIGHT * head_p + (1 - HEADLINE_WEIGHT) * summary_p
            if head_p is not None:
                return head_p
            if summary_p is not None:
                return summary_p
            return np.array([0.0, 1.0, 0.0])  # nothing to read: neutral, as score_articles

        article_results = self._results(
            np.array([combine(r) for r in article_recipes]).reshape(-1, len(LABELS))
        )
        flat = [item for recipes in target_recipes for item in recipes]
        scored = self._results(np.array([combine(r) for r, _, _ in flat]).reshape(-1, len(LABELS)))
        out: list[list[TargetResult]] = []
        at = 0
        for recipes in target_recipes:
            row = []
            for (_, target, mention), res in zip(recipes, scored[at : at + len(recipes)], strict=True):
                row.append(
                    TargetResult(res.label, res.probabilities, res.score, res.model_version, target, mention)
                )
            out.append(row)
            at += len(recipes)
        return article_results, out


def score_articles(
    classifier: SentimentClassifier,
    titles: Sequence[str | None],
    summaries: Sequence[str | None],
) -> list[SentimentResult]:
    """Functional form of :meth:`SentimentClassifier.score_articles`."""
    return classifier.score_articles(titles, summaries)
