"""Exceptions that carry their context.

Every error FinSent raises on purpose derives from :class:`FinSentError`. Each says which
stage it came from and whether retrying can help (``transient``) or not (``terminal``),
so schedulers know whether to retry and the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

from pipeline.masking import mask_secrets

__all__ = [
    "AlertError",
    "ConfigError",
    "DatabaseError",
    "FeedError",
    "FinSentError",
    "ModelError",
    "SchemaError",
    "first_line",
]


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type's name when empty), passwords masked:
    what a one-line error quotes from a driver or library exception."""
    text = str(exc).strip() or type(exc).__name__
    return mask_secrets(text.splitlines()[0])


class FinSentError(Exception):
    """Base class. ``str(err)`` is a one-line, user-facing message."""

    stage: str = "finsent"
    #: True when the same call may succeed later (network blip, database restarting).
    transient: bool = False

    def __init__(self, message: str, *, stage: str | None = None, transient: bool | None = None):
        super().__init__(message)
        if stage is not None:
            self.stage = stage
        if transient is not None:
            self.transient = transient

    @property
    def terminal(self) -> bool:
        return not self.transient

    def __str__(self) -> str:
        msg = super().__str__()
        return msg if msg.startswith(f"{self.stage}:") else f"{self.stage}: {msg}"


class ConfigError(FinSentError):
    """Settings or a config file are malformed; fixing them is the only cure."""

    stage = "config"


class DatabaseError(FinSentError):
    """The database cannot be reached or used."""

    stage = "database"
    transient = True


class SchemaError(FinSentError):
    """The database schema is not the one this code expects."""

    stage = "database"


class FeedError(FinSentError):
    """A feed could not be fetched or parsed (one feed; the run goes on)."""

    stage = "ingest"
    transient = True


class ModelError(FinSentError):
    """A sentiment model is missing, unreadable or not a 3-class sentiment model."""

    stage = "model"


class AlertError(FinSentError):
    """Alert evaluation or delivery failed."""

    stage = "alerts"
    transient = True
