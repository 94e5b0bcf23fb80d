"""The cost of company-level scores: articles alone vs articles and their (article, company) pairs.

Today's scorer (``score_articles``: headline and summary sentences, one score per article)
against what a target-aware model does in ``finsent score``: the same article scores plus
one score per (article, company) pair, from the texts that name the company with the
mention marked (``score_articles_with_targets``, one batched call per chunk). Both run in
the same process on the same model, chunk by chunk (a scoring page, 512 articles) in
alternating order, best of ``--rounds``; the linking is done once beforehand (ingest does
it, not the scorer). Target: at most 1.5x the article-only time.

Two sets:

- demo: the bundled demo's articles (one per story and publisher, as `finsent run --demo`
  stores them), linked as the demo links them: the default universe with the demo watchlist;
- tfns: TFNS news headlines (``../shared/data/tfns/sent_train.csv``, the first ``--tfns-n``
  rows), linked with the default universe (cashtags and names).

The model is ``--model`` (default: the release) copied to a temporary folder; an
article-level model gets a target.json (``--style``, default markers) so that it counts as
target-aware: the figures are the cost of the inputs, not of the weights, which a
target-aware release shares in size. A target-aware model keeps its own style unless
``--style`` names another: ``--style markers`` and ``--style mention`` on one model compare
the two readings' cost in one run. Usage::

    .venv/bin/python bench/bench_pairs.py [--model models/finsent-minilm-v3] [--tfns-n 4000]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from pipeline.paths import MODELS_DIR, SHARED_DATA_DIR
from pipeline.score.service import PAGE_SIZE

DEFAULT_MODEL = MODELS_DIR / "finsent-minilm-v3"
TFNS = SHARED_DATA_DIR / "tfns" / "sent_train.csv"

# titles, summaries, mentions (per article), and the relevance of each link (per article)
Articles = tuple[list[str], list[str | None], list[list[str]], list[list[int]]]


def demo_articles() -> Articles:
    from pipeline.companies.linking import TickerLinker
    from pipeline.companies.universe import DEFAULT_UNIVERSE, load_universe
    from pipeline.companies.watchlist import load_watchlist
    from pipeline.ingest.demo import _data, load_stories
    from pipeline.ingest.normalise import linkable_text

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "watchlist.csv"
        path.write_bytes(_data("watchlist.csv").read_bytes())
        linker = TickerLinker(load_universe(DEFAULT_UNIVERSE, load_watchlist(path)))
    titles, summaries, mentions, relevance = [], [], [], []
    for story in load_stories():
        links = linker.link(linkable_text(story.title, story.summary))
        for _ in story.publishers:  # each publisher's copy is an article of its own
            titles.append(story.title)
            summaries.append(story.summary or None)
            mentions.append([m.mention for m in links])
            relevance.append([m.relevance for m in links])
    return titles, summaries, mentions, relevance


def tfns_articles(path: Path, n: int) -> Articles:
    from pipeline.companies.linking import TickerLinker
    from pipeline.companies.universe import DEFAULT_UNIVERSE, load_universe

    linker = TickerLinker(load_universe(DEFAULT_UNIVERSE))
    with path.open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)][:n]
    links = [linker.link(t) for t in texts]
    return (
        texts,
        [None] * len(texts),
        [[m.mention for m in row] for row in links],
        [[m.relevance for m in row] for row in links],
    )


def target_aware_copy(model: Path, tmp: Path, style: str | None) -> Path:
    from pipeline.score.target import DEFAULT_STYLE, read_target_style, write_target_style

    folder = tmp / f"{model.name}-{style or 'own'}"
    shutil.copytree(model, folder)
    if style is not None or read_target_style(folder) is None:
        write_target_style(folder, style or DEFAULT_STYLE)  # type: ignore[arg-type]
    return folder


def measure(clf, data: Articles, rounds: int, chunk: int) -> dict[str, float]:
    """Seconds per method: the sum over chunks (``score_pending``'s pages), best round.

    Both methods run on each chunk back to back, in alternating order, so that a noisy
    neighbour (this machine is shared) weighs on both sides alike."""
    titles, summaries, mentions, _ = data
    clf.score_articles(titles[:64], summaries[:64])  # warm-up: allocator, kernels
    best = {"articles": float("inf"), "pairs": float("inf")}
    for _ in range(rounds):
        spent = {"articles": 0.0, "pairs": 0.0}
        for k, first in enumerate(range(0, len(titles), chunk)):
            part = slice(first, first + chunk)
            runs = [
                ("articles", lambda p=part: clf.score_articles(titles[p], summaries[p])),
                (
                    "pairs",
                    lambda p=part: clf.score_articles_with_targets(titles[p], summaries[p], mentions[p]),
                ),
            ]
            for name, run in runs if k % 2 == 0 else runs[::-1]:
                start = time.perf_counter()
                run()
                spent[name] += time.perf_counter() - start
        best = {name: min(best[name], spent[name]) for name in best}
    return best


def describe(name: str, data: Articles, clf, best: dict[str, float]) -> dict[str, object]:
    from pipeline.companies.relevance import PASSING_MENTION
    from pipeline.score.classifier import split_sentences
    from pipeline.score.target import mark_target, normalise_target

    titles, summaries, mentions, relevance = data
    pairs = sum(map(len, mentions))
    texts = sum(1 + len(split_sentences(s or "")) for s in summaries)
    mention = clf.target_style == "mention"  # a company is read from its text's own pass
    read = 0  # extra texts read for the pairs (marked, or the headline with a second segment)
    unique_plain: set[str] = set()
    unique_all: set[tuple[str, str | None]] = set()
    for title, summary, targets in zip(titles, summaries, mentions, strict=True):
        parts = [title, *split_sentences(summary or "")]
        unique_plain.update(parts)
        unique_all.update((p, None) for p in parts)
        for target in targets:
            t = normalise_target(target)
            marked = [m for p in parts if t and (m := mark_target(p, t)) is not None]
            read += (0 if marked else 1) if mention else max(1, len(marked)) if t else len(parts)
            if not mention:
                unique_all.update((m, None) for m in marked)
            if t and not marked:
                unique_all.add((title, t))
    return {
        "set": name,
        "style": clf.target_style,
        "articles": len(titles),
        "with a company": sum(1 for m in mentions if m),
        "pairs": pairs,
        "pairs/article": pairs / len(titles),
        # Passing mentions count in no company trend or alert (docs/companies.md, Relevance).
        f"pairs with relevance >= {PASSING_MENTION}": sum(
            r >= PASSING_MENTION for row in relevance for r in row
        ),
        "article texts": texts,
        "pair texts": read,
        # The combined call scores each distinct input once (syndicated copies in a chunk);
        # today's score_articles scores every article's texts.
        "distinct article texts": len(unique_plain),
        "distinct inputs, articles+pairs": len(unique_all),
        "articles s": best["articles"],
        "articles+pairs s": best["pairs"],
        "ratio": best["pairs"] / best["articles"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--tfns", type=Path, default=TFNS)
    parser.add_argument("--tfns-n", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--chunk", type=int, default=PAGE_SIZE, help="articles per call (default: a scoring page)"
    )
    parser.add_argument("--precision", default="auto", help="as FINSENT_MODEL_PRECISION (default auto)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument(
        "--style",
        action="append",
        choices=("markers", "mention"),
        help="target style to measure (repeat to compare; default: the model's own, else markers)",
    )
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from pipeline.score.classifier import SentimentClassifier

    hf_logging.disable_progress_bar()
    sets = {"demo": demo_articles(), "tfns": tfns_articles(args.tfns, args.tfns_n)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for style in args.style or [None]:
            clf = SentimentClassifier.load(
                target_aware_copy(args.model, Path(tmp), style), device=args.device, precision=args.precision
            )
            assert clf.target_aware
            rows += [
                describe(name, data, clf, measure(clf, data, args.rounds, args.chunk))
                for name, data in sets.items()
            ]
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.1f}, "
        f"model {args.model.name} ({clf.precision} on {clf.device}), "
        f"chunks of {args.chunk}, best of {args.rounds}"
    )
    header = list(rows[0])
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()))


if __name__ == "__main__":
    main()
