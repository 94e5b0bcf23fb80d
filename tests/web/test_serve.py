"""`finsent serve`: the app on its own, on the database every other command uses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alerts_helpers import free_port

from pipeline.paths import REPO_ROOT


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        FINSENT_DATA_DIR=str(tmp_path / "data"),
        FINSENT_DATABASE_URL=database_url,
    )
    return env


@pytest.mark.slow
def test_serve_shows_the_overview_at_the_root_on_localhost(tmp_path, database_url, demo_db):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)],
        env=_env(tmp_path, database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "finsent serve did not answer within 60 s"
                time.sleep(0.2)
        assert r.status_code == 200 and "Market overview" in r.text and "VLTA" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/company/NOPE", timeout=5).status_code == 404
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out


@pytest.mark.slow
def test_serve_refuses_a_port_in_use_in_one_line(tmp_path, database_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port)],
            env=_env(tmp_path, database_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0
    assert out.stderr.strip() == (
        f"finsent: error: port {port} on 127.0.0.1 is in use: stop what uses it or choose another with --port"
    )


def test_serve_names_the_host_when_the_host_is_not_this_machines(tmp_path, database_url):
    """A TEST-NET address is no interface's: the port is not what to change."""
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--host", "192.0.2.1", "--port", "18799"],
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    (line,) = out.stderr.strip().splitlines()
    assert "--host" in line and "192.0.2.1 is not an address of this machine" in line and "--port" not in line


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_serve_rejects_a_bad_port(tmp_path, database_url, port):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", port],
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--port" in out.stderr and "Traceback" not in out.stderr
