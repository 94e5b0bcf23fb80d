"""Alembic, driven from code: ``finsent db upgrade`` and the schema check every run does."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from pipeline.errors import SchemaError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        # env.py uses this engine instead of building one from the settings.
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:  # pragma: no cover - guarded by tests
        raise SchemaError(f"migrations have {len(heads)} heads {heads}: merge them")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    before = current_revision(engine)
    if before is not None:
        _refuse_unknown(before)  # alembic would fail with "Can't locate revision"
    command.upgrade(alembic_config(engine), revision)
    after = current_revision(engine)
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


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
