"""An absurd number in the configuration is refused when the settings load, in one line, before
any feed is touched (it used to pass and fail every feed with an OverflowError)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


@pytest.mark.parametrize("args", [["config"], ["run", "--demo"], ["ingest"]])
def test_absurd_fetch_max_bytes_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args) -> None:
    for key in [k for k in os.environ if k.startswith("FINSENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    cfg = tmp_path / "finsent.toml"
    cfg.write_text("fetch_max_bytes = 99999999999999999999999\n")
    result = CliRunner().invoke(cli, ["--config", str(cfg), "--data-dir", str(tmp_path / "d"), *args])
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"setting 'fetch_max_bytes' from file {cfg}" in err and "<= 1073741824" in err
    assert not (tmp_path / "d").exists()  # refused before the embedded database was created
