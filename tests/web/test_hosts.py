"""A loopback server answers only its own names (DNS rebinding)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipeline.web.hosts import HostCheck, is_loopback, loopback_hosts


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    def index() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.mark.parametrize(
    ("bind", "url", "expected"),
    [
        ("127.0.0.1", None, {"localhost", "127.0.0.1", "::1"}),
        (
            "::1",
            "https://finsent.example.com/finsent/",
            {"localhost", "127.0.0.1", "::1", "finsent.example.com"},
        ),
        ("localhost", None, {"localhost", "127.0.0.1", "::1"}),
        ("0.0.0.0", None, None),
        ("10.1.2.3", None, None),
    ],
)
def test_which_names_a_bind_answers(bind, url, expected) -> None:
    allowed = loopback_hosts(bind, url)
    assert (None if allowed is None else set(allowed)) == expected
    assert is_loopback(bind) == (expected is not None)


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8050", 200),
        ("localhost:8050", 200),
        ("[::1]:8050", 200),
        ("LOCALHOST", 200),
        ("finsent.example.com", 200),
        ("attacker.example:8050", 400),  # a rebinding page: its own name in Host
        ("127.0.0.1.attacker.example", 400),
        ("", 400),
    ],
)
def test_a_loopback_server_refuses_other_hosts(host, status) -> None:
    allowed = loopback_hosts("127.0.0.1", "https://finsent.example.com/")
    client = TestClient(HostCheck(_app(), allowed))
    response = client.get("/", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        assert "Host not served here" in response.text and "ok" not in response.text
