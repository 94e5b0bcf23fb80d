"""The analysts' read-only role: reads every table and view, writes nothing, stays that way."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from pipeline.cli import cli
from pipeline.db.engine import make_engine
from pipeline.db.roles import RoleError, create_readonly_role


@pytest.fixture
def role_name(db):
    name = f"finsent_ro_{uuid.uuid4().hex[:8]}"
    yield name
    with db.engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
        if exists:
            conn.execute(text(f'DROP OWNED BY "{name}"'))
            conn.execute(text(f'DROP ROLE "{name}"'))


def connect_as(database_url: str, role: str, password: str = "x"):
    url = make_url(database_url).set(username=role, password=password)
    return make_engine(url.render_as_string(hide_password=False))


def refused(conn, sql: str) -> str:
    with pytest.raises(DBAPIError) as info:
        conn.execute(text(sql))
    conn.rollback()
    return info.value.orig.pgcode


def test_role_reads_but_cannot_write(db, database_url: str, role_name: str) -> None:
    report = create_readonly_role(db, role_name, password="s3cret-pw")
    assert report.created and report.password_set and report.relations >= 20
    with db.engine.begin() as conn:
        stored = conn.execute(
            text("SELECT rolpassword FROM pg_authid WHERE rolname = :n"), {"n": role_name}
        ).scalar_one()
        # The server got a hash, never the password.
        assert stored.startswith(("SCRAM-SHA-256$", "md5")) and "s3cret" not in stored
        conn.execute(text("INSERT INTO feeds (url, name) VALUES ('https://x.example/rss', 'X')"))

    engine = connect_as(database_url, role_name)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM feeds")).scalar_one() == 1
            for view in ("v_article_sentiment", "v_ticker_sentiment_hourly", "v_alert_history"):
                conn.execute(text(f"SELECT * FROM {view} LIMIT 1")).all()
            conn.rollback()
            # Read-only sessions by default...
            assert refused(conn, "INSERT INTO feeds (url) VALUES ('https://y.example/rss')") == "25006"
            # ...and no privilege to write even when the session asks for it.
            conn.execute(text("SET SESSION default_transaction_read_only = off"))
            conn.commit()
            assert refused(conn, "INSERT INTO feeds (url) VALUES ('https://y.example/rss')") == "42501"
            assert refused(conn, "UPDATE feeds SET name = 'Y'") == "42501"
            assert refused(conn, "DELETE FROM sentiment_hourly") == "42501"
            assert refused(conn, "TRUNCATE articles") == "42501"
            assert refused(conn, "CREATE TABLE mine (x int)") == "42501"
    finally:
        engine.dispose()


def test_tables_created_later_are_readable(db, database_url: str, role_name: str) -> None:
    create_readonly_role(db, role_name)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE trends_later (x int)"))
    try:
        engine = connect_as(database_url, role_name)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM trends_later")).scalar_one() == 0
        engine.dispose()
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE trends_later"))


def test_views_a_later_migration_adds_are_readable_when_a_superuser_made_the_role(
    db, database_url: str, role_name: str
) -> None:
    """Made by a superuser (as the help allows) while another role owns the tables and runs
    the migrations: what that role creates later must be readable too."""
    owner = f"{role_name}_owner"
    with db.engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" NOLOGIN'))
        conn.execute(text(f'GRANT CREATE, USAGE ON SCHEMA public TO "{owner}"'))
        conn.execute(text(f'SET LOCAL ROLE "{owner}"'))
        conn.execute(text("CREATE TABLE owned_before (x int)"))
    try:
        report = create_readonly_role(db, role_name)
        assert report.warnings == []
        with db.engine.begin() as conn:
            conn.execute(text(f'SET LOCAL ROLE "{owner}"'))
            conn.execute(text("CREATE VIEW v_added_later AS SELECT 1 AS x"))
        engine = connect_as(database_url, role_name)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT x FROM v_added_later")).scalar_one() == 1
        finally:
            engine.dispose()
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{owner}"'))
            conn.execute(text(f'DROP ROLE "{owner}"'))


def test_running_again_brings_the_role_back_to_read_only(db, database_url: str, role_name: str) -> None:
    create_readonly_role(db, role_name)
    with db.engine.begin() as conn:
        conn.execute(text(f'GRANT INSERT ON feeds TO "{role_name}"'))
    again = create_readonly_role(db, role_name)
    assert not again.created
    with db.engine.connect() as conn:
        may_insert = conn.execute(
            text("SELECT has_table_privilege(:n, 'feeds', 'INSERT')"), {"n": role_name}
        ).scalar_one()
    assert may_insert is False


@pytest.mark.parametrize("name", ["postgres", "pg_reader", "Bad-Name", "x; DROP TABLE feeds"])
def test_bad_or_dangerous_names_are_refused(db, name: str) -> None:
    with pytest.raises(RoleError, match="not allowed"):
        create_readonly_role(db, name)


def test_existing_admin_role_is_not_touched(db) -> None:
    me = "postgres"
    with pytest.raises(RoleError):
        create_readonly_role(db, me)


@pytest.fixture
def runner_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FINSENT_") and k != "FINSENT_TEST_DATABASE_URL"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)


def test_cli_creates_the_role(runner_env, role_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RO_PASSWORD", "pw-from-env")
    args = ["db", "create-readonly-role", role_name, "--password-env", "RO_PASSWORD"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"read-only role {role_name} created" in result.output
    assert "password: set" in result.output
    assert "pw-from-env" not in result.output
    again = CliRunner().invoke(cli, ["db", "create-readonly-role", role_name], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert f"read-only role {role_name} updated" in again.output
    assert "password: unchanged (--password-env sets a new one)" in again.output


def test_cli_errors_are_one_line(runner_env, role_name: str) -> None:
    missing = CliRunner().invoke(
        cli,
        ["db", "create-readonly-role", role_name, "--password-env", "NO_SUCH_VAR_5"],
        catch_exceptions=False,
    )
    assert missing.exit_code == 2
    assert "environment variable NO_SUCH_VAR_5 is not set" in missing.output
    bad = CliRunner().invoke(cli, ["db", "create-readonly-role", "pg_x"], catch_exceptions=False)
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1


def test_trends_command_works_for_the_read_only_role(
    db, database_url: str, role_name: str, runner_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trends_helpers import NOW, clear_trends, seed

    from pipeline.trends.rollups import refresh_rollups

    clear_trends(db)
    seed(db)
    refresh_rollups(db)
    create_readonly_role(db, role_name)
    role_url = make_url(database_url).set(username=role_name, password="x")
    monkeypatch.setenv("FINSENT_DATABASE_URL", role_url.render_as_string(hide_password=False))
    try:
        result = CliRunner().invoke(
            cli, ["trends", "ACME", "--since", "1d", "--now", NOW.isoformat()], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert next(line for line in lines if line.startswith("total")).split()[:2] == ["total", "4"]
        # The headlines with their company labels are readable too (entity_scores included).
        assert lines[-1].split()[2:4] == ["negative", "(article)"]
        # A command that writes says why it cannot, in one line.
        muted = CliRunner().invoke(cli, ["alerts", "silence", "--ticker", "ACME", "--for", "1h"])
        assert muted.exit_code == 1
        assert muted.stderr.strip().endswith(
            "this command writes, and the database role it connects as is read-only"
        )
        assert "\n" not in muted.stderr.strip()
    finally:
        clear_trends(db)


def test_a_write_left_open_to_public_is_found_and_nothing_is_kept(db, role_name: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("GRANT INSERT ON feeds TO PUBLIC"))
    try:
        with pytest.raises(RoleError, match=r"could still write.*feeds"):
            create_readonly_role(db, role_name)
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("REVOKE INSERT ON feeds FROM PUBLIC"))
    with db.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": role_name}).first() is None
        )
