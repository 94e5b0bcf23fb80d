"""A small trend chart for the email: negative share per window, volume bars, spike marked."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any


def trend_png(chart: dict[str, Any], *, baseline: float, threshold_share: float | None = None) -> bytes:
    """PNG bytes of the scope's last days; the last (current) window is drawn in red."""
    # Imported here: matplotlib costs ~0.5 s and only the email needs it. Agg: no display.
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    shares: list[float] = chart["shares"]
    volumes: list[int] = chart["volumes"]
    step = timedelta(minutes=chart["step_minutes"])
    end = datetime.fromisoformat(chart["end"])
    n = len(shares)
    starts = [end - step * (n - i) for i in range(n)]  # window k covers (start, start + step]
    mids = [t + step / 2 for t in starts]
    fig, ax = plt.subplots(figsize=(6.4, 2.4), dpi=100)
    try:
        width = step.total_seconds() / 86400 * 0.9
        vol_ax = ax.twinx()
        vol_ax.bar(starts, volumes, width=width, color="#d0d7de", align="edge", zorder=0)
        vol_ax.set_ylabel("articles", fontsize=7, color="#6e7781")
        vol_ax.tick_params(labelsize=7, colors="#6e7781")
        ax.set_zorder(vol_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        shown = [(t, s * 100) for t, s, v in zip(mids, shares, volumes, strict=True) if v > 0]
        if shown:
            ax.plot([t for t, _ in shown], [s for _, s in shown], color="#0969da", lw=1.2, marker=".", ms=3)
        ax.axhline(baseline * 100, color="#6e7781", ls="--", lw=1, label=f"baseline {baseline:.0%}")
        if threshold_share is not None:
            ax.axhline(threshold_share * 100, color="#bf8700", ls=":", lw=1, label="alert level")
        if volumes and volumes[-1] > 0:
            ax.axvspan(starts[-1], end, color="#cf222e", alpha=0.15)
            ax.plot([mids[-1]], [shares[-1] * 100], "o", color="#cf222e", ms=6, label="now")
        ax.set_ylim(0, 100)
        ax.set_ylabel("% negative", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Hh"))
        ax.legend(fontsize=6, loc="upper left", frameon=False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)
