"""Company linking: precision and recall on news tweets, and articles per second.

TFNS (``../shared/data/tfns/sent_train.csv``: tweets from financial news accounts) gives a
gold ticker for free: the cashtag. Each text with a cashtag of a universe company has its
cashtags removed, then is linked; the linker must find the company from its name alone.

- recall: gold (text, company) pairs found by name / all gold pairs;
- recall where named: the same, over the gold pairs whose company is named in the text
  (one of its names or aliases appears, in any case): what the guards cost;
- precision (strict): found pairs that are gold / all found pairs. A company that the
  text names without a cashtag counts as wrong here, so this is a lower bound; the
  ``--show`` option prints those pairs for a reader to judge.

Speed: the same texts, linked with the universe, against the former linker's design (one
regex alternation of every name) built from the same names; then single texts of 100 KB
and 1 MB, whose time must grow tenfold, not a hundredfold. Usage::

    .venv/bin/python bench/bench_linking.py [--tfns PATH] [--show 30]
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from pathlib import Path

from pipeline.companies.linking import TickerLinker
from pipeline.companies.universe import DEFAULT_UNIVERSE, load_universe
from pipeline.paths import SHARED_DATA_DIR

TFNS = SHARED_DATA_DIR / "tfns" / "sent_train.csv"
# The gold cashtags: upper case, "$BRK.B". Fixed here, not taken from the linker, so that
# the gold pairs (and the figures) stay the same from one linker version to the next.
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Z]{1,6}(?:\.[A-Z])?)(?![\w])")


def gold_texts(path: Path, linker: TickerLinker) -> list[tuple[str, set[str]]]:
    """(text without cashtags, the universe companies its cashtags name)."""
    out = []
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = row["text"]
            tags = {m.group(1) for m in CASHTAG_RE.finditer(text)}
            gold = {c.ticker for t in tags if (c := linker.watchlist.company(t)) is not None}
            if not gold:
                continue
            stripped = re.sub(r"\s+", " ", CASHTAG_RE.sub("", text)).strip(" -:")
            out.append((stripped, gold))
    return out


def alternation_linker(linker: TickerLinker):
    """The former design: every name in one regex alternation, scanned over the text."""
    names = sorted({n for c in linker.watchlist.companies for n, _ in c.names()}, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w$])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w])")
    return lambda text: pattern.findall(text)


def rate(fn, texts: list[str], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tfns", type=Path, default=TFNS)
    parser.add_argument("--universe", default=DEFAULT_UNIVERSE)
    parser.add_argument("--show", type=int, default=0, help="print this many misses and extra links")
    args = parser.parse_args()

    start = time.perf_counter()
    linker = TickerLinker(load_universe(args.universe))
    built = time.perf_counter() - start
    data = gold_texts(args.tfns, linker)
    tp = fp = fn = 0
    named_tp = named = 0
    misses, extras = [], []
    for text, gold in data:
        found = {m.ticker for m in linker.link(text)}
        low = text.lower()
        for ticker in gold:
            company = linker.watchlist.company(ticker)
            if company and any(
                re.search(rf"(?<!\w){re.escape(n.lower())}(?!\w)", low) for n, _ in company.names()
            ):
                named += 1
                named_tp += ticker in found
        tp += len(found & gold)
        fp += len(found - gold)
        fn += len(gold - found)
        if gold - found:
            misses.append((text, sorted(gold - found)))
        if found - gold:
            extras.append((text, sorted(found - gold)))
    print(
        f"universe {args.universe}: {len(linker.watchlist)} companies, linker built in {built * 1000:.0f} ms"
    )
    print(f"TFNS texts with a universe cashtag: {len(data)} ({tp + fn} gold pairs)")
    print(f"recall {tp / max(tp + fn, 1):.3f}  precision (strict, lower bound) {tp / max(tp + fp, 1):.3f}")
    print(f"recall where named: {named_tp / max(named, 1):.3f} ({named_tp} of {named} pairs)")
    for label, rows in (("missed", misses), ("extra", extras)):
        for text, tickers in rows[: args.show]:
            print(f"  {label} {','.join(tickers)}: {text[:110]}")

    texts = [t for t, _ in data] * 3
    ours = rate(linker.link, texts)
    former = rate(alternation_linker(linker), texts)
    print(
        f"speed: {ours:,.0f} texts/s (token n-grams, guards, relevance); former design {former:,.0f} texts/s"
    )
    long_texts(linker)


def long_texts(linker: TickerLinker) -> None:
    """One text of 100 KB and one of 1 MB (a hostile feed item, a constituent list): the
    time must grow with the size, not its square, or one item stalls an ingest run."""
    names = ", ".join(c.name for c in linker.watchlist.companies) + ", "
    shapes = {
        "every company named, over and over": names,
        "one company, one clause repeated": "Nvidia rises - BofA. ",
        "cashtags": "$AAPL $MSFT ",
    }
    for label, unit in shapes.items():
        seconds = {}
        for size in (100_000, 1_000_000):
            text = (unit * (size // len(unit) + 1))[:size]
            start = time.perf_counter()
            linker.link(text)
            seconds[size] = time.perf_counter() - start
        ratio = seconds[1_000_000] / seconds[100_000]
        print(
            f"long text, {label}: 100 KB {seconds[100_000]:.2f} s, 1 MB {seconds[1_000_000]:.2f} s "
            f"({ratio:.1f}x for 10x the size; 10x is linear)"
        )


if __name__ == "__main__":
    main()
