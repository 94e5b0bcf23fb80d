"""A config file that cannot be read as FinSent's TOML gets one line naming the file and the fix,
never a traceback or an 'unexpected' bug report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key in [k for k in os.environ if k.startswith("FINSENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return CliRunner()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("fetch_concurrency = 4\nuser_agent = 'caf\xe9'\n".encode("latin-1"), "is not UTF-8 text"),
        (b"\xff\xfef\x00e\x00", "is not UTF-8 text"),  # UTF-16 with a BOM
        (None, "is a folder"),
    ],
)
@pytest.mark.parametrize("origin", ["--config", "FINSENT_CONFIG"])
def test_unreadable_config_file_is_one_line_naming_it(
    runner: CliRunner, tmp_path: Path, content: bytes | None, fragment: str, origin: str
) -> None:
    path = tmp_path / "finsent.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    if origin == "--config":
        result = runner.invoke(cli, ["--config", str(path), "config"])
    else:
        result = runner.invoke(cli, ["config"], env={"FINSENT_CONFIG": str(path)})
    err = result.stderr.strip()
    assert err.count("\n") == 0 and "unexpected" not in err, err
    if content is None:  # click checks --config (and FINSENT_CONFIG, its envvar) itself: exit 2
        assert result.exit_code == 2 and str(path) in err and "is a directory" in err
        return
    assert result.exit_code == 1, result.output
    assert f"config file {path} {fragment}" in err
