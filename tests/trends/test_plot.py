"""Trend charts: points in the middle of their bucket, lines broken where buckets are missing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.trends.plot import _with_gaps, plot_trend
from pipeline.trends.queries import Scope, Trend, TrendPoint

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def _trend(hours: list[int], by: str = "hour") -> Trend:
    step = timedelta(hours=1) if by == "hour" else timedelta(days=1)
    points = [TrendPoint(T0 + h * step, 4, 4, 1, 2, 1, 0.0, 3.6, 0.0) for h in hours]
    return Trend(scope=Scope.ticker("ACME"), by=by, since=T0, until=T0 + 12 * step, points=points)


def test_points_are_mid_bucket_and_a_missing_hour_breaks_the_line() -> None:
    series = _with_gaps(_trend([0, 1, 4]), timedelta(hours=1))
    assert series.x == [T0 + timedelta(minutes=m) for m in (30, 90, 150, 270)]
    assert series.negative[:2] == [0.25, 0.25] and math.isnan(series.negative[2])
    assert series.negative[3] == 0.25 and math.isnan(series.mean[2])


def test_consecutive_days_are_not_broken(tmp_path: Path) -> None:
    series = _with_gaps(_trend([0, 1, 2], by="day"), timedelta(days=1))
    assert not any(math.isnan(v) for v in series.positive)
    assert series.x[0] == T0 + timedelta(hours=12)
    chart = plot_trend(_trend([0, 1, 2], by="day"), tmp_path / "acme.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
