"""The sentiment labels, in the column order every FinSent model outputs and stores."""

from __future__ import annotations

__all__ = ["ID2LABEL", "LABEL2ID", "LABELS"]

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
