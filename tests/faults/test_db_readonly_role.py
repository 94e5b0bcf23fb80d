"""The read-only role stays read-only: an existing role that can write through a membership or
an attribute is refused (or stripped with --force), the result is proven by writes that fail,
and a CREATEROLE non-superuser can run it again on PostgreSQL 15."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from pipeline.db.engine import Database, make_engine
from pipeline.db.migrate import upgrade
from pipeline.db.roles import RoleError, create_readonly_role


def _drop_roles(engine, *names: str) -> None:
    with engine.begin() as conn:
        for name in names:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first():
                conn.execute(text(f'DROP OWNED BY "{name}"'))
                conn.execute(text(f'DROP ROLE "{name}"'))


@pytest.fixture
def role_name(db) -> Iterator[str]:
    name = f"finsent_ro_{uuid.uuid4().hex[:8]}"
    yield name
    _drop_roles(db.engine, name)


def _as(url: str, role: str):
    return make_engine(make_url(url).set(username=role, password="x").render_as_string(hide_password=False))


def _write_attempts(url: str, role: str) -> list[str]:
    """The writes the role managed (each in a transaction rolled back afterwards)."""
    engine = _as(url, role)
    done = []
    try:
        for sql in (
            "INSERT INTO feeds (url) VALUES ('https://probe.example/rss')",
            "DELETE FROM alert_deliveries",
            "DROP TABLE fetches",
        ):
            with engine.connect() as conn:
                # Past the read-only default: the grants must hold on their own.
                conn.execute(text("SET SESSION default_transaction_read_only = off"))
                conn.commit()
                try:
                    conn.execute(text(sql))
                    done.append(sql)
                except DBAPIError as exc:
                    assert exc.orig.pgcode == "42501", exc
                conn.rollback()
    finally:
        engine.dispose()
    return done


@pytest.mark.parametrize(
    "setup",
    [
        'GRANT pg_write_all_data TO "{r}"',
        'GRANT postgres TO "{r}"',  # the tables' owner
        'ALTER ROLE "{r}" CREATEDB CREATEROLE',
    ],
)
def test_existing_role_that_can_write_is_refused_then_stripped(
    db, database_url: str, role_name: str, setup: str
) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role_name}" LOGIN'))
        conn.execute(text(setup.format(r=role_name)))
    with pytest.raises(RoleError, match="--force"):
        create_readonly_role(db, role_name)
    report = create_readonly_role(db, role_name, force=True)
    assert report.revoked and "revoked: " in report.render()
    assert _write_attempts(database_url, role_name) == []
    with db.engine.connect() as conn:
        attrs = conn.execute(
            text("SELECT rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = :n"), {"n": role_name}
        ).scalar_one()
    assert attrs is False
    again = create_readonly_role(db, role_name)  # now clean: no --force needed
    assert again.revoked == []


@pytest.fixture
def roles_to_drop(pg_server_url: str) -> Iterator[list[str]]:
    """Roles dropped after the test's database is (set up first, so torn down last)."""
    names: list[str] = []
    yield names
    _drop_roles(make_engine(pg_server_url), *reversed(names))


@pytest.fixture
def createrole_admin(roles_to_drop: list[str], empty_database_url: str, pg_server_url: str) -> str:
    """A URL as a CREATEROLE non-superuser that owns a migrated database (what the old error
    message told users to run this as)."""
    admin = f"finsent_adm_{uuid.uuid4().hex[:8]}"
    roles_to_drop.append(admin)
    server = make_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{admin}" LOGIN CREATEROLE'))
        conn.execute(text(f'ALTER DATABASE "{make_url(empty_database_url).database}" OWNER TO "{admin}"'))
    server.dispose()
    url = make_url(empty_database_url).set(username=admin).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)  # the admin migrates, so it owns the tables
    engine.dispose()
    return url


def test_createrole_non_superuser_can_run_it_again(createrole_admin: str, roles_to_drop: list[str]) -> None:
    reader = f"finsent_ro_{uuid.uuid4().hex[:8]}"
    roles_to_drop.append(reader)
    database = Database(engine=make_engine(createrole_admin), display_url="admin")
    try:
        first = create_readonly_role(database, reader, password="pw")
        second = create_readonly_role(database, reader)  # was: must be superuser to alter ...
        assert first.created and not second.created
        assert _write_attempts(createrole_admin, reader) == []
    finally:
        database.close()


def test_a_createrole_role_that_owns_nothing_is_told_what_it_needs(
    db, database_url: str, roles_to_drop: list[str]
) -> None:
    outsider = f"finsent_adm_{uuid.uuid4().hex[:8]}"
    reader = f"finsent_ro_{uuid.uuid4().hex[:8]}"
    roles_to_drop.extend([outsider, reader])
    with db.engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{outsider}" LOGIN CREATEROLE'))
    url = make_url(database_url).set(username=outsider).render_as_string(hide_password=False)
    database = Database(engine=make_engine(url), display_url="outsider")
    try:
        with pytest.raises(RoleError, match=r"owns database .* and FinSent's tables"):
            create_readonly_role(database, reader)
    finally:
        database.close()
