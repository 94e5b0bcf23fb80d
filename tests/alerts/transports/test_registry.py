"""A new transport is one new file: this one registers a transport and delivers through it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from alerts_helpers import NOW, add_burst, add_feed, add_history

from pipeline.alerts.delivery import deliver_pending
from pipeline.alerts.evaluate import evaluate
from pipeline.alerts.transports import Capabilities, Outgoing, register, transport_classes, unregister
from pipeline.settings import load_settings


@dataclass
class MemoTransport:
    """Keeps what it is handed (a chat bot, a pager, a queue would post it)."""

    sent: list[Outgoing] = field(default_factory=list)
    name: ClassVar[str] = "memo"
    capabilities: ClassVar[Capabilities] = Capabilities()

    @classmethod
    def from_settings(cls, settings) -> MemoTransport:
        return cls()

    def location(self) -> str | None:
        return None

    def already_delivered(self, out: Outgoing) -> bool:
        return False

    def send(self, out: Outgoing, *, before_handover: Callable[[], None]) -> str:
        before_handover()
        self.sent.append(out)
        return "memo"


@pytest.fixture
def memo() -> Iterator[type[MemoTransport]]:
    register(MemoTransport)
    try:
        yield MemoTransport
    finally:
        unregister("memo")


@pytest.mark.slow
def test_a_registered_transport_is_a_setting_and_receives_the_alert(db, settings, memo, monkeypatch):
    assert {"outbox", "smtp", "webhook", "memo"} <= set(transport_classes())
    monkeypatch.setenv("FINSENT_ALERT_TRANSPORT", "memo,outbox")
    s = load_settings(
        database_url=settings.database_url.get_secret_value(), data_dir=settings.data_dir
    ).settings
    assert s.alert_transports == ("memo", "outbox")
    with db.transaction() as ses:
        feed = add_feed(ses, "Wire")
        add_history(ses, feed, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(ses, feed, ticker="ACME", end=NOW, count=12, negatives=10)
    evaluate(db, s, now=NOW)
    transport = MemoTransport()
    report = deliver_pending(db, s, now=NOW, transports=[transport])
    assert [o.items[0]["scope_key"] for o in transport.sent] == ["ACME"]
    assert report.waiting == 1  # the outbox row waits for a run that has the outbox configured
    assert len(deliver_pending(db, s, now=NOW).sent) == 1  # configured: memo (nothing due) and outbox
    assert len(transport.sent) == 1


def test_two_transports_with_one_name_are_refused(memo):
    @dataclass
    class Other(MemoTransport):
        pass

    with pytest.raises(ValueError, match="two alert transports named 'memo'"):
        register(Other)
