"""The embedded PostgreSQL: starts in the data dir, is reused across runs, stops cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.db.engine import open_database
from pipeline.errors import SchemaError
from pipeline.settings import load_settings


@pytest.fixture
def embedded_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FINSENT_DATABASE_URL", raising=False)
    # Short path: the server's Unix socket lives in the data dir.
    data_dir = Path(tmp_path_factory.mktemp("emb"))
    return load_settings(data_dir=data_dir).settings


@pytest.mark.slow
def test_embedded_lifecycle(embedded_settings) -> None:
    pgdata = embedded_settings.embedded_pgdata
    with pytest.raises(SchemaError, match="finsent db upgrade"):
        open_database(embedded_settings)  # fresh: schema missing -> one-line refusal
    db = open_database(embedded_settings, migrate=True)
    try:
        assert db.embedded is not None
        assert (pgdata / "PG_VERSION").is_file()
        assert (pgdata / "postmaster.pid").exists()
        with db.transaction() as s:
            s.execute(text("INSERT INTO feeds (url) VALUES ('https://kept.example/rss')"))
    finally:
        db.close()
    # The last handle closed: the server stopped cleanly (no stale pid file).
    assert not (pgdata / "postmaster.pid").exists()

    db = open_database(embedded_settings)  # reused: same data, schema already current
    try:
        with db.session() as s:
            assert s.execute(text("SELECT url FROM feeds")).scalars().all() == ["https://kept.example/rss"]
        assert "postgres" in db.display_url and "password" not in db.display_url
    finally:
        db.close()
    assert not (pgdata / "postmaster.pid").exists()


def test_embedded_data_dir_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The parent exists but nothing can be created in it (a missing parent is a ConfigError).
    if os.geteuid() == 0:
        target = Path("/proc")
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    monkeypatch.delenv("FINSENT_DATABASE_URL", raising=False)
    settings = load_settings(data_dir=target / "finsent-cannot-exist").settings
    from pipeline.errors import DatabaseError

    with pytest.raises(DatabaseError, match="embedded PostgreSQL") as info:
        open_database(settings)
    assert "\n" not in str(info.value)


def test_prune_dead_handles_keeps_live_pids_only(tmp_path: Path) -> None:
    # pgserver lists a pid per process using the server and stops it when the list empties;
    # a killed process never removes its pid, so FinSent prunes exited ones before attaching.
    import subprocess
    import threading

    from pipeline.db.embedded import prune_dead_handles

    gone = subprocess.Popen(["true"])
    gone.wait()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(f"[{gone.pid}, {os.getpid()}]")
    assert prune_dead_handles(tmp_path, threading.Lock()) == [gone.pid]
    assert handles.read_text() == f"[{os.getpid()}]"
    assert prune_dead_handles(tmp_path / "none", threading.Lock()) == []


def test_a_data_dir_under_a_missing_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A typo in --data-dir must not start a new, empty database somewhere.
    from pipeline.errors import ConfigError

    monkeypatch.delenv("FINSENT_DATABASE_URL", raising=False)
    settings = load_settings(data_dir=tmp_path / "typo" / "finsent").settings
    with pytest.raises(ConfigError, match=r"neither does .*typo: check the path"):
        open_database(settings)
    assert not (tmp_path / "typo").exists()


def test_a_data_dir_with_a_space_is_refused_before_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pipeline.errors import ConfigError

    monkeypatch.delenv("FINSENT_DATABASE_URL", raising=False)
    settings = load_settings(data_dir=tmp_path / "my data").settings
    with pytest.raises(ConfigError, match="cannot run in a path with spaces"):
        open_database(settings)


@pytest.mark.slow
def test_a_killed_process_does_not_keep_the_server_running(tmp_path_factory: pytest.TempPathFactory):
    # A process killed while attached leaves its pid in pgserver's list; without pruning,
    # the next process to detach would not be the "last" and the server would run on.
    import subprocess

    from pipeline.db.embedded import EmbeddedPostgres

    pgdata = Path(tmp_path_factory.mktemp("kill")) / "pgdata"
    first = EmbeddedPostgres(pgdata)
    first.start()
    first.close()
    assert not (pgdata / "postmaster.pid").exists()
    gone = subprocess.Popen(["true"])
    gone.wait()
    (pgdata / ".handle_pids.json").write_text(f"[{gone.pid}]")  # as a killed process leaves it
    second = EmbeddedPostgres(pgdata)
    second.start()
    assert (pgdata / "postmaster.pid").exists()
    second.close()
    assert not (pgdata / "postmaster.pid").exists()


@pytest.mark.slow
def test_reopening_in_one_process_while_another_holds_the_server(tmp_path_factory: pytest.TempPathFactory):
    # pgserver keeps a closed handle cached when another process still uses the server; a
    # second open in this process used to get that stale handle without listing this pid,
    # so the other process detaching stopped the server under us.
    import json
    import subprocess
    import sys

    from pipeline.db.embedded import EmbeddedPostgres

    pgdata = Path(tmp_path_factory.mktemp("share")) / "pgdata"
    first = EmbeddedPostgres(pgdata)
    first.start()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        handles = pgdata / ".handle_pids.json"
        handles.write_text(json.dumps([*json.loads(handles.read_text()), other.pid]))  # another user
        first.close()
        assert json.loads(handles.read_text()) == [other.pid]
        assert (pgdata / "postmaster.pid").exists()  # still in use by the other process

        second = EmbeddedPostgres(pgdata)
        second.start()
        assert sorted(json.loads(handles.read_text())) == sorted([other.pid, os.getpid()])
    finally:
        other.kill()
        other.wait()
    second.close()  # the other process is gone: this is the last handle, so the server stops
    assert not (pgdata / "postmaster.pid").exists()
