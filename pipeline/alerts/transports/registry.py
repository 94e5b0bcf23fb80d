"""Which transports exist: every module in this package registers its class with
:func:`register`, so a new transport is one new file (``FINSENT_ALERT_TRANSPORT`` names it)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import TYPE_CHECKING, TypeVar

from pipeline.alerts.transports.base import Transport
from pipeline.errors import AlertError

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T", bound=type)
_NOT_TRANSPORTS = frozenset({"base", "registry"})
# The one registry of the process: filled by the transport modules as they are imported.
_registered: dict[str, type[Transport]] = {}


def register(cls: T) -> T:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    existing = _registered.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"two alert transports named {cls.name!r}: {existing} and {cls}")
    _registered[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _load_builtin() -> None:
    import pipeline.alerts.transports as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_TRANSPORTS and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def transport_classes() -> dict[str, type[Transport]]:
    _load_builtin()
    return dict(_registered)


def transport_class(name: str) -> type[Transport]:
    classes = transport_classes()
    if name not in classes:
        raise AlertError(
            f"unknown alert transport {name!r}: use one of {', '.join(sorted(classes))}", transient=False
        )
    return classes[name]


def unused_transport_settings(settings: Settings) -> list[str]:
    """A line for each transport that is set up but not named in ``alert_transport``: an SMTP
    server configured while alerts still go to the outbox (the default) looks like working
    email, and every alert stays in a folder nobody reads."""
    names = settings.alert_transports
    unused = []
    if settings.smtp_host and "smtp" not in names:
        unused.append(("an SMTP server (smtp_host)", "smtp"))
    if settings.webhook_url and "webhook" not in names:
        unused.append(("a webhook (webhook_url)", "webhook"))
    return [
        f"{what} is configured but alert_transport is {settings.alert_transport!r}: alerts do not go "
        f'through it; set FINSENT_ALERT_TRANSPORT={name} (alert_transport = "{name}" in the config '
        f'file; several: "{name},outbox")'
        for what, name in unused
    ]


def warn_unused_transports(settings: Settings) -> None:
    """Log unused_transport_settings' lines: every delivery run and test email says it."""
    for line in unused_transport_settings(settings):
        log.warning("%s", line)


def make_transports(settings: Settings) -> list[Transport]:
    """One transport per name in ``FINSENT_ALERT_TRANSPORT``, in that order."""
    return [transport_class(name).from_settings(settings) for name in settings.alert_transports]


def email_transport(settings: Settings) -> Transport | None:
    """The first configured transport that sends email (for ``alerts test-email``)."""
    warn_unused_transports(settings)
    for name in settings.alert_transports:
        cls = transport_class(name)
        if cls.capabilities.email:
            return cls.from_settings(settings)
    return None
