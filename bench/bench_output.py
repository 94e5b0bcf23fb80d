"""``finsent classify``'s output lines: written from the probability rows
(pipeline/score/json_lines.py) against the former way, a result object per text and
``json.dumps`` of its fields, on the same rows in one run. The two must be byte for byte
the same (checked here, and by tests/score/test_json_lines.py). This is serial host time
per text: on a GPU, whose host tokenises over many cores, it bounds the rate end to end.

    .venv/bin/python bench/bench_output.py [--n 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from pipeline.score.classifier import SentimentClassifier
from pipeline.score.json_lines import plain_lines


class _Version:
    model_version = "bench"


def former(probs: np.ndarray) -> list[str]:
    results = SentimentClassifier._results(_Version(), probs)  # type: ignore[arg-type]
    return [
        json.dumps({"label": r.label, "probabilities": r.probabilities, "score": r.score}) for r in results
    ]


def best_seconds(fn, probs: np.ndarray, rounds: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(probs)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logits = np.random.default_rng(0).normal(scale=3.0, size=(args.n, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if plain_lines(probs) != former(probs):
        raise SystemExit("plain_lines and json.dumps differ: the fast path is wrong")
    ours, base = best_seconds(plain_lines, probs, args.rounds), best_seconds(former, probs, args.rounds)
    print(f"{args.n:,} rows, identical output, best of {args.rounds}")
    print(f"former (result objects + json.dumps): {1e6 * base / args.n:.2f} us per text")
    print(f"plain_lines: {1e6 * ours / args.n:.2f} us per text ({base / ours:.1f}x)")


if __name__ == "__main__":
    main()
