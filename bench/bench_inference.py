"""Inference throughput: seed loop vs plain dynamic padding vs FinSent's scorer.

Same texts (a seeded sample of TFNS), same model. Each method runs in its own subprocess
so its peak RSS is its own. Usage::

    .venv/bin/python bench/bench_inference.py [--model models/finsent-minilm-v3] [--n 2000]

Methods:
  seed     the original loop: padding='max_length' (128), batch 16, no_grad, fp32
  dynamic  same, but padding=True (pad to the longest text of each batch), unsorted
  ours     SentimentClassifier as the pipeline loads it on this CPU (precision "auto":
           bf16 where it outruns fp32, else fp32): length bucketing, inference_mode
  ours-fp32, ours-bf16, ours-int8  the same at a fixed precision (for reference)
  gpu      SentimentClassifier on CUDA in fp16, batch 1024 (only when CUDA is present)
  gpu-seed the seed loop on CUDA (fp32, batch 16, max_length padding): the GPU baseline
  host-seed, host-ours  the seed loop and our scorer with the network replaced by a stub
           that returns zero logits: tokenisation, padding, softmax and results alone, on
           --host-n texts. No GPU can make a scorer faster end to end than its host part, so
           host-ours bounds the GPU figure on this machine's cores (target: 50,000 texts/s).
  host-cli the whole of `finsent classify --input FILE` in-process with the same stub:
           reading lines, tokenising, batches, and writing the JSON lines (what bounds the
           GPU figure of the benchmark that runs the command, bench_roofline.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from pipeline.paths import MODELS_DIR, SHARED_DATA_DIR

DEFAULT_MODEL = MODELS_DIR / "finsent-minilm-v3"
DEFAULT_DATA = Path(os.environ.get("FINSENT_TRAINING_DATA_DIR", SHARED_DATA_DIR))


def load_texts(data_dir: Path, n: int, seed: int = 0) -> list[str]:
    with open(data_dir / "tfns" / "sent_train.csv", encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    random.Random(seed).shuffle(texts)
    if n > len(texts):
        texts = (texts * (n // len(texts) + 1))[:n]
    return texts[:n]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_hf_loop(model_path: str, texts: list[str], padding: str, device: str = "cpu") -> float:
    """The seed loop (padding='max_length') or its dynamic-padding variant."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, dtype=torch.float32)
    model.eval().to(device)

    def loop(batch: list[str]) -> None:
        with torch.no_grad():
            for i in range(0, len(batch), 16):
                enc = tok(
                    batch[i : i + 16], padding=padding, truncation=True, max_length=128, return_tensors="pt"
                )
                # .tolist() brings the probabilities back to the host, as a caller would.
                model(**enc.to(device)).logits.softmax(-1).tolist()

    if device != "cpu":
        loop(texts[:64])  # warm-up, as for our scorer: CUDA context, kernels, allocator
    start = time.perf_counter()
    loop(texts)
    return time.perf_counter() - start


def run_ours(model_path: str, texts: list[str], precision: str, device: str | None) -> tuple[float, str]:
    from pipeline.score.classifier import SentimentClassifier

    clf = SentimentClassifier.load(
        model_path, device=device, precision=precision, batch_size=1024 if device == "cuda" else None
    )
    clf.predict(texts[:64])  # warm-up: first-call allocations and kernel selection
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    start = time.perf_counter()
    clf.predict(texts)
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start, clf.precision


def _stub_network():  # type: ignore[no-untyped-def]
    """A module that returns zero logits of the right shape: the network costs nothing."""
    import types

    import torch

    class NoNetwork(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, **_):  # type: ignore[no-untyped-def]
            return types.SimpleNamespace(logits=torch.zeros(input_ids.shape[0], 3))

    return NoNetwork()


def run_host(model_path: str, texts: list[str], ours: bool) -> float:
    """Host-side time of the seed loop or of our scorer (the network stubbed out)."""
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    stub = _stub_network()
    if ours:
        from pipeline.score.classifier import SentimentClassifier

        clf = SentimentClassifier.load(
            model_path, device="cpu", precision="fp32", batch_size=1024, backend="torch"
        )
        clf.model = stub
        clf.predict(texts[:64])
        start = time.perf_counter()
        clf.predict(texts)
        return time.perf_counter() - start
    tok = AutoTokenizer.from_pretrained(model_path)
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 16):
            enc = tok(
                texts[i : i + 16], padding="max_length", truncation=True, max_length=128, return_tensors="pt"
            )
            stub(**enc).logits.softmax(-1).tolist()
    return time.perf_counter() - start


def run_host_cli(model_path: str, texts: list[str]) -> float:
    """Host-side time of `finsent classify --input FILE` (stdout to /dev/null), the network
    stubbed out, after a first call that loads the model."""
    import tempfile

    from pipeline.cli.sentiment import classify_cmd
    from pipeline.score.classifier import SentimentClassifier

    stub = _stub_network()
    load = SentimentClassifier.load

    def stubbed(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.update(device="cpu", precision="fp32", backend="torch")
        clf = load(*args, **kwargs)
        clf.model = stub
        return clf

    SentimentClassifier.load = staticmethod(stubbed)  # type: ignore[method-assign]
    SentimentClassifier.eager_model = lambda self: stub  # type: ignore[method-assign]
    # Lines that open with "{" would be read as JSON requests: plain texts only.
    plain = [t for t in texts if not t.lstrip().startswith("{")]
    with tempfile.TemporaryDirectory() as tmp:
        warm, path = Path(tmp) / "warm.txt", Path(tmp) / "texts.txt"
        warm.write_text("\n".join(plain[:64]) + "\n", encoding="utf-8")
        path.write_text("\n".join(plain) + "\n", encoding="utf-8")
        stdout = sys.stdout
        with open(os.devnull, "w") as sink:
            sys.stdout = sink
            try:
                classify_cmd.main(["--input", str(warm), "--model", model_path], standalone_mode=False)
                start = time.perf_counter()
                classify_cmd.main(["--input", str(path), "--model", model_path], standalone_mode=False)
                seconds = time.perf_counter() - start
            finally:
                sys.stdout = stdout
    return seconds * len(texts) / len(plain)


def child(method: str, model: str, data_dir: Path, n: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import warnings

    warnings.filterwarnings("ignore")
    texts = load_texts(data_dir, n)
    precision = "fp32"
    if method == "seed":
        seconds = run_hf_loop(model, texts, "max_length")
    elif method == "dynamic":
        seconds = run_hf_loop(model, texts, "longest")
    elif method == "ours":
        seconds, precision = run_ours(model, texts, "auto", device="cpu")
    elif method in ("ours-fp32", "ours-bf16", "ours-int8"):
        seconds, precision = run_ours(model, texts, method.split("-")[1], device="cpu")
    elif method in ("host-seed", "host-ours"):
        seconds = run_host(model, texts, ours=method == "host-ours")
        precision = "no network"
    elif method == "host-cli":
        seconds = run_host_cli(model, texts)
        precision = "no network"
    elif method == "gpu":
        seconds, precision = run_ours(model, texts, "auto", device="cuda")
    elif method == "gpu-seed":
        seconds = run_hf_loop(model, texts, "max_length", device="cuda")
    else:
        raise SystemExit(f"unknown method {method}")
    row = {"method": method, "precision": precision, "n": n, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(row))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--n", type=int, default=2000, help="texts per CPU method")
    p.add_argument("--gpu-n", type=int, default=200_000, help="texts for the GPU method")
    p.add_argument("--host-n", type=int, default=50_000, help="texts for the host-* methods")
    p.add_argument("--methods", default="seed,dynamic,ours-fp32,ours-int8,ours-bf16,ours,host-seed,host-ours")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.model, args.data_dir, args.n)
        return 0

    import torch

    methods = args.methods.split(",")
    if torch.cuda.is_available():
        methods += [m for m in ("gpu-seed", "gpu") if m not in methods]
    cores = len(os.sched_getaffinity(0))
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()},"
        f" {cores} cores, torch {torch.__version__},"
        f" cuda: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}"
    )
    print(f"# model {args.model}, TFNS sample of {args.n} texts (GPU: {args.gpu_n})")
    rows = []
    for method in methods:
        n = args.gpu_n if method == "gpu" else args.host_n if method.startswith("host") else args.n
        cmd = [
            sys.executable,
            __file__,
            "--child",
            method,
            "--model",
            args.model,
            "--data-dir",
            str(args.data_dir),
            "--n",
            str(n),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{method}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        # One line per method as it finishes: a run cut short still leaves its figures.
        print(f"# {method}: {rows[-1]['n']:,} texts in {rows[-1]['seconds']:.2f} s", flush=True)
    rates = {r["method"]: r["n"] / r["seconds"] for r in rows}
    print("| method | precision | texts | texts/s | vs its baseline | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        rate = rates[r["method"]]
        # host-* rows compare with the seed loop's host part, gpu with the seed loop on the
        # GPU, the others with the seed loop
        base_method = {"host": "host-seed", "gpu": "gpu-seed"}.get(r["method"].split("-")[0], "seed")
        base = rates.get(base_method)
        ratio = f"{rate / base:.1f}x" if base else "-"
        cells = [r["method"], r["precision"], f"{r['n']:,}", f"{rate:,.0f}", ratio, f"{r['peak_rss_mb']:.0f}"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
