"""The fault suite: every test under tests/faults/ carries the ``faults`` and ``slow`` markers.

They are ``slow`` too because the suite takes minutes (real servers, timeouts, subprocesses),
so the fast lane (``-m "not slow and not integration"``) leaves them to the full suite.

These tests attack FinSent as a hostile web and a careless operator would (servers that store
then stall, connections dropped mid-transaction, kill -9 at the worst moment, two first runs at
once) and assert what the user must see: exactly one email per alert or an honest "unknown",
the same counts as a single run, no password in any output.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/faults/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.slow)
