"""Alert delivery under faults: SMTP servers on 127.0.0.1 that stall, drop, refuse or reject,
kill -9 of a delivering process, a full disk for the outbox, hostile titles, secrets.

What the user must see: exactly one email per alert, or an honest "unknown" that is never
resent on its own; no password anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from alerts_helpers import NOW, add_burst, add_feed, add_history, free_port
from click.testing import CliRunner
from sqlalchemy import select

from pipeline.alerts.delivery import deliver_pending
from pipeline.alerts.evaluate import evaluate
from pipeline.cli import cli
from pipeline.db.models import AlertDelivery
from pipeline.paths import REPO_ROOT

PASSWORD = "Pa55-w0rd-that-must-never-show"
#: Short, so a stalling server costs the suite about a second per test.
TIMEOUT_S = 0.5


@dataclass
class FaultySmtp:
    """A small SMTP server on 127.0.0.1 whose answer to each DATA is scripted.

    ``script`` holds one behaviour per DATA, then ``ok``: ``ok`` (store, 250), ``stall`` (store,
    answer 250 after ``stall_s``, past the client's timeout), ``hold`` (store, never answer),
    ``drop_before_body`` (close instead of 354), ``drop_mid_body`` (close after a part of the
    body), ``451`` / ``554`` (reject with that code, store nothing).
    """

    script: list[str] = field(default_factory=list)
    stall_s: float = 1.5
    port: int = field(default_factory=free_port)
    received: list[bytes] = field(default_factory=list)
    auth_lines: list[str] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._stop.clear()
        self._sock = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._sock.settimeout(0.1)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def messages(self):
        return [message_from_bytes(b, policy=policy.default) for b in self.received]

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= count, f"server got {len(self.received)} of {count} messages"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            t = threading.Thread(target=self._session, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _session(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as rfile:
            conn.sendall(b"220 faulty ESMTP\r\n")
            while not self._stop.is_set():
                line = rfile.readline()
                if not line:
                    return
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-faulty\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                elif verb == b"AUTH":
                    self.auth_lines.append(line.decode())
                    conn.sendall(b"235 2.7.0 ok\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb == b"DATA":
                    if not self._data(conn, rfile):
                        return
                else:  # HELO MAIL RCPT RSET NOOP
                    conn.sendall(b"250 ok\r\n")

    def _data(self, conn: socket.socket, rfile) -> bool:
        behaviour = self.script.pop(0) if self.script else "ok"
        if behaviour == "drop_before_body":
            return False
        conn.sendall(b"354 go on\r\n")
        if behaviour == "drop_mid_body":
            rfile.read(512)
            conn.shutdown(socket.SHUT_RDWR)
            return False
        lines = []
        while (line := rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        body = b"".join(lines)
        if behaviour in ("451", "554"):
            conn.sendall(f"{behaviour} {behaviour[0]}.0.0 not now\r\n".encode())
            return True
        self.received.append(body)
        if behaviour == "hold":
            self._stop.wait()
            return False
        if behaviour == "stall":
            self._stop.wait(self.stall_s)
        with suppress(OSError):
            conn.sendall(b"250 2.0.0 stored\r\n")
        return behaviour == "ok"


@contextmanager
def faulty_smtp(*script: str) -> Iterator[FaultySmtp]:
    server = FaultySmtp(script=list(script))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _env(settings, server: FaultySmtp, **extra: str) -> dict[str, str]:
    """The FINSENT_* environment that makes a CLI or a child process use ``server``."""
    return {
        "FINSENT_DATABASE_URL": settings.database_url.get_secret_value(),
        "FINSENT_DATA_DIR": str(settings.data_dir),
        "FINSENT_ALERT_TRANSPORT": "smtp",
        "FINSENT_SMTP_HOST": "127.0.0.1",
        "FINSENT_SMTP_PORT": str(server.port),
        "FINSENT_SMTP_SECURITY": "none",
        "FINSENT_SMTP_TIMEOUT_S": str(TIMEOUT_S),
        "FINSENT_ALERT_RECIPIENTS": "desk@example.com",
        **extra,
    }


def _smtp(settings, server: FaultySmtp):
    return settings.model_copy(
        update={
            "alert_transport": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": server.port,
            "smtp_security": "none",
            "smtp_timeout_s": TIMEOUT_S,
            "alert_recipients": ["desk@example.com"],
        }
    )


def _spike(db, settings, *, title: str = "Bad news") -> None:
    with db.transaction() as s:
        feed = add_feed(s, "Wire")
        add_history(s, feed, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, feed, ticker="ACME", end=NOW, count=12, negatives=10, title=title)
    assert evaluate(db, settings, now=NOW).deliveries == 1


def _row(db) -> AlertDelivery:
    with db.session() as s:
        (row,) = s.scalars(select(AlertDelivery))
        return row


def _cli(env: dict[str, str], *args: str):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def settings(settings, monkeypatch):
    monkeypatch.setenv("FINSENT_SMTP_TIMEOUT_S", str(TIMEOUT_S))
    return settings


def test_server_that_stores_then_stalls_gets_one_copy_and_the_user_sees_unknown(db, settings):
    with faulty_smtp("stall") as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp)

        first = deliver_pending(db, smtp, now=NOW)
        server.wait_for(1)
        assert first.sent == [] and first.failed == [] and [i for i, _ in first.unknown] == [1]
        assert "1 unknown" in first.render() and "--resend" in first.render()
        row = _row(db)
        assert row.status == "unknown" and row.next_attempt_at is None

        # Later runs never resend it on their own.
        for hours in (1, 6, 48):
            later = deliver_pending(db, smtp, now=NOW + timedelta(hours=hours))
            assert later.sent == [] and later.failed == [] and later.unknown == []
        time.sleep(server.stall_s)
        assert len(server.received) == 1

        env = _env(settings, server)
        listed = _cli(env, "alerts", "list", "--all")
        assert "1 unknown" in listed and f"delivery #{row.id} unknown" in listed
        assert row.message_id in listed and f"--resend {row.id}" in listed
        listed_json = json.loads(_cli(env, "alerts", "list", "--all", "--json"))
        (d,) = listed_json["deliveries"]
        assert (d["id"], d["status"], d["message_id"]) == (row.id, "unknown", row.message_id)

        # The operator decides to resend: the same Message-ID, so the copies are recognisably one.
        assert "queued again: #1" in _cli(env, "alerts", "deliver", "--resend", "1")
        server.wait_for(2)
        assert [m["Message-ID"] for m in server.messages] == [row.message_id] * 2
        assert _row(db).status == "sent"


def test_operator_marks_an_unknown_delivery_as_delivered(db, settings):
    with faulty_smtp("stall") as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp)
        deliver_pending(db, smtp, now=NOW)
        out = _cli(_env(settings, server), "alerts", "deliver", "--mark-sent", "1")
        assert "marked delivered: #1" in out and "0 sent" in out
        assert _row(db).status == "sent"
        time.sleep(server.stall_s)
        assert len(server.received) == 1


def test_connection_dropped_before_the_body_is_retried_once(db, settings):
    with faulty_smtp("drop_before_body") as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp)
        first = deliver_pending(db, smtp, now=NOW)
        assert len(first.failed) == 1 and _row(db).status == "pending" and server.received == []
        again = deliver_pending(db, smtp, now=NOW + timedelta(minutes=2))
        assert len(again.sent) == 1 and len(server.received) == 1
        assert server.messages[0]["Message-ID"] == _row(db).message_id


def test_connection_dropped_mid_body_is_never_reported_sent_nor_doubled(db, settings):
    with faulty_smtp("drop_mid_body") as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp)
        first = deliver_pending(db, smtp, now=NOW)
        assert first.sent == [] and server.received == []
        # Depending on whether the client's send failed before end-of-data left, the outcome is
        # a safe retry or an honest unknown; either way never two copies.
        row = _row(db)
        assert row.status in ("pending", "unknown")
        deliver_pending(db, smtp, now=NOW + timedelta(hours=1))
        assert len(server.received) == (1 if row.status == "pending" else 0)


def test_refused_connection_is_retried_when_the_server_is_back(db, settings):
    port = free_port()  # nothing listens here yet
    smtp = _smtp(settings, FaultySmtp(port=port))
    _spike(db, smtp)
    down = deliver_pending(db, smtp, now=NOW)
    assert len(down.failed) == 1 and "refused" in down.failed[0][1].lower()
    assert _row(db).status == "pending"
    server = FaultySmtp(port=port)
    server.start()
    try:
        back = deliver_pending(db, smtp, now=NOW + timedelta(minutes=2))
        assert len(back.sent) == 1 and len(server.received) == 1
    finally:
        server.stop()


def test_4xx_is_retried_later_and_5xx_fails_for_good(db, settings):
    with faulty_smtp("451") as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp)
        first = deliver_pending(db, smtp, now=NOW)
        assert "451" in first.failed[0][1] and first.gave_up == [] and _row(db).status == "pending"
        assert len(deliver_pending(db, smtp, now=NOW + timedelta(minutes=2)).sent) == 1
        assert len(server.received) == 1

    db_rows_reset(db)
    with faulty_smtp("554") as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp)
        first = deliver_pending(db, smtp, now=NOW)
        assert first.gave_up == [1] and "554" in first.failed[0][1]
        row = _row(db)
        assert row.status == "failed" and row.attempts == 1
        assert deliver_pending(db, smtp, now=NOW + timedelta(days=1)).failed == []
        assert server.received == []


def db_rows_reset(db) -> None:
    from conftest import truncate_all

    truncate_all(db.engine)


_CHILD = """
import sys
from datetime import datetime
from pipeline.alerts.delivery import deliver_pending
from pipeline.db.engine import Database, make_engine
from pipeline.settings import load_settings

settings = load_settings().settings
db = Database(engine=make_engine(settings.database_url.get_secret_value()), display_url="child")
deliver_pending(db, settings, now=datetime.fromisoformat(sys.argv[1]))
"""


def test_kill_9_while_the_server_holds_data_is_reported_unknown_next_time(db, settings):
    with faulty_smtp("hold") as server:
        _spike(db, _smtp(settings, server))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")},
            **_env(settings, server, FINSENT_SMTP_TIMEOUT_S="60"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, NOW.isoformat()],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            server.wait_for(1, timeout=60)
            assert _row(db).status == "transmitting"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)

    # The server held the message and went away: whether it kept it cannot be known.
    with faulty_smtp() as back:
        smtp = _smtp(settings, back)
        assert deliver_pending(db, smtp, now=NOW + timedelta(minutes=1)).unknown == []  # leased
        later = deliver_pending(db, smtp, now=NOW + timedelta(hours=1))
        assert later.sent == [] and [i for i, _ in later.unknown] == [1]
        row = _row(db)
        assert row.status == "unknown" and "assumed delivered" not in (row.last_error or "")
        assert "unknown" in row.last_error and back.received == []


@contextmanager
def _full_disk(directory: Path) -> Iterator[Path]:
    """A tiny filesystem at ``directory``, filled up; yields the filler file to free space."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)], check=True)
    try:
        filler = directory / "filler"
        with suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/finsent-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(probe)], capture_output=True
        )
        if ok.returncode == 0:
            subprocess.run(["umount", str(probe)], check=False)
        return ok.returncode == 0
    finally:
        probe.rmdir()


def test_full_disk_for_the_outbox_is_a_clear_error_and_loses_nothing(db, settings, monkeypatch):
    _spike(db, settings)
    outbox = settings.outbox_dir
    if _can_mount():
        with _full_disk(outbox) as filler:
            full = deliver_pending(db, settings, now=NOW)
            assert full.sent == [] and "No space left on device" in full.failed[0][1]
            assert str(outbox) in full.failed[0][1]
            assert sorted(p.name for p in outbox.iterdir()) == ["filler"]  # no partial file
            assert _row(db).status == "pending"
            filler.unlink()
            back = deliver_pending(db, settings, now=NOW + timedelta(minutes=2))
            assert len(back.sent) == 1 and len(list(outbox.glob("*.eml"))) == 1
    else:  # no small filesystem to fill: inject ENOSPC where the file is written
        import errno

        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with monkeypatch.context() as m:
            m.setattr(os, "fsync", no_space)
            full = deliver_pending(db, settings, now=NOW)
        assert full.sent == [] and "No space left on device" in full.failed[0][1]
        assert list(outbox.glob("*")) == [] and _row(db).status == "pending"
        back = deliver_pending(db, settings, now=NOW + timedelta(minutes=2))
        assert len(back.sent) == 1 and len(list(outbox.glob("*.eml"))) == 1
    assert _row(db).status == "sent"


def test_hostile_titles_never_reach_a_header_and_are_escaped_in_html(db, settings):
    hostile = "Crash\r\nBcc: thief@evil.example\r\nX-Evil: 1 <script>alert(1)</script> &"
    with faulty_smtp() as server:
        smtp = _smtp(settings, server)
        _spike(db, smtp, title=hostile)
        assert len(deliver_pending(db, smtp, now=NOW).sent) == 1
        (msg,) = server.messages
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    header_block = server.received[0].split(b"\r\n\r\n", 1)[0].lower()
    assert b"thief@evil.example" not in header_block and b"x-evil" not in header_block
    html_part = msg.get_body(("html",)).get_content()
    assert "<script>" not in html_part and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html_part
    text_part = msg.get_body(("plain",)).get_content()
    assert "Crash Bcc: thief@evil.example X-Evil" in text_part  # one line, shown as data


def test_no_password_in_any_output(db, settings, caplog):
    caplog.set_level("DEBUG")
    with faulty_smtp("stall", "554") as server:
        env = _env(settings, server, FINSENT_SMTP_USER="finsent", FINSENT_SMTP_PASSWORD=PASSWORD)
        smtp = _smtp(settings, server)
        _spike(db, smtp)
        outputs = [
            _cli(env, "alerts", "deliver"),
            _cli(env, "alerts", "list", "--all"),
            _cli(env, "alerts", "list", "--json"),
            _cli(env, "alerts", "deliver", "--resend", "1"),
            _cli(env, "config"),
            _cli(env, "config", "--json"),
        ]
        assert server.auth_lines  # it did log in
    assert "unknown" in outputs[0] and "554" in outputs[3]
    row = _row(db)
    for text in [*outputs, caplog.text, row.last_error or "", json.dumps(row.payload)]:
        assert PASSWORD not in text
