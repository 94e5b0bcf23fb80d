"""Sentiment trends in SQL: rollups kept current incrementally, queries, the cookbook, charts.

The schema (rollup tables, the triggers that queue stale hours, the analyst views) is created
by migration 0003 and readable in ``sql/``; this package maintains and reads it.
"""

# Submodules, imported on use (matplotlib only for a chart).
__all__ = ["cookbook", "plot", "queries", "rollups"]
