"""Server-rendered SVG charts: volume bars under share lines, a baseline, shaded episodes.

Drawn on the server so the pages need no JavaScript and no CDN (they work offline and inside
Airflow's UI). Every piece of text that comes from data is escaped here, since the SVG is
inserted into the page as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

WIDTH = 760
HEIGHT = 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 48, 14, 26


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float | None]  # shares 0..1, one per bucket; None: no news in that bucket
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded time span (an alert episode)."""

    start: datetime
    end: datetime
    label: str


@dataclass
class Chart:
    title: str
    start: datetime  # left edge
    end: datetime  # right edge
    step: timedelta  # bucket width
    buckets: Sequence[datetime]
    volumes: Sequence[int]
    lines: list[Line] = field(default_factory=list)
    baseline: float | None = None
    bands: list[Band] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT


def _fmt_tick(when: datetime, step: timedelta) -> str:
    # Decided by the ticks' step, not the chart's span: ticks less than a day apart fall on
    # hours other than midnight (3 days: every 12 h), and a date alone repeats for them.
    return when.strftime("%d %b %Hh" if step < timedelta(days=1) else "%d %b")


_TICK_STEPS = tuple(timedelta(hours=h) for h in (1, 3, 6, 12, 24, 48, 24 * 7, 24 * 14, 24 * 28))


def _tick_step(start: datetime, end: datetime, most: int = 8) -> timedelta:
    """The smallest round step that puts at most ``most`` ticks between ``start`` and ``end``."""
    span = end - start
    return next((s for s in _TICK_STEPS if span / s <= most), _TICK_STEPS[-1])


def _ticks(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Whole UTC hours or days between ``start`` and ``end``, ``step`` apart, so the labels
    fall on midnights and round hours rather than on arbitrary fractions."""
    first = start.replace(minute=0, second=0, microsecond=0)
    if step >= timedelta(days=1):
        first = first.replace(hour=0)
    else:
        first = first.replace(hour=first.hour - first.hour % int(step.total_seconds() // 3600))
    ticks = []
    when = first
    while when <= end:
        if when >= start:
            ticks.append(when)
        when += step
    return ticks


def render_svg(chart: Chart) -> str:
    """The chart as an inline ``<svg>`` element (role="img", titled for screen readers)."""
    w, h = chart.width, chart.height
    plot_w, plot_h = w - _LEFT - _RIGHT, h - _TOP - _BOTTOM
    span = chart.end - chart.start
    total_s = max(span.total_seconds(), 1.0)

    def x(when: datetime) -> float:
        return _LEFT + plot_w * min(max((when - chart.start).total_seconds() / total_s, 0.0), 1.0)

    def y_share(share: float) -> float:
        return _TOP + plot_h * (1 - share)

    top_volume = max([*chart.volumes, 1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" '
        f'width="{w}" height="{h}" role="img" aria-label="{escape(chart.title)}">',
        f"<title>{escape(chart.title)}</title>",
    ]
    for band in chart.bands:
        x0, x1 = x(band.start), x(band.end)
        parts.append(
            f'<rect class="band" x="{x0:.1f}" y="{_TOP}" width="{max(x1 - x0, 2):.1f}" height="{plot_h}">'
            f"<title>{escape(band.label)}</title></rect>"
        )
    bar_w = max(plot_w * chart.step.total_seconds() / total_s * 0.85, 1.0)
    for when, volume in zip(chart.buckets, chart.volumes, strict=True):
        if volume <= 0:
            continue
        bar_h = plot_h * volume / top_volume
        parts.append(
            f'<rect class="bar" x="{x(when):.1f}" y="{_TOP + plot_h - bar_h:.1f}" width="{bar_w:.1f}" '
            f'height="{bar_h:.1f}"><title>{when:%Y-%m-%d %H:%M} UTC: {volume} '
            f"article{'' if volume == 1 else 's'}</title></rect>"
        )
    for pct in (0, 25, 50, 75, 100):
        y = y_share(pct / 100)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{pct}%</text>')
    parts.append(
        f'<text class="axis" x="{_LEFT + plot_w + 4}" y="{_TOP + 8}">{top_volume}</text>'
        f'<text class="axis" x="{_LEFT + plot_w + 4}" y="{_TOP + 20}">articles</text>'
    )
    tick_step = _tick_step(chart.start, chart.end)
    for when in _ticks(chart.start, chart.end, tick_step):
        parts.append(
            f'<line class="tick" x1="{x(when):.1f}" x2="{x(when):.1f}" y1="{_TOP + plot_h}" '
            f'y2="{_TOP + plot_h + 3}"/><text class="axis" x="{x(when):.1f}" y="{h - 8}" '
            f'text-anchor="middle">{escape(_fmt_tick(when, tick_step))}</text>'
        )
    if chart.baseline is not None:
        y = y_share(chart.baseline)
        parts.append(
            f'<line class="baseline" x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}">'
            f"<title>baseline {chart.baseline:.0%} negative</title></line>"
        )
    half = chart.step / 2
    for line in chart.lines:
        points = [
            f"{x(when + half):.1f},{y_share(v):.1f}"
            for when, v in zip(chart.buckets, line.values, strict=True)
            if v is not None
        ]
        if not points:
            continue
        dash = ' stroke-dasharray="4 3"' if line.dashed else ""
        parts.append(
            f'<polyline class="line" fill="none" stroke="{escape(line.colour)}"{dash} '
            f'points="{" ".join(points)}"><title>{escape(line.label)}</title></polyline>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[float | None], volumes: Sequence[int], *, label: str) -> str:
    """A small inline chart for a table row: volume bars and the negative share."""
    w, h, n = 160, 28, max(len(values), 1)
    top = max([*volumes, 1])
    step = w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" viewBox="0 0 {w} {h}" width="{w}" '
        f'height="{h}" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
    ]
    for i, volume in enumerate(volumes):
        if volume > 0:
            bh = (h - 2) * volume / top
            parts.append(
                f'<rect class="bar" x="{i * step:.1f}" y="{h - bh:.1f}" width="{max(step * 0.8, 1):.1f}" '
                f'height="{bh:.1f}"/>'
            )
    points = [
        f"{(i + 0.5) * step:.1f},{1 + (h - 2) * (1 - v):.1f}" for i, v in enumerate(values) if v is not None
    ]
    if points:
        parts.append(f'<polyline class="line neg" fill="none" points="{" ".join(points)}"/>')
    parts.append("</svg>")
    return "".join(parts)
