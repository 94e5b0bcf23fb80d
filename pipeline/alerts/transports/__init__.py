"""Alert transports: the protocol, the registry and the built-in transports.

A transport is one module here: a class with ``name``, ``capabilities``, ``from_settings``,
``location``, ``already_delivered`` and ``send`` (see :class:`base.Transport`), decorated with
:func:`register`. ``FINSENT_ALERT_TRANSPORT`` lists the names to use.
"""

from pipeline.alerts.transports.base import Capabilities, OutcomeUnknown, Outgoing, RetryLater, Transport
from pipeline.alerts.transports.registry import (
    email_transport,
    make_transports,
    register,
    transport_class,
    transport_classes,
    unregister,
    warn_unused_transports,
)

__all__ = [
    "Capabilities",
    "OutcomeUnknown",
    "Outgoing",
    "RetryLater",
    "Transport",
    "email_transport",
    "make_transports",
    "register",
    "transport_class",
    "transport_classes",
    "unregister",
    "warn_unused_transports",
]
