"""One feed entry -> one article row: plain text, canonical URL, UTC date, stable keys.

Everything here is pure and cheap: it runs for every entry of every fetch, so the
regular expressions are compiled once and the common case (no markup, no entities)
skips them.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from calendar import timegm
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

TITLE_MAX = 1000
SUMMARY_MAX = 4000
URL_MAX = 2000  # the stored copy of a link; its identity (item_key) is taken before the cut
KEY_MAX = 512  # longer keys are hashed, never cut: btree index entries must stay small
# A feed date a little ahead is clock skew; beyond this it is a bug in the feed.
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_PLAUSIBLE = datetime(1995, 1, 1, tzinfo=UTC)

# The start of a block whose content is not text (script, style, noscript) or of a comment.
# Where each one ends is found with str.find (see _strip_blocks): a regex that pairs an
# opening with its end (lazy ".*?" up to "</\1>") rescans the rest of the text for every
# opening that has none, and "<script>" * 40000 took a minute.
_BLOCK_START = re.compile(r"<(?:(script|style|noscript)\b|!--)", re.I)
_BLOCK_END = re.compile(r"\s*>")
# Possessive: where a tag has no ">", the name and the attributes must not trade letters
# back and forth (quadratic in the length of an unclosed "<aaaa...").
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*+)[^<>]*+>")
_INLINE = frozenset({"a", "abbr", "b", "em", "font", "i", "span", "strong", "sub", "sup", "u", "small", "q"})
# Control characters, and the bidirectional controls (U+200E/F, U+061C, U+202A-E, U+2066-9)
# that would let a feed display one headline while storing another (a right-to-left
# override reverses what follows it on screen, in `trends`, `feeds` and emails alike).
_CTRL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ud800-\udfff\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"
)
_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]+")
# "Acme recalls 1M cars - Reuters": aggregators append the publisher to the title.
_SOURCE_SUFFIX = re.compile(r"\s+[-|–—]\s+[^-|–—]{1,40}$")
# Characters RFC 3986 does not allow in a URL: kept raw, a link such as
# "https://x/a><!channel>|Click" would close a Slack link and write a mention of its own in
# a webhook alert (or an attribute in an email). The query is re-encoded by urlencode.
_URL_UNSAFE = '<>|"\\^`{} '
_NOT_IN_URL = re.compile(f"[{re.escape(_URL_UNSAFE)}]")
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")

TRACKING_PREFIXES = ("utm_", "mc_", "hsa_", "_hs", "pk_", "mtm_", "at_")
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "twclid", "ttclid",
        "ocid", "cmpid", "cmp", "ncid", "src", "source", "ref", "ref_src", "referrer", "spm", "guccounter",
        "guce_referrer", "guce_referrer_sig", "soc_src", "soc_trk", "sr_share", "share", "smid", "sref",
        "tpcc", "cid", "_ga", "_gl", "feedtype", "feedname", "rss", "xtor", "__twitter_impression",
    }
)  # fmt: skip
# feedparser's dict maps legacy key names on every lookup; the canonical keys it stores
# are read directly (a tenth of the normalisation time on large runs).
_get = dict.get
# Short, generic titles ("Market update", "Earnings call transcript") recur without being
# the same story: those link only when the whole text matches too.
MIN_WORDS_FOR_TITLE_MATCH = 5


@dataclass
class ArticleRow:
    item_key: str  # see identity.assign_item_keys: unique within one fetch of a feed
    guid: str | None
    url: str | None
    title: str
    summary: str | None
    language: str | None
    published_at: datetime
    date_flag: str | None
    content_hash: str
    title_key: str
    title_is_specific: bool
    # The link's canonical form, uncut (``url`` is the stored, bounded copy): what the
    # item's identity is made of when the feed gives no guid.
    full_url: str | None = None
    # Title and text before they were bounded for storage: ticker linking reads these,
    # so a mention past the stored length still counts. Not stored.
    full_title: str | None = None
    full_summary: str | None = None
    # Other keys the item may be stored under, in order (see identity.assign_item_keys).
    alt_keys: tuple[str, ...] = ()

    def text(self) -> str:
        """What is stored, as ticker re-linking of stored articles reads it."""
        return linkable_text(self.title, self.summary)

    def full_text(self) -> str:
        """Everything the feed said, unbounded: what ingest links tickers on."""
        return linkable_text(self.full_title or self.title, self.full_summary or self.summary)


def linkable_text(title: str, summary: str | None) -> str:
    """What ticker linking reads; re-linking stored articles must read exactly the same."""
    return title if not summary else f"{title}\n{summary}"


def _strip_blocks(value: str) -> str:
    """``value`` with each script, style and noscript block and each comment replaced by a
    space, in one pass. One that is never closed loses only its opening tag (or "<!--"):
    a headline that merely mentions "&lt;script&gt;" keeps the words after it.

    Linear: once no closing tag (or no ">") follows a position, none follows any later one,
    so each is searched for to the end of the text at most once."""
    match = _BLOCK_START.search(value)
    if match is None:
        return value
    lower = value.lower()
    unclosed: set[str] = set()  # "-->", "</script", ..., ">": none of them after this point
    out: list[str] = []
    pos = 0
    while match is not None:
        out.append(value[pos : match.start()])
        out.append(" ")
        pos = match.end()  # an unclosed block: only its opening goes
        name = match.group(1)
        if name is None:  # a comment
            end = _find_once(lower, "-->", pos, unclosed)
            if end >= 0:
                pos = end + 3
        else:
            opened = _find_once(value, ">", pos, unclosed)
            if opened >= 0:
                pos = opened + 1
                end = _block_end(value, lower, f"</{name.lower()}", pos, unclosed)
                if end >= 0:
                    pos = end
        match = _BLOCK_START.search(value, pos)
    out.append(value[pos:])
    return "".join(out)


def _find_once(text: str, needle: str, start: int, absent: set[str]) -> int:
    """``text.find(needle, start)``, remembering in ``absent`` when it is not there, so that
    a later start (never earlier) does not scan the rest of the text again."""
    if needle in absent:
        return -1
    at = text.find(needle, start)
    if at < 0:
        absent.add(needle)
    return at


def _block_end(value: str, lower: str, closing: str, start: int, absent: set[str]) -> int:
    """Where the first ``closing`` tag ("</script", blanks, ">") at or after ``start`` ends;
    -1 when there is none, remembered in ``absent`` as _find_once does."""
    at = _find_once(lower, closing, start, absent)
    while at >= 0:
        end = _BLOCK_END.match(value, at + len(closing))
        if end is not None:
            return end.end()
        at = _find_once(lower, closing, at + len(closing), absent)
    return -1


def _strip_tags(value: str) -> str:
    value = _strip_blocks(value)
    return _TAG.sub(lambda m: "" if m.group(2) and m.group(2).lower() in _INLINE else " ", value)


def clean_text(value: Any, limit: int) -> str:
    """Markup-free, entity-decoded, whitespace-folded text of at most ``limit`` chars."""
    return bound_text(clean_full_text(value), limit)


def one_plain_line(value: str) -> str:
    """``value`` without control or bidirectional characters, its whitespace folded to single
    spaces: for free text an operator types (a silence's reason) that is shown in lists."""
    return _WS.sub(" ", _CTRL.sub("", value)).strip()


def clean_full_text(value: Any) -> str:
    """clean_text without the length limit."""
    if not value:
        return ""
    text = str(value)
    if "<" in text:
        text = _strip_tags(text)
    if "&" in text:
        text = html.unescape(text)
        if "<" in text:  # markup that arrived entity-encoded (&lt;b&gt;)
            text = _strip_tags(text)
    text = _CTRL.sub("", text)
    return _WS.sub(" ", text).strip()


def bound_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` chars, on a word where one is near, marked with …"""
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit - 1)
        text = text[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"
    return text


def canonical_url(raw: Any) -> str | None:
    """The URL without tracking parameters and fragment; None for non-web links."""
    if not raw:
        return None
    value = _CTRL.sub("", str(raw)).strip()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None  # javascript:, data:, mailto: and friends are not article links
    host = parts.hostname.lower()
    if _NOT_IN_URL.search(host):
        return None  # no such host: "<" or "|" in a host name is markup, not an address
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username:
        host = f"{_encode_unsafe(parts.username)}@{host}"
    query = ""
    if parts.query:
        kept = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
        ]
        query = urlencode(sorted(kept))
    return urlunsplit((scheme, host, _encode_unsafe(parts.path) or "/", query, ""))


#: What _encode_unsafe writes for each character, to undo it.
_ENCODED_UNSAFE = re.compile("|".join(f"%{ord(c):02X}" for c in _URL_UNSAFE))


def unencoded_path(url: str) -> str:
    """``url`` with the path's percent-encoded unsafe characters as canonical_url gave them
    before it encoded them: the identity an item's link had in articles stored then."""
    parts = urlsplit(url)
    path = _ENCODED_UNSAFE.sub(lambda m: chr(int(m.group()[1:], 16)), parts.path)
    return url if path == parts.path else urlunsplit(parts._replace(path=path))


def _encode_unsafe(part: str) -> str:
    """``part`` with the characters a URL may not contain percent-encoded; "%" is left
    alone, so an encoded URL stays as it is."""
    if not _NOT_IN_URL.search(part):
        return part
    return _NOT_IN_URL.sub(lambda m: f"%{ord(m.group()):02X}", part)


def web_base(raw: Any) -> str | None:
    """``raw`` when it is an absolute http(s) URL that relative links can be resolved
    against (a feed's <link>, its own URL); None otherwise (a file path, a bad URL)."""
    if not isinstance(raw, str):
        return None
    value = _CTRL.sub("", raw).strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def absolute_link(raw: Any, base: str | None) -> Any:
    """An item's link made absolute: "//host/path" gets https, "/news/x" or "x" is resolved
    against ``base`` (see web_base). Anything else is returned as it was: an absolute URL,
    a javascript: or data: link (canonical_url drops those), a bare "#fragment", or a
    relative link with no base."""
    if not isinstance(raw, str):
        return raw
    value = _CTRL.sub("", raw).strip()
    if value.startswith("//"):
        return "https:" + value
    if not value or value.startswith("#") or base is None:
        return raw
    try:
        if urlsplit(value).scheme:
            return raw
        return urljoin(base, value)
    except ValueError:
        return raw


def title_key(title: str) -> tuple[str, bool]:
    """Hash of the title reduced to its words, and whether it is specific enough to link
    stories on its own."""
    base = title
    stripped = _SOURCE_SUFFIX.sub("", base)
    if len(stripped.split()) >= MIN_WORDS_FOR_TITLE_MATCH:
        base = stripped
    folded = unicodedata.normalize("NFKD", base).casefold()
    folded = _WS.sub(" ", _PUNCT.sub(" ", folded)).strip()
    specific = len(folded.split()) >= MIN_WORDS_FOR_TITLE_MATCH
    return hashlib.sha256(folded.encode()).hexdigest(), specific


def _struct_to_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(timegm(value), tz=UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


# RFC 822 without a zone: "Sun, 08 Mar 2026 06:45:00" (the weekday and the seconds optional).
_NO_ZONE = re.compile(
    r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


def _rfc822_without_zone(value: Any) -> datetime | None:
    """An RSS date that feedparser leaves unparsed only because it names no zone, read as
    UTC (as feedparser reads Atom dates without a zone). Anything else feedparser rejected
    (31 Feb, 25:61, a broken zone) stays rejected."""
    match = _NO_ZONE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    if month.lower() not in _MONTHS:
        return None
    try:
        return datetime(
            int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
        )
    except ValueError:
        return None


# Dates feedparser "repairs" instead of refusing: a negative year (-0001 became 2000-01-01)
# and a zone offset no place has (+9999 shifted a date by four days). Real offsets lie
# within +-14:00.
_NEGATIVE_YEAR = re.compile(r"^\s*-\d")
_ZONE = re.compile(r"(?<=\d)\s*([+-])(\d{2}):?(\d{2})\s*$")
MAX_ZONE_HOURS = 14


# RFC 822 with a named zone or a "GMT+8" / "UTC+05:30" offset. feedparser knows the US zones
# and GMT/UT/Z only, and reads any other name ("CET", "JST", "HKT", "UTC+8") as UTC: a Tokyo
# headline moved nine hours without a trace.
_NAMED_ZONE = re.compile(
    r"^\s*(?:[A-Za-z]+,?\s*)?(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3,9})\.?\s+(?P<year>\d{2}|\d{4})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?(?:\s*(?P<meridiem>[AP]M)\b)?"
    r"\s*(?:(?P<name>[A-Za-z]{1,5})|(?:UTC|GMT|UT)\s*(?P<sign>[+-])(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?\s*$",
    re.I,
)
# What feedparser reads right (its own table, RFC 822's names), in minutes east of UTC.
_FEEDPARSER_ZONES = {
    "ut": 0, "gmt": 0, "z": 0, "adt": -180, "ast": -240, "at": -240, "edt": -240, "est": -300,
    "et": -300, "cdt": -300, "cst": -360, "ct": -360, "mdt": -360, "mst": -420, "mt": -420,
    "pdt": -420, "pst": -480, "pt": -480, "a": -60, "n": 60, "m": -720, "y": 720, "met": 60,
    "mest": 120,
}  # fmt: skip
# Zone names feeds use that feedparser does not know. Ambiguous ones are read as financial
# news uses them: IST is India (+05:30), BST British Summer Time; CST stays US Central.
ZONE_MINUTES = {
    "utc": 0, "wet": 0, "west": 60, "bst": 60, "cet": 60, "cest": 120, "eet": 120, "eest": 180,
    "msk": 180, "sast": 120, "ist": 330, "pkt": 300, "wib": 420, "ict": 420, "hkt": 480, "sgt": 480,
    "pht": 480, "awst": 480, "jst": 540, "kst": 540, "acst": 570, "acdt": 630, "aest": 600,
    "aedt": 660, "nzst": 720, "nzdt": 780, "hst": -600, "akst": -540, "akdt": -480, "brt": -180,
    "art": -180, "nst": -210, "ndt": -150,
}  # fmt: skip


def _zone_offset(match: re.Match[str]) -> int | None:
    """Minutes east of UTC the date's zone names (none named: UTC, as the no-zone rule
    reads it); None for a name no table holds."""
    name = match["name"]
    if name is not None:
        name = name.lower()
        return ZONE_MINUTES.get(name, _FEEDPARSER_ZONES.get(name))
    if match["sign"] is None:
        return 0
    offset = int(match["oh"]) * 60 + int(match["om"] or 0)
    return -offset if match["sign"] == "-" else offset


def _ours(match: re.Match[str]) -> bool:
    """Whether the date is one feedparser misreads: a zone name it does not know, a GMT+8
    offset, or a 12-hour clock ("10:00 PM", which it reads as 10:00 or not at all)."""
    if match["meridiem"] is not None:
        return True
    if match["name"] is not None:
        return match["name"].lower() not in _FEEDPARSER_ZONES
    return match["sign"] is not None


def _misread(value: Any) -> tuple[re.Match[str], int | None] | None:
    """For a date feedparser misreads (see _ours): its match and its zone's minutes east of
    UTC (None: a name no table knows, or beyond +-14:00). None for any other date."""
    match = _NAMED_ZONE.match(value) if isinstance(value, str) else None
    if match is None or not _ours(match):
        return None
    offset = _zone_offset(match)
    return match, offset if offset is not None and abs(offset) <= MAX_ZONE_HOURS * 60 else None


def named_zone_date(value: Any) -> datetime | None:
    """An RFC 822 date feedparser misreads (see _ours), read right; None for any other date
    (feedparser's reading of it stands), an unknown zone name or an impossible time."""
    found = _misread(value)
    if found is None or found[1] is None:
        return None
    match, offset = found
    month = _MONTHS.get(match["month"][:3].lower())
    if month is None:
        return None
    day, year, hour, minute, second = (
        int(match[g] or 0) for g in ("day", "year", "hour", "minute", "second")
    )
    if match["meridiem"] is not None:
        if not 1 <= hour <= 12:
            return None  # "13:00 PM"
        hour = hour % 12 + (12 if match["meridiem"].lower() == "pm" else 0)
    if year < 100:
        year += 2000 if year < 90 else 1900  # as feedparser reads a two-digit year
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return local - timedelta(minutes=offset)


def _unknown_zone(value: str) -> bool:
    """Whether an RFC 822 date names a zone neither feedparser nor ZONE_MINUTES knows (or
    an offset beyond +-14:00): feedparser would read it as UTC, silently."""
    found = _misread(value)
    return found is not None and found[1] is None


def implausible_date_text(value: Any) -> bool:
    """Whether a date as the feed wrote it has a negative year, an impossible zone or a zone
    name no table knows."""
    if not isinstance(value, str):
        return False
    if _NEGATIVE_YEAR.match(value) or _unknown_zone(value):
        return True
    zone = _ZONE.search(value)
    if zone is None or not re.search(r"[T ]\d{1,2}:\d{2}", value[: zone.start()]):
        return False  # no time of day before it: "2026-11-29" ends in digits, not a zone
    hours, minutes = int(zone.group(2)), int(zone.group(3))
    return hours > MAX_ZONE_HOURS or minutes > 59


def entry_date(
    entry: dict[str, Any], now: datetime, latest: datetime | None = None
) -> tuple[datetime, str | None]:
    """(published_at, date_flag): the feed's date, else ``now`` flagged 'missing' (or
    'invalid' when the feed's date was one feedparser would have silently shifted: see
    implausible_date_text); dates ahead of ``latest`` (default ``now``) are clamped to it
    (flagged 'future' beyond clock skew).

    A backfill (``now`` in the past) passes the wall clock as ``latest``: a date after the
    run's logical time but before the real one is a real date, and clamping it would pile
    the hours after ``now`` into ``now``'s hour for good."""
    ceiling = max(now, latest) if latest is not None else now
    names = ("published", "updated", "created")
    invalid = {n for n in names if implausible_date_text(_get(entry, n))}
    usable = [n for n in names if n not in invalid]
    # feedparser's own parse of any field first; the no-zone fallback only after all of them.
    candidates = [
        named_zone_date(_get(entry, n)) or _struct_to_datetime(_get(entry, f"{n}_parsed")) for n in usable
    ]
    candidates += [_rfc822_without_zone(_get(entry, n)) for n in usable]
    for when in candidates:
        if when is None:
            continue
        if when < EARLIEST_PLAUSIBLE:
            # Epoch zero and friends: a placeholder, not a date; another field (an Atom
            # <updated> beside a 1970 <published>) may still hold the real one.
            continue
        if when <= ceiling:
            return when, None
        if when <= ceiling + FUTURE_TOLERANCE:
            return ceiling, None  # clock skew against the real time: at most a few minutes
        return now, "future"
    return now, "invalid" if invalid else "missing"


def language_tag(*candidates: Any) -> str | None:
    """The first candidate that is a language tag ("en", "en-GB", "pt_BR"), lower-cased with
    "-"; None when none is. The one rule for an item's language and its feed's own."""
    for value in candidates:
        if isinstance(value, str) and _LANG.match(value.strip()):
            return value.strip().lower().replace("_", "-")
    return None


def _detail_language(entry: dict[str, Any], key: str) -> Any:
    detail = _get(entry, key)
    return _get(detail, "language") if isinstance(detail, dict) else None


def normalise_entry(
    entry: dict[str, Any], *, now: datetime, feed_language: str | None, latest: datetime | None = None
) -> ArticleRow | None:
    """The article for one feedparser entry, or None when it has neither title nor text.
    ``latest``: the wall clock, in a backfill (see entry_date)."""
    full_summary = clean_full_text(_get(entry, "summary") or _get(entry, "description"))
    full_title = clean_full_text(_get(entry, "title"))
    summary = bound_text(full_summary, SUMMARY_MAX)
    title = bound_text(full_title, TITLE_MAX)
    if not title:
        if not summary:
            return None
        title = bound_text(full_summary, 200)
    full_url = canonical_url(_get(entry, "link"))
    guid = _CTRL.sub("", str(_get(entry, "id") or "")).strip() or None
    content_hash = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    key = bounded_key(guid or full_url or f"sha256:{content_hash}")
    published_at, date_flag = entry_date(entry, now, latest)
    tkey, specific = title_key(title)
    return ArticleRow(
        item_key=key,
        guid=guid[:URL_MAX] if guid else None,
        url=full_url[:URL_MAX] if full_url else None,
        title=title,
        summary=summary or None,
        language=language_tag(
            _get(entry, "language"),
            _detail_language(entry, "title_detail"),
            _detail_language(entry, "summary_detail"),
            feed_language,
        ),
        published_at=published_at,
        date_flag=date_flag,
        content_hash=content_hash,
        title_key=tkey,
        title_is_specific=specific,
        full_url=full_url,
        full_title=full_title if len(full_title) > len(title) else None,
        full_summary=full_summary if len(full_summary) > len(summary) else None,
    )


def bounded_key(key: str) -> str:
    """``key`` as stored: as is when short, else its hash (never a prefix: two keys that
    differ only late must stay two)."""
    if len(key) > KEY_MAX:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key
