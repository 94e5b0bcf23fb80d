"""A database password never reaches any output: `config`, `config --json`, `db upgrade`, the
`run` header and connection errors, whatever form the URL carries it in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

from pipeline.cli import cli

SECRET = "Hunt3dS3cret"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key in [k for k in os.environ if k.startswith("FINSENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def _hunt(runner: CliRunner, url: str, *args: str) -> str:
    result = runner.invoke(cli, list(args), env={"FINSENT_DATABASE_URL": url})
    everything = result.output + (result.stderr or "")
    # Either half betrays a password cut at an unescaped '@' (u:Hunt3d@S3cret@host).
    for fragment in (SECRET, "Hunt3d", "S3cret"):
        assert fragment not in everything, (args, everything)
    return everything


# A server that is not there: every form ends in a connection or URL error.
UNREACHABLE = [
    f"postgresql://u:{SECRET}@127.0.0.1:1/x",
    "postgresql://u:Hunt3d@S3cret@127.0.0.1:1/x",  # an unescaped '@' in the password
    f"postgresql://u@127.0.0.1:1/x?password={SECRET}",
    f"postgresql://u@127.0.0.1:1/x?sslmode=disable&password={SECRET}&connect_timeout=2",
    f"host=127.0.0.1 port=1 user=u password={SECRET} dbname=x",
]


@pytest.mark.parametrize("url", UNREACHABLE)
@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_no_password_in_config_or_connection_errors(runner: CliRunner, url: str, verbose: list[str]) -> None:
    shown = _hunt(runner, url, *verbose, "config")
    assert "***" in shown
    _hunt(runner, url, *verbose, "config", "--json")
    for args in (["db", "upgrade"], ["db", "status"], ["feeds", "list"], ["run", "--skip", "ingest"]):
        _hunt(runner, url, *verbose, *args)


def test_no_password_when_the_database_answers(runner: CliRunner, empty_database_url: str) -> None:
    # Trust authentication ignores the password: it is carried, and must not be shown.
    url = make_url(empty_database_url).update_query_dict({"password": SECRET})
    url = url.render_as_string(hide_password=False)
    upgraded = _hunt(runner, url, "db", "upgrade")
    assert "schema upgraded" in upgraded and "password=***" in upgraded
    _hunt(runner, url, "db", "upgrade")
    header = _hunt(runner, url, "run", "--skip", "ingest", "--skip", "score", "--skip", "alerts")
    assert "database: " in header and "password=***" in header
    _hunt(runner, url, "db", "status")
    _hunt(runner, url, "config", "--json")
