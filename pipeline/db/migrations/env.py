"""Alembic environment: the URL comes from FinSent's settings, never from an ini file."""

from __future__ import annotations

from alembic import context

from pipeline.db.models import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:  # pipeline.db.migrate: its transaction holds the migration lock
        _migrate(given)
        return
    from pipeline.db.migrate import lock_migrations

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
            lock_migrations(connection)  # plain `alembic` runs queue behind FinSent's too
            _migrate(connection)
            connection.commit()
    finally:
        if owned:
            db.close()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `finsent db upgrade`")
run_migrations_online()
