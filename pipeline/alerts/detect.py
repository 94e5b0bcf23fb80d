"""The statistics of a spike, as pure functions on per-window counts.

A scope's history is cut into windows of the alert window's length, aligned on the
evaluation time, then consecutive windows (newest first) are merged into *periods* of at
least ``block_volume`` articles: a busy scope's periods are single hours, a quiet ticker's
may span a day. The baseline is the median negative share of those periods and its spread
their MAD (scaled to a standard deviation) less the sampling noise a period of that size
has anyway, i.e. the real hour-to-hour variation of the scope. Medians make one past
spike in the history harmless. A scope with too few periods (new ticker, fresh install)
gets its pooled history shrunk towards a prior (the market's level, else ~15 %) so it can
still alert, but needs a clearer spike to do so. Negative *share* hardly depends on the hour
or weekday (volume does), so the baseline is not split by time of day.

The deviation is a z-score of the current window's share against that baseline; its
denominator adds the binomial noise of the current window's volume (five articles cannot
measure a share to better than ~±20 %) and is never below ``spread_floor``. Below
EXACT_BELOW articles that normal approximation overstates a spike when the baseline is
low (2 negatives of 5 against 5 % read as 3.6 σ, where the chance of as many is 2.3 %, a
2.0 σ event): there the deviation is also read from the exact binomial tail, and the
smaller of the two counts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.alerts.params import AlertParams

MAD_TO_SIGMA = 1.4826
#: Windows with fewer articles also get the exact binomial tail (_binomial_z); above it the
#: normal approximation is close and the sum is not worth its cost.
EXACT_BELOW = 200
_NORMAL = statistics.NormalDist()


@dataclass(frozen=True)
class Bucket:
    """Counts of one window: novel scored articles, their negatives and their weight."""

    volume: int = 0
    negatives: float = 0.0
    weight: float = 0.0
    # Negative articles counted once each, whatever the weighting (None: ``negatives`` is
    # that count, as where nothing is weighted). The exact tail counts articles: weighting
    # by confidence must not turn 2 confident negatives of 5 into "3 of 5".
    negative_count: int | None = None

    @property
    def share(self) -> float:
        return self.negatives / self.weight if self.weight > 0 else 0.0


@dataclass(frozen=True)
class Baseline:
    share: float
    spread: float
    periods: int  # history periods used
    volume: int  # articles in the whole history
    source: str  # "history" | "prior"


@dataclass(frozen=True)
class Assessment:
    volume: int
    share: float
    baseline: Baseline
    sigma: float
    deviation: float
    fires: bool
    calm: bool

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "volume": self.volume,
            "negative_share": round(self.share, 4),
            "baseline_share": round(self.baseline.share, 4),
            "baseline_spread": round(self.baseline.spread, 4),
            "baseline_periods": self.baseline.periods,
            "baseline_volume": self.baseline.volume,
            "baseline_source": self.baseline.source,
            "sigma": round(self.sigma, 4),
            "deviation": round(self.deviation, 3),
        }


def _periods(history: Sequence[Bucket], block_volume: int) -> list[Bucket]:
    periods, volume, negatives, weight = [], 0, 0.0, 0.0
    for b in history:  # newest first, so a partial leftover is the oldest data
        volume, negatives, weight = volume + b.volume, negatives + b.negatives, weight + b.weight
        if volume >= block_volume:
            periods.append(Bucket(volume, negatives, weight))
            volume, negatives, weight = 0, 0.0, 0.0
    return periods


def compute_baseline(history: Sequence[Bucket], params: AlertParams, prior: float) -> Baseline:
    """``history``: the windows before the current one, newest first."""
    periods = _periods(history, params.block_volume)
    volume = sum(b.volume for b in history)
    if len(periods) >= params.min_periods:
        shares = [b.share for b in periods]
        level = statistics.median(shares)
        mad_sigma = MAD_TO_SIGMA * statistics.median(abs(s - level) for s in shares)
        typical = statistics.median(b.volume for b in periods)
        # What is left of the spread once a period's own sampling noise is taken out.
        excess = max(mad_sigma**2 - level * (1 - level) / typical, 0.0)
        return Baseline(level, math.sqrt(excess), len(periods), volume, "history")
    negatives = sum(b.negatives for b in history)
    weight = sum(b.weight for b in history)
    level = (negatives + params.prior_weight * prior) / (weight + params.prior_weight)
    return Baseline(level, 0.0, len(periods), volume, "prior")


def calm_reasons(a: Assessment, params: AlertParams) -> list[str]:
    """Why an assessment is calm (assess's hysteresis), in words a resolved email can show:
    each bound the window fell under, with the bound."""
    r = params.resolve_ratio
    reasons = []
    if a.volume < params.min_volume * r:
        noun = "novel article" if a.volume == 1 else "novel articles"
        reasons.append(f"{a.volume} {noun} in the window (calm below {params.min_volume * r:g})")
    if a.share < params.min_share * r:
        reasons.append(f"{a.share:.1%} negative (calm below {params.min_share * r:.1%})")
    if a.deviation < params.threshold * r:
        reasons.append(f"deviation {a.deviation:.1f} σ (calm below {params.threshold * r:g} σ)")
    return reasons


def _binomial_z(negatives: int, volume: int, p: float) -> float:
    """The z-score with the same one-sided chance as ``negatives`` or more of ``volume``
    articles each negative with probability ``p`` (0 where that chance is a half or more)."""
    if negatives <= 0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    head = math.lgamma(volume + 1)
    tail = math.fsum(
        math.exp(head - math.lgamma(i + 1) - math.lgamma(volume - i + 1) + i * log_p + (volume - i) * log_q)
        for i in range(negatives, volume + 1)
    )
    if tail >= 0.5:
        return 0.0
    return -_NORMAL.inv_cdf(max(tail, 1e-300))


def assess(current: Bucket, baseline: Baseline, params: AlertParams) -> Assessment:
    p = min(max(baseline.share, 0.05), 0.95)
    sigma = max(math.sqrt(baseline.spread**2 + p * (1 - p) / max(current.volume, 1)), params.spread_floor)
    share = current.share
    deviation = (share - baseline.share) / sigma
    if deviation > 0 and 0 < current.volume < EXACT_BELOW:
        count = current.negative_count
        exact = _binomial_z(round(current.negatives) if count is None else count, current.volume, p)
        deviation = min(deviation, exact)
    fires = (
        deviation >= params.threshold and current.volume >= params.min_volume and share >= params.min_share
    )
    r = params.resolve_ratio
    calm = (
        deviation < params.threshold * r
        or current.volume < params.min_volume * r
        or share < params.min_share * r
    )
    return Assessment(current.volume, share, baseline, sigma, deviation, fires, calm)
