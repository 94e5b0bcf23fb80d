"""The `finsent` command line: help everywhere, one-line errors, real database commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import COMMANDS, cli
from pipeline.db.migrate import head_revision

ENV_KEYS = [k for k in os.environ if k.startswith("FINSENT_") and k != "FINSENT_TEST_DATABASE_URL"]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(cli, list(args), env=env, catch_exceptions=False)


def walk(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, click.Context(cmd, parent=ctx), (*prefix, name))


def test_every_command_has_help(runner: CliRunner) -> None:
    result = invoke(runner, "--help")
    assert result.exit_code == 0
    ctx = click.Context(cli)
    seen = []
    for path, cmd in walk(cli, ctx):
        assert (cmd.help or "").strip(), f"finsent {' '.join(path)} has no help text"
        sub = invoke(runner, *path, "--help")
        assert sub.exit_code == 0, sub.output
        seen.append(path[0])
    for name in ("run", "feeds", "db", "config"):
        assert name in seen and name in result.output


def test_help_lists_only_commands_that_exist(runner: CliRunner) -> None:
    ctx = click.Context(cli)
    listed = set(cli.list_commands(ctx))
    assert listed == set(COMMANDS)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bogus"], "No such option '--bogus'"),
        (["nonsense"], "No such command 'nonsense'"),
        (["feeds", "add"], "Missing argument"),
        (["run", "--now", "yesterday-ish"], "is not an ISO 8601 time"),
        # A run "as of" the future would resolve live alerts and push retries years ahead.
        (["run", "--now", "2999-01-01T00:00Z"], "2999-01-01T00:00Z is in the future"),
        (["run", "--skip", "everything"], "'everything' is not one of"),
    ],
)
def test_bad_arguments_are_one_line(runner: CliRunner, args: list[str], fragment: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("finsent: error:") and fragment in lines[0]
    assert "Traceback" not in result.output


def test_bad_config_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config"], env={"FINSENT_FETCH_CONCURRENCY": "lots"})
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "FINSENT_FETCH_CONCURRENCY" in result.stderr


def test_config_masks_secrets_and_shows_sources(runner: CliRunner, tmp_path: Path) -> None:
    cfg = tmp_path / "f.toml"
    cfg.write_text('smtp_host = "mail.example"\n')
    result = invoke(
        runner,
        "--config",
        str(cfg),
        "config",
        env={
            "FINSENT_DATABASE_URL": "postgresql://u:topsecret@db:5432/x",
            "FINSENT_SMTP_PASSWORD": "hunter2",
        },
    )
    assert result.exit_code == 0
    assert "topsecret" not in result.output and "hunter2" not in result.output
    assert "postgresql://u:***@db:5432/x" in result.output
    assert "[env FINSENT_DATABASE_URL]" in result.output
    assert f"[file {cfg}]" in result.output
    assert "[command line]" not in result.output.split("data_dir")[0]


def test_config_json_keeps_json_types(runner: CliRunner) -> None:
    import json

    env = {
        "FINSENT_ALERT_RECIPIENTS": "a@x.example, b@x.example",
        "FINSENT_SMTP_PASSWORD": "hunter2",
        "FINSENT_DATABASE_URL": "postgresql://u:topsecret@db:5432/x",
    }
    result = invoke(runner, "config", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "topsecret" not in result.output
    settings = json.loads(result.output)
    assert settings["alert_recipients"] == {
        "value": ["a@x.example", "b@x.example"],
        "source": "env FINSENT_ALERT_RECIPIENTS",
    }
    assert settings["fetch_concurrency"]["value"] == 16 and settings["alert_threshold"]["value"] == 3.0
    assert settings["model_path"]["value"] is None
    assert settings["smtp_password"]["value"] == "***"
    assert settings["database_url"]["value"] == "postgresql://u:***@db:5432/x"


def test_database_down_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["feeds", "list"], env={"FINSENT_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("finsent: error: database: cannot connect to")
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.slow
def test_unmigrated_database_is_refused(runner: CliRunner, empty_database_url: str) -> None:
    result = runner.invoke(cli, ["feeds", "list"], env={"FINSENT_DATABASE_URL": empty_database_url})
    assert result.exit_code == 1
    assert "run `finsent db upgrade`" in result.stderr


@pytest.mark.slow
def test_every_command_brings_the_embedded_database_up_to_date(
    runner: CliRunner, empty_database_url: str
) -> None:
    # The embedded database is FinSent's own: read-only commands must not refuse it where
    # ingest would upgrade it. An external one is refused by every command alike.
    for args in (["trends", "--market"], ["alerts", "list"], ["feeds", "list"]):
        refused = runner.invoke(cli, args, env={"FINSENT_DATABASE_URL": empty_database_url})
        assert refused.exit_code == 1 and "run `finsent db upgrade`" in refused.stderr, args
    trends = invoke(runner, "trends", "--market")  # fresh data dir: embedded, never migrated
    assert trends.exit_code == 0 and "no data for market since" in trends.output
    status = invoke(runner, "db", "status")
    assert status.exit_code == 0
    assert f"schema:   {head_revision()} (code expects {head_revision()})" in status.output


@pytest.mark.slow
def test_db_upgrade_and_feed_management(runner: CliRunner, empty_database_url: str, tmp_path: Path) -> None:
    env = {"FINSENT_DATABASE_URL": empty_database_url}
    up = invoke(runner, "db", "upgrade", env=env)
    assert up.exit_code == 0 and "upgraded empty ->" in up.output
    again = invoke(runner, "db", "upgrade", env=env)
    assert "already at" in again.output
    assert "code expects" in invoke(runner, "db", "status", env=env).output

    local = tmp_path / "local.xml"
    local.write_text("<rss/>")
    added = invoke(runner, "feeds", "add", "https://news.example/rss", str(local), env=env)
    assert added.exit_code == 0, added.output
    assert added.output.count("added") == 2
    assert "exists" in invoke(runner, "feeds", "add", "https://news.example/rss", env=env).output

    bad = runner.invoke(cli, ["feeds", "add", "https://ok.example/rss", "ftp://nope"], env=env)
    assert bad.exit_code == 1 and "ftp://nope" in bad.stderr and "no feed was added" in bad.stderr
    listing = invoke(runner, "feeds", "list", env=env).output
    assert "ok.example" not in listing and "news.example" in listing

    removed = invoke(runner, "feeds", "remove", "https://news.example/rss", env=env)
    assert "deleted" in removed.output
    missing = runner.invoke(cli, ["feeds", "remove", "42"], env=env)
    assert missing.exit_code == 1 and "no such feed: 42" in missing.stderr


@pytest.mark.slow
def test_console_script_help_is_fast_and_torch_free() -> None:
    code = (
        "import sys; from pipeline.cli import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'finsent --help imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Commands:" in proc.stdout


def test_db_psql_runs_psql_on_the_configured_database(
    runner: CliRunner, database_url: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)
    # psql writes to the real stdout (it is a child process), hence capfd.
    with pytest.raises(SystemExit) as done:
        cli.main(["db", "psql", "-At", "-c", "SELECT count(*) FROM feeds WHERE false"])
    assert done.value.code == 0
    assert capfd.readouterr().out.strip() == "0"
    with pytest.raises(SystemExit) as failed:
        cli.main(["db", "psql", "-c", "SELECT nope"])
    assert failed.value.code != 0


def test_a_missing_config_file_names_where_its_path_came_from(runner: CliRunner, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    from_env = runner.invoke(cli, ["feeds", "list"], env={"FINSENT_CONFIG": missing})
    assert "create it or unset FINSENT_CONFIG" in from_env.stderr
    from_flag = runner.invoke(cli, ["--config", missing, "feeds", "list"])
    assert "create it or check the path given as --config" in from_flag.stderr


def test_create_readonly_role_is_a_db_command(runner: CliRunner) -> None:
    result = invoke(runner, "db", "--help")
    assert result.exit_code == 0 and "create-readonly-role" in result.output
    role_help = invoke(runner, "db", "create-readonly-role", "--help")
    assert role_help.exit_code == 0 and "--force" in role_help.output
    assert "create-readonly-role" not in COMMANDS  # not a top-level command


def _finsent(args: list[str], data_dir: Path, **popen: object) -> subprocess.Popen:
    """`finsent ARGS` in a child process on the embedded database of ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(FINSENT_DATA_DIR=str(data_dir), XDG_CONFIG_HOME=str(data_dir / "cfg"))
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, **popen)  # type: ignore[call-overload]


@pytest.mark.slow
def test_sigterm_stops_serve_and_the_embedded_database_it_started(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # systemd and `docker stop` send SIGTERM: the server must go, and so must the embedded
    # PostgreSQL that `serve` started (before, it kept running with no process holding it).
    import signal
    import socket
    import time

    from pipeline.settings import load_settings

    data_dir = Path(tmp_path_factory.mktemp("sig"))  # short: the server's socket lives there
    pgdata = load_settings(data_dir=data_dir).settings.embedded_pgdata
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _finsent(
        ["serve", "--port", str(port)], data_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.3)
        assert (pgdata / "postmaster.pid").exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # A server's normal stop: exit 0 (systemd counts 143 from a service as a failure).
    assert proc.returncode == 0, err
    assert "finsent serve: stopped (SIGTERM)" in err
    assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"
