"""A trend as a PNG (or SVG/PDF) chart: shares and mean score on top, volume below.

matplotlib is imported here, lazily, and only through its object API (no pyplot state), so
the CLI stays fast and nothing global changes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.trends.queries import Trend

log = logging.getLogger(__name__)

FORMATS = (".png", ".svg", ".pdf")


def plot_trend(trend: Trend, path: Path) -> Path:
    """Write the chart to ``path`` (its suffix picks the format) and return the path."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    step = timedelta(hours=1) if trend.by == "hour" else timedelta(days=1)
    buckets = [p.bucket for p in trend.points]
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))

    # Points sit in the middle of their bucket, above its volume bar; a bucket without news
    # breaks the lines instead of drawing a slope through hours nobody wrote about.
    style = {"marker": "o", "markersize": 2.5}
    series = _with_gaps(trend, step)
    top.plot(series.x, series.negative, color="#c0392b", label="negative share", **style)
    top.plot(series.x, series.positive, color="#27ae60", label="positive share", **style)
    top.plot(series.x, series.mean, color="#34495e", linestyle="--", label="mean score", **style)
    top.axhline(0, color="#999999", linewidth=0.5)
    top.set_ylim(-1.05, 1.05)
    top.set_ylabel("share / score")
    # Outside the plot: news in the first hours of the range must not hide behind it.
    top.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=3, fontsize="small", frameon=False)
    fig.suptitle(
        f"{trend.scope.label}: sentiment by {trend.by}, "
        f"{trend.since:%Y-%m-%d %H:%M} to {trend.until:%Y-%m-%d %H:%M} UTC"
    )

    width = step / timedelta(days=1) * 0.9  # matplotlib dates count in days
    mids = [b + step / 2 for b in buckets]  # centred under the points above
    bottom.bar(mids, [p.articles for p in trend.points], width=width, color="#7f8c8d")
    bottom.set_ylabel("articles")
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    # The range the title names, not just the buckets that had news: a quiet start shows.
    bottom.set_xlim(trend.since, trend.until)

    fig.savefig(path, dpi=110)
    log.info("trend chart written to %s", path)
    return path


@dataclass
class _Series:
    x: list[datetime] = field(default_factory=list)
    negative: list[float] = field(default_factory=list)
    positive: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)


def _with_gaps(trend: Trend, step: timedelta) -> _Series:
    """The shares and mean at bucket midpoints, with a NaN wherever buckets are missing."""
    out = _Series()
    previous = None
    for p in trend.points:
        if previous is not None and p.bucket - previous > step:
            out.x.append(previous + step + step / 2)
            for values in (out.negative, out.positive, out.mean):
                values.append(math.nan)
        out.x.append(p.bucket + step / 2)
        out.negative.append(p.negative_share)
        out.positive.append(p.positive_share)
        out.mean.append(p.mean_score)
        previous = p.bucket
    return out
