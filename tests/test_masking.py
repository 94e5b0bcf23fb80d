"""Password masking: every form a database location can carry its password in."""

from __future__ import annotations

import logging

import pytest

from pipeline.errors import first_line
from pipeline.masking import MaskingFilter, mask_secrets, mask_url

SECRET = "s3cr3tPW"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:s3cr3tPW@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql+psycopg2://u:s3cr@t@PW@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("postgresql://u@h/db?password=s3cr3tPW", "postgresql://u@h/db?password=***"),
        (
            "postgresql://u@h/db?sslmode=require&password=s3cr3tPW&x=1",
            "postgresql://u@h/db?sslmode=require&password=***&x=1",
        ),
        ("host=h password=s3cr3tPW dbname=x", "host=h password=*** dbname=x"),
        ("host=h password = 's3cr3t PW' dbname=x", "host=h password = *** dbname=x"),
        ("PGPASSWORD=s3cr3tPW psql", "PGPASSWORD=*** psql"),
        # Any parameter named for a password or secret: libpq's sslpassword (the client
        # key's passphrase), a driver's or a proxy's own names.
        ("postgresql://u@h/db?sslpassword=s3cr3tPW", "postgresql://u@h/db?sslpassword=***"),
        ("host=h sslpassword=s3cr3tPW dbname=x", "host=h sslpassword=*** dbname=x"),
        ("postgresql://u@h/db?db_password=s3cr3tPW&a=1", "postgresql://u@h/db?db_password=***&a=1"),
        ("https://h/x?client_secret=s3cr3tPW", "https://h/x?client_secret=***"),
        # Not secrets: a file path, counts in a log line.
        ("host=h passfile=/etc/pgpass dbname=x", "host=h passfile=/etc/pgpass dbname=x"),
        ("tokens=27 width=32", "tokens=27 width=32"),
        ("secretary=Jane", "secretary=Jane"),
        ("FINSENT_SMTP_PASSWORD_FILE=/run/pw", "FINSENT_SMTP_PASSWORD_FILE=/run/pw"),
        ("pwd" * 10_000, "pwd" * 10_000),
        (
            "cannot reach postgresql://u:s3cr3tPW@h/db (timeout)",
            "cannot reach postgresql://u:***@h/db (timeout)",
        ),
        ("postgresql://u@h/db?notify=a@b.example", "postgresql://u@h/db?notify=a@b.example"),
        ("postgresql://postgres@127.0.0.1:5432/db", "postgresql://postgres@127.0.0.1:5432/db"),
    ],
)
def test_every_form_is_masked(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown


def test_mask_url_hides_what_it_cannot_read() -> None:
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_url("host=h password=pw") == "host=h password=***"
    assert mask_url("not a url :pw@") == "***"
    assert SECRET not in mask_url(f"postgresql://u@h/db?sslpassword={SECRET}")


def test_first_line_masks_a_drivers_message() -> None:
    exc = ValueError("bad URL postgresql://u:s3cr3tPW@h/db\nsecond line")
    assert first_line(exc) == "bad URL postgresql://u:***@h/db"


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("finsent.test.masking")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO):
        log.info("connecting to %s", "postgresql://u:s3cr3tPW@h/db")
        try:
            raise RuntimeError("host=h password=s3cr3tPW")
        except RuntimeError:
            log.exception("failed")
    assert SECRET not in caplog.text
    assert "postgresql://u:***@h/db" in caplog.text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://x.example/rss?apikey=ABC&q=1", "https://x.example/rss?apikey=***&q=1"),
        ("https://x.example/rss?access_token=T", "https://x.example/rss?access_token=***"),
        ("https://x.example/rss?api_key=K&token=T", "https://x.example/rss?api_key=***&token=***"),
        ("https://blob.example/f.xml?sv=1&sig=S%2B", "https://blob.example/f.xml?sv=1&sig=***"),
        ("https://x.example/rss?tokenize=1&design=2", "https://x.example/rss?tokenize=1&design=2"),
    ],
)
def test_feed_api_keys_and_signatures_in_a_query_are_masked(text, shown) -> None:
    """Feeds behind an API key carry it in the query: `feeds list`, errors and emails show the URL."""
    assert mask_secrets(text) == shown
