"""The chart's time axis: one label per tick, and no two alike."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from pipeline.web.charts import Chart, render_svg

from .conftest import NOW


def axis_labels(days: int) -> list[str]:
    """The time labels of the market chart over the last ``days`` days, as the overview draws it."""
    step = timedelta(hours=1) if days <= 7 else timedelta(days=1)
    start = (NOW - timedelta(days=days)).replace(minute=0)
    buckets = [start + i * step for i in range(int((NOW - start) / step) + 1)]
    chart = Chart("market", start, buckets[-1] + step, step, buckets, [1] * len(buckets))
    return re.findall(r'<text class="axis" [^>]*text-anchor="middle">([^<]+)</text>', render_svg(chart))


@pytest.mark.parametrize("days", [1, 3, 7, 30])
def test_no_two_time_labels_are_the_same(days):
    labels = axis_labels(days)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels


def test_three_days_label_the_noon_ticks_with_their_hour():
    # The overview's default: a tick every 12 hours, so midday and midnight both need the hour.
    labels = axis_labels(3)
    assert "18 Nov 12h" in labels and "19 Nov 00h" in labels, labels


@pytest.mark.parametrize("days", [7, 30])
def test_ticks_a_day_or_more_apart_are_dates(days):
    labels = axis_labels(days)
    assert all(re.fullmatch(r"\d\d [A-Z][a-z]{2}", label) for label in labels), labels
