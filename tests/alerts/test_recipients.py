"""One email-address rule for every place an address is given: settings, watchlist, --to."""

from __future__ import annotations

import pytest

from pipeline.alerts.recipients import PLACEHOLDER_RECIPIENT, load_routing
from pipeline.companies.watchlist import load_watchlist
from pipeline.errors import ConfigError
from pipeline.settings import is_email_address


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("finsent@localhost", True),  # a local domain: the default From: and outbox placeholder
        ("desk@example.com", True),
        ("Desk <desk@example.com>", True),
        ("a@x.com; b@x.com", False),
        ("not an email", False),
    ],
)
def test_settings_and_the_watchlist_agree(tmp_path, settings, address, ok):
    assert is_email_address(address) is ok
    path = tmp_path / "watchlist.csv"
    path.write_text(f'ticker,name,aliases,subscribers\nACME,Acme Corp,,"{address}"\n')
    if ok:
        assert load_watchlist(path).companies[0].subscribers == (address,)
    else:
        with pytest.raises(ConfigError, match="not an email address"):
            load_watchlist(path)


def test_placeholder_is_an_address_by_the_same_rule(settings):
    assert is_email_address(PLACEHOLDER_RECIPIENT)
    assert load_routing(settings).recipients("ticker", "ACME") == [PLACEHOLDER_RECIPIENT]
