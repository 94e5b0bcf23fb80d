"""OPML, the format feed lists travel in between readers: import and export.

Imported files are parsed with defusedxml: an OPML file is user-supplied XML too.
Nested outlines are folders; their titles become the feeds' tags.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

# Folders within folders: readers export two or three levels.
MAX_DEPTH = 64


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()


def read_opml(path: str | Path) -> list[OpmlFeed]:
    """Feeds listed in an OPML file. Raises ConfigError naming the file and the problem."""
    path = Path(path).expanduser()
    try:
        root = SafeET.parse(path).getroot()
    except RecursionError:
        raise ConfigError(f"OPML file {path} is nested too deep to read: flatten its folders") from None
    except FileNotFoundError:
        raise ConfigError(f"OPML file {path} does not exist") from None
    except DefusedXmlException as exc:
        raise ConfigError(
            f"OPML file {path} declares entities or a DTD ({type(exc).__name__}): refused"
        ) from None
    except ET.ParseError as exc:
        raise ConfigError(f"OPML file {path} is not well-formed XML ({exc}): fix or re-export it") from None
    if root.tag != "opml":
        raise ConfigError(f"{path} is not OPML (root element <{root.tag}>, expected <opml>)")
    body = root.find("body")
    if body is None:
        raise ConfigError(f"OPML file {path} has no <body>")
    feeds: list[OpmlFeed] = []
    # Iterative, and bounded: a file nested thousands deep is an attack or a broken export,
    # and recursion would end in a RecursionError instead of a message naming the file.
    # A stack of open folders, each with where its reading stopped: document order is kept.
    stack = [(iter(body.findall("outline")), ())]
    while stack:
        outlines, folders = stack[-1]
        outline = next(outlines, None)
        if outline is None:
            stack.pop()
            continue
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        title = (outline.get("title") or outline.get("text") or "").strip() or None
        if url:
            feeds.append(OpmlFeed(url, title, folders))
            continue
        if len(stack) > MAX_DEPTH:
            raise ConfigError(
                f"OPML file {path} nests outlines more than {MAX_DEPTH} deep: not a feed list "
                "a reader exports; flatten its folders and import it again"
            )
        stack.append((iter(outline.findall("outline")), (*folders, title) if title else folders))
    return feeds


def write_opml(feeds: list[tuple[str, str | None, list[str]]], *, now: datetime) -> str:
    """OPML 2.0 for (url, name, tags) rows; the first tag becomes the folder."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = "FinSent feeds"
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for url, name, tags in feeds:
        parent = body
        if tags:
            parent = folders.get(tags[0]) or ET.SubElement(body, "outline", text=tags[0], title=tags[0])
            folders[tags[0]] = parent
        label = name or url
        # A local feed as a file:// URL: xmlUrl is a URL to other readers (FinSent reads both).
        xml_url = Path(url).as_uri() if url.startswith("/") else url
        ET.SubElement(parent, "outline", type="rss", text=label, title=label, xmlUrl=xml_url)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
