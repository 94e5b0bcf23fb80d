"""Alembic environment: the URL comes from FinSent's settings, never from an ini file."""

from __future__ import annotations

from alembic import context

from pipeline.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        # Plain `alembic` invocations: same resolution as the app (env, config file, embedded).
        from pipeline.db.engine import open_database
        from pipeline.settings import load_settings

        db = open_database(load_settings().settings, check_schema=False)
        engine = db.engine
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if owned:
            db.close()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `finsent db upgrade`")
run_migrations_online()
