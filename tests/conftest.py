"""Shared fixtures: a real PostgreSQL for every test session.

With FINSENT_TEST_DATABASE_URL (CI: the machine's PostgreSQL 15) each session creates a
fresh database on that server and drops it afterwards; without it an embedded PostgreSQL
(pgserver) is started in a temporary directory. No SQLite, no mocked database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import throwaway_database
from sqlalchemy import text

from pipeline.db.engine import Database, make_engine
from pipeline.db.migrate import upgrade
from pipeline.db.models import Base
from pipeline.settings import load_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Converted OpenVINO graphs (pipeline/score/classifier.py) go to this run's own cache, shared
# by its tests and its subprocesses, never the user's ~/.cache; removed when the run ends.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="finsent-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (external or embedded)."""
    external = os.environ.get("FINSENT_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from pipeline.db.embedded import EmbeddedPostgres

    # Short path: the Unix socket lives in pgdata and socket paths are limited to ~100 bytes.
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "pgdata")
    server.start()
    try:
        yield server._server.get_uri("postgres")
    finally:
        server.close()


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    with throwaway_database(pg_server_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all (migration tests)."""
    with throwaway_database(pg_server_url) as url:
        yield url


def truncate_all(engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """An open Database on the session's migrated database; emptied after each test."""
    database = Database(engine=make_engine(database_url), display_url="test")
    try:
        yield database
    finally:
        truncate_all(database.engine)
        database.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing at the test database and a temporary data dir."""
    for key in list(os.environ):
        if key.startswith("FINSENT_") and key != "FINSENT_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return load_settings(database_url=database_url, data_dir=tmp_path / "data").settings
