"""Negative-spike alerting: detect per scope, keep Alertmanager-style state, deliver email.

``detect`` holds the statistics (pure functions), ``queries`` the SQL, ``evaluate`` the
alert life cycle and the outbox rows it queues, ``content``/``chart`` the email, and
``transport``/``delivery`` the sending. ``service`` is the entry point the pipeline calls.
"""
