"""Click parameter types shared by commands (no heavy imports: `--help` stays fast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

# Clock skew allowed for a "now or earlier" time given by hand or by another machine.
FUTURE_SLACK = timedelta(minutes=5)


class UtcDateTime(click.ParamType):
    """An ISO 8601 time (2026-12-01T00:00Z); naive values are taken as UTC, others converted.

    ``past=True`` (for --now / --at: replays and backfills) refuses a time after the present.
    A run "as of" a future time stamps fetches, resolves ongoing alerts and schedules retries
    in that future, and every real run until then finds its work already done.
    """

    name = "ISO-TIME"

    def __init__(self, past: bool = False) -> None:
        self.past = past

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            self.fail(f"'{value}' is not an ISO 8601 time such as 2026-12-01T00:00Z", param, ctx)
        result = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        now = datetime.now(UTC)
        if self.past and result > now + FUTURE_SLACK:
            self.fail(
                f"{result:%Y-%m-%dT%H:%MZ} is in the future (now {now:%Y-%m-%dT%H:%MZ}): give a past "
                "time to replay or backfill, or leave it out for the current time",
                param,
                ctx,
            )
        return result
