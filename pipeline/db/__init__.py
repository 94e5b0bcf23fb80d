"""Storage: PostgreSQL only (external, or embedded via pgserver), schema and migrations."""

from pipeline.db.engine import Database, open_database

# The database handle here; the rest are submodules, imported on use (alembic, psycopg2).
__all__ = ["Database", "embedded", "engine", "migrate", "models", "open_database", "roles", "sessions"]
