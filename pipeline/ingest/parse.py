"""Bytes -> feed entries with feedparser, after a cheap safety screen.

feedparser is only ever given the bytes (wrapped in a stream): handed a ``str`` or
``bytes`` it would fetch URLs or open local paths named by the body itself.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import feedparser

from pipeline.errors import FeedError
from pipeline.ingest.normalise import absolute_link, language_tag, one_plain_line, web_base

log = logging.getLogger(__name__)

# Entity declarations are how billion-laughs and external-entity (XXE) payloads work;
# real feeds do not need them.
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)
_ENTITY_DECL_TEXT = re.compile(r"<!ENTITY", re.I)
# Encodings in which "<!ENTITY" is not those ASCII bytes, told by a byte order mark or by
# how "<?" begins the document (XML 1.0, appendix F), or by what the server declares.
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_FIRST_BYTES = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),  # EBCDIC
)
# The encoding feedparser reads a document in (its RE_XML_PI_ENCODING, on the first line):
# the last encoding="..." on that line with a "?>" after it, quotes and spaces included
# (Python reads "utf 16" as UTF-16). The same pattern, so that the screen reads what
# feedparser will, and an encoding="base64" in the text of a one-line feed refuses nothing.
_XML_ENCODING = re.compile(r"^<\?.*encoding=['\"](.*?)['\"].*\?>")
# The text encodings a feed may be read in (codecs.lookup names). Python also knows
# codecs that are no character sets: punycode decodes in quadratic time (a 1 MB body took
# minutes), unicode_escape turns "\x3c" into "<" behind the entity screen's back, and
# base64, rot13, zlib and friends are byte or text transforms.
_TEXT_CODECS = re.compile(
    r"utf-(?:7|8(?:-sig)?|16(?:-[bl]e)?|32(?:-[bl]e)?)|ascii|iso8859-\d+|cp\d+|koi8-[rtu]|mac-[a-z0-9]+"
    r"|hp-roman8|tis-620|ptcp154|kz1048|palmos|shift_jis\w*|euc_\w+|iso2022_\w+|gb2312|gbk|gb18030|hz"
    r"|big5(?:hkscs)?|johab"
)
# Atomic: a comment may not be re-split across later ones when no HTML tag follows
# (backtracking over "<!---->" * 40 took hours).
_HTML_START = re.compile(rb"^\s*(?>(?:<!--.*?-->\s*)*)<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)
# Character references to UTF-16 surrogates (U+D800-U+DFFF) are no characters: feedparser
# raises UnicodeEncodeError on one and the whole feed was lost for one bad title.
_SURROGATE_REF = re.compile(rb"&#(?:[xX]0*([dD][89a-fA-F][0-9a-fA-F]{2})|0*(5[5-7][0-9]{3}));")

# RSS 1.0 syndication module (sy:updatePeriod / sy:updateFrequency): the period is shared
# among `frequency` updates. The module's defaults are "daily" and 1.
SY_PERIODS_S = {
    "hourly": 3600,
    "daily": 86400,
    "weekly": 7 * 86400,
    "monthly": 30 * 86400,
    "yearly": 365 * 86400,
}
# A feed's own polling hint (<ttl>, sy:updatePeriod) is honoured up to a day (store.py
# schedules with it): a typo such as <ttl>100000</ttl> must not silence a feed for months.
# Hints shorter than the schedule's interval change nothing: the feed is simply due at the
# next run.
MAX_POLL_HINT_S = 24 * 3600
# Hints are stored as the feed gave them (`feeds list` shows what a feed asks for), within
# a year: a bound on the stored integer, not a scheduling rule.
HINT_STORED_MAX_S = 365 * 86400


class FeedParseError(FeedError):
    """The body is not a usable feed. ``outcome`` is what the fetches table records."""

    def __init__(self, outcome: str, message: str):
        super().__init__(message, transient=False)
        self.outcome = outcome


@dataclass
class ParsedFeed:
    entries: list[dict[str, Any]]
    title: str | None = None
    language: str | None = None
    version: str = ""
    warning: str | None = None
    poll_interval_s: int | None = None  # how often the feed asks to be polled (<ttl>, sy:*)
    extra: dict[str, Any] = field(default_factory=dict)
    link: str | None = None  # the channel's own absolute http(s) <link>: relative item links' base

    def __post_init__(self) -> None:
        # Every source's feed-level text is cleaned here, once, as items' text is: a title or
        # <language> with a control character ("en&#0;") is stored with the feed, and a NUL
        # made PostgreSQL refuse the whole run's commit.
        self.title = (one_plain_line(str(self.title)) or None) if self.title else None
        self.language = language_tag(self.language)
        self.warning = (one_plain_line(str(self.warning)) or None) if self.warning else None


def _describe(exc: Any) -> str:
    text = str(exc).strip().splitlines()
    detail = text[0][:200] if text else ""
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def poll_interval(feed: dict[str, Any]) -> int | None:
    """Seconds between polls the feed asks for: RSS 2.0 ``<ttl>`` (minutes), else the
    syndication module's period / frequency; None when it says nothing usable."""
    ttl = _positive_int(feed.get("ttl"))
    if ttl is not None:
        return min(ttl * 60, HINT_STORED_MAX_S)
    period = feed.get("sy_updateperiod")
    frequency = feed.get("sy_updatefrequency")
    if period is None and frequency is None:
        return None
    period_s = SY_PERIODS_S.get(str(period or "daily").strip().lower())
    if period_s is None:
        return None  # a misspelt period: ignoring it beats guessing
    per_period = _positive_int(frequency) if frequency is not None else 1
    if per_period is None:
        return None
    return max(1, min(period_s // per_period, HINT_STORED_MAX_S))


def _header_charsets(headers: dict[str, str] | None) -> list[str]:
    """Every charset parameter of the Content-Type, as feedparser reads one (it keeps the
    last: "charset=utf-8; charset=utf-16" is UTF-16), quotes and blanks stripped."""
    out = []
    for chunk in (headers or {}).get("content-type", "").split(";")[1:]:
        key, _, value = chunk.partition("=")
        if key.strip().lower() == "charset":
            out.append(value.strip().strip("\"'"))
    return out


def _with_charset(content_type: str, body: bytes) -> str:
    """``content_type`` as feedparser should read it, by RFC 7303's rules: a UTF-16 or UTF-32
    byte order mark names the charset whatever the header says, and a text/* type without a
    charset gets the one the document states (its first bytes, else its XML declaration,
    else XML's default, UTF-8).

    feedparser follows RFC 3023 (obsoleted by 7303): "text/xml" alone means US-ASCII, and a
    header's charset wins over a byte order mark. A UTF-16 feed of plain English text then
    decodes as US-ASCII or UTF-8, NUL bytes and all, and was lost ("the body is not XML");
    every UTF-8 feed served as "text/xml" with one "é" or "€" warned at every fetch."""
    media_type, *params = content_type.split(";")
    boms = [name for bom, name in _BOMS if body.startswith(bom)]
    if boms:  # the codec without an endianness reads the mark and drops it
        params = [p for p in params if p.partition("=")[0].strip().lower() != "charset"]
        charset = boms[0][:6]
    elif media_type.strip().lower().startswith("text/") and not any(
        _header_charsets({"content-type": content_type})
    ):
        params = [p for p in params if p.partition("=")[0].strip().lower() != "charset"]  # "charset="
        end = body.find(b"\n", 0, DECLARATION_MAX)
        first_line = body[: end if end >= 0 else DECLARATION_MAX]
        sniffed = [name for start, name in _FIRST_BYTES if body.startswith(start)]
        charset = (sniffed or _encoding_values(first_line.decode("latin-1")) or ["utf-8"])[0]
    else:
        return content_type
    return ";".join([media_type, *(p for p in params if p.strip()), f" charset={charset}"])


def _sniffed_encodings(body: bytes) -> list[str]:
    """Encodings a byte order mark or the first bytes of "<?" say the body is in."""
    found = [name for bom, name in _BOMS if body.startswith(bom)]
    return found + [name for start, name in _FIRST_BYTES if body.startswith(start)]


def _after_utf8_bom(body: bytes) -> int:
    """Where the document starts: after a UTF-8 byte order mark, if any."""
    return len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0


def _xml_charsets(body: bytes) -> list[str]:
    """The encoding the XML declaration names (see _XML_ENCODING), read from the first line
    as bytes and in each sniffed encoding: each one feedparser may read the body in. Raises
    FeedParseError for a value that is not UTF-8 (feedparser raises UnicodeDecodeError)."""
    out = []
    start = _after_utf8_bom(body)
    end = body.find(b"\n", start)
    raw_line = body[start : end if end >= 0 else len(body)].decode("latin-1")
    for value in _encoding_values(raw_line):
        try:
            out.append(value.encode("latin-1").decode("utf-8"))  # as feedparser decodes it
        except UnicodeDecodeError:
            shown = one_plain_line(ascii(value.encode("latin-1")))[:60]
            raise FeedParseError(
                "parse_error",
                f"the feed's XML declaration names an unreadable encoding ({shown}): "
                'ask its publisher to declare encoding="utf-8"',
            ) from None
    for name in _sniffed_encodings(body):
        out += _encoding_values(body.decode(name, errors="replace").lstrip("\ufeff").split("\n", 1)[0])
    return out


def _encoding_values(first_line: str) -> list[str]:
    match = _XML_ENCODING.match(first_line)
    return [match.group(1)] if match else []


def _text_codec(name: str) -> str | None:
    """codecs.lookup's name for a charset feedparser may be given, when it is a text
    encoding; None for one Python does not know (feedparser then falls back to UTF-8).
    Raises FeedParseError for any other codec, or a name feedparser itself would choke on."""
    shown = ascii(name)[1:-1][:60]  # control characters escaped, never printed
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    except (ValueError, UnicodeError):  # a NUL in the name: feedparser raises ValueError on it
        codec = ""
    if not _TEXT_CODECS.fullmatch(codec):
        raise FeedParseError(
            "parse_error",
            f"the feed declares the charset '{shown}', which is not a text encoding: "
            "ask its publisher to serve it in UTF-8",
        )
    return codec


def _declared_codecs(body: bytes, headers: dict[str, str] | None) -> set[str]:
    """The text encodings the server, the byte order mark and the XML declaration name
    (codecs.lookup names). Raises FeedParseError for a charset that is no text encoding."""
    found = {*_sniffed_encodings(body), *_xml_charsets(body), *_header_charsets(headers)}
    return {codec for codec in map(_text_codec, found) if codec is not None}


def _wide_encodings(body: bytes, headers: dict[str, str] | None) -> set[str]:
    """Encodings the body may be read in where ASCII text is not ASCII bytes."""
    wide = set()
    for name in _declared_codecs(body, headers):
        if "<!ENTITY".encode(name) != b"<!ENTITY":
            wide.add(name)
    return wide


def declares_entities(body: bytes, headers: dict[str, str] | None = None) -> bool:
    """Whether the document declares an entity, in its bytes or in any encoding it may be
    decoded with (a UTF-16 "<!ENTITY" is not the ASCII bytes). Raises FeedParseError for
    a declared charset that is no text encoding (see _text_codec)."""
    if _ENTITY_DECL.search(body):
        return True
    for name in _wide_encodings(body, headers):
        if _ENTITY_DECL_TEXT.search(body.decode(name, errors="replace")):
            return True
    return False


def _no_surrogates(body: bytes) -> bytes:
    """``body`` with character references to surrogates replaced by U+FFFD's."""

    def replace(match: re.Match[bytes]) -> bytes:
        value = int(match.group(1), 16) if match.group(1) else int(match.group(2))
        return b"&#xFFFD;" if 0xD800 <= value <= 0xDFFF else match.group()

    return _SURROGATE_REF.sub(replace, body) if b"&#" in body else body


def resolve_links(entries: list[dict[str, Any]], base: str | None) -> None:
    """Make the entries' relative links absolute against ``base`` (see
    normalise.absolute_link): "/news/x" would otherwise be dropped, leaving the article
    without a link and its identity to a content hash that changes with each edit."""
    for entry in entries:
        link = entry.get("link")
        if link:
            resolved = absolute_link(link, base)
            if resolved is not link:
                entry["link"] = resolved


# The end of an item or entry (RSS 2.0 / 1.0 <item>, Atom <entry>, any namespace prefix), or
# an empty one (<item/>): what tells a complete entry from one a cut-short body ends inside.
_ENTRY_END = re.compile(r"</(?:[\w.-]+:)?(?:item|entry)\s*>|<(?:[\w.-]+:)?(?:item|entry)\b[^<>]*/>", re.I)


def _complete_entries(body: bytes, encoding: str | None) -> int:
    """How many items or entries of ``body`` are closed: in a body that ends early (a
    server's error mid-feed, a dropped connection behind a proxy), feedparser still gives the
    last, open entry, whose guid, link or date may not have arrived yet."""
    try:
        text = body.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return sum(1 for _ in _ENTRY_END.finditer(text))


#: Bytes within which a document that starts "<?" must close its first processing
#: instruction (an XML declaration is under 100).
DECLARATION_MAX = 1024


def _declaration_alone(body: bytes) -> bytes:
    """``body`` with a line break after its leading "<?...?>" (the XML declaration).

    feedparser finds the declared encoding with a pattern run over the document's first
    line (RE_XML_PI_ENCODING), which takes time cubic in that line's length when it holds
    many ``encoding="`` and quotes: a one-line (minified) feed of 10 KB built so took
    seconds, of 100 KB a half hour. Alone on its line the declaration bounds that line.
    A break between the declaration and the root element changes nothing in the document.
    Raises FeedParseError when the first instruction does not end within DECLARATION_MAX."""
    start = _after_utf8_bom(body)
    if not body.startswith(b"<?", start):
        return body
    end = body.find(b"?>", start, start + DECLARATION_MAX)
    if end < 0:
        line_end = body.find(b"\n", start, start + DECLARATION_MAX)
        if line_end >= 0:
            return body  # the first line is short: nothing to bound
        raise FeedParseError(
            "parse_error",
            f"the feed's XML declaration does not end within {DECLARATION_MAX} bytes: not a feed "
            "FinSent can read; check the URL with the publisher",
        )
    end += 2
    return body if body[end : end + 1] in (b"\n", b"\r") else body[:end] + b"\n" + body[end:]


def parse_feed(body: bytes, *, headers: dict[str, str] | None = None) -> ParsedFeed:
    """Parse a feed body. Raises FeedParseError (outcome empty | unsafe_xml | not_a_feed |
    parse_error) when it yields no entries for a reason worth telling the user."""
    if not body or not body.strip():
        raise FeedParseError("empty", "empty response body: the server sent no feed")
    body = _declaration_alone(body)
    head = body[:65536]
    # Before anything decodes the body: a charset that is no text encoding is refused here.
    if declares_entities(body, headers):
        raise FeedParseError(
            "unsafe_xml",
            "XML declares entities (<!ENTITY>), the shape of billion-laughs / XXE attacks: refused",
        )
    # No content-location: feedparser would resolve relative guids against it, and an
    # item's identity must not change when its feed moves.
    response_headers = {k: v for k, v in (headers or {}).items() if k in ("content-type", "content-language")}
    if "content-type" in response_headers:
        response_headers["content-type"] = _with_charset(response_headers["content-type"], body)
    # We store plain text (HTML stripped by normalise), so feedparser's own sanitising and
    # URL resolution are wasted work: skipping them makes parsing ~1.6x faster.
    try:
        result = feedparser.parse(
            io.BytesIO(_no_surrogates(body)),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except (UnicodeError, ValueError, LookupError) as exc:
        # What feedparser itself chokes on (a character its encoder refuses, an encoding
        # name it cannot read) is the feed's fault, not a FinSent bug: one line, no traceback.
        raise FeedParseError(
            "parse_error",
            f"feedparser could not read the feed ({one_plain_line(_describe(exc))}): "
            "check its encoding declaration and characters with the publisher",
        ) from None
    entries = result.get("entries") or []
    # bozo_exception quotes the feed (its declared encoding, its text): one plain line.
    warning = one_plain_line(_describe(result.get("bozo_exception"))) if result.get("bozo") else None
    if not entries:
        content_type = (headers or {}).get("content-type", "")
        if not result.get("version") and ("html" in content_type.lower() or _HTML_START.match(head)):
            shown = f" (Content-Type {one_plain_line(content_type)[:100]})" if content_type else ""
            raise FeedParseError("not_a_feed", f"served an HTML page, not a feed{shown}: check the feed URL")
        if not result.get("version") and not head.lstrip().startswith(b"<"):
            raise FeedParseError("not_a_feed", "not an RSS or Atom feed (the body is not XML)")
        if warning:
            raise FeedParseError("parse_error", f"malformed feed with no usable entries ({warning})")
        if not result.get("version"):
            raise FeedParseError("not_a_feed", "not an RSS or Atom feed (no channel or feed element)")
    feed = result.get("feed") or {}
    link = web_base(feed.get("link"))
    entries = list(entries)
    if result.get("bozo") and entries:
        # Stored, an entry cut short is keyed by a hash of its partial text and dated by the
        # fetch, and its complete copy at the next fetch (guid, link and date at last) is a
        # second article: the story counted twice. It is skipped; the next fetch brings it.
        complete = _complete_entries(body, result.get("encoding"))
        if complete < len(entries):
            cut = len(entries) - complete
            del entries[complete:]
            note = f"the body ends inside an entry (cut short): {cut} incomplete entries skipped"
            warning = f"{warning}; {note}" if warning else note
    resolve_links(entries, link)
    return ParsedFeed(
        entries=entries,
        title=feed.get("title") or None,
        language=feed.get("language") or None,
        version=result.get("version") or "",
        warning=warning,
        poll_interval_s=poll_interval(feed),
        link=link,
    )
