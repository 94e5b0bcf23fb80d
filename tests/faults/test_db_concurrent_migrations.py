"""Two first runs at once on an empty database: the second waits for the first's migration
and then finds the schema current (no duplicate key in pg_type, no half-made schema)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from pipeline.db.engine import make_engine
from pipeline.db.migrate import current_revision, head_revision
from pipeline.paths import REPO_ROOT

PROCESSES = 4


def _env(tmp_path: Path, url: str | None, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(
        FINSENT_DATA_DIR=str(data_dir), XDG_CONFIG_HOME=str(tmp_path / "cfg"), PYTHONPATH=str(REPO_ROOT)
    )
    if url is not None:
        env["FINSENT_DATABASE_URL"] = url
    return env


def test_concurrent_upgrades_of_an_empty_database_all_succeed(
    empty_database_url: str, tmp_path: Path
) -> None:
    _race(tmp_path, _env(tmp_path, empty_database_url, tmp_path / "data"))
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
        assert versions == 1
    finally:
        engine.dispose()


def test_concurrent_first_runs_on_a_fresh_embedded_data_dir(tmp_path: Path) -> None:
    # A short path: the embedded server's Unix socket lives in the data dir (~100 bytes max).
    data_dir = Path(tempfile.mkdtemp(prefix="fsemb", dir="/tmp"))
    try:
        _race(tmp_path, _env(tmp_path, None, data_dir / "d"))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _race(tmp_path: Path, env: dict[str, str]) -> None:
    """PROCESSES `finsent db upgrade` started at one moment: all succeed, one migrates."""
    # A barrier in the database would need the schema; a shared start file is enough: every
    # process imports first (the slow part), then all run their upgrade at the same moment.
    go = tmp_path / "go"
    code = (
        "import time, pathlib, sys\n"
        "from pipeline.cli import cli\n"
        "import pipeline.db.migrate, alembic.command\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)\n"
        "cli.main(['db', 'upgrade'], prog_name='finsent')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    time.sleep(3.0)  # let every process finish importing
    go.touch()
    outputs = [p.communicate(timeout=180) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * PROCESSES, outputs
    said = [out for out, _ in outputs]
    assert sum("schema upgraded empty ->" in out for out in said) == 1, said
    assert sum("schema already at" in out for out in said) == PROCESSES - 1, said
