"""A trend as a PNG (or SVG/PDF) chart: shares and mean score on top, volume below.

matplotlib is imported here, lazily, and only through its object API (no pyplot state), so
the CLI stays fast and nothing global changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.trends.queries import Trend

log = logging.getLogger(__name__)

FORMATS = (".png", ".svg", ".pdf")


def plot_trend(trend: Trend, path: Path) -> Path:
    """Write the chart to ``path`` (its suffix picks the format) and return the path."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    buckets = [p.bucket for p in trend.points]
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))

    top.plot(buckets, [p.negative_share for p in trend.points], color="#c0392b", label="negative share")
    top.plot(buckets, [p.positive_share for p in trend.points], color="#27ae60", label="positive share")
    top.plot(
        buckets, [p.mean_score for p in trend.points], color="#34495e", linestyle="--", label="mean score"
    )
    top.axhline(0, color="#999999", linewidth=0.5)
    top.set_ylim(-1.05, 1.05)
    top.set_ylabel("share / score")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(
        f"{trend.scope.label}: sentiment by {trend.by}, "
        f"{trend.since:%Y-%m-%d %H:%M} to {trend.until:%Y-%m-%d %H:%M} UTC"
    )

    width = 1 / 24 if trend.by == "hour" else 0.8
    bottom.bar(buckets, [p.articles for p in trend.points], width=width, color="#7f8c8d")
    bottom.set_ylabel("articles")
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))

    fig.savefig(path, dpi=110)
    log.info("trend chart written to %s", path)
    return path
