"""Alembic, driven from code: ``finsent db upgrade`` and the schema check every run does."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from pipeline.errors import SchemaError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: pg_advisory_xact_lock key ("FSNTMIGR") serialising schema changes: two first runs at once
#: (or `db upgrade` next to `run`) both found an empty schema and both ran CREATE TABLE, and one
#: died on a duplicate key in pg_type. The second now waits, then finds the schema current.
MIGRATION_LOCK_KEY = 0x46534E54_4D494752


def lock_migrations(conn: Connection) -> None:
    """Take the migration lock in ``conn``'s transaction (released at its commit or rollback)."""
    got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}).scalar()
    if not got:
        log.info("another process is migrating this database: waiting for it to finish")
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})


def alembic_config(engine: Engine | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        # env.py uses this engine instead of building one from the settings.
        cfg.attributes["engine"] = engine
    if connection is not None:
        # env.py migrates in this connection's transaction (which holds the migration lock).
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:  # pragma: no cover - guarded by tests
        raise SchemaError(f"migrations have {len(heads)} heads {heads}: merge them")
    return heads[0]


def current_revision(engine: Engine | Connection) -> str | None:
    if isinstance(engine, Connection):
        return MigrationContext.configure(engine).get_current_revision()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision`` under the migration lock; return the revisions (before, after).

    Both are read under the lock, so a process that waited for another's migration reports
    the schema as already current instead of claiming the upgrade.
    """
    with engine.connect() as conn:
        lock_migrations(conn)
        before = current_revision(conn)
        if before is not None:
            _refuse_unknown(before)  # alembic would fail with "Can't locate revision"
        command.upgrade(alembic_config(engine, conn), revision)
        after = current_revision(conn)
        conn.commit()
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)
    return before, after


def downgrade(engine: Engine, revision: str) -> None:
    with engine.connect() as conn:
        lock_migrations(conn)
        command.downgrade(alembic_config(engine, conn), revision)
        conn.commit()


def check_schema(engine: Engine) -> None:
    """Refuse to work on a schema that is not exactly the code's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError("schema is not initialised: run `finsent db upgrade`")
    _refuse_unknown(current)
    raise SchemaError(f"database schema {current} is behind the code ({head}): run `finsent db upgrade`")


def _refuse_unknown(current: str) -> None:
    """SchemaError when ``current`` is a revision this code does not know (a newer FinSent's)."""
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(current)
    except Exception:
        raise SchemaError(
            f"database schema {current} is newer than this FinSent (expects {head_revision()}): "
            "upgrade FinSent, or point FINSENT_DATABASE_URL at another database"
        ) from None
