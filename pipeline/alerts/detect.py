"""The statistics of a spike, as pure functions on per-window counts.

A scope's history is cut into windows of the alert window's length, aligned on the
evaluation time. The baseline is the median negative share of the history windows that
hold enough articles, and its spread their MAD (scaled to a standard deviation). A scope
with too little history of its own (new ticker, fresh install) gets its pooled history
shrunk towards a prior (the market's level, else ~15 %) so it can still alert, but needs a
clearer spike to do so. Negative *share* hardly depends on the hour or weekday (volume
does), so the baseline is not split by time of day.

The deviation is a robust z-score whose denominator is never below the binomial noise of
the current window's volume (five articles cannot measure a share to better than ~±20 %)
nor below ``spread_floor``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.alerts.params import AlertParams

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Bucket:
    """Counts of one window: novel scored articles, their negatives and their weight."""

    volume: int = 0
    negatives: float = 0.0
    weight: float = 0.0

    @property
    def share(self) -> float:
        return self.negatives / self.weight if self.weight > 0 else 0.0


@dataclass(frozen=True)
class Baseline:
    share: float
    spread: float
    buckets: int  # history windows used
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
            "baseline_buckets": self.baseline.buckets,
            "baseline_volume": self.baseline.volume,
            "baseline_source": self.baseline.source,
            "sigma": round(self.sigma, 4),
            "deviation": round(self.deviation, 3),
        }


def compute_baseline(history: Sequence[Bucket], params: AlertParams, prior: float) -> Baseline:
    usable = [b for b in history if b.volume >= params.min_bucket_volume]
    volume = sum(b.volume for b in history)
    if len(usable) >= params.min_baseline_buckets:
        shares = [b.share for b in usable]
        level = statistics.median(shares)
        mad = statistics.median(abs(s - level) for s in shares)
        return Baseline(level, MAD_TO_SIGMA * mad, len(usable), volume, "history")
    negatives = sum(b.negatives for b in history)
    weight = sum(b.weight for b in history)
    level = (negatives + params.prior_weight * prior) / (weight + params.prior_weight)
    return Baseline(level, 0.0, len(usable), volume, "prior")


def assess(current: Bucket, baseline: Baseline, params: AlertParams) -> Assessment:
    p = min(max(baseline.share, 0.05), 0.95)
    binomial = math.sqrt(p * (1 - p) / max(current.volume, 1))
    sigma = max(baseline.spread, binomial, params.spread_floor)
    share = current.share
    deviation = (share - baseline.share) / sigma
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
