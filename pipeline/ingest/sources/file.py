"""Local feed files (the demo, tests, feeds saved by other tools): a path or a file:// URL,
stored as an absolute path."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.errors import ConfigError
from pipeline.ingest.parse import FeedParseError, parse_feed
from pipeline.ingest.records import FeedRequest, FetchResult
from pipeline.ingest.sources.base import FeedSource

__all__ = ["FileSource"]

# Reading a local feed at add time is cheap; a remote one is not fetched until ingest.
_CHECK_MAX_BYTES = 32 * 1024 * 1024


class FileSource(FeedSource):
    kind = "file"

    @classmethod
    def claims(cls, location: str) -> bool:
        try:
            scheme = urlsplit(location.strip()).scheme
        except ValueError:  # "http://[::1": no kind's (source_for says why)
            return False
        # No scheme: a path; one letter: a Windows drive.
        return scheme.lower() == "file" or len(scheme) <= 1

    @classmethod
    def location(cls, raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme.lower() == "file":
            if parts.netloc not in ("", "localhost"):
                raise ConfigError(
                    f"feed URL '{raw}' names host '{parts.netloc}': file:// URLs are read on this "
                    "machine, so use file:///path (three slashes) or the path itself"
                )
            if not Path(unquote(parts.path)).is_file():
                raise ConfigError(f"feed file '{raw}' does not exist")
            # One file, one feed: file:///x/f.xml and /x/f.xml must not be stored (and ingested) twice.
            return cls.canonical(value)
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"feed '{raw}' is neither an http(s) URL nor an existing file")
        return str(path.resolve())

    @classmethod
    def canonical(cls, stored: str) -> str:
        parts = urlsplit(stored)
        if parts.scheme.lower() == "file":
            return str(Path(unquote(parts.path)).resolve())
        return stored

    @classmethod
    def check(cls, location: str) -> None:
        """Refuse a file that is not an RSS/Atom feed now, not at its first ingest. A file
        too large to read here passes (ingest applies ``fetch_max_bytes`` to it)."""
        path = Path(location)  # canonical: an absolute path, never a file:// URL
        try:
            with path.open("rb") as fh:
                body = fh.read(_CHECK_MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(
                f"feed file '{path}' cannot be read ({exc.strerror}): check its permissions"
            ) from None
        if len(body) > _CHECK_MAX_BYTES:
            return
        try:
            parse_feed(body)
        except FeedParseError as exc:
            reason = str(exc).removeprefix("ingest: ")
            raise ConfigError(f"feed file '{path}' is not a usable feed: {reason}") from None

    def fetch(self, request: FeedRequest) -> FetchResult:
        parts = urlsplit(request.url)
        path = Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(request.url)
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                # A FIFO or a device would block the read (and the run) or never end.
                error = f"{path} is not a regular file: point the feed at a file"
                return FetchResult("connection_error", error=error)
            with path.open("rb") as fh:
                body = fh.read(self.limits.max_bytes + 1)
        except FileNotFoundError:
            return FetchResult("connection_error", error=f"file {path} does not exist")
        except OSError as exc:
            return FetchResult("connection_error", error=f"cannot read {path} ({exc.strerror or exc})")
        if len(body) > self.limits.max_bytes:
            return FetchResult("too_large", error=self.limits.too_large_message())
        return FetchResult("ok", body=body, final_url=request.url)


SOURCE = FileSource
