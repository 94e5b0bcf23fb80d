"""Click parameter types shared by commands (no heavy imports: `--help` stays fast)."""

from __future__ import annotations

from datetime import UTC, datetime

import click


class UtcDateTime(click.ParamType):
    """An ISO 8601 time (2026-12-01T00:00Z); naive values are taken as UTC, others converted."""

    name = "ISO-TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            self.fail(f"'{value}' is not an ISO 8601 time such as 2026-12-01T00:00Z", param, ctx)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
