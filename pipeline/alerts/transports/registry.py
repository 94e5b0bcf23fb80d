"""Which transports exist: every module in this package registers its class with
:func:`register`, so a new transport is one new file (``FINSENT_ALERT_TRANSPORT`` names it)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, TypeVar

from pipeline.alerts.transports.base import Transport
from pipeline.errors import AlertError

if TYPE_CHECKING:
    from pipeline.settings import Settings

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


def make_transports(settings: Settings) -> list[Transport]:
    """One transport per name in ``FINSENT_ALERT_TRANSPORT``, in that order."""
    return [transport_class(name).from_settings(settings) for name in settings.alert_transports]


def email_transport(settings: Settings) -> Transport | None:
    """The first configured transport that sends email (for ``alerts test-email``)."""
    for name in settings.alert_transports:
        cls = transport_class(name)
        if cls.capabilities.email:
            return cls.from_settings(settings)
    return None
