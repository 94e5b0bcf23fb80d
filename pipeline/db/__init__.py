"""Storage: PostgreSQL only (external, or embedded via pgserver), schema and migrations."""

from pipeline.db.engine import Database, open_database

__all__ = ["Database", "open_database"]
