"""``outbox``: one .eml file per message in ``<data_dir>/outbox``, named after its Message-ID
and written atomically, so an existing file *is* the proof of delivery."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pipeline.alerts.transports.base import Capabilities, Outgoing
from pipeline.alerts.transports.registry import register
from pipeline.errors import AlertError

if TYPE_CHECKING:
    from pipeline.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def eml_name(message_id: str) -> str:
    return _UNSAFE.sub("_", message_id.strip("<>")) + ".eml"


@register
@dataclass
class OutboxTransport:
    directory: Path
    from_addr: str = "FinSent <finsent@localhost>"

    name: ClassVar[str] = "outbox"
    capabilities: ClassVar[Capabilities] = Capabilities(email=True, confirms_delivery=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxTransport:
        return cls(settings.outbox_dir, settings.smtp_from)

    def location(self) -> str | None:
        return str(self.directory)

    def path_for(self, message_id: str) -> Path:
        return self.directory / eml_name(message_id)

    def already_delivered(self, out: Outgoing) -> bool:
        return self.path_for(out.message_id).exists()

    def send(self, out: Outgoing, *, before_handover: Callable[[], None]) -> str:
        msg = out.email(self.from_addr)
        target = self.path_for(out.message_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            before_handover()
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(msg.as_bytes(policy=policy.SMTP))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise AlertError(f"cannot write {target} ({exc.strerror or exc}): check the data dir") from None
        return str(target)
