"""Feed source kinds: one module per kind (``http``, ``file``), each exporting ``SOURCE``,
a :class:`FeedSource` subclass. A module added here is a new kind, found by name; a
source defined elsewhere is passed to ``ingest(sources=...)`` and ``add_feeds(sources=...)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from functools import cache
from urllib.parse import urlsplit

from pipeline.errors import ConfigError
from pipeline.ingest.sources.base import FeedSource, FetchLimits

__all__ = ["FeedSource", "FetchLimits", "builtin_sources", "source_for"]

# The fallback for any location no other kind claims (a bare path) is read last.
_LAST = ("file",)


@cache
def builtin_sources() -> tuple[type[FeedSource], ...]:
    """The kinds in this package, in the order they are asked to claim a location."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        source = getattr(module, "SOURCE", None)
        if isinstance(source, type) and issubclass(source, FeedSource):
            found.append(source)
    return tuple(sorted(found, key=lambda s: (s.kind in _LAST, s.kind)))


def source_for(location: str, extra: Sequence[type[FeedSource]] = ()) -> type[FeedSource]:
    """The kind that reads ``location``: ``extra`` kinds first, then the built-in ones."""
    try:
        urlsplit(location.strip())
    except ValueError as exc:  # "http://[::1": every kind's claims() would raise it
        raise ConfigError(f"feed URL '{location}' is not a valid URL ({exc}): check its brackets") from None
    for source in (*extra, *builtin_sources()):
        if source.claims(location):
            return source
    scheme = location.strip().split(":", 1)[0]
    others = "".join(f", {s.kind}" for s in extra)
    raise ConfigError(
        f"feed URL '{location}' has unsupported scheme '{scheme}': use http(s), file:// or a path{others}"
    )
