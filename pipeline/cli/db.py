"""``finsent db``: schema migrations and status."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import click


@contextmanager
def _revision_checked(param_hint: str) -> Iterator[None]:
    """Alembic's CommandError (an unknown or unreachable revision) as a usage error naming
    the option, instead of an unexpected error to report."""
    from alembic.util.exc import CommandError

    from pipeline.db.migrate import head_revision

    try:
        yield
    except CommandError as exc:
        raise click.BadParameter(
            f"{exc}: give head, base, a revision from 0001 to {head_revision()} or a step such as -1 "
            "(`finsent db status` shows the current one)",
            param_hint=param_hint,
        ) from None


@click.group("db")
def db() -> None:
    """Database: schema (upgrade, downgrade, status), a psql session, a read-only role."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
@click.pass_obj
def upgrade_cmd(app, revision: str) -> None:
    """Create or upgrade the schema (safe to run again: a no-op when current)."""
    from pipeline.db import migrate

    with app.database(check_schema=False) as database, _revision_checked("--revision"):
        before, after = migrate.upgrade(database.engine, revision)
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
    with app.database(check_schema=False) as database, _revision_checked("REVISION"):
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


@db.command("psql", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def psql_cmd(app, psql_args: tuple[str, ...]) -> None:
    """Run psql on FinSent's database, embedded or not, with PSQL_ARGS passed through.

    The embedded server listens on a socket in the data dir and stops after each command;
    this keeps it up for the session, e.g. `finsent db psql -v ticker=ACME -f
    sql/cookbook.sql`. Uses the psql on PATH, else the one bundled with the embedded server.
    """
    import os
    import shutil
    import signal
    import subprocess
    from pathlib import Path

    psql = shutil.which("psql")
    if psql is None:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
        psql = str(bundled) if bundled.is_file() else None
    if psql is None:
        raise click.ClickException(
            "psql not found: install the PostgreSQL client (e.g. apt install postgresql-client)"
        )
    with app.database(check_schema=False) as database:
        # libpq's variables, not a URL: a URL would put the password in psql's argv (visible
        # to `ps`), and a socket path with a space would not survive URL quoting.
        url = database.engine.url
        conn = {
            "PGHOST": url.query.get("host") or url.host,
            "PGPORT": str(url.port) if url.port else None,
            "PGUSER": url.username,
            "PGPASSWORD": url.password,
            "PGDATABASE": url.database,
        }
        env = {**os.environ, **{k: str(v) for k, v in conn.items() if v}}
        child = subprocess.Popen([psql, *psql_args], env=env)
        # Ctrl-C belongs to psql (cancel a query, clear a line), not to us: ignored here, after
        # the start so that psql does not inherit the ignoring, while it runs; this process
        # then neither kills psql nor stops the embedded server under it.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    raise SystemExit(code)


@db.command("create-readonly-role")
@click.argument("name")
@click.option(
    "--password-env",
    metavar="VAR",
    help="Set the role's password from this environment variable (never on the command line).",
)
@click.option(
    "--force",
    is_flag=True,
    help="NAME exists and may write through a membership (pg_write_all_data, the tables' owner) "
    "or an attribute (CREATEDB, ...): revoke them instead of refusing.",
)
@click.pass_obj
def readonly_role_cmd(app, name: str, password_env: str | None, force: bool) -> None:
    """Create NAME, a role that can read every FinSent table and view and write nothing.

    For analysts, Grafana and BI tools. Run it as the role that runs `finsent db upgrade`, so
    tables and views added by later migrations are readable too; a superuser, or a CREATEROLE
    role that owns the database. Safe to run again; the result is checked by trying writes as
    NAME in a transaction that is rolled back.
    """
    from pipeline.db.roles import RoleError, check_role_name, create_readonly_role

    try:
        check_role_name(name)
    except RoleError as exc:
        raise click.BadParameter(str(exc).removeprefix("database: "), param_hint="NAME") from None
    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise click.BadParameter(
                f"environment variable {password_env} is not set or empty", param_hint="--password-env"
            )
    with app.database() as database:
        report = create_readonly_role(database, name, password=password, force=force)
        url = database.display_url
    click.echo(report.render())
    click.echo(f"database: {url} (connect as {name})")
