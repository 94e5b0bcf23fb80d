"""Negative-spike alerting: detect per scope, keep Alertmanager-style state, deliver email.

``detect`` holds the statistics (pure functions), ``queries`` the SQL, ``evaluate`` the
alert life cycle and the outbox rows it queues, ``content``/``chart`` the email, and
``transport``/``delivery`` the sending, ``silences`` the muting that ``finsent alerts
silence`` and the alert page set, ``withdraw`` the quiet end of alerts whose articles were
purged. ``service`` is the entry point the pipeline calls.
"""

from typing import Any

__all__ = ["DeliveryReport", "EvaluationReport", "deliver_pending", "evaluate", "run_alerts"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (settings does, to list transports) must not load SQL and charts.
    if name in __all__:
        from pipeline.alerts import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
