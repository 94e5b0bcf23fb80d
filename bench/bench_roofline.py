"""Scoring against the hardware limit: GEMM roofline, seed loop and `finsent classify`, one run.

Everything runs on the same cores in one invocation, interleaved (roofline, seed, classify,
roofline again), because the machine is often shared and absolute numbers drift with load;
the fractions of the roofline are what to compare. Usage::

    .venv/bin/python bench/bench_roofline.py [--n 76000] [--seed-n 400] [--rss] [--pairs] [--eager]

(a) roofline: GFLOP/s of the model's own matrix products (tokens x 384 @ 384 x 1536,
    tokens x 1536 @ 1536 x 384, tokens x 384 @ 384 x 384 for the attention projections) in
    the precision `auto` serves with on this CPU and in fp32; the model's roofline is the
    FLOP-weighted mix of those shapes (time per token at each shape's measured rate), each
    shape at its best of the two rounds; the limit is that mix or (f)'s rate, whichever is
    higher, so a round disturbed by load cannot lower it. (The fp32 limit printed beside a
    bf16 one is one round's mix.)
(b) FLOPs per token counted from the model's config.json, hence the texts/s limit for the
    measured average token count ([CLS] and [SEP] included).
(c) the seed loop (padding='max_length' 128, batch 16, fp32), in this process.
(d) `finsent classify --input FILE > file` in a subprocess (tokenising, JSON output and the
    start-up included: 3-8 s), on --n distinct texts (TFNS + FPB-50 sentences, later rounds
    prefixed so that no line repeats), and on 50 before and after; steady state = time(N) -
    time(50). An untimed 50-text run of each graph goes first, so that a cold graph cache
    (converted once per model version and machine) is not counted in time(50).
    Peak RSS of each subprocess; --rss adds a run on 4N texts for memory growth.
(e) --pairs: `finsent classify --entities` on the same texts, the workload `finsent score`
    runs with a target-aware model. A pair-style model scores each text and each (text,
    company) pair the default universe links in it; a mention-style one (the release, v3)
    reads the companies from the text's own pass, so it has no pairs (0 printed) and the
    cost is the states graph's. Its fraction is FLOPs done per second (texts and pairs,
    counted from their own token lengths) against the roofline's rate.
(f) the model's matrix products back to back (every layer's weights, each reading the one
    before, nothing else): what the sequence alone costs on this CPU, the ceiling for any
    scorer that only removes the other work; the limit where it beats (a)'s mix.

The limit counts every FLOP of the full model. OpenVINO's [CLS]-only graph (wherever only the
logits are read: classify without --entities, and a pair-style model's --entities) skips the
last layer's query, output and feed-forward at the other positions, about a seventh of those
FLOPs, so its fraction can pass 100 % on a CPU whose scoring otherwise runs near the matrix
products' rate (fp32 on AVX2).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from peak_rss import call_with_peak_rss  # noqa: E402  (bench/, this script's folder)

from pipeline.paths import MODELS_DIR, SHARED_DATA_DIR  # noqa: E402

DEFAULT_MODEL = MODELS_DIR / "finsent-minilm-v3"
DEFAULT_DATA = Path(os.environ.get("FINSENT_TRAINING_DATA_DIR", SHARED_DATA_DIR))
FLAGS_OF_INTEREST = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f", "avx512_vnni", "avx2")
SMALL = 50  # texts in the start-up run, whose time the steady state subtracts
# Later rounds of the text set start with one of these, so every line is distinct and the
# texts stay news-like (a cache of repeated texts would gain nothing).
PREFIXES = ("Update: ", "Report: ", "Breaking: ", "Analysis: ", "Markets: ", "Earlier: ", "Briefly: ")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in FLAGS_OF_INTEREST if f in flags]


def base_texts(data_dir: Path) -> list[str]:
    """TFNS and FPB-50 sentences, each once."""
    tfns = data_dir / "tfns" / "sent_train.csv"
    if not tfns.is_file():
        raise SystemExit(f"bench_roofline: {tfns} not found: set FINSENT_TRAINING_DATA_DIR or --data-dir")
    with open(tfns, encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    fpb = data_dir / "financial_phrasebank" / "Sentences_50Agree.txt"
    texts += [line.rsplit("@", 1)[0] for line in fpb.read_text(encoding="latin-1").splitlines()]
    seen: set[str] = set()
    out = []
    for t in (" ".join(t.split()) for t in texts):
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def distinct_texts(data_dir: Path, n: int) -> list[str]:
    base = base_texts(data_dir)
    out: list[str] = []
    for round_ in range(n // len(base) + 1):
        if round_ == 0:
            out += base
            continue
        # round r: prefix r-1 (mod 7), and from round 8 on a second one, and so on
        pre, k = "", round_
        while k:
            k -= 1
            pre += PREFIXES[k % len(PREFIXES)]
            k //= len(PREFIXES)
        out += [pre + t for t in base]
    texts = out[:n]
    assert len(set(texts)) == len(texts)
    return texts


# -- (a) roofline ---------------------------------------------------------------------------


def gemm_gflops(m: int, k: int, n: int, dtype: object, seconds: float) -> float:
    """Best-of-3 GFLOP/s of x(m,k) @ W(n,k)^T as nn.Linear computes it."""
    import torch

    x = torch.randn(m, k).to(dtype)
    w = torch.randn(n, k).to(dtype)
    best = 0.0
    with torch.inference_mode():
        for _ in range(3):
            torch.nn.functional.linear(x, w)
        for _ in range(3):
            reps, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / 3:
                torch.nn.functional.linear(x, w)
                reps += 1
            best = max(best, 2 * m * k * n * reps / elapsed / 1e9)
    return best


def model_shapes(config: dict) -> list[tuple[int, int, int]]:
    """(k, n, count per layer) of the encoder's matrix products: Q, K, V, O, up, down."""
    h, i = config["hidden_size"], config["intermediate_size"]
    return [(h, h, 4), (h, i, 1), (i, h, 1)]


def roofline(config: dict, dtype: object, tokens: int, seconds: float) -> dict:
    rates = {}
    layer_flops = 0.0
    layer_time = 0.0
    for k, n, count in model_shapes(config):
        rate = gemm_gflops(tokens, k, n, dtype, seconds)
        rates[f"{tokens}x{k}@{k}x{n}"] = rate
        layer_flops += 2 * k * n * count
        layer_time += 2 * k * n * count / rate
    return {"shapes": rates, "model_gflops": layer_flops / layer_time}


def best_mix(config: dict, rounds: list[dict]) -> float:
    """The model mix (FLOP-weighted, as ``roofline``) of each shape's best rate over rounds:
    on a shared machine each shape has its own least disturbed moment."""
    layer_flops = layer_time = 0.0
    for (k, n, count), shape in zip(model_shapes(config), rounds[0]["shapes"], strict=True):
        rate = max(r["shapes"][shape] for r in rounds)
        layer_flops += 2 * k * n * count
        layer_time += 2 * k * n * count / rate
    return layer_flops / layer_time


def gemm_sequence(config: dict, dtype: object, tokens: int, seconds: float) -> float:
    """Best-of-3 GFLOP/s of the encoder's matrix products back to back, as a forward pass
    runs them: every layer's own weights, each product reading the one before (nothing
    else: no attention, bias, GELU or norm). Against ``roofline`` (one product repeated on
    the same operands, cache-hot) this shows what the sequence alone costs on this CPU."""
    import torch
    from torch.nn.functional import linear

    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    weights = [
        [torch.randn(n, k).to(dtype) for k, n in ((h, h), (h, h), (h, h), (h, h), (h, i), (i, h))]
        for _ in range(layers)
    ]
    x = torch.randn(tokens, h).to(dtype)

    def forward() -> None:
        hidden = x
        for q, k, v, o, up, down in weights:
            linear(hidden, q), linear(hidden, k)
            attended = linear(linear(hidden, v), o)
            hidden = linear(linear(attended, up), down)

    flops = 2 * tokens * layers * (4 * h * h + 2 * h * i)
    best = 0.0
    with torch.inference_mode():
        forward()
        for _ in range(3):
            reps, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / 3:
                forward()
                reps += 1
            best = max(best, flops * reps / elapsed / 1e9)
    return best


def pair_inputs(model_path: str, texts: list[str]) -> list[tuple[str, str | None]]:
    """The model inputs of `classify --entities` on ``texts``: each text, and each (text,
    company) pair the default universe links in it, formatted as the scorer formats them
    (ChunkScorer's own plan, run with a recorder in place of the model)."""
    from pipeline.cli.sentiment import CLASSIFY_CHUNK_LINES
    from pipeline.companies.universe import DEFAULT_UNIVERSE, load_universe
    from pipeline.score.classifier import SentimentResult
    from pipeline.score.requests import ChunkScorer
    from pipeline.score.target import DEFAULT_STYLE, format_target_input, read_target_style

    style = read_target_style(model_path) or DEFAULT_STYLE
    asked: list[tuple[str, str | None]] = []

    class Recorder:
        target_aware = True
        model_version = "recorder"
        neutral = SentimentResult("neutral", {"negative": 0.0, "neutral": 1.0, "positive": 0.0}, 0.0, "-")

        def predict_targets(self, batch: list[str], targets: list[str | None]) -> list[SentimentResult]:
            asked.extend(format_target_input(t, q, style) for t, q in zip(batch, targets, strict=True))
            return [self.neutral] * len(batch)

        def predict(self, batch: list[str]) -> list[SentimentResult]:
            asked.extend((t, None) for t in batch)
            return [self.neutral] * len(batch)

    universe = load_universe(DEFAULT_UNIVERSE)
    scorer = ChunkScorer(Recorder(), lambda: universe, entities=True)  # type: ignore[arg-type]
    for first in range(0, len(texts), CLASSIFY_CHUNK_LINES):
        scorer.score(texts[first : first + CLASSIFY_CHUNK_LINES], first + 1)
    if style == "mention":
        # A mention-style model reads each distinct text once, its companies from that pass.
        return list(dict.fromkeys(asked))
    return asked


def flops_per_token(config: dict, seq_len: float) -> float:
    """Multiply-adds x 2 per token of the encoder (+ attention scores at this length)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    dense = 2 * (4 * h * h + 2 * h * i)
    attention = 2 * 2 * seq_len * h  # QK^T and attention x V
    # Pooler and head run once per text: spread over its tokens.
    head = 2 * (h * h + h * 3) / seq_len
    return layers * (dense + attention) + head


# -- (c) seed loop --------------------------------------------------------------------------


def seed_loop(model_path: str, texts: list[str]) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, dtype=torch.float32).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 16):
            enc = tok(
                texts[i : i + 16], padding="max_length", truncation=True, max_length=128, return_tensors="pt"
            )
            model(**enc).logits.softmax(-1).tolist()
    return time.perf_counter() - start


# -- (d) finsent classify -------------------------------------------------------------------


def run_classify(
    model_path: str, input_path: Path, extra: list[str], tree: Path, env_extra: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and output lines of one `finsent classify` process."""
    # The tree first; entries already on PYTHONPATH (an extra installed with --target) stay.
    path = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    cmd = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "classify",
        "--input",
        str(input_path),
        "--model",
        model_path,
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # Through peak_rss's launcher: spawned from here, classify's peak would read at
        # least this process's size.
        start = time.perf_counter()
        code, rss_mb = call_with_peak_rss([*cmd, *extra], stdout=out, stderr=err, env=env, cwd=tree)
        seconds = time.perf_counter() - start
        if code:
            err.seek(0)
            raise SystemExit(f"classify failed ({code}): {err.read().decode(errors='replace')[-2000:]}")
        out.seek(0)
        lines = sum(1 for _ in out)
    return seconds, rss_mb, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder (default: the release)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help="labelled data, TFNS and FPB (default: FINSENT_TRAINING_DATA_DIR, else ../shared/data "
        "beside the checkout)",
    )
    p.add_argument("--n", type=int, default=76_000, help="distinct texts for classify")
    p.add_argument("--seed-n", type=int, default=400, help="texts for the seed loop")
    p.add_argument("--gemm-tokens", type=int, default=2048, help="rows of the roofline GEMMs")
    p.add_argument("--gemm-seconds", type=float, default=1.5, help="time per GEMM shape")
    p.add_argument("--rss", action="store_true", help="also run classify on 4N texts (memory growth)")
    p.add_argument(
        "--tree", type=Path, default=ROOT, help="source tree whose classify runs (e.g. a main checkout)"
    )
    p.add_argument("--classify-args", default="", help="extra classify options, e.g. '--batch-size 256'")
    p.add_argument(
        "--eager",
        action="store_true",
        help="also run classify with FINSENT_CPU_BACKEND=torch (eager PyTorch), same run",
    )
    p.add_argument(
        "--pairs",
        action="store_true",
        help="also run classify --entities in the same run (a pair-style model: each text and its "
        "(text, company) pairs; a mention-style model such as v3: the texts, companies read from "
        "the same pass)",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import torch

    from pipeline.score.classifier import available_cores, resolve_precision

    cores = available_cores()
    torch.set_num_threads(cores)
    cpu, flags = cpu_model_and_flags()
    precision = resolve_precision("auto", on_cuda=False)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    config = json.loads((Path(args.model) / "config.json").read_text())
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu}, {cores} cores, torch {torch.__version__}")
    shown = " ".join(flags) or "none of " + ", ".join(FLAGS_OF_INTEREST)
    import importlib.util

    backend = os.environ.get("FINSENT_CPU_BACKEND") or (
        "openvino" if importlib.util.find_spec("openvino") is not None else "torch"
    )
    print(f"# CPU flags: {shown}; serving precision: {precision}; classify backend: {backend}")
    print(f"# load average {os.getloadavg()[0]:.1f} (shared machine: compare the fractions, not the figures)")

    texts = distinct_texts(args.data_dir, args.n)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model)
    backend = tok.backend_tokenizer
    backend.no_truncation()
    backend.no_padding()
    lengths = [len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=True)]
    avg_tokens = sum(min(n, 128) for n in lengths) / len(lengths)
    fpt = flops_per_token(config, avg_tokens)
    print(f"# {len(texts):,} distinct texts, {avg_tokens:.1f} tokens on average; {fpt / 1e6:.1f} MFLOP/token")

    pairs = None
    if args.pairs:

        def token_counts(model_inputs: list[tuple[str, str | None]]) -> list[int]:
            enc = backend.encode_batch_fast([a for a, _ in model_inputs], add_special_tokens=True)
            second = backend.encode_batch_fast([b or "" for _, b in model_inputs], add_special_tokens=False)
            return [
                min(len(e.ids) + (len(s2.ids) + 1 if b else 0), 128)
                for e, s2, (_, b) in zip(enc, second, model_inputs, strict=True)
            ]

        def flops(tokens: list[int]) -> float:
            return flops_per_token(config, sum(tokens) / len(tokens)) * sum(tokens)

        inputs = pair_inputs(args.model, texts)
        input_tokens = token_counts(inputs)
        pair_avg = sum(input_tokens) / len(input_tokens)
        pair_flops = flops(input_tokens)
        # The 50-text run's share, which the steady state (time(N) - time(50)) leaves out.
        small_tokens = token_counts(pair_inputs(args.model, texts[:SMALL]))
        small_inputs = len(small_tokens)
        small_flops = flops(small_tokens)
        print(
            f"# --entities: {len(inputs):,} model inputs ({len(inputs) - len(texts):,} (text, company) "
            f"pairs), {pair_avg:.1f} tokens on average; {pair_flops / 1e12:.2f} TFLOP in all"
        )

    extra = args.classify_args.split()
    extra_classify = extra  # none: the defaults, as a user runs it
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "n.txt", Path(tmp) / "50.txt"
        big.write_text("\n".join(texts) + "\n", encoding="utf-8")
        small.write_text("\n".join(texts[:SMALL]) + "\n", encoding="utf-8")

        roof1 = roofline(config, dtype, args.gemm_tokens, args.gemm_seconds)
        roof32 = (
            roofline(config, torch.float32, args.gemm_tokens, args.gemm_seconds)
            if dtype != torch.float32
            else roof1
        )
        seed_s = seed_loop(args.model, texts[: args.seed_n])
        # An untimed first load of each graph: on a cold cache it converts and stores the
        # graphs (seconds, once per model version and machine), which time(50) would then
        # carry and the steady state lose (the 50-text runs would differ by ~10 s).
        first = run_classify(args.model, small, extra_classify, args.tree)[0]
        first_pairs = (
            run_classify(args.model, small, ["--entities", *extra_classify], args.tree)[0]
            if args.pairs
            else None
        )
        t50, rss50, _ = run_classify(args.model, small, extra_classify, args.tree)
        tn, rssn, lines = run_classify(args.model, big, extra_classify, args.tree)
        assert lines == len(texts), f"{lines} output lines for {len(texts)} texts"
        t50b, _, _ = run_classify(args.model, small, extra_classify, args.tree)
        eager = None
        if args.eager:
            torch_env = {"FINSENT_CPU_BACKEND": "torch"}
            e50, _, _ = run_classify(args.model, small, extra_classify, args.tree, torch_env)
            en, erss, _ = run_classify(args.model, big, extra_classify, args.tree, torch_env)
            eager = (e50, en, erss)
        if args.pairs:
            p50, _, _ = run_classify(args.model, small, ["--entities", *extra_classify], args.tree)
            pn, prss, plines = run_classify(args.model, big, ["--entities", *extra_classify], args.tree)
            assert plines == len(texts), f"{plines} output lines for {len(texts)} texts"
            pairs = (p50, pn, prss)
        sequence = gemm_sequence(config, dtype, args.gemm_tokens, args.gemm_seconds)
        roof2 = roofline(config, dtype, args.gemm_tokens, args.gemm_seconds)
        rss4 = None
        if args.rss:
            huge = Path(tmp) / "4n.txt"
            huge.write_text("\n".join(distinct_texts(args.data_dir, 4 * args.n)) + "\n", encoding="utf-8")
            _, rss4, _ = run_classify(args.model, huge, extra_classify, args.tree)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")

    # The limit is the best rate this run measured for the model's products: each shape's
    # best round, or the products back to back where that ran faster (a round disturbed by
    # load would otherwise lower the limit and flatter the fractions).
    roof = max(best_mix(config, [roof1, roof2]), sequence)
    limit = roof * 1e9 / (fpt * avg_tokens)
    limit32 = roof32["model_gflops"] * 1e9 / (fpt * avg_tokens)
    # time(N) - time(50) is the time of the other N - 50 texts: start-up cancels out.
    counted = len(texts) - SMALL
    steady_s = tn - (t50 + t50b) / 2
    steady = counted / steady_s
    seed = args.seed_n / seed_s
    row = "| {} |".format
    print()
    # Where the serving precision is fp32, the fp32 column would repeat the first round.
    fp32_column = dtype != torch.float32
    print(
        f"| GEMM ({args.gemm_tokens} tokens) | {precision} GFLOP/s (before / after) |"
        + (" fp32 GFLOP/s |" if fp32_column else "")
    )
    print("|---|---:|" + ("---:|" if fp32_column else ""))
    for shape, rate in [*roof1["shapes"].items(), ("model mix", roof1["model_gflops"])]:
        after = roof2["shapes"].get(shape, roof2["model_gflops"])
        fp32 = roof32["shapes"].get(shape, roof32["model_gflops"])
        cells = [shape, f"{rate:,.0f} / {after:,.0f}", *([f"{fp32:,.0f}"] if fp32_column else [])]
        print(row(" | ".join(cells)))
    print()
    print(
        f"the model's products back to back ({args.gemm_tokens} tokens, every layer's weights, "
        f"nothing else): {sequence:,.0f} GFLOP/s {precision}"
    )
    print(f"roofline: {roof:,.0f} GFLOP/s {precision} (each shape's best round, or back to back if faster)")
    print()
    also_fp32 = f", {limit32:,.0f} (fp32, one round's mix)" if fp32_column else ""
    print(f"limit at {avg_tokens:.1f} tokens/text: {limit:,.0f} texts/s ({precision}){also_fp32}")
    print()
    print("| run | texts | s | texts/s | fraction of roofline | vs seed | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    n = len(texts)
    seed_cells = [f"{seed / limit:.1%}", "1.0x", "-"]
    ours = [f"**{steady / limit:.1%}**", f"{steady / seed:.1f}x", "-"]
    rows = [
        [
            "seed loop (fp32, pad 128, batch 16)",
            f"{args.seed_n:,}",
            f"{seed_s:.1f}",
            f"{seed:,.0f}",
            *seed_cells,
        ],
        ["classify, 50 texts, first load (warm-up, not counted)", "50", f"{first:.2f}", "-", "-", "-", "-"],
        ["classify, 50 texts (start-up)", "50", f"{t50:.2f} / {t50b:.2f}", "-", "-", "-", f"{rss50:.0f}"],
        [f"classify, {n:,} texts", f"{n:,}", f"{tn:.1f}", f"{n / tn:,.0f}", "-", "-", f"{rssn:.0f}"],
        ["**classify steady state**", f"{n:,}", f"{steady_s:.1f}", f"**{steady:,.0f}**", *ours],
    ]
    if eager is not None:
        e50, en, erss = eager
        e_steady = counted / (en - e50)
        rows.append(
            [
                "classify steady state, FINSENT_CPU_BACKEND=torch",
                f"{n:,}",
                f"{en - e50:.1f}",
                f"{e_steady:,.0f}",
                f"{e_steady / limit:.1%}",
                f"{e_steady / seed:.1f}x",
                f"{erss:.0f}",
            ]
        )
    if pairs is not None:
        p50, pn, prss = pairs
        p_seconds = pn - p50
        rows.append(
            [
                f"classify --entities steady state ({len(inputs):,} model inputs: texts and pairs)",
                f"{n:,}",
                f"{p_seconds:.1f}",
                f"{counted / p_seconds:,.0f} texts, {(len(inputs) - small_inputs) / p_seconds:,.0f} inputs",
                # FLOPs done per second against the roofline's rate: the pairs are longer inputs.
                f"{(pair_flops - small_flops) / p_seconds / 1e9 / roof:.1%}",
                f"{(len(inputs) - small_inputs) / p_seconds / seed:.1f}x (inputs)",
                f"{prss:.0f}",
            ]
        )
    if rss4 is not None:
        rows.append([f"classify, {4 * n:,} texts (memory)", f"{4 * n:,}", "-", "-", "-", "-", f"{rss4:.0f}"])
    for cells in rows:
        print(row(" | ".join(cells)))
    print()
    print(
        f"limit = the roofline's rate / {fpt / 1e6:.1f} MFLOP per token (every FLOP of the full model); "
        "OpenVINO's [CLS]-only graph skips about a seventh of them, so a fraction can pass 100 %. "
        "Steady state = the N - 50 texts' time: time(N) - time(50)."
    )
    if first_pairs is not None:
        print(f"first load of --entities' graph (warm-up, not counted; 50 texts): {first_pairs:.2f} s")
    if steady_s < 10 * abs(t50 - t50b) or n < 5000:
        # Ten times the start-up's spread, at this run's rate.
        enough = max(20000, int(round(10 * abs(t50 - t50b) * steady, -3)))
        print(
            f"note: at {n:,} texts the steady state ({steady_s:.1f} s) is within the start-up's "
            f"noise ({t50:.1f} / {t50b:.1f} s): use --n {enough:,} or more for figures to record"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
