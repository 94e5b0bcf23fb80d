"""What every alert transport is: the protocol, its capabilities, what it is handed, and how
it reports a failure, so that delivery (:mod:`pipeline.alerts.delivery`) keeps one outbox
state machine for all of them.

A transport gets an :class:`Outgoing` (the delivery's frozen alert payload, its stable
Message-ID and its recipients), renders what it needs from it (an email transport calls
:meth:`Outgoing.email`, a webhook builds JSON) and hands it over. It calls
``before_handover`` right before the first byte of the message itself leaves; delivery
commits ``transmitting`` there. Before that point a failure is retried; after it a missing
answer is :class:`OutcomeUnknown`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pipeline.errors import AlertError

if TYPE_CHECKING:
    from pipeline.settings import Settings


@dataclass(frozen=True)
class Capabilities:
    #: Sends email: takes recipients, and its rows are grouped per recipient list.
    email: bool = False
    #: Cannot deliver without real recipients (the outbox writes a placeholder To:).
    requires_recipients: bool = False
    #: Can tell whether a message already arrived (``already_delivered``): never "unknown".
    confirms_delivery: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One delivery as a transport sees it; the same on every attempt."""

    delivery_id: int
    message_id: str
    payload: dict[str, Any]
    recipients: list[str]
    date: datetime

    @property
    def items(self) -> list[dict[str, Any]]:
        return self.payload["items"]

    @property
    def subject(self) -> str:
        from pipeline.alerts.content import subject

        title = subject(self.items)
        return title.replace("[FinSent]", "[FinSent TEST]", 1) if self.payload.get("test") else title

    def email(self, from_addr: str) -> EmailMessage:
        from pipeline.alerts.content import build_message

        return build_message(
            self.payload,
            message_id=self.message_id,
            from_addr=from_addr,
            recipients=self.recipients,
            date=self.date,
        )


class Transport(Protocol):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def from_settings(cls, settings: Settings) -> Transport:
        """Build it from FinSent's settings; raise AlertError(transient=False) when unconfigured."""
        ...

    def location(self) -> str | None:
        """Where deliveries go, for reports (a folder, a server); None to say nothing."""
        ...

    def already_delivered(self, out: Outgoing) -> bool: ...

    def send(self, out: Outgoing, *, before_handover: Callable[[], None]) -> str:
        """Hand ``out`` over; return where it went, or raise AlertError / OutcomeUnknown."""
        ...


class OutcomeUnknown(AlertError):
    """The message was handed over (SMTP end-of-data or an HTTP body sent) and no answer
    came: the receiver may have stored it. Never resent automatically: the operator decides."""

    transient = False


class RetryLater(AlertError):
    """A failure before the hand-over that the receiver asked to retry after a delay."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None):
        super().__init__(message, transient=True)
        self.retry_after = retry_after
