"""Alerting knobs, read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pipeline.settings import Settings

#: Share of negative news in an ordinary hour when a scope has too little history of its own.
DEFAULT_PRIOR_SHARE = 0.15


@dataclass(frozen=True)
class AlertParams:
    window: timedelta
    baseline_days: int
    threshold: float
    min_volume: int
    min_share: float
    repeat: timedelta
    #: Hysteresis: a firing alert resolves when deviation, volume or share fall below
    #: this fraction of what it took to fire.
    resolve_ratio: float = 0.5
    #: Consecutive history windows are merged until they hold this many articles: a share
    #: of three articles says little.
    block_volume: int = 20
    #: Fewer such periods than this: shrink the pooled history towards a prior instead.
    min_periods: int = 6
    #: Pseudo-articles of prior weight in the short-history estimate.
    prior_weight: float = 10.0
    prior_share: float = DEFAULT_PRIOR_SHARE
    #: Least spread of the baseline, so a near-constant history cannot make noise fire.
    spread_floor: float = 0.05
    weighting: Literal["count", "confidence"] = "count"
    headlines: int = 5
    chart_hours: int = 72

    @property
    def history_buckets(self) -> int:
        return max(1, int(timedelta(days=self.baseline_days) / self.window))

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertParams:
        # getattr: settings that may not exist yet in settings.py fall back to these defaults.
        return cls(
            window=timedelta(minutes=settings.alert_window_minutes),
            baseline_days=settings.alert_baseline_days,
            threshold=settings.alert_threshold,
            min_volume=settings.alert_min_volume,
            min_share=settings.alert_min_negative_share,
            repeat=timedelta(hours=settings.alert_repeat_hours),
            resolve_ratio=float(getattr(settings, "alert_resolve_ratio", 0.5)),
            prior_share=float(getattr(settings, "alert_prior_negative_share", DEFAULT_PRIOR_SHARE)),
            weighting=getattr(settings, "alert_weighting", "count"),
        )
