"""``finsent db``: schema migrations and status."""

from __future__ import annotations

import click

from pipeline.cli import LazyGroup


@click.group(
    "db",
    cls=LazyGroup,
    lazy={"create-readonly-role": "pipeline.cli.trends:readonly_role_cmd"},
)
def db() -> None:
    """Database schema: upgrade, downgrade, status."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@click.pass_obj
def upgrade_cmd(app, revision: str) -> None:
    """Create or upgrade the schema (safe to run again: a no-op when current)."""
    from pipeline.db import migrate

    with app.database(check_schema=False) as database:
        before = migrate.current_revision(database.engine)
        migrate.upgrade(database.engine, revision)
        after = migrate.current_revision(database.engine)
    if before == after:
        click.echo(f"schema already at {after} ({database.display_url})")
    else:
        click.echo(f"schema upgraded {before or 'empty'} -> {after} ({database.display_url})")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def downgrade_cmd(app, revision: str, yes: bool) -> None:
    """Downgrade the schema to REVISION ('base' drops everything: data is lost)."""
    from pipeline.db import migrate

    if not yes:
        click.confirm(
            f"Downgrade the schema to {revision}? Tables may be dropped with their data", abort=True
        )
    with app.database(check_schema=False) as database:
        migrate.downgrade(database.engine, revision)
        click.echo(f"schema now at {migrate.current_revision(database.engine) or 'empty'}")


@db.command("status")
@click.pass_obj
def status_cmd(app) -> None:
    """Show the database, its schema revision and the code's."""
    from pipeline.db import migrate

    with app.database(check_schema=False) as database:
        current = migrate.current_revision(database.engine)
        click.echo(f"database: {database.display_url}{' (embedded)' if database.embedded else ''}")
        click.echo(f"schema:   {current or 'empty'} (code expects {migrate.head_revision()})")
