"""How often the spike detector fires on news that has not changed (false alarms).

Each simulated scope publishes a steady stream: Poisson(rate) novel articles per window, each
negative with the same probability, for its whole baseline period and the window judged.
Nothing changes, so every alert is a false one. The detector is FinSent's own
(pipeline.alerts.detect: compute_baseline, then assess) with the default AlertParams, and
scopes are judged on independent hourly windows: evaluations every 15 minutes overlap, and
an alert is one episode however many of them see it.

Reported per traffic level (articles per hour): the share of windows that fire, and what that
means for a watchlist: expected false alarms a day for 100 scopes at that level. The
nominal rate of a 3 sigma one-sided test is 0.135 % of windows (1 in 740).

    .venv/bin/python bench/bench_false_alarms.py [--windows 4000] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from pipeline.alerts.detect import Bucket, assess, compute_baseline
from pipeline.alerts.params import AlertParams
from pipeline.settings import Settings

RATES = (0.5, 2.0, 5.0, 20.0, 100.0)  # articles per hour: a quiet ticker .. the market
SHARES = (0.15, 0.35)  # a scope's usual negative share
NOMINAL = 1 - 0.5 * (1 + math.erf(3 / math.sqrt(2)))  # one-sided 3 sigma


def default_params() -> AlertParams:
    """What FINSENT_ALERT_* default to: the settings' own defaults, no file or environment."""
    return AlertParams.from_settings(Settings.model_construct())


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method for small means, a rounded normal for large ones (exact enough here).
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def window(rng: random.Random, rate: float, share: float) -> Bucket:
    n = poisson(rng, rate)
    neg = sum(rng.random() < share for _ in range(n))
    return Bucket(n, float(neg), float(n), neg)


def false_alarm_rate(
    rng: random.Random, rate: float, share: float, windows: int, params: AlertParams
) -> float:
    fired = 0
    for _ in range(windows):
        history = [window(rng, rate, share) for _ in range(params.history_buckets)]
        baseline = compute_baseline(history, params, params.prior_share)
        fired += assess(window(rng, rate, share), baseline, params).fires
    return fired / windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=4000, help="judged windows per traffic level")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    params = default_params()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    print(f"nominal one-sided 3 sigma: {NOMINAL:.3%} of windows; {args.windows} windows per row")
    print(f"{'articles/h':>10} {'usual neg':>9} {'windows firing':>15} {'per day, 100 scopes':>20}")
    for share in SHARES:
        for rate in RATES:
            r = false_alarm_rate(rng, rate, share, args.windows, params)
            print(f"{rate:>10g} {share:>9.0%} {r:>15.3%} {r * 24 * 100:>20.2f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
