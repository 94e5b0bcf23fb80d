"""Sentiment trends in SQL: rollups kept current incrementally, queries, the cookbook, charts.

The schema (rollup tables, the triggers that queue stale hours, the analyst views) is created
by migration 0003 (0013 adds the triggers on company scores) and readable in ``sql/``; this
package maintains and reads it. Ticker scopes hold each company's own sentiment, feed and
market scopes the articles' own scores (sql/trends_company.sql).
"""

# Submodules, imported on use (matplotlib only for a chart).
__all__ = ["cookbook", "plot", "queries", "rollups"]
