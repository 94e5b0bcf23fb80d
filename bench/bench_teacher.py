"""Teacher scoring before distillation: fp32 against bf16, same model, texts and cores.

``finsent train --teacher T`` scores every training and transfer text with the teacher
once, before the first step; with a 110M-parameter teacher and ~30,000 transfer texts that
is most of a CPU run. This measures both precisions in one run and how far bf16 moves the
softened probabilities the student learns from. Usage::

    .venv/bin/python bench/bench_teacher.py --teacher runs/P2 [--texts runs/aug.jsonl] [--n 1200]

Without ``--texts`` it takes FPB training sentences.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from pipeline.paths import SHARED_DATA_DIR

DEFAULT_DATA = Path(os.environ.get("FINSENT_TRAINING_DATA_DIR", SHARED_DATA_DIR))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--teacher", required=True, help="teacher model folder")
    p.add_argument("--texts", type=Path, default=None, help="transfer file (finsent augment output)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--n", type=int, default=1200)
    p.add_argument("--temperature", type=float, default=2.0, help="distillation temperature")
    p.add_argument("--max-length", type=int, default=64)
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from pipeline.sentiment.augment import read_transfer
    from pipeline.sentiment.data import read_source
    from pipeline.sentiment.evaluate import predict_logits

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.texts:
        texts = read_transfer(args.texts).texts[: args.n]
    else:
        texts = [ex.text for ex in read_source("fpb-split", args.data_dir)][: args.n]
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    model = AutoModelForSequenceClassification.from_pretrained(args.teacher, dtype=torch.float32)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()},"
        f" {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}; teacher {args.teacher},"
        f" {len(texts)} texts, max_length {args.max_length}, T {args.temperature}"
    )
    rates, probs = {}, {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = model.to(dtype)
        predict_logits(model, tokenizer, texts[:32], 128, args.max_length)  # warm-up
        start = time.perf_counter()
        logits = predict_logits(model, tokenizer, texts, 128, args.max_length)
        rates[name] = len(texts) / (time.perf_counter() - start)
        probs[name] = torch.softmax(torch.from_numpy(logits) / args.temperature, dim=-1)
    diff = (probs["bf16"] - probs["fp32"]).abs().amax(dim=1)
    agree = (probs["bf16"].argmax(1) == probs["fp32"].argmax(1)).float().mean().item()
    print("| precision | texts/s | vs fp32 |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.1f} | {rate / rates['fp32']:.1f}x |")
    print(
        f"bf16 vs fp32 softened probabilities: max diff {diff.max().item():.4f},"
        f" p99 {diff.quantile(0.99).item():.4f}; same argmax on {agree:.2%} of texts"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
